"""Revised MD17 (Christensen & von Lilienfeld 2020): aspirin and benzene, the official train/test splits.

Two layouts are read:
- the split files `rmd17/rmd17_<mol>_{train,test}_0X.npz` (1000 frames each; GitHub andersx/rmd17-npz), and
- the original figshare archive, unpacked: `rmd17/npz_data/rmd17_<mol>.npz` (all 100k frames) with
  `rmd17/splits/index_{train,test}_0X.csv` (1000 row indices each).
`split="train"` gives the 950 training frames of training file X, `"val"` the 50 saved validation frames
(`qallegro.data.splits`), `"test"` the 1000 frames of test file X. Energies (kcal/mol in the files) become eV,
forces eV/Å.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from ase import Atoms

from qallegro.data import registry
from qallegro.data.checks import (
    load_npz,
    require_atomic_numbers,
    require_finite,
    require_numeric,
    require_shape,
)
from qallegro.data.errors import CorruptFileError, DataOptionError, InvalidDataError, MissingDataError
from qallegro.data.frames import first_frames, labelled_atoms
from qallegro.data.splits import RMD17_N_TRAIN_FILE, check_int, check_split, rmd17_val_positions
from qallegro.data.units import KCAL_MOL_TO_EV

MOLECULES = ("aspirin", "benzene")
ROUTES = ("auto", "npz", "archive")
KEYS = ("nuclear_charges", "coords", "energies", "forces", "old_indices")


def read_rmd17_npz(path: Path, n_frames: int | None = None) -> dict[str, np.ndarray]:
    """Read and check an rMD17 npz (a split file or a full per-molecule file); energies stay in kcal/mol.

    Returns `Z [N]`, `R [F, N, 3]` (Å), `E [F]` (kcal/mol), `F [F, N, 3]` (kcal/mol/Å), `old [F]`.
    """
    d = load_npz(path, KEYS)
    z = d["nuclear_charges"]
    require_shape(path, "nuclear_charges", z, (None,))
    require_atomic_numbers(path, "nuclear_charges", z)
    n = len(z)
    coords = require_numeric(path, "coords", d["coords"])
    frames = coords.shape[0] if coords.ndim else 0
    if n_frames is not None and frames != n_frames:
        raise InvalidDataError(f"'coords' holds {frames} frames, expected {n_frames}", path)
    require_shape(path, "coords", coords, (frames, n, 3))
    energies = require_numeric(path, "energies", d["energies"])
    require_shape(path, "energies", energies, (frames,))
    forces = require_numeric(path, "forces", d["forces"])
    require_shape(path, "forces", forces, (frames, n, 3))
    old = d["old_indices"]
    require_shape(path, "old_indices", old, (frames,))
    if not np.issubdtype(old.dtype, np.integer):
        raise InvalidDataError(f"'old_indices' must hold integers, got dtype {old.dtype}", path)
    for name, arr in (("coords", coords), ("energies", energies), ("forces", forces)):
        require_finite(path, name, arr)
    return {"Z": z.astype(np.int64), "R": coords, "E": energies, "F": forces, "old": old.astype(np.int64)}


def read_index_csv(path: Path, n_total: int) -> np.ndarray:
    """The 1000 row indices of an official split file (one integer per line) into a 100k-frame file."""
    try:
        raw = np.loadtxt(path, dtype=np.float64, ndmin=1)
    except (OSError, ValueError) as err:
        raise CorruptFileError(f"cannot read as a column of integers ({err})", path) from err
    if raw.ndim != 1 or len(raw) != RMD17_N_TRAIN_FILE:
        raise InvalidDataError(
            f"expected {RMD17_N_TRAIN_FILE} indices in one column, got shape {raw.shape}", path
        )
    require_finite(path, "indices", raw)
    idx = raw.astype(np.int64)
    if not np.array_equal(idx, raw):
        raise InvalidDataError("indices must be integers", path)
    if idx.min() < 0 or idx.max() >= n_total or len(np.unique(idx)) != len(idx):
        raise InvalidDataError(
            f"indices must be distinct and in [0, {n_total}); got min {idx.min()}, "
            f"max {idx.max()}, {len(np.unique(idx))} distinct",
            path,
        )
    return idx


def _from_split_file(
    molecule: str, kind: str, split_index: int, data_dir: str | os.PathLike | None, download: bool
) -> tuple[dict[str, np.ndarray], np.ndarray, Path]:
    name = f"rmd17/{molecule}_{kind}_{split_index:02d}"
    path = registry.locate(name, data_dir, download=download)
    data = read_rmd17_npz(path, n_frames=RMD17_N_TRAIN_FILE)
    return data, np.arange(RMD17_N_TRAIN_FILE), path


def _from_archive(
    molecule: str, kind: str, split_index: int, data_dir: str | os.PathLike | None, download: bool
) -> tuple[dict[str, np.ndarray], np.ndarray, Path]:
    path = registry.locate(f"rmd17/full_{molecule}", data_dir, download=download)
    full = read_rmd17_npz(path)
    csv = registry.locate(f"rmd17/index_{kind}_{split_index:02d}", data_dir, download=download)
    rows = read_index_csv(csv, len(full["E"]))
    data = {k: (v if k == "Z" else v[rows]) for k, v in full.items()}
    return data, rows, path


def _read(
    molecule: str, kind: str, split_index: int, data_dir: str | os.PathLike | None, route: str, download: bool
) -> tuple[dict[str, np.ndarray], np.ndarray, Path]:
    if route == "npz":
        return _from_split_file(molecule, kind, split_index, data_dir, download)
    if route == "archive":
        return _from_archive(molecule, kind, split_index, data_dir, download)
    split_name = f"rmd17/{molecule}_{kind}_{split_index:02d}"
    full_name = f"rmd17/full_{molecule}"
    present = registry.first_present(
        [
            ("npz", registry.get_source(split_name).relpath),
            ("archive", registry.get_source(full_name).relpath),
        ],
        data_dir,
    )
    if present == "npz":
        return _from_split_file(molecule, kind, split_index, data_dir, False)
    if present == "archive":
        return _from_archive(molecule, kind, split_index, data_dir, False)
    if download:
        return _from_split_file(molecule, kind, split_index, data_dir, True)
    raise MissingDataError(
        registry.missing_message(split_name, data_dir)
        + f"\n(or unpack the original archive: {registry.fetch_command(f'rmd17/full_{molecule}')})"
    )


def load_rmd17(
    molecule: str,
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    split_index: int = 1,
    seed: int = 0,
    max_frames: int | None = None,
    source: str = "auto",
    download: bool = False,
) -> list[Atoms]:
    """rMD17 frames of `molecule` for `split` with energies in eV and forces in eV/Å.

    Args:
        split_index: official split 1-5. seed: the 950/50 train/validation draw (saved, see `splits`).
        max_frames: keep only the first frames of the split (deterministic subset).
        source: "npz" (split files), "archive" (unpacked figshare archive) or "auto" (whichever is present).
        download: fetch the split files into the cache when they are missing.
    """
    if molecule not in MOLECULES:
        raise DataOptionError(f"unknown rMD17 molecule {molecule!r}; available: {', '.join(MOLECULES)}")
    check_split(split)
    split_index = check_int("split_index", split_index, 1, 5)
    seed = check_int("seed", seed, 0)
    if max_frames is not None:
        max_frames = check_int("max_frames", max_frames, 1)
    if source not in ROUTES:
        raise DataOptionError(f"option source={source!r} is not one of {', '.join(ROUTES)}")
    kind = "test" if split == "test" else "train"
    data, rows, path = _read(molecule, kind, split_index, data_dir, source, download)
    if split == "test":
        keep = np.arange(len(rows))
    else:
        val = rmd17_val_positions(split_index, seed, molecule, data["old"])
        keep = val if split == "val" else np.setdiff1d(np.arange(len(rows)), val)
    keep = keep[: first_frames(len(keep), max_frames)]
    e_ev = data["E"] * KCAL_MOL_TO_EV
    f_ev = data["F"] * KCAL_MOL_TO_EV
    dataset = f"rmd17-{molecule}"
    return [
        labelled_atoms(
            data["Z"],
            data["R"][k],
            e_ev[k],
            f_ev[k],
            info={
                "dataset": dataset,
                "split": split,
                "split_index": split_index,
                "source_index": int(data["old"][k]),
                "source_row": int(rows[k]),
                "source_file": path.name,
            },
        )
        for k in keep
    ]
