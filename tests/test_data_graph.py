"""Neighbour lists against a brute-force search, and the batched graph structure (`collate`)."""

from __future__ import annotations

import functools
import itertools
import operator

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from qallegro.data.graph import atoms_to_graph, collate, iterate_batches, num_graphs
from qallegro.data.neighbors import neighbor_list


def brute_force(pos: np.ndarray, cell: np.ndarray | None, pbc: list[bool], r_max: float) -> set[tuple]:
    """Every (i, j, S) with |R_j - R_i + S @ cell| < r_max by enumerating enough lattice shifts."""
    pbc_arr = np.asarray(pbc, dtype=bool)
    if cell is None or not pbc_arr.any():
        cell = np.zeros((3, 3))
        reach = [0, 0, 0]
    else:
        # distance between lattice planes along each axis: V / |a_j x a_k|
        vol = abs(np.linalg.det(cell))
        spacing = [vol / np.linalg.norm(np.cross(cell[(a + 1) % 3], cell[(a + 2) % 3])) for a in range(3)]
        span = np.ptp(pos @ np.linalg.inv(cell), axis=0) if len(pos) else np.zeros(3)
        reach = [int(np.ceil(r_max / spacing[a] + span[a])) + 1 if pbc_arr[a] else 0 for a in range(3)]
    out = set()
    for s in itertools.product(*(range(-k, k + 1) for k in reach)):
        shift = np.asarray(s, dtype=float) @ cell
        d = pos[None, :, :] - pos[:, None, :] + shift  # [i, j, 3]
        close = np.linalg.norm(d, axis=-1) < r_max
        for i, j in zip(*np.nonzero(close), strict=True):
            if i == j and not any(s):
                continue
            out.add((int(i), int(j), *s))
    return out


def as_set(i: np.ndarray, j: np.ndarray, s: np.ndarray) -> set[tuple]:
    return {(int(a), int(b), *map(int, c)) for a, b, c in zip(i, j, s, strict=True)}


