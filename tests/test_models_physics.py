"""Physics of the potential (allegro-spec §6): symmetries, derivatives, locality, smoothness, batching, PBC.

Run in float64 on all variants with small random-weight models, so every property is tested to tight tolerance.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from qallegro.data.graph import atoms_to_graph, collate
from qallegro.models import build_model

R_MAX = 4.0
SPECIES = [1, 6, 8]
BASE = {
    "r_max": R_MAX, "l_max": 2, "parity": "o3_full", "num_layers": 3, "env_embed_multiplicity": 4,
    "two_body_latent_mlp_latent_dimensions": [16, 32], "latent_mlp_latent_dimensions": [32, 32],
    "edge_eng_mlp_latent_dimensions": [16], "avg_num_neighbors": 6.0, "default_dtype": "float64",
    "per_species_rescale_shifts": [-1.3, -2.1, -3.7], "per_species_rescale_scales": [1.5, 0.7, 2.0], "seed": 3,
    "PolynomialCutoff_p": 6.0,
}
VARIANTS = {
    "allegro": {},
    "mlp": {"variant": "mlp", "edge_eng_mlp_output_dim": 4, "final_mlp_latent_dimensions": [8, 8]},
    "qdi": {"variant": "qdi", "edge_eng_mlp_output_dim": 6, "qdi_n_qubits": 4, "qdi_depth": 2, "qdi_fc_dim": 8},
}


def _available(variant: str) -> bool:
    if variant != "qdi":
        return True
    try:
        import qallegro.quantum.layer  # noqa: F401
    except ModuleNotFoundError:
        return False
    return True


@pytest.fixture(params=list(VARIANTS), scope="module")
def model(request):
    if not _available(request.param):
        pytest.fail("qallegro.quantum.layer is missing: the qdi variant cannot be built")
    m = build_model({**BASE, **VARIANTS[request.param]}, SPECIES)
    return m.eval()


def random_molecule(n: int = 9, seed: int = 0, box: float = 4.0) -> Atoms:
    rng = np.random.default_rng(seed)
    pos = []
    while len(pos) < n:
        p = rng.uniform(0, box, 3)
        if all(np.linalg.norm(p - q) > 0.9 for q in pos):
            pos.append(p)
    return Atoms(numbers=rng.choice(SPECIES, n), positions=np.array(pos))


def periodic_crystal(seed: int = 0) -> Atoms:
    rng = np.random.default_rng(seed)
    cell = np.array([[3.1, 0.2, 0.0], [0.3, 2.9, 0.1], [-0.2, 0.4, 3.3]])
    frac = np.array([[0, 0, 0], [0.5, 0.5, 0.1], [0.2, 0.6, 0.55]]) + rng.normal(0, 0.02, (3, 3))
    return Atoms(numbers=[6, 8, 1], scaled_positions=frac, cell=cell, pbc=True)


def run(model, atoms: Atoms, stress: bool = False) -> dict[str, np.ndarray]:
    out = model(atoms_to_graph(atoms, R_MAX), compute_forces=True, compute_stress=stress)
    return {k: v.detach().numpy() for k, v in out.items()}


def random_orthogonal(seed: int, reflect: bool) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if (np.linalg.det(q) < 0) != reflect:
        q[:, 0] *= -1
    return q


@pytest.mark.parametrize("reflect", [False, True])
def test_rotation_reflection_equivariance(model, reflect):
    atoms = random_molecule(10, seed=1)
    ref = run(model, atoms)
    for seed in range(3):
        q = random_orthogonal(seed, reflect)
        rot = atoms.copy()
        rot.positions = atoms.positions @ q.T
        out = run(model, rot)
        np.testing.assert_allclose(out["energy"], ref["energy"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(out["atomic_energy"], ref["atomic_energy"], rtol=0, atol=1e-10)
        np.testing.assert_allclose(out["forces"], ref["forces"] @ q.T, rtol=0, atol=1e-10)
    assert np.abs(ref["forces"]).max() > 1e-3  # not trivially zero


def test_stress_equivariance_periodic(model):
    atoms = periodic_crystal()
    ref = run(model, atoms, stress=True)
    q = random_orthogonal(7, reflect=True)
    rot = atoms.copy()
    rot.set_cell(atoms.cell.array @ q.T, scale_atoms=False)
    rot.positions = atoms.positions @ q.T
    out = run(model, rot, stress=True)
    np.testing.assert_allclose(out["energy"], ref["energy"], atol=1e-10)
    np.testing.assert_allclose(out["forces"], ref["forces"] @ q.T, atol=1e-10)
    np.testing.assert_allclose(out["stress"][0], q @ ref["stress"][0] @ q.T, atol=1e-10)


def test_translation_invariance(model):
    atoms = random_molecule(8, seed=2)
    ref = run(model, atoms)
    moved = atoms.copy()
    moved.positions += np.array([3.7, -12.1, 0.4])
    out = run(model, moved)
    np.testing.assert_allclose(out["energy"], ref["energy"], atol=1e-10)
    np.testing.assert_allclose(out["forces"], ref["forces"], atol=1e-10)
    np.testing.assert_allclose(ref["forces"].sum(0), 0.0, atol=1e-10)  # Newton's third law


def test_permutation_equivariance(model):
    atoms = random_molecule(9, seed=3)
    ref = run(model, atoms)
    perm = np.random.default_rng(0).permutation(len(atoms))
    out = run(model, atoms[perm])
    np.testing.assert_allclose(out["energy"], ref["energy"], atol=1e-10)
    np.testing.assert_allclose(out["forces"], ref["forces"][perm], atol=1e-10)
    np.testing.assert_allclose(out["atomic_energy"], ref["atomic_energy"][perm], atol=1e-10)
    g = atoms_to_graph(atoms, R_MAX)
    order = torch.randperm(g["edge_index"].shape[1], generator=torch.Generator().manual_seed(0))
    g2 = dict(g, edge_index=g["edge_index"][:, order], edge_cell_shift=g["edge_cell_shift"][order])
    np.testing.assert_allclose(model(g2)["forces"].detach().numpy(), ref["forces"], atol=1e-10)


def _energy(model, atoms: Atoms) -> float:
    return float(run(model, atoms)["energy"].sum())


def test_forces_equal_finite_differences(model):
    atoms = random_molecule(6, seed=4)
    forces = run(model, atoms)["forces"]
    eps = 1e-4
    fd = np.zeros_like(forces)
    for i in range(len(atoms)):
        for k in range(3):
            plus, minus = atoms.copy(), atoms.copy()
            plus.positions[i, k] += eps
            minus.positions[i, k] -= eps
            fd[i, k] = -(_energy(model, plus) - _energy(model, minus)) / (2 * eps)
    np.testing.assert_allclose(forces, fd, rtol=1e-6, atol=1e-7)


def test_stress_equals_finite_strain(model):
    atoms = periodic_crystal(1)
    stress = run(model, atoms, stress=True)["stress"][0]
    eps, vol = 1e-5, atoms.get_volume()
    fd = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            e = np.zeros((3, 3))
            e[a, b] = e[b, a] = eps / (1 if a == b else 2) if a != b else eps
            vals = []
            for sign in (1, -1):
                s = atoms.copy()
                s.set_cell(atoms.cell.array @ (np.eye(3) + sign * e), scale_atoms=True)
                vals.append(_energy(model, s))
            fd[a, b] = (vals[0] - vals[1]) / (2 * eps) / vol
    np.testing.assert_allclose(stress, fd, rtol=1e-5, atol=1e-8)


def test_strict_locality(model):
    """dE_i/dR_k is exactly zero unless k = i or |R_i - R_k| < r_max: one hop only (not message passing)."""
    atoms = Atoms("CHOCH", positions=[[0, 0, 0], [3.0, 0, 0], [6.0, 0, 0], [9.0, 0, 0], [1.5, 2.0, 0]])
    g = atoms_to_graph(atoms, R_MAX)
    pos = g["pos"].clone().requires_grad_(True)
    atomic = model(dict(g, pos=pos), compute_forces=False)["atomic_energy"]
    d = np.linalg.norm(atoms.positions[:, None] - atoms.positions[None], axis=-1)
    checked_zero = 0
    for i in range(len(atoms)):
        (jac,) = torch.autograd.grad(atomic[i], pos, retain_graph=True, allow_unused=True)
        jac = np.zeros((len(atoms), 3)) if jac is None else jac.numpy()
        for k in range(len(atoms)):
            if k != i and d[i, k] >= R_MAX:
                assert np.abs(jac[k]).max() == 0.0, (i, k)
                checked_zero += 1
            elif k != i:
                assert np.abs(jac[k]).max() > 0.0, (i, k)
    assert checked_zero >= 6  # atoms 0 and 2 are two hops apart through atom 1


def test_far_atom_moved_changes_nothing(model):
    atoms = random_molecule(7, seed=5) + Atoms("O", positions=[[30.0, 0, 0]])
    ref = run(model, atoms)
    moved = atoms.copy()
    moved.positions[-1] = [0.0, 40.0, -25.0]
    out = run(model, moved)
    np.testing.assert_allclose(out["energy"], ref["energy"], atol=1e-12)
    np.testing.assert_allclose(out["forces"], ref["forces"], atol=1e-12)


def test_smooth_at_cutoff(model):
    """Dimer scans across r_max for every species pair: F = -dE/dr along the path (no jumps), F exactly zero at
    and beyond r_max, and E, F approach their isolated-atom values smoothly (C2 envelope)."""
    rs = np.linspace(0.5 * R_MAX, R_MAX - 1e-3, 400)
    scan = np.concatenate([rs, [R_MAX - 1e-6, R_MAX, 1.1 * R_MAX]])
    for za in SPECIES:
        for zb in SPECIES:
            dimers = [Atoms(numbers=[za, zb], positions=[[0, 0, 0], [r, 0, 0]]) for r in scan]
            out = model(collate([atoms_to_graph(a, R_MAX) for a in dimers]))
            es = out["energy"].detach().numpy()
            fs = out["forces"].detach().numpy()[1::2, 0]
            isolated = es[-1]
            assert abs(fs[0]) > 1e-6  # interacting at half the cutoff
            assert fs[-2] == 0.0 and fs[-1] == 0.0  # exactly zero at and beyond r_max
            assert abs(es[-3] - isolated) < 1e-12 and abs(fs[-3]) < 1e-10  # smooth approach to the cutoff
            de, trapezoid = np.diff(es[:400]), -0.5 * (fs[1:400] + fs[:399]) * np.diff(rs)
            np.testing.assert_allclose(de, trapezoid, atol=2e-3 * np.abs(de).max() + 1e-12)


def test_extensivity_far_apart_copies(model):
    atoms = random_molecule(8, seed=6)
    ref = run(model, atoms)
    other = atoms.copy()
    other.positions += [50.0, 0, 0]
    out = run(model, atoms + other)
    np.testing.assert_allclose(out["energy"], 2 * ref["energy"], atol=1e-10)
    np.testing.assert_allclose(out["forces"], np.concatenate([ref["forces"], ref["forces"]]), atol=1e-10)


def test_isolated_atoms_give_their_shift(model):
    shifts = dict(zip(SPECIES, BASE["per_species_rescale_shifts"]))
    for z in SPECIES:
        out = run(model, Atoms(numbers=[z], positions=[[0, 0, 0]]))
        assert out["energy"][0] == pytest.approx(shifts[z], abs=1e-14)
        assert np.all(out["forces"] == 0)
    pair = run(model, Atoms(numbers=[1, 8], positions=[[0, 0, 0], [20, 0, 0]]))
    assert pair["energy"][0] == pytest.approx(shifts[1] + shifts[8], abs=1e-14)


def test_batch_equals_one_by_one(model):
    frames = [random_molecule(n, seed=10 + n) for n in (4, 7, 1, 9)]
    frames.append(periodic_crystal(2))
    graphs = [atoms_to_graph(a, R_MAX) for a in frames]
    batch = collate(graphs)
    out = model(batch)
    start = 0
    for a, g in zip(frames, graphs):
        single = model(g)
        np.testing.assert_allclose(out["forces"][start:start + len(a)].detach(), single["forces"].detach(),
                                   atol=1e-10)
        start += len(a)
    np.testing.assert_allclose(out["energy"].detach(), torch.cat([model(g)["energy"] for g in graphs]).detach(),
                               atol=1e-10)
    # cross-frame isolation: frame 0's energy does not depend on other frames' positions
    pos = batch["pos"].clone().requires_grad_(True)
    e = model(dict(batch, pos=pos), compute_forces=False)["energy"]
    (grad,) = torch.autograd.grad(e[0], pos)
    assert grad[len(frames[0]):].abs().max() == 0.0


def test_periodic_images_small_cell(model):
    """A small cell where atoms see their own images equals the same structure repeated 2x2x2."""
    atoms = periodic_crystal(3)
    assert min(atoms.cell.lengths()) < R_MAX  # own images are neighbours
    ref = run(model, atoms, stress=True)
    big = atoms.repeat((2, 2, 2))
    out = run(model, big, stress=True)
    np.testing.assert_allclose(out["energy"], 8 * ref["energy"], rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(out["forces"], np.tile(ref["forces"], (8, 1)), atol=1e-10)
    np.testing.assert_allclose(out["stress"], ref["stress"], atol=1e-10)
    shifted = atoms.copy()
    shifted.positions[1] += atoms.cell.array[0] - 2 * atoms.cell.array[2]
    out2 = run(model, shifted, stress=True)
    np.testing.assert_allclose(out2["energy"], ref["energy"], atol=1e-10)
    np.testing.assert_allclose(out2["forces"], ref["forces"], atol=1e-10)
