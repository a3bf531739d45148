"""Build labelled `ase.Atoms` (single-point calculator in eV and eV/Å) from arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator


def labelled_atoms(
    numbers: np.ndarray,
    positions: np.ndarray,
    energy: float,
    forces: np.ndarray | None = None,
    info: dict[str, Any] | None = None,
) -> Atoms:
    """A non-periodic structure whose calculator returns `energy` (eV) and, when given, `forces` (eV/Å)."""
    atoms = Atoms(numbers=numbers, positions=positions)
    if info:
        atoms.info.update(info)
    results: dict[str, Any] = {"energy": float(energy)}
    if forces is not None:
        results["forces"] = forces
    atoms.calc = SinglePointCalculator(atoms, **results)
    return atoms


def first_frames(n_total: int, max_frames: int | None) -> int:
    """How many frames a `max_frames` option keeps (the first ones, a deterministic subset)."""
    return n_total if max_frames is None else min(n_total, max_frames)
