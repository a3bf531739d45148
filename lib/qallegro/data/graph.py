"""The one batched graph structure every model reads: a dict of tensors with the keys below.

A graph of B structures with N atoms and E directed edges in total:

====================  ==============  =========================================================
key                   shape, dtype    meaning
====================  ==============  =========================================================
``pos``               [N, 3] float    Cartesian positions (Å)
``atomic_numbers``    [N] int64       atomic numbers Z
``cell``              [B, 3, 3] float lattice vectors as rows (zeros when not periodic)
``pbc``               [B, 3] bool     periodic axes
``edge_index``        [2, E] int64    row 0: centre i, row 1: neighbour j (both directions present)
``edge_cell_shift``   [E, 3] float    lattice shifts S: r_ij = R_j - R_i + S @ cell[batch[i]]
``batch``             [N] int64       structure index of each atom
``ptr``               [B + 1] int64   atom offsets of the structures
``energy``            [B] float       reference total energy (eV), optional
``forces``            [N, 3] float    reference forces (eV/Å), optional
``stress``            [B, 3, 3] float reference stress (eV/Å^3), optional
====================  ==============  =========================================================

Neighbour lists are built once per structure (outside autograd); edge vectors are computed from ``pos``
inside the model, so forces flow back to positions.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from ase import Atoms

from qallegro.data.errors import InvalidDataError
from qallegro.data.neighbors import neighbor_list

Graph = dict[str, torch.Tensor]

POS = "pos"
ATOMIC_NUMBERS = "atomic_numbers"
CELL = "cell"
PBC = "pbc"
EDGE_INDEX = "edge_index"
EDGE_CELL_SHIFT = "edge_cell_shift"
BATCH = "batch"
PTR = "ptr"
ENERGY = "energy"
FORCES = "forces"
STRESS = "stress"

LABELS = (ENERGY, FORCES, STRESS)
# two atoms closer than this (Å) are coincident: the edge direction is undefined and energy and forces are NaN
MIN_DISTANCE = 1e-4


def atoms_to_graph(atoms: Atoms, r_max: float, dtype: torch.dtype = torch.float64, labels: bool = True) -> Graph:
    """One structure as a graph (B = 1), with the labels its calculator carries when `labels` is true."""
    pos = atoms.get_positions()
    pbc = np.asarray(atoms.get_pbc(), dtype=bool)
    cell = np.asarray(atoms.get_cell().array, dtype=np.float64)
    i, j, s = neighbor_list(pos, cell if pbc.any() else None, pbc, r_max)
    check_distances(pos, cell, i, j, s)
    n = len(atoms)
    g: Graph = {
        POS: torch.as_tensor(pos, dtype=dtype),
        ATOMIC_NUMBERS: torch.as_tensor(atoms.get_atomic_numbers(), dtype=torch.int64),
        CELL: torch.as_tensor(cell, dtype=dtype).reshape(1, 3, 3),
        PBC: torch.as_tensor(pbc).reshape(1, 3),
        EDGE_INDEX: torch.as_tensor(np.stack([i, j]), dtype=torch.int64).reshape(2, -1),
        EDGE_CELL_SHIFT: torch.as_tensor(s, dtype=dtype).reshape(-1, 3),
        BATCH: torch.zeros(n, dtype=torch.int64),
        PTR: torch.tensor([0, n], dtype=torch.int64),
    }
    calc = atoms.calc if labels else None
    if calc is not None:
        res = getattr(calc, "results", {})
        if "energy" in res:
            g[ENERGY] = torch.tensor([float(res["energy"])], dtype=dtype)
        if "forces" in res:
            g[FORCES] = torch.as_tensor(np.asarray(res["forces"]), dtype=dtype).reshape(n, 3)
        if "stress" in res:
            from ase.stress import voigt_6_to_full_3x3_stress

            st = np.asarray(res["stress"])
            st = voigt_6_to_full_3x3_stress(st) if st.shape == (6,) else st.reshape(3, 3)
            g[STRESS] = torch.as_tensor(st, dtype=dtype).reshape(1, 3, 3)
    return g


def check_distances(pos: np.ndarray, cell: np.ndarray, i: np.ndarray, j: np.ndarray, shifts: np.ndarray) -> None:
    """Refuse coincident atoms (closer than `MIN_DISTANCE`), naming the first such pair of atom indices."""
    if len(i) == 0:
        return
    d = np.linalg.norm(pos[j] - pos[i] + np.asarray(shifts, dtype=np.float64) @ cell, axis=1)
    close = np.flatnonzero(d < MIN_DISTANCE)
    if close.size:
        k = close[0]
        raise InvalidDataError(f"atoms {int(i[k])} and {int(j[k])} are {d[k]:.1e} Å apart (coincident; "
                               f"{close.size // 2 or 1} such pair(s)): energy and forces would be NaN")


def num_graphs(g: Graph) -> int:
    return int(g[PTR].numel() - 1)


def collate(graphs: Sequence[Graph]) -> Graph:
    """Concatenate graphs into one batch; `edge_index` is offset by the atom counts."""
    if not graphs:
        raise ValueError("collate needs at least one graph")
    counts = torch.tensor([int(g[POS].shape[0]) for g in graphs], dtype=torch.int64)
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), torch.cumsum(counts, 0)])
    nb = [num_graphs(g) for g in graphs]
    out: Graph = {
        POS: torch.cat([g[POS] for g in graphs]),
        ATOMIC_NUMBERS: torch.cat([g[ATOMIC_NUMBERS] for g in graphs]),
        CELL: torch.cat([g[CELL] for g in graphs]),
        PBC: torch.cat([g[PBC] for g in graphs]),
        EDGE_INDEX: torch.cat([g[EDGE_INDEX] + offsets[k] for k, g in enumerate(graphs)], dim=1),
        EDGE_CELL_SHIFT: torch.cat([g[EDGE_CELL_SHIFT] for g in graphs]),
    }
    graph_offsets = np.cumsum([0, *nb])
    out[BATCH] = torch.cat([g[BATCH] + int(graph_offsets[k]) for k, g in enumerate(graphs)])
    ptrs = [graphs[0][PTR]] + [g[PTR][1:] + offsets[k] for k, g in enumerate(graphs) if k > 0]
    out[PTR] = torch.cat(ptrs)
    for key in LABELS:
        have = [key in g for g in graphs]
        if all(have):
            out[key] = torch.cat([g[key] for g in graphs])
        elif any(have):
            raise ValueError(f"some graphs carry {key!r} and others do not; cannot batch them")
    return out


def to(g: Graph, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Graph:
    """Move a graph to a device and cast its floating tensors to `dtype`."""
    out: Graph = {}
    for k, v in g.items():
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype=dtype)
        out[k] = v.to(device) if device is not None else v
    return out


def iterate_batches(
    graphs: Sequence[Graph], batch_size: int, shuffle: bool = False, generator: torch.Generator | None = None
) -> Iterator[Graph]:
    """Yield collated batches of `batch_size` graphs (the last one may be smaller)."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = torch.randperm(len(graphs), generator=generator).tolist() if shuffle else range(len(graphs))
    order = list(order)
    for start in range(0, len(order), batch_size):
        yield collate([graphs[k] for k in order[start:start + batch_size]])
