"""Where things live: the repository, the results root, and the Cu-Li folder's file names.

Shared by every floor (like `qallegro.utils`): it imports nothing from qallegro. The Cu-Li reader
(`qallegro.data.culi`) and its writer (`qallegro.culi.generate`) both take the folder's names from here.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
PAPER_DIR = REPO_ROOT / "data" / "paper"

# a generated Cu-Li folder (`qallegro culi generate`): all frames, the saved splits, the provenance
CULI_DATASET_FILE = "culi.extxyz"
CULI_SPLITS_FILE = "splits.json"
CULI_PROVENANCE_FILE = "provenance.json"


def results_root() -> Path:
    """`$QALLEGRO_RESULTS`, else `<repo>/results`."""
    env = os.environ.get("QALLEGRO_RESULTS")
    return Path(env).expanduser() if env else REPO_ROOT / "results"


def local(recorded: str | Path) -> Path:
    """A path a results record holds (records keep the absolute folder they were written in) on this machine:
    below `results_root()` as recorded, else the longest tail of it (two parts at least) that exists below
    `results_root()` (results cloned elsewhere or copied from a cluster read their own folders), else as
    recorded."""
    path = Path(recorded)
    root = results_root()
    if not path.is_absolute() or path.is_relative_to(root):
        return path
    parts = path.parts[1:]
    tails = (root.joinpath(*parts[i:]) for i in range(len(parts) - 1))
    return next((tail for tail in tails if tail.exists()), path)


def culi_dir(scale: str, labeler: str = "sevenn") -> Path:
    """The default Cu-Li folder: `<results>/<scale>/culi` (SevenNet-0 labels) or `<results>/<scale>/culi-<labeler>`."""
    return results_root() / scale / ("culi" if labeler == "sevenn" else f"culi-{labeler}")
