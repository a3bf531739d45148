"""The jupyter-book build of `book/` (rendered from the stored notebook outputs; nothing is executed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from qallegro.errors import PipelineError

MATHJAX = Path("_static") / "mathjax" / "tex-mml-chtml.js"


def toc_files(toc_path: Path) -> list[str]:
    """Every page of a jupyter-book table of contents (the root first), relative to book/ without suffix."""
    import yaml

    toc = yaml.safe_load(Path(toc_path).read_text())
    if not isinstance(toc, dict) or "root" not in toc:
        raise ValueError(f"{toc_path}: not a jupyter-book table of contents (no 'root')")
    files = [toc["root"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return files


class BuildFailed(PipelineError):
    """jupyter-book returned non-zero (with `strict`, any Sphinx warning does)."""


def jupyter_book() -> str:
    """The jupyter-book executable of this environment."""
    beside = Path(sys.executable).with_name("jupyter-book")
    found = str(beside) if beside.exists() else shutil.which("jupyter-book")
    if not found:
        raise PipelineError("jupyter-book is not installed in this environment (make install)")
    return found


BINDER = "https://mybinder.org"
COLAB = "https://colab.research.google.com"


def site_config(config_path: Path, repository_url: str, dest: Path) -> Path:
    """A copy of the book's `_config.yml` at `dest` for the project's site: `repository.url` set and its
    repository, issue and launch (Binder, Colab) buttons on; they are links only. Local extension paths are
    made absolute (they are relative to the config file)."""
    import yaml

    if not repository_url.startswith("https://"):
        raise ValueError(f"repository URL must start with https://, got {repository_url!r}")
    config_path = Path(config_path).resolve()
    cfg = yaml.safe_load(config_path.read_text())
    cfg["repository"] = {**cfg.get("repository", {}), "url": repository_url.rstrip("/")}
    cfg["html"] = {**cfg.get("html", {}), "use_repository_button": True, "use_issues_button": True}
    cfg["launch_buttons"] = {**cfg.get("launch_buttons", {}), "binderhub_url": BINDER, "colab_url": COLAB}
    local = cfg.get("sphinx", {}).get("local_extensions") or {}
    for name, path in local.items():
        local[name] = str((config_path.parent / path).resolve())
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return dest


def check_prerequisites(book_dir: Path, build: bool = True) -> None:
    """Everything `reproduce` needs, checked before it executes anything: papermill and the notebooks' kernel
    and, when the book is to be built, jupyter-book and the vendored MathJax. One `PipelineError` names what is
    missing and the command that installs it."""
    import importlib.util

    from jupyter_client.kernelspec import find_kernel_specs

    from qallegro.pipeline.execute import KERNEL

    if importlib.util.find_spec("papermill") is None:
        raise PipelineError("papermill is not installed in this environment (make install)")
    if KERNEL not in find_kernel_specs():
        raise PipelineError(f"no Jupyter kernel {KERNEL!r} in this environment (make install installs ipykernel)")
    if build:
        jupyter_book()
        mathjax = Path(book_dir).resolve() / MATHJAX
        if not mathjax.exists():
            raise PipelineError(f"MathJax is not vendored: {mathjax} is missing, so math would not render offline; "
                                "run `make mathjax` (bash .ci/install-mathjax.sh)")


def build_book(book_dir: Path, log_path: Path, strict: bool = False, config: Path | None = None) -> Path:
    """Build the HTML book of `book_dir` into `<repo>/_build/html`; return that folder.

    `strict` rebuilds every page and fails on any warning (`-W --keep-going --all`), as CI does; `config`
    replaces `<repo>/_config.yml` (e.g. a `site_config`). The output of jupyter-book goes to `log_path`; its
    tail is in the error when the build fails.
    """
    book_dir = Path(book_dir).resolve()
    check_prerequisites(book_dir)
    cmd = [jupyter_book(), "build", str(book_dir)]
    if strict:
        cmd += ["-W", "--keep-going", "--all"]
    if config is not None:
        cmd += ["--config", str(Path(config).resolve())]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.run(cmd, check=False, stdout=log, stderr=subprocess.STDOUT, cwd=book_dir.parent)
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-25:])
        raise BuildFailed(f"jupyter-book build failed (rc {proc.returncode}); log: {log_path}\n{tail}")
    return book_dir.parent / "_build" / "html"


def publish(html: Path, repo: Path, remote: str = "origin", branch: str = "gh-pages", message: str = "") -> None:
    """Commit the built book `html` as the whole of `branch` of the git repository `repo` with ghp-import (with a
    `.nojekyll`, so that `_static/` is served) and push that branch to `remote`."""
    html = Path(html).resolve()
    if not (html / "index.html").is_file():
        raise FileNotFoundError(f"no built book in {html} (index.html is missing); build it first: make html")
    beside = Path(sys.executable).with_name("ghp-import")
    exe = str(beside) if beside.exists() else shutil.which("ghp-import")
    if not exe:
        raise FileNotFoundError("ghp-import is not installed in this environment (make install)")
    cmd = [exe, "--no-jekyll", "--push", "--force", "--remote", remote, "--branch", branch,
           "--message", message or "qallegro book", str(html)]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, cwd=repo)
    if proc.returncode != 0:
        raise RuntimeError(f"ghp-import failed (rc {proc.returncode}): {(proc.stderr or proc.stdout).strip()}")


def main(argv: list[str] | None = None) -> int:
    """`python -m qallegro.pipeline.build`: build the committed pages strictly (nothing is computed), for the
    project's site when `--site-url` is given, and push them to a gh-pages branch with `--publish REMOTE`."""
    import argparse

    from qallegro.utils import git_commit

    parser = argparse.ArgumentParser(prog="python -m qallegro.pipeline.build", description=main.__doc__)
    parser.add_argument("--book", type=Path, default=Path("book"), help="the book's folder (default book/)")
    parser.add_argument("--site-url", default="", help="the repository URL for the site's repository, issue and "
                        "launch buttons (https://...); none: the buttons stay off")
    parser.add_argument("--publish", metavar="REMOTE", help="push the HTML to the gh-pages branch of this remote")
    parser.add_argument("--branch", default="gh-pages", help="the branch --publish writes (default gh-pages)")
    args = parser.parse_args(argv)
    book = args.book.resolve()
    root = book.parent
    config = site_config(root / "_config.yml", args.site_url, root / "_build" / "site" / "_config.yml") \
        if args.site_url else None
    html = build_book(book, root / "_build" / "logs" / "jupyter-book.log", strict=True, config=config)
    print(f"built {html}")
    if args.publish:
        commit = (git_commit(root) or "")[:10]
        publish(html, root, args.publish, args.branch, f"qallegro book{f' at {commit}' if commit else ''}")
        print(f"pushed {html} to {args.publish} {args.branch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
