"""`qallegro reproduce`: run the book's notebooks in dependency order (cached), then build the book.

Each notebook is re-executed only when its cache key changed (`qallegro.pipeline.cache`) or when forced.
A failed notebook keeps its previous page, its dependents are skipped, the others still run, and the command
fails naming the notebook and the cell. `copy=True` does all of it in a temporary copy of the repository (so a
smoke run leaves the committed quick-scale pages alone) and brings back the logs, the built HTML and every page
and result it computed, whether it succeeded, failed or was interrupted; then it deletes the copy.

Everything the run needs (papermill, the kernel, jupyter-book and MathJax for the build) is checked before
anything is executed; a page in progress lives in `.<page>.running.ipynb` beside it, removed on any exit and, after
a kill -9, by the next run.
"""

from __future__ import annotations

import contextlib
import fnmatch
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from qallegro.errors import PipelineError
from qallegro.paths import REPO_ROOT as REPO
from qallegro.pipeline.build import build_book, check_prerequisites
from qallegro.pipeline.cache import cache_key, is_cached
from qallegro.pipeline.execute import NotebookFailed, execute
from qallegro.pipeline.notebooks import NOTEBOOKS, Notebook, select
from qallegro.scales import BOOK_SCALE, check_scale


@dataclass
class Step:
    """One notebook of a plan: its key, and whether its page is already up to date."""

    notebook: Notebook
    key: str
    cached: bool
    status: str = "pending"  # pending | cached | ok | failed | skipped
    duration_s: float = 0.0
    error: str = ""


@dataclass
class Report:
    steps: list[Step] = field(default_factory=list)
    html: Path | None = None

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.steps if s.status in ("failed", "skipped")]

    def summary(self) -> str:
        lines = [f"{'notebook':32s} {'status':8s} {'time':>9s}"]
        for s in self.steps:
            t = f"{s.duration_s:8.1f}s" if s.status == "ok" else ""
            lines.append(f"{s.notebook.name:32s} {s.status:8s} {t:>9s}")
        return "\n".join(lines)


def plan(notebooks: Iterable[Notebook], scale: str, book_dir: Path, only: Sequence[str] = (),
         force: bool = False) -> list[Step]:
    """The steps to bring the pages up to date at `scale`: `only` (with its dependencies) or everything.

    `force` re-executes the selected notebooks (with `only`: the named ones, not their dependencies).
    """
    check_scale(scale)
    chosen = select(notebooks, only)
    keys: dict[str, str] = {}
    steps = []
    for nb in chosen:
        key = cache_key(nb, scale, book_dir, keys)
        keys[nb.name] = key
        forced = force and (not only or any(fnmatch.fnmatchcase(nb.name, p) for p in only))
        steps.append(Step(nb, key, cached=not forced and is_cached(book_dir / nb.page, key)))
    return steps


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(steps: list[Step], scale: str, book_dir: Path, build_dir: Path, progress: bool = True) -> Report:
    """Execute the steps that are not cached, in order; skip the dependents of a failed notebook."""
    report = Report(steps)
    broken: set[str] = set()
    todo = [s for s in steps if not s.cached]
    _say(f"qallegro reproduce: {len(steps)} notebook(s) at scale {scale}, {len(todo)} to run, "
         f"{len(steps) - len(todo)} cached; logs in {build_dir / 'logs'}")
    for n, step in enumerate(steps, 1):
        nb = step.notebook
        if step.cached:
            step.status = "cached"
            continue
        bad_deps = [d for d in nb.depends if d in broken]
        if bad_deps:
            step.status, step.error = "skipped", f"its dependencies failed: {', '.join(bad_deps)}"
            broken.add(nb.name)
            _say(f"[{n}/{len(steps)}] {nb.name}: skipped ({step.error})")
            continue
        _say(f"[{n}/{len(steps)}] {nb.name}: running -> book/{nb.page} (log: {build_dir / 'logs' / nb.name}.log)")
        t0 = time.perf_counter()
        try:
            record = execute(nb, scale, book_dir, step.key, build_dir / "logs", build_dir / "failed",
                             progress=progress)
        except NotebookFailed as err:
            step.status, step.error = "failed", str(err)
            broken.add(nb.name)
            _say(f"[{n}/{len(steps)}] FAILED {err}")
            continue
        step.status, step.duration_s = "ok", float(record["duration_s"])
        _say(f"[{n}/{len(steps)}] {nb.name}: done in {time.perf_counter() - t0:.1f} s")
    return report


def reproduce(scale: str = BOOK_SCALE, only: Sequence[str] = (), force: bool = False, build: bool = True,
              strict: bool = False, root: Path = REPO, notebooks: Iterable[Notebook] = NOTEBOOKS,
              progress: bool = True, campaign: bool = False) -> Report:
    """Plan, run and build in the repository at `root` (see the module docstring); with `campaign`, first run the
    campaign's units at a `run_with_book` scale (`qallegro.pipeline.campaign`)."""
    book_dir, build_dir = root / "book", root / "_build"
    check_prerequisites(book_dir, build)
    if campaign:
        from qallegro.pipeline.campaign import run_campaign

        wait = run_campaign(scale)
        if wait:
            raise PipelineError(wait)
    steps = plan(notebooks, scale, book_dir, only=only, force=force)
    for stale in book_dir.rglob(".*.running.ipynb"):  # left by a run killed with SIGKILL
        stale.unlink()
        _say(f"removed {stale}, left by an interrupted run")
    report = run(steps, scale, book_dir, build_dir, progress=progress)
    _say(report.summary())
    if report.failed:
        _say("the book was not built: fix the failed notebook(s) above (their previous pages are unchanged)")
        return report
    if build:
        _say(f"building the book{' (strict: -W --keep-going --all)' if strict else ''} "
             f"(log: {build_dir / 'logs' / 'jupyter-book.log'})")
        report.html = build_book(book_dir, build_dir / "logs" / "jupyter-book.log", strict=strict)
    return report


