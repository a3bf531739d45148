"""Cache keys of notebook runs.

A notebook is re-executed only when its key changes. The key hashes the experiment's config (the papermill
parameters, scale included, and the settings at that scale of every preset file it reads,
`lib/qallegro/presets/<topic>.yaml`), the code version (`qallegro.__version__`), the notebook's source (its code
cells; the markdown too for a templated page, whose text comes from the template), the registered checksums of
the datasets it reads, the contents of the committed files it reads, the title of a templated page, and the keys
of the notebooks it depends on (so a changed result propagates to the pages that read it). The executed page
carries its key in `metadata.qallegro.cache_key`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import nbformat

import qallegro
from qallegro.pipeline.notebooks import Notebook
from qallegro.scales import PRESETS, read_presets
from qallegro.utils import config_hash, sha256_file

INJECTED_TAG = "injected-parameters"


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read a notebook, with an error naming the file when it is missing or not a notebook."""
    if not path.exists():
        raise FileNotFoundError(f"notebook not found: {path}")
    try:
        return nbformat.read(path, as_version=4)
    except Exception as err:  # nbformat raises several unrelated types for bad JSON / schema
        raise ValueError(f"{path}: not a readable notebook ({type(err).__name__}: {err})") from err


def source_hash(path: Path, include_markdown: bool = False) -> str:
    """sha256 of the notebook's code (and optionally markdown) cell sources and its kernel name.

    Outputs, metadata and papermill's injected-parameters cell do not count, so executing a notebook in place
    leaves its source hash unchanged.
    """
    nb = read_notebook(path)
    kinds = {"code", "markdown"} if include_markdown else {"code"}
    cells = [[c.cell_type, c.source] for c in nb.cells
             if c.cell_type in kinds and INJECTED_TAG not in c.get("metadata", {}).get("tags", [])]
    kernel = nb.metadata.get("kernelspec", {}).get("name")
    blob = json.dumps([kernel, cells], sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def data_checksums(datasets: Iterable[str]) -> dict[str, dict[str, str | None]]:
    """The registered sha256 of every source file behind each dataset (`qallegro.data.registry`)."""
    names = sorted(set(datasets))
    if not names:
        return {}
    from qallegro.data.registry import GROUPS, SOURCES

    unknown = [n for n in names if n not in GROUPS]
    if unknown:
        raise ValueError(f"no data registry entry for dataset(s) {unknown}; known: {', '.join(GROUPS)}")
    return {name: {src: SOURCES[src].sha256 for src in GROUPS[name]} for name in names}


def preset_settings(entries: Iterable[str], scale: str, presets_dir: Path) -> dict[str, Any]:
    """The settings at `scale` of each preset entry, `topic` (`<presets_dir>/<topic>.yaml`, its whole `scale`
    section) or `topic.key` (one key of that section), read from the files now (`qallegro.scales.read_presets`,
    not the cache of `qallegro.scales.settings`, so an edited preset counts)."""
    out: dict[str, Any] = {}
    for entry in sorted(set(entries)):
        topic, _, key = entry.partition(".")
        path = presets_dir / f"{topic}.yaml"
        try:
            section = read_presets(path)[scale]
        except FileNotFoundError:
            raise ValueError(f"no preset file {path} (a notebook of the registry reads {entry!r})") from None
        if section is None or (key and key not in section):
            raise ValueError(f"{path}: no {scale}{'.' + key if key else ''} settings (a notebook of the registry "
                             f"reads {entry!r})")
        out[entry] = section[key] if key else section
    return out


def input_checksums(patterns: Iterable[str], root: Path) -> dict[str, str]:
    """sha256 of every file matching the glob `patterns` under `root` (relative path -> sha256); patterns that
    match nothing contribute nothing (the page shows what is there, and reruns when a file appears)."""
    files = sorted({p for pattern in patterns for p in root.glob(pattern) if p.is_file()})
    return {str(p.relative_to(root)): sha256_file(p) for p in files}


def presets_dir_of(root: Path) -> Path:
    """The preset folder of the repository at `root` (that of the installed package when `root` has none)."""
    local = root / "lib" / "qallegro" / "presets"
    return local if local.is_dir() else PRESETS


def cache_key(nb: Notebook, scale: str, book_dir: Path, dep_keys: Mapping[str, str]) -> str:
    """The cache key of running `nb` at `scale` (see the module docstring)."""
    missing = [d for d in nb.depends if d not in dep_keys]
    if missing:
        raise ValueError(f"{nb.name}: no cache key for its dependencies {missing}")
    root = Path(book_dir).parent
    parts = {
        "notebook": nb.name,
        "parameters": nb.params(scale),
        "version": qallegro.__version__,
        "source": source_hash(book_dir / nb.source, include_markdown=bool(nb.output)),
        "data": data_checksums(nb.datasets),
        "depends": {d: dep_keys[d] for d in nb.depends},
        "title": nb.title,
    }
    if nb.presets:
        parts["presets"] = preset_settings(nb.presets, scale, presets_dir_of(root))
    if nb.inputs:
        parts["inputs"] = input_checksums([p.replace("{scale}", scale) for p in nb.inputs], root)
    return config_hash(parts, length=16)


def stored_record(page: Path) -> dict[str, Any] | None:
    """The run record (`metadata.qallegro`) of an executed page, or None when there is no usable page."""
    if not page.exists():
        return None
    try:
        nb = read_notebook(page)
    except ValueError:
        return None
    record = nb.metadata.get("qallegro")
    return dict(record) if record else None


def is_cached(page: Path, key: str) -> bool:
    """True when `page` exists, ran successfully, and was made with cache key `key`."""
    record = stored_record(page)
    return bool(record) and record.get("cache_key") == key and record.get("status") == "ok"


LIBRARY = ("lib/qallegro", ":(exclude)lib/qallegro/presets")  # the code a page runs (the key counts the presets)


def built_by_other_code(pages: Mapping[str, Path], root: Path) -> dict[str, str]:
    """The pages (name -> executed page) whose library code differs from this checkout's: page name -> the commit
    it was built at (`metadata.qallegro.git_commit`; "unknown" where the page has none or git does not know it).
    The cache key counts `qallegro.__version__`, not the code, so such a page stays cached (`--force` re-runs it)."""
    commits = {name: (stored_record(page) or {}).get("git_commit") for name, page in pages.items()
               if page.exists()}
    differs: dict[str | None, bool] = {}
    for commit in set(commits.values()):
        if commit is None:
            differs[commit] = True
            continue
        try:
            rc = subprocess.run(["git", "-C", str(root), "diff", "--quiet", commit, "--", *LIBRARY],
                                capture_output=True, timeout=30).returncode
        except (OSError, subprocess.SubprocessError):
            rc = 128
        differs[commit] = rc != 0
    return {name: (c or "unknown")[:12] for name, c in commits.items() if differs[c]}
