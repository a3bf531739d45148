"""The datasets page: the paper's four datasets loaded through the dataset registry (`qallegro.data.DATASETS`),
their sizes, elements, labels and units, and the training sizes of a scale."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms

from qallegro.data.datasets import DATASETS

SPLITS = ("train", "val", "test")
Data = Mapping[str, Mapping[str, list[Atoms]]]


def book_datasets() -> list[str]:
    """The paper's datasets, in the registry's order."""
    return [name for name, spec in DATASETS.items() if spec.in_paper]


def loader_options(dataset: str, scale: str, seed: int) -> dict[str, Any]:
    """The options of `dataset`'s loader that the book sets: `seed` (validation draw, QM9 split) and `scale`
    (a generated set such as Cu-Li), each only where the loader accepts it."""
    accepted = DATASETS[dataset].options()
    return {k: v for k, v in {"seed": seed, "scale": scale}.items() if accepted is None or k in accepted}


def load_splits(scale: str, seed: int, datasets: list[str] | None = None) -> dict[str, dict[str, list[Atoms]]]:
    """Every split of each dataset (default: `book_datasets`) as the training runs of `scale` read it."""
    from qallegro.data import load_dataset

    return {ds: {split: load_dataset(ds, split, **loader_options(ds, scale, seed)) for split in SPLITS}
            for ds in datasets or book_datasets()}


def overview(data: Data, sizes: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """One row per dataset: split sizes, atoms per structure, elements, labels, source units (the registry's),
    and `sizes[dataset]`: what the training runs take of each split (`qallegro.campaign.plan.training_sizes`)."""
    rows = []
    for ds, splits in data.items():
        spec = DATASETS[ds]
        every = [a for frames in splits.values() for a in frames]
        atoms = sorted({len(a) for a in every})
        rows.append({
            "dataset": spec.label,
            "train / val / test": " / ".join(f"{len(splits[s]):,}" for s in SPLITS),
            "atoms per structure": f"{atoms[0]}-{atoms[-1]}" if len(atoms) > 1 else str(atoms[0]),
            "elements": " ".join(sorted({s for a in every for s in a.get_chemical_symbols()})),
            "labels": "energy, forces" if spec.has_forces else "energy",
            "source units": spec.source_units,
            **sizes[ds],
        })
    return pd.DataFrame(rows).set_index("dataset")


def energies_per_atom(frames: list[Atoms]) -> np.ndarray:
    """Total energy per atom (eV/atom) of each structure."""
    return np.array([a.get_potential_energy() / len(a) for a in frames])


def force_components(frames: list[Atoms]) -> np.ndarray:
    """Every Cartesian force component (eV/Å) of the structures, flattened."""
    return np.concatenate([a.get_forces(apply_constraint=False).ravel() for a in frames])


def force_spread(data: Data) -> pd.DataFrame:
    """Per dataset with forces: RMS, mean |component| and max |component| of the training forces (meV/Å)."""
    rows = []
    for ds, splits in data.items():
        if not DATASETS[ds].has_forces:
            continue
        comps = force_components(splits["train"])
        rows.append({"dataset": DATASETS[ds].label, "force RMS": 1e3 * float(np.sqrt(np.mean(comps**2))),
                     "mean |component|": 1e3 * float(np.mean(np.abs(comps))),
                     "max |component|": 1e3 * float(np.max(np.abs(comps)))})
    return pd.DataFrame(rows).set_index("dataset")