def _repo_files(root: Path) -> list[Path]:
    """The files of the working tree (tracked and untracked but not ignored), relative to `root`."""
    if (root / ".git").exists():
        out = subprocess.run(["git", "-C", str(root), "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], capture_output=True, check=True).stdout
        return sorted({Path(p) for p in out.decode().split("\0") if p})
    skip = {".git", ".venv", ".venv-bench", "_build", "__pycache__", ".pytest_cache"}
    return sorted(p.relative_to(root) for p in root.rglob("*")
                  if (p.is_file() or p.is_symlink()) and not skip & set(p.relative_to(root).parts))


def copy_repo(root: Path, dest: Path) -> Path:
    """Copy the working tree of `root` into `dest` (symlinks kept), with the vendored MathJax."""
    for rel in _repo_files(root):
        src = root / rel
        if not (src.exists() or src.is_symlink()):  # deleted but still tracked
            continue
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / rel, follow_symlinks=False)
    mathjax = root / "book" / "_static" / "mathjax"
    if mathjax.is_dir():
        shutil.copytree(mathjax, dest / "book" / "_static" / "mathjax", dirs_exist_ok=True)
    return dest


@contextlib.contextmanager
def _environ(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _data_locations() -> dict[str, str]:
    """The data mirror and download cache of this checkout, for a copy elsewhere (where `../shared/data` and
    `data/downloads` would not be found); variables already set are left as they are."""
    from qallegro.data.registry import cache_dir, mirror_dir

    out = {}
    mirror = mirror_dir()
    if "QALLEGRO_DATA" not in os.environ and mirror is not None:
        out["QALLEGRO_DATA"] = str(mirror.resolve())
    if "QALLEGRO_CACHE" not in os.environ:
        out["QALLEGRO_CACHE"] = str(cache_dir().resolve())
    return out


def _changed_files(copy: Path, root: Path, folders: Sequence[str] = ("book", "results")) -> list[Path]:
    """Files under `folders` of `copy` that are new or differ from those of `root` (what the copy computed),
    relative to `copy`; hidden files (pages in progress, temporary files) are left out."""
    out = []
    for folder in folders:
        for path in sorted((copy / folder).rglob("*")) if (copy / folder).is_dir() else []:
            rel = path.relative_to(copy)
            if not path.is_file() or path.is_symlink() or any(part.startswith(".") for part in rel.parts):
                continue
            orig = root / rel
            if not orig.is_file() or orig.stat().st_size != path.stat().st_size or \
                    orig.read_bytes() != path.read_bytes():
                out.append(rel)
    return out


def _bring_back(copy: Path, root: Path, back: Path) -> list[Path]:
    """The copy's `_build` (logs, failed notebooks, HTML) and the pages and results it computed, into `back`."""
    shutil.rmtree(back, ignore_errors=True)
    built = copy / "_build"
    if built.is_dir():
        shutil.copytree(built, back, symlinks=True, ignore=shutil.ignore_patterns(".doctrees", ".jupyter_cache"))
    changed = _changed_files(copy, root)
    for rel in changed:
        (back / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(copy / rel, back / rel)
    return changed


def reproduce_in_copy(scale: str, root: Path = REPO, keep: bool = False, **kwargs) -> Report:
    """`reproduce` in a temporary copy of `root`: the kernels import the copy's `lib/` and write results
    into the copy's `results/`, and read the data mirror and download cache of this checkout. The copy's
    `_build` (logs, failed notebooks, HTML) and the pages and results it computed come back to
    `<root>/_build/copy-<scale>/` (also after a failure or an interruption); the copy is deleted unless `keep`."""
    check_prerequisites(root / "book", kwargs.get("build", True))
    tmp = Path(tempfile.mkdtemp(prefix=f"qallegro-{scale}-"))
    back = root / "_build" / f"copy-{scale}"
    report: Report | None = None
    try:
        copy = copy_repo(root, tmp / "repo")
        _say(f"qallegro reproduce: working in a temporary copy {copy}")
        pythonpath = os.pathsep.join(p for p in (str(copy / "lib"), os.environ.get("PYTHONPATH", "")) if p)
        with _environ(PYTHONPATH=pythonpath, QALLEGRO_RESULTS=str(copy / "results"), **_data_locations()):
            report = reproduce(scale, root=copy, **kwargs)
    finally:
        changed = _bring_back(tmp / "repo", root, back)
        ok = report is not None and not report.failed
        _say(f"logs{' and HTML' if ok and report.html else ''} of the copy: {back}"
             + (f"; the {len(changed)} page and result file(s) it computed: {back}/book, {back}/results"
                if changed else ""))
        if keep:
            _say(f"the copy is kept: {tmp / 'repo'}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    if report.html is not None:
        report.html = back / "html"
    return report
