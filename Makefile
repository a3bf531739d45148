# qallegro: the two commands are `make book` and `make test`; everything else is a convenience.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
SCALE ?= overnight
# Local data mirror: the shared folder beside the checkout when it exists (tests and CI), else data/mirror.
export QALLEGRO_DATA ?= $(if $(wildcard ../shared/data),$(abspath ../shared/data),$(abspath data/mirror))

.PHONY: install sysdeps mathjax lint records test test-all book html publish smoke bench bench-race lock release clean help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' Makefile | sed 's/:.*## /\t/'

$(BIN)/.installed: requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade "pip>=25"
	$(BIN)/pip install -r requirements.txt
	$(BIN)/pip install --no-deps -e .
	touch $@

install: $(BIN)/.installed  ## create .venv and install the pinned environment (editable qallegro)

sysdeps:  ## Debian packages the tests use (chromium, PostgreSQL); needs root or sudo
	bash .ci/install-system.sh

book/_static/mathjax/tex-mml-chtml.js:
	bash .ci/install-mathjax.sh book/_static/mathjax

mathjax: book/_static/mathjax/tex-mml-chtml.js  ## vendor MathJax 3 from npm (not committed)

records:  ## commit the small records of finished campaign units (never a unit or an HPO trial still running; no checkpoints)
	paths=$$($(BIN)/python .ci/records.py); \
	if [ -n "$$paths" ]; then git add -- $$paths && git commit -q -m "campaign records: $$(echo "$$paths" | wc -l) files of finished work"; fi

lint: install  ## ruff (pinned; rules in pyproject.toml) over the library, tests, benchmarks and CI scripts
	$(BIN)/ruff check lib tests benchmarks book/_ext .ci

test: install sysdeps mathjax lint  ## lint, then the default test suite (about 15 minutes on 2 cores)
	$(BIN)/python -m pytest -m "not slow"

test-all: install sysdeps mathjax lint  ## every test, including the slow ones
	$(BIN)/python -m pytest

book: install mathjax  ## run the notebooks at SCALE (default overnight, the committed pages: nothing is computed on a fresh clone; cached results are reused) and build the book
	$(BIN)/qallegro reproduce --scale $(SCALE)

html: install mathjax  ## build the HTML from the stored notebook outputs only (no computation)
	$(BIN)/jupyter-book build book/

# The project site: the repository URL for its buttons (from the `origin` remote, as https) and the git remote
# whose gh-pages branch receives the HTML. CI does the same with .github/workflows/book.yml.
REMOTE ?= origin
SITE_URL ?= $(shell git remote get-url $(REMOTE) 2>/dev/null | sed -E 's|^git@([^:]+):|https://\1/|; s|\.git$$||')

publish: install mathjax  ## build the committed pages for the project site (strict, nothing computed) and push them to REMOTE's gh-pages branch (ghp-import)
	$(BIN)/python -m qallegro.pipeline.build $(if $(filter https://%,$(SITE_URL)),--site-url $(SITE_URL)) --publish $(REMOTE)

smoke: install sysdeps mathjax  ## the whole pipeline at smoke scale in a temporary copy, then a strict build
	$(BIN)/qallegro reproduce --scale smoke --copy --strict

bench: install  ## print the speed ratios of benchmarks/ (see benchmarks/README.md)
	$(BIN)/python benchmarks/run_all.py

bench-race: install  ## race against the maintainers' Allegro (installs nequip into .venv-bench)
	bash benchmarks/race.sh

lock:  ## regenerate requirements.txt pins and environment.yml from the current .venv
	$(BIN)/python .ci/lock.py

release:  ## check that VERSION agrees with __version__, CITATION.cff, .zenodo.json and CHANGELOG.md and the tree is clean, then tag vVERSION (never pushes)
	@test -n "$(VERSION)" || { echo "usage: make release VERSION=X.Y.Z" >&2; exit 2; }
	$(BIN)/python .ci/release.py $(VERSION)

clean:  ## remove the built book (keeps results and the venv)
	rm -rf _build
