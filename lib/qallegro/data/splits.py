"""Train/validation/test splits: deterministic from a seed, saved so that a run can be repeated exactly.

- rMD17: each official training file (1000 frames) is split into 950 train + 50 validation frames. The 50
  validation rows per (split index, seed) are committed under `data/splits/rmd17_splitXX_seedS.json`
  (seeds 0 for splits 01-05); other seeds are drawn the same way and saved in the cache.
- QM9: a seeded permutation of the molecules (sorted by QM9 index) gives train / val / rest. The indices are
  saved under `<cache>/splits/` (too large for git) and reused afterwards.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from qallegro.data.errors import CorruptFileError, DataOptionError, InvalidDataError
from qallegro.data.registry import cache_dir
from qallegro.paths import REPO_ROOT
from qallegro.utils import atomic_write_bytes, atomic_write_json

SPLITS = ("train", "val", "test")
COMMITTED_DIR = REPO_ROOT / "data" / "splits"
RMD17_N_TRAIN_FILE = 1000
RMD17_N_VAL = 50
RMD17_METHOD = "sorted(numpy.random.default_rng([seed, split_index]).choice(1000, 50, replace=False))"


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataOptionError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    return split


def check_int(name: str, value: object, low: int, high: int | None = None) -> int:
    """An integer option in [low, high]; `DataOptionError` otherwise (bools are rejected)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataOptionError(f"option {name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        rng = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise DataOptionError(f"option {name}={value} is out of range {rng}")
    return int(value)


# ------------------------------------------------------------------------------------------------------ rMD17
def rmd17_draw_val(split_index: int, seed: int) -> np.ndarray:
    """The 50 validation rows (sorted) of training file `split_index`, drawn from `seed`."""
    rng = np.random.default_rng([seed, split_index])
    return np.sort(rng.choice(RMD17_N_TRAIN_FILE, RMD17_N_VAL, replace=False)).astype(np.int64)


def rmd17_record_name(split_index: int, seed: int) -> str:
    return f"rmd17_split{split_index:02d}_seed{seed}.json"


def rmd17_make_record(split_index: int, seed: int, old_indices: dict[str, np.ndarray]) -> dict:
    """A split record; `old_indices` maps molecule -> the `old_indices` column of its training file."""
    pos = rmd17_draw_val(split_index, seed)
    return {
        "dataset": "rmd17",
        "split_index": split_index,
        "seed": seed,
        "n_frames": RMD17_N_TRAIN_FILE,
        "n_val": RMD17_N_VAL,
        "method": RMD17_METHOD,
        "val_positions": pos.tolist(),
        "val_old_indices": {m: np.asarray(o)[pos].tolist() for m, o in sorted(old_indices.items())},
    }


def _read_record(path: Path) -> dict:
    try:
        rec = json.loads(path.read_text())
        pos = np.asarray(rec["val_positions"], dtype=np.int64)
        rec["val_old_indices"] = dict(rec.get("val_old_indices", {}))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise CorruptFileError(f"unreadable split record ({err})", path) from err
    if (
        len(pos) != RMD17_N_VAL
        or len(np.unique(pos)) != RMD17_N_VAL
        or pos.min() < 0
        or pos.max() >= RMD17_N_TRAIN_FILE
    ):
        raise InvalidDataError(
            f"val_positions must be {RMD17_N_VAL} distinct rows in [0, {RMD17_N_TRAIN_FILE})", path
        )
    rec["val_positions"] = pos
    return rec


def rmd17_val_positions(split_index: int, seed: int, molecule: str, old_indices: np.ndarray) -> np.ndarray:
    """The validation rows of training file `split_index` for `seed`, from the saved record.

    The record is looked for in `data/splits/` (committed) and then in `<cache>/splits/`; when absent it is
    drawn and saved in the cache. When the record lists the molecule's `old_indices` at those rows, they must
    match the file's (this catches a file whose rows are in a different order).
    """
    name = rmd17_record_name(split_index, seed)
    for folder in (COMMITTED_DIR, cache_dir() / "splits"):
        path = folder / name
        if path.is_file():
            rec = _read_record(path)
            break
    else:
        path = cache_dir() / "splits" / name
        rec = rmd17_make_record(split_index, seed, {molecule: old_indices})
        atomic_write_json(path, rec)
        rec["val_positions"] = np.asarray(rec["val_positions"], dtype=np.int64)
    pos = rec["val_positions"]
    expected = rec["val_old_indices"].get(molecule)
    if expected is not None and not np.array_equal(np.asarray(expected), np.asarray(old_indices)[pos]):
        raise InvalidDataError(
            f"the saved validation rows of rMD17 split {split_index:02d} point at other frames "
            f"of {molecule} than the training file holds (rows in a different order?)",
            path,
        )
    return pos


# -------------------------------------------------------------------------------------------------------- QM9
def qm9_split(indices: np.ndarray, n_train: int, n_val: int, seed: int) -> dict[str, np.ndarray]:
    """Split the QM9 indices (any order) into train / val / test (= the rest), saved under the cache.

    Returns the QM9 indices of each split in permutation order (so a prefix is a random subset).
    """
    ids = np.sort(np.asarray(indices, dtype=np.int64))
    n = len(ids)
    if n_train + n_val > n:
        raise DataOptionError(f"n_train + n_val = {n_train + n_val} exceeds the {n} molecules available")
    key = hashlib.sha256(ids.tobytes()).hexdigest()[:10]  # ties the saved split to this set of molecules
    path = cache_dir() / "splits" / f"qm9_train{n_train}_val{n_val}_seed{seed}_{key}.npz"
    if path.is_file():
        try:
            with np.load(path) as d:
                out = {s: d[s].astype(np.int64) for s in SPLITS}
        except (OSError, ValueError, KeyError, EOFError) as err:
            raise CorruptFileError(f"unreadable saved split ({err}); delete it to redraw", path) from err
        together = np.concatenate([out[s] for s in SPLITS])
        if (
            len(out["train"]) != n_train
            or len(out["val"]) != n_val
            or len(together) != n
            or not np.array_equal(np.sort(together), ids)
        ):
            raise InvalidDataError(
                "saved split does not partition the current molecules; delete it to redraw", path
            )
        return out
    perm = ids[np.random.default_rng(seed).permutation(n)]
    out = {"train": perm[:n_train], "val": perm[n_train : n_train + n_val], "test": perm[n_train + n_val :]}
    buf = io.BytesIO()
    np.savez(buf, **out)
    try:
        atomic_write_bytes(path, buf.getvalue())
    except OSError:
        pass  # a read-only cache: the split is still deterministic from the seed
    return out
