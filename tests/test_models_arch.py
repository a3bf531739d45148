"""Architecture invariants, configuration errors, float32 behaviour, save/load and the ASE calculator."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from ase.calculators.fd import calculate_numerical_forces, calculate_numerical_stress
from qallegro import Calculator
from qallegro.data.graph import atoms_to_graph
from qallegro.models import MODEL_DEFAULTS, build_model, load_model, save_model
from qallegro.models.tensor_product import (
    RankOneProduct,
    SparseRankOneProduct,
    cg_table,
    irreps_str,
    layer_irreps,
    sh_irreps,
)

SMALL = {"r_max": 4.0, "l_max": 2, "num_layers": 2, "env_embed_multiplicity": 4,
         "two_body_latent_mlp_latent_dimensions": [16], "latent_mlp_latent_dimensions": [16],
         "edge_eng_mlp_latent_dimensions": [8], "avg_num_neighbors": 5.0, "default_dtype": "float64",
         "per_species_rescale_shifts": [-0.5, -1.0], "per_species_rescale_scales": 0.8}


@pytest.mark.parametrize("l_max,parity,layers,expected", [
    (1, "o3_full", 1, ["0e+1o->0e (2)"]),
    (1, "o3_full", 3, ["0e+1o->0e+1e+1o (5)", "0e+1e+1o->0e+1o (5)", "0e+1o->0e (2)"]),
    (2, "o3_full", 2, ["0e+1o+2e->0e+1o+2e (11)", "0e+1o+2e->0e (3)"]),
    (2, "o3_full", 3, ["0e+1o+2e->0e+1e+1o+2e+2o (15)", "0e+1e+1o+2e+2o->0e+1o+2e (15)", "0e+1o+2e->0e (3)"]),
    (2, "o3_restricted", 3, ["0e+1o+2e->0e+1o+2e (11)"] * 2 + ["0e+1o+2e->0e (3)"]),
    (3, "o3_full", 3, ["0e+1o+2e+3o->0e+1e+1o+2e+2o+3e+3o (34)", "0e+1e+1o+2e+2o+3e+3o->0e+1o+2e+3o (34)",
                       "0e+1o+2e+3o->0e (4)"]),
])
def test_irreps_and_paths_match_the_legacy_table(l_max, parity, layers, expected):
    got = [f"{irreps_str(x.irreps_in)}->{irreps_str(x.irreps_out)} ({len(x.paths)})"
           for x in layer_irreps(l_max, parity, layers)]
    assert got == expected


@pytest.mark.parametrize("l_max", [1, 2, 3])
def test_fused_rank1_product_and_its_gradients_equal_the_dense_form(l_max):
    """The sparse form the compiled models trace (`SparseRankOneProduct`) gives the dense form's outputs and the
    same gradients with respect to the spherical harmonics, the environment and the per-path factors (float64)."""
    irr = layer_irreps(l_max, "o3_full", 2)[0]
    table = cg_table(irr, sh_irreps(l_max, "o3_full"))
    forms = [RankOneProduct(table).double(), SparseRankOneProduct(table).double()]
    gen = torch.Generator().manual_seed(l_max)
    e, n, u = 7, 4, 5
    inputs = [torch.randn(e, len(irr.irreps_in), u, generator=gen, dtype=torch.float64),
              torch.randn(e, table.d_in, generator=gen, dtype=torch.float64),
              torch.randn(n, table.d_sh, u, generator=gen, dtype=torch.float64)]
    center = torch.tensor([0, 1, 1, 2, 3, 3, 3])
    weights = torch.randn(e, table.dim_out, u, generator=gen, dtype=torch.float64)
    results = []
    for tp in forms:
        args = [x.clone().requires_grad_() for x in inputs]
        scalars, blocks = tp(*args, center, None)
        out = torch.cat(blocks, dim=1)
        assert torch.equal(scalars, blocks[0].transpose(1, 2).reshape(e, -1))
        results.append([out.detach(), *torch.autograd.grad((out * weights).sum(), args)])
    for dense, sparse in zip(*results):
        np.testing.assert_allclose(sparse, dense, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("num_layers", [1, 2, 3])
def test_each_layer_fixes_its_form_and_the_fused_twin_shares_the_weights(num_layers):
    """Eager models hold the BLAS forms, the compiled models' twin the fused ones; the twin computes the same
    energies and forces with the model's own (shared) parameters, also after they change in place, and building
    it draws nothing from the global RNG."""
    from qallegro.models.compile import fused_twin

    cfg = {"r_max": 4.0, "l_max": 2, "num_layers": num_layers, "env_embed_multiplicity": 4,
           "two_body_latent_mlp_latent_dimensions": [16], "latent_mlp_latent_dimensions": [16],
           "edge_eng_mlp_latent_dimensions": [8], "avg_num_neighbors": 5.0, "default_dtype": "float64"}
    model = build_model(cfg, [1, 6, 8]).eval()
    expected = {1: ["DiagonalFirstProduct"], 2: ["RankOneProduct", "DiagonalProduct"],
                3: ["RankOneProduct", "AtomCentredProduct", "DiagonalProduct"]}[num_layers]
    assert [type(tp).__name__ for tp in model.body.tps] == expected
    state = torch.random.get_rng_state()
    twin = fused_twin(model)
    assert torch.equal(torch.random.get_rng_state(), state)
    fused = {1: ["DiagonalFirstProduct"], 2: ["SparseRankOneProduct", "SummedDiagonalProduct"],
             3: ["SparseRankOneProduct", "AtomCentredProduct", "SummedDiagonalProduct"]}[num_layers]
    assert [type(tp).__name__ for tp in twin.body.tps] == fused
    if num_layers == 1:
        assert type(twin.body.tps[0].diagonal).__name__ == "SummedDiagonalProduct"
    assert all(a is b for a, b in zip(twin.parameters(), model.parameters(), strict=True))
    atoms = Atoms("CH2OH", positions=np.random.default_rng(1).uniform(0, 2.5, (5, 3)))
    graph = atoms_to_graph(atoms, 4.0, torch.float64)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    ours, theirs = model(graph), twin(graph)
    for key in ("energy", "forces"):
        np.testing.assert_allclose(theirs[key].detach(), ours[key].detach(), rtol=1e-11, atol=1e-11)


def test_parameter_count_of_the_legacy_aspirin_example():
    """allegro-spec §1.9: two-body 689,920; env-embed 393,216 + 196,608; TP linear 45,056; latent MLPs
    2 x 3,342,336; edge MLP 131,200; Bessel 8 -> 8,140,680. Legacy Allegro also registers a 64x64x3 = 12,288
    linear after the last tensor product whose output is never used (8,152,968 in total); we omit that dead layer.
    """
    model = build_model({**MODEL_DEFAULTS, "avg_num_neighbors": 10.0}, [1, 6, 8])
    parts = {name: sum(p.numel() for p in mod.parameters()) for name, mod in model.body.named_children()}
    assert parts["two_body"] == 689_920
    assert parts["env_embed"] == 393_216 + 196_608
    assert parts["linears"] == 45_056
    assert parts["latents"] == 2 * 3_342_336
    assert parts["basis"] == 8
    assert sum(p.numel() for p in model.head.parameters()) == 131_200
    total = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert total == 8_140_680 == 8_152_968 - 64 * 64 * 3


def test_variants_parameter_counts():
    mlp = build_model({**SMALL, "variant": "mlp", "edge_eng_mlp_output_dim": 5, "final_mlp_latent_dimensions": [7, 3]},
                      [1, 8])
    assert sum(p.numel() for p in mlp.head.parameters()) == 16 * 8 + 8 * 5 + 5 * 7 + 7 * 3 + 3 * 1


def test_avg_num_neighbors_is_used_in_env_sum_and_edge_sum():
    atoms = Atoms("OHH", positions=[[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]])
    g = atoms_to_graph(atoms, 4.0)
    e = {}
    for nbar in (2.0, 8.0):
        m = build_model({**SMALL, "avg_num_neighbors": nbar, "per_species_rescale_shifts": 0.0}, [1, 8])
        e[nbar] = m(g, compute_forces=False)["energy"].item()
        m.body.inv_sqrt_nbar = 1.0 / np.sqrt(2.0)  # undo the env-sum normalisation only
        e[(nbar, "edge_only")] = m(g, compute_forces=False)["energy"].item()
    assert e[2.0] != pytest.approx(e[8.0])
    # with the env sum fixed, the edge -> atom sum alone scales the energy by sqrt(2/8)
    assert e[(8.0, "edge_only")] == pytest.approx(e[2.0] * np.sqrt(2.0 / 8.0), rel=1e-12)


@pytest.mark.parametrize("key,value,message", [
    ("variant", "nope", "variant"),
    ("avg_num_neighbors", None, "avg_num_neighbors"),
    ("avg_num_neighbors", "auto", "avg_num_neighbors"),
    ("parity", "o2", "parity"),
    ("l_max", -1, "l_max"),
    ("latent_mlp_latent_dimensions", [16, 0], "latent_mlp_latent_dimensions"),
    ("edge_eng_mlp_output_dim", 4, "edge_eng_mlp_output_dim"),
    ("PolynomialCutoff_p", 1.0, "PolynomialCutoff_p"),
    ("per_species_rescale_shifts", [1.0, 2.0, 3.0], "per_species_rescale_shifts"),
])
def test_bad_config_gives_a_clear_error(key, value, message):
    with pytest.raises(ValueError, match=message):
        build_model({**SMALL, key: value}, [1, 8])


def test_unknown_species_is_rejected():
    model = build_model(SMALL, [1, 8])
    with pytest.raises(ValueError, match=r"species \[6\] not in the model's species \[1, 8\]"):
        model(atoms_to_graph(Atoms("CO", positions=[[0, 0, 0], [1.2, 0, 0]]), 4.0))


def test_float32_is_equivariant_at_float32_tolerance():
    m = build_model({**SMALL, "default_dtype": "float32"}, [1, 8])
    atoms = Atoms("OHHOH", positions=np.random.default_rng(0).uniform(0, 3, (5, 3)))
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    rot = atoms.copy()
    rot.positions = atoms.positions @ q.T
    a, b = m(atoms_to_graph(atoms, 4.0)), m(atoms_to_graph(rot, 4.0))
    assert a["energy"].dtype == torch.float64  # energies accumulated in float64
    np.testing.assert_allclose(b["energy"].detach(), a["energy"].detach(), atol=1e-4)
    np.testing.assert_allclose(b["forces"].detach(), a["forces"].detach().numpy() @ q.T, atol=1e-3)


def test_energy_shift_survives_a_float32_cast():
    m = build_model({**SMALL, "per_species_rescale_shifts": [-838.9412345678, -1000.123456789]}, [1, 8]).float()
    assert m.shifts.dtype == torch.float64
    assert m.shifts[0].item() == -838.9412345678


def test_save_and_load_round_trip(tmp_path):
    m = build_model({**SMALL, "variant": "mlp", "seed": 11}, [1, 8])
    path = save_model(m, tmp_path / "model.pt")
    m2 = load_model(path)
    g = atoms_to_graph(Atoms("OH", positions=[[0, 0, 0], [0.97, 0.1, 0]]), 4.0)
    assert torch.equal(m(g)["forces"], m2(g)["forces"])
    (tmp_path / "bad.pt").write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"bad\.pt"):
        load_model(tmp_path / "bad.pt")


def test_initialisation_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(0)
    before = torch.rand(1)
    torch.manual_seed(0)
    a = build_model({**SMALL, "seed": 5}, [1, 8])
    after = torch.rand(1)
    b = build_model({**SMALL, "seed": 5}, [1, 8])
    assert torch.equal(before, after)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_ase_calculator_energy_forces_stress_match_numerical():
    model = build_model({**SMALL, "per_species_rescale_shifts": -3.0}, [29, 3])
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    atoms[1].symbol = "Li"
    atoms.rattle(0.05, seed=1)
    atoms.calc = Calculator(model)
    f = atoms.get_forces()
    np.testing.assert_allclose(f, calculate_numerical_forces(atoms, eps=1e-4), atol=1e-6)
    np.testing.assert_allclose(atoms.get_stress(), calculate_numerical_stress(atoms, eps=1e-5), atol=1e-6)
    assert atoms.get_potential_energy() == pytest.approx(atoms.get_potential_energies().sum())
    mol = Atoms("Cu2", positions=[[0, 0, 0], [2.3, 0, 0]])
    mol.calc = Calculator(model)
    assert np.isfinite(mol.get_potential_energy())
    with pytest.raises(Exception, match="periodic"):
        mol.get_stress()
