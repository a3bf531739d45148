"""Radius neighbour lists (full, directed) through vesin, periodic or not, including small cells."""

from __future__ import annotations

import numpy as np
from vesin import NeighborList


def neighbor_list(
    positions: np.ndarray, cell: np.ndarray | None, pbc: np.ndarray | bool, r_max: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All directed pairs (i, j, S) with |R_j - R_i + S @ cell| < r_max.

    Args:
        positions: [N, 3] Cartesian positions (Å).
        cell: [3, 3] lattice vectors as rows (ASE convention), or None when no axis is periodic.
        pbc: three booleans (or one) for the periodic axes.
        r_max: cutoff radius (Å).

    Returns:
        i [E] int64 (centre), j [E] int64 (neighbour), S [E, 3] int64 (lattice shifts). Both directions of
        every pair are present; an atom is never its own neighbour in the same image, but periodic images of
        itself are kept (small cells).
    """
    positions = np.ascontiguousarray(positions, dtype=np.float64)
    pbc = np.broadcast_to(np.asarray(pbc, dtype=bool), (3,))
    if positions.ndim != 2 or positions.shape[1] != 3:
        raise ValueError(f"positions must have shape [N, 3], got {positions.shape}")
    if not np.isfinite(positions).all():
        raise ValueError("positions contain NaN or inf")
    if r_max <= 0:
        raise ValueError(f"r_max must be positive, got {r_max}")
    if cell is None or not pbc.any():
        box = np.zeros((3, 3))
        pbc = np.zeros(3, dtype=bool)
    else:
        box = np.ascontiguousarray(cell, dtype=np.float64)
        if abs(np.linalg.det(box)) < 1e-12:
            raise ValueError("the cell of a periodic structure is singular")
    n = len(positions)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3), np.int64)
    calc = NeighborList(cutoff=float(r_max), full_list=True)
    i, j, s = calc.compute(points=positions, box=box, periodic=pbc.tolist(), quantities="ijS")
    i = i.astype(np.int64)
    j = j.astype(np.int64)
    s = s.astype(np.int64)
    keep = ~((i == j) & (s == 0).all(axis=1))
    # strict inequality at the cutoff (vesin uses <=); edges exactly at r_max carry zero weight anyway
    vec = positions[j] - positions[i] + s @ box
    keep &= np.einsum("ij,ij->i", vec, vec) < r_max * r_max
    i, j, s = i[keep], j[keep], s[keep]
    order = np.lexsort((j, i))
    return i[order], j[order], s[order]