CASES = {
    "molecule": (None, [False] * 3, 3.0, 20, 6.0),
    "small_cubic_self_images": (np.eye(3) * 2.3, [True] * 3, 5.0, 2, None),
    "one_atom_tiny_cell": (np.eye(3) * 1.4, [True] * 3, 3.5, 1, None),
    "mixed_pbc_slab": (np.array([[3.1, 0, 0], [0, 2.9, 0], [0, 0, 14.0]]), [True, True, False], 4.0, 6, None),
    "triclinic": (np.array([[3.0, 0.0, 0.0], [1.4, 2.8, 0.0], [0.9, -0.7, 3.3]]), [True] * 3, 4.5, 4, None),
    "triclinic_one_axis": (
        np.array([[2.5, 0.4, 0.0], [0.3, 6.0, 0.0], [0.2, 0.1, 7.0]]),
        [True, False, False],
        3.2,
        5,
        None,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("seed", [0, 1])
def test_neighbor_list_matches_brute_force(case: str, seed: int) -> None:
    cell, pbc, r_max, n, box = CASES[case]
    rng = np.random.default_rng(seed)
    if cell is None:
        pos = rng.uniform(0, box, size=(n, 3))
    else:
        frac = rng.uniform(0, 1, size=(n, 3))
        if not all(pbc):  # non-periodic axes: atoms in a layer well inside the cell
            frac[:, ~np.asarray(pbc)] = rng.uniform(0.2, 0.6, size=(n, int((~np.asarray(pbc)).sum())))
        pos = frac @ cell
    i, j, s = neighbor_list(pos, cell, pbc, r_max)
    got = as_set(i, j, s)
    assert len(got) == len(i), "duplicate edges"
    assert got == brute_force(pos, cell, pbc, r_max)
    assert got, "the case should have edges"
    if case in ("small_cubic_self_images", "one_atom_tiny_cell"):
        assert any(a == b for a, b, *_ in got), "an atom must see its own periodic images"


def test_small_cell_sees_its_own_images() -> None:
    cell = np.eye(3) * 2.0
    i, j, s = neighbor_list(np.zeros((1, 3)), cell, True, 2.5)
    # 6 face neighbours at 2.0 and 12 edge neighbours at 2.83 > 2.5 are excluded: exactly 6 self-images
    assert (i == 0).all() and (j == 0).all() and len(i) == 6
    assert sorted(map(tuple, s.tolist())) == sorted(
        [(1, 0, 0), (-1, 0, 0), (0, 1, 0), (0, -1, 0), (0, 0, 1), (0, 0, -1)]
    )


def test_edges_are_symmetric_and_within_cutoff() -> None:
    rng = np.random.default_rng(3)
    cell = np.array([[3.2, 0.0, 0.0], [0.8, 3.0, 0.0], [0.3, 0.5, 2.9]])
    pos = rng.uniform(0, 1, (5, 3)) @ cell
    i, j, s = neighbor_list(pos, cell, True, 4.0)
    edges = as_set(i, j, s)
    assert all((b, a, *(-x for x in sh)) in edges for a, b, *sh in edges)
    d = np.linalg.norm(pos[j] - pos[i] + s @ cell, axis=1)
    assert d.max() < 4.0 and d.min() > 0


def _atoms(n: int, seed: int, periodic: bool) -> Atoms:
    rng = np.random.default_rng(seed)
    if periodic:
        cell = np.diag([3.0, 3.2, 3.4])
        atoms = Atoms(
            numbers=rng.integers(1, 10, n), scaled_positions=rng.uniform(0, 1, (n, 3)), cell=cell, pbc=True
        )
    else:
        atoms = Atoms(numbers=rng.integers(1, 10, n), positions=rng.uniform(0, 4, (n, 3)))
    atoms.calc = SinglePointCalculator(atoms, energy=float(rng.normal()), forces=rng.normal(size=(n, 3)))
    return atoms


def test_atoms_to_graph_edge_vectors_and_labels() -> None:
    atoms = _atoms(4, 0, periodic=True)
    g = atoms_to_graph(atoms, r_max=3.5)
    i, j = g["edge_index"]
    vec = g["pos"][j] - g["pos"][i] + g["edge_cell_shift"] @ g["cell"][0]
    from ase.neighborlist import neighbor_list as ase_nl

    d_ase = np.sort(ase_nl("d", atoms, 3.5))
    assert np.allclose(np.sort(vec.norm(dim=1).numpy()), d_ase)
    assert g["energy"].item() == pytest.approx(atoms.get_potential_energy())
    assert torch.allclose(g["forces"], torch.as_tensor(atoms.get_forces()))
    assert g["pbc"].tolist() == [[True, True, True]] and num_graphs(g) == 1


def test_collate_offsets_batch_ptr_and_labels() -> None:
    structures = [_atoms(3, 1, False), _atoms(5, 2, True), _atoms(2, 3, False)]
    graphs = [atoms_to_graph(a, r_max=3.0) for a in structures]
    b = collate(graphs)
    counts = [len(a) for a in structures]
    offsets = np.concatenate([[0], np.cumsum(counts)])
    assert b["ptr"].tolist() == offsets.tolist()
    assert b["batch"].tolist() == functools.reduce(operator.iadd, ([k] * c for k, c in enumerate(counts)), [])
    assert num_graphs(b) == 3 and b["cell"].shape == (3, 3, 3) and b["pbc"].shape == (3, 3)
    start = 0
    for k, g in enumerate(graphs):
        e = g["edge_index"].shape[1]
        assert torch.equal(b["edge_index"][:, start : start + e], g["edge_index"] + int(offsets[k]))
        assert torch.equal(b["edge_cell_shift"][start : start + e], g["edge_cell_shift"])
        start += e
    assert start == b["edge_index"].shape[1]
    # every edge connects atoms of one structure
    assert torch.equal(b["batch"][b["edge_index"][0]], b["batch"][b["edge_index"][1]])
    assert torch.allclose(
        b["energy"], torch.tensor([a.get_potential_energy() for a in structures], dtype=b["energy"].dtype)
    )
    assert torch.allclose(b["forces"], torch.as_tensor(np.concatenate([a.get_forces() for a in structures])))
    assert torch.allclose(b["pos"], torch.as_tensor(np.concatenate([a.positions for a in structures])))
    # nested collate keeps the offsets right
    bb = collate([collate(graphs[:2]), graphs[2]])
    for key in b:
        assert torch.equal(bb[key], b[key]), key


def test_collate_refuses_mixed_labels_and_empty_input() -> None:
    g1 = atoms_to_graph(_atoms(3, 1, False), 3.0)
    g2 = atoms_to_graph(Atoms("H2", positions=[[0, 0, 0], [0, 0, 0.7]]), 3.0)
    with pytest.raises(ValueError, match="energy"):
        collate([g1, g2])
    with pytest.raises(ValueError):
        collate([])


def test_iterate_batches_covers_every_graph_once() -> None:
    graphs = [atoms_to_graph(_atoms(2 + k % 3, k, False), 3.0) for k in range(7)]
    gen = torch.Generator().manual_seed(0)
    energies = sorted(float(g["energy"]) for g in graphs)
    seen = [float(e) for b in iterate_batches(graphs, 3, shuffle=True, generator=gen) for e in b["energy"]]
    assert sorted(seen) == energies
    sizes = [num_graphs(b) for b in iterate_batches(graphs, 3)]
    assert sizes == [3, 3, 1]
