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


def build_book(book_dir: Path, log_path: Path, strict: bool = False) -> Path:
    """Build the HTML book of `book_dir` into `<repo>/_build/html`; return that folder.

    `strict` rebuilds every page and fails on any warning (`-W --keep-going --all`), as CI does.
    The output of jupyter-book goes to `log_path`; its tail is in the error when the build fails.
    """
    book_dir = Path(book_dir).resolve()
    check_prerequisites(book_dir)
    cmd = [jupyter_book(), "build", str(book_dir)]
    if strict:
        cmd += ["-W", "--keep-going", "--all"]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.run(cmd, check=False, stdout=log, stderr=subprocess.STDOUT, cwd=book_dir.parent)
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-25:])
        raise BuildFailed(f"jupyter-book build failed (rc {proc.returncode}); log: {log_path}\n{tail}")
    return book_dir.parent / "_build" / "html"
