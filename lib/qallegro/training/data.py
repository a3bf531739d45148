"""Training, validation and test structures of a run, converted to graphs once at the config's r_max.

`dataset` is a registered name (`qallegro.data.load_dataset`: its train/val/test splits, the first `n_train`,
`n_val`, `n_test` structures of each, with `dataset_options` passed to the loader) or a path to any
ASE-readable file with energies (and forces), which is split at random (seed `dataset_seed`) into `n_train`,
`n_val` and the rest (at most `n_test`) as the test set.

Graphs are always float64 (positions and labels: an aspirin total energy of -17,600 eV keeps only ~2 meV in
float32); the model casts edge vectors to its own dtype.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms

from qallegro.data.errors import CorruptFileError, DataError, InvalidDataError, MissingDataError
from qallegro.data.graph import ATOMIC_NUMBERS, Graph, atoms_to_graph

SPLITS = ("train", "val", "test")


def dtype_of(cfg: Mapping[str, Any]) -> torch.dtype:
    """The model's dtype (`default_dtype`)."""
    return {"float32": torch.float32, "float64": torch.float64}[cfg.get("default_dtype", "float32")]


def load_structures(cfg: Mapping[str, Any]) -> dict[str, list[Atoms]]:
    """`{"train": [...], "val": [...], "test": [...]}` as ase.Atoms with single-point labels."""
    name = str(cfg["dataset"])
    sizes = {"train": cfg["n_train"], "val": cfg["n_val"], "test": cfg.get("n_test")}
    path = Path(name)
    if path.suffix and path.is_file():
        if sizes["train"] is None or sizes["val"] is None:
            raise DataError("n_train and n_val must be numbers (the file is split at random)", path)
        return _split_file(path, sizes, int(cfg["dataset_seed"]))
    if path.suffix or "/" in name:
        raise MissingDataError(f"dataset file not found: {path}")
    from qallegro.data import load_dataset

    options = dict(cfg.get("dataset_options") or {})
    out = {}
    for split in SPLITS:
        n = sizes[split]
        frames = list(load_dataset(name, split=split, max_frames=n, **options) if n is not None
                      else load_dataset(name, split=split, **options))
        if split != "test" and n is not None and len(frames) < n:
            raise DataError(f"dataset {name!r}: split {split!r} has {len(frames)} structures, "
                            f"the config asks for n_{split}={n}")
        out[split] = frames[:n] if n is not None else frames
    return out


def _split_file(path: Path, sizes: Mapping[str, int | None], seed: int) -> dict[str, list[Atoms]]:
    from ase.io import read

    try:
        frames = read(path, index=":")
    except Exception as err:  # ASE raises many types for unreadable files
        first = (str(err).splitlines() or [""])[0]
        raise CorruptFileError(f"cannot read structures with ASE ({type(err).__name__}: {first})", path) from err
    if not isinstance(frames, list):
        frames = [frames]
    for index, atoms in enumerate(frames):
        check_labels(atoms, f"{path}, frame {index}")
    n_train, n_val = int(sizes["train"]), int(sizes["val"])
    if len(frames) < n_train + n_val + 1:
        raise DataError(f"{len(frames)} structures, need n_train + n_val + 1 = {n_train + n_val + 1}", path)
    order = np.random.default_rng(seed).permutation(len(frames))
    test = order[n_train + n_val:]
    if sizes["test"] is not None:
        test = test[: int(sizes["test"])]
    return {"train": [frames[i] for i in order[:n_train]], "val": [frames[i] for i in order[n_train:n_train + n_val]],
            "test": [frames[i] for i in test]}


def check_labels(atoms: Atoms, where: str) -> None:
    """A finite energy and, when present, finite forces of the right shape; errors name `where` (file, frame)."""
    res = getattr(atoms.calc, "results", None) or {}
    if "energy" not in res:
        raise InvalidDataError(f"{where}: no energy label (a training structure needs an energy, and forces)")
    if not np.isfinite(float(res["energy"])):
        raise InvalidDataError(f"{where}: the energy is {res['energy']}")
    if "forces" in res:
        forces = np.asarray(res["forces"], dtype=float)
        if forces.shape != (len(atoms), 3):
            raise InvalidDataError(f"{where}: forces of shape {forces.shape} for {len(atoms)} atoms")
        if not np.isfinite(forces).all():
            raise InvalidDataError(f"{where}: non-finite forces")


def to_graphs(structures: Sequence[Atoms], r_max: float, split: str = "") -> list[Graph]:
    """float64 graphs with labels, built once per run; a bad structure's error names its split and index."""
    graphs = []
    for index, atoms in enumerate(structures):
        try:
            graphs.append(atoms_to_graph(atoms, r_max, torch.float64))
        except DataError as err:
            raise InvalidDataError(f"{split} structure {index}: {err}".lstrip()) from None
    return graphs


def species_of(*graph_sets: Sequence[Graph]) -> list[int]:
    """Sorted atomic numbers occurring in any of the sets."""
    zs: set[int] = set()
    for graphs in graph_sets:
        for g in graphs:
            zs.update(int(z) for z in torch.unique(g[ATOMIC_NUMBERS]))
    return sorted(zs)
