"""One papermill run of a registered notebook, written atomically.

The notebook runs into a temporary file beside its page; only a successful run replaces the page, which then
carries its run record in `metadata.qallegro` (cache key, parameters, dates, duration, hardware, versions).
A failed run leaves the page untouched, keeps the failed notebook under `failed_dir`, and raises
`NotebookFailed`, which names the notebook and the cell. The kernel's output streams to a log file.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

import nbformat

from qallegro.errors import PipelineError
from qallegro.pipeline.cache import INJECTED_TAG, read_notebook
from qallegro.pipeline.notebooks import Notebook
from qallegro.utils import git_commit, hardware_info, package_versions

KERNEL = "python3"
# per-cell timestamps papermill and nbclient write: noise in committed notebooks, dropped after a run
_CELL_NOISE = ("papermill", "execution")


class NotebookFailed(PipelineError):
    """A notebook raised in one of its cells; the page was not replaced."""

    def __init__(self, name: str, source: Path, cell: int, exec_count: int | None, ename: str, evalue: str,
                 line: str, log: Path, kept: Path | None) -> None:
        self.name, self.source, self.cell, self.ename, self.evalue = name, source, cell, ename, evalue
        self.log, self.kept = log, kept
        where = f"cell {cell} (counted from 0" + (f", In [{exec_count}])" if exec_count is not None else ")")
        msg = f"notebook {name!r} ({source}) failed in {where}: {ename}: {evalue}"
        if line:
            msg += f"\n    the cell begins: {line}"
        msg += f"\n    log: {log}"
        if kept is not None:
            msg += f"\n    the failed notebook: {kept}"
        super().__init__(msg)


def declared_parameters(path: Path) -> dict[str, dict[str, Any]]:
    """The parameters of a notebook's `parameters` cell as papermill sees them (name -> type, default, help)."""
    import papermill

    nb = read_notebook(path)
    if not any("parameters" in c.get("metadata", {}).get("tags", []) for c in nb.cells):
        raise ValueError(f"{path}: no cell tagged 'parameters' (papermill needs one)")
    return dict(papermill.inspect_notebook(str(path)))


def _source_cell(source_nb: nbformat.NotebookNode, cell_source: str, fallback: int) -> int:
    """Index in the source notebook of the cell with this source (papermill's index counts the injected cell)."""
    for i, cell in enumerate(source_nb.cells):
        if cell.cell_type == "code" and cell.source == cell_source:
            return i
    return fallback


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _papermill_log(log_path: Path) -> tuple[logging.Logger, logging.Handler, bool]:
    logger = logging.getLogger("papermill")
    handler = logging.FileHandler(log_path, mode="w", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logger.addHandler(handler)
    propagate = logger.propagate
    logger.propagate = False
    logger.setLevel(logging.INFO)
    return logger, handler, propagate


def set_title(nb: nbformat.NotebookNode, title: str) -> None:
    """Replace the first `# ` heading of the notebook's markdown cells with `# title`."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = cell.source.splitlines()
            for i, line in enumerate(lines):
                if line.startswith("# "):
                    lines[i] = f"# {title}"
                    cell.source = "\n".join(lines)
                    return
    raise ValueError(f"no '# ' title in the notebook to replace with {title!r}")


def _tidy(nb: nbformat.NotebookNode, record: dict[str, Any], title: str) -> nbformat.NotebookNode:
    """Drop per-cell timestamps, fold the injected-parameters cell, set the title, record the run."""
    if title:
        set_title(nb, title)
    for cell in nb.cells:
        for key in _CELL_NOISE:
            cell.metadata.pop(key, None)
        tags = cell.metadata.get("tags", [])
        if INJECTED_TAG in tags and "hide-input" not in tags:
            cell.metadata["tags"] = [*tags, "hide-input"]
    nb.metadata["kernelspec"] = {"name": KERNEL, "display_name": "Python 3", "language": "python"}
    nb.metadata["qallegro"] = record
    return nb


def execute(nb: Notebook, scale: str, book_dir: Path, key: str, log_dir: Path, failed_dir: Path,
            progress: bool = True) -> dict[str, Any]:
    """Run `nb` at `scale` with papermill and replace its page on success; return the run record."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    source = book_dir / nb.source
    page = book_dir / nb.page
    params = nb.params(scale)
    declared = declared_parameters(source)
    unknown = sorted(set(params) - set(declared))
    if unknown:
        raise ValueError(f"{source}: the registry passes {unknown} but the parameters cell declares only "
                         f"{sorted(declared)}")
    page.parent.mkdir(parents=True, exist_ok=True)
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{nb.name}.log"
    tmp = page.parent / f".{page.stem}.running.ipynb"
    logger, handler, propagate = _papermill_log(log_path)
    started, t0 = _now(), time.perf_counter()
    try:
        logger.info(f"qallegro: running {nb.name} at scale {scale} with {params}")
        papermill.execute_notebook(str(source), str(tmp), parameters=params, cwd=str(page.parent),
                                   kernel_name=KERNEL, progress_bar=progress, log_output=True)
    except PapermillExecutionError as err:
        logger.error(f"qallegro: {nb.name} failed{err}")
        kept = None
        if tmp.exists():
            failed_dir.mkdir(parents=True, exist_ok=True)
            kept = failed_dir / f"{nb.name}.ipynb"
            shutil.move(tmp, kept)
        cell = _source_cell(read_notebook(source), err.source, err.cell_index)
        line = next((ln.strip() for ln in (err.source or "").splitlines() if ln.strip()), "")
        raise NotebookFailed(nb.name, source, cell, err.exec_count, err.ename, err.evalue, line, log_path,
                             kept) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        logger.removeHandler(handler)
        handler.close()
        logger.propagate = propagate
    record = {
        "name": nb.name,
        "status": "ok",
        "cache_key": key,
        "scale": scale,
        "parameters": params,
        "started": started,
        "finished": _now(),
        "duration_s": round(time.perf_counter() - t0, 1),
        "hardware": {k: v for k, v in hardware_info().items() if k != "torch_threads"},
        "versions": package_versions(),
        "git_commit": git_commit(book_dir.parent),
    }
    try:
        executed = _tidy(read_notebook(tmp), record, nb.title)
        nbformat.write(executed, tmp)
        os.replace(tmp, page)
    finally:
        tmp.unlink(missing_ok=True)
    return record
