"""The compiled potential (`qallegro.models.compile`): same energies, forces, stress and training gradients as the
eager model, and a logged eager fallback where compilation does not apply.

Inductor takes 1-3 minutes per variant on 2 shared cores (mostly C++ compilation), so the default suite checks the
traced graph that is handed to inductor (run as plain FX); the inductor and AOTInductor runs are marked slow.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from qallegro.data.graph import atoms_to_graph, collate
from qallegro.models import build_model
from qallegro.models.compile import _trace, _Variant, compile_model, fused_twin, unsupported_reason

TINY = {
    "r_max": 4.0, "l_max": 1, "num_layers": 2, "env_embed_multiplicity": 4,
    "two_body_latent_mlp_latent_dimensions": [8], "latent_mlp_latent_dimensions": [8],
    "edge_eng_mlp_latent_dimensions": [4], "avg_num_neighbors": 5.0,
    "per_species_rescale_shifts": [-1.0, -2.0, -3.0], "per_species_rescale_scales": [1.2, 0.8, 1.1], "seed": 1,
}


def molecule(n: int, seed: int) -> Atoms:
    rng = np.random.default_rng(seed)
    pos = []
    while len(pos) < n:
        p = rng.uniform(0, 3.5, 3)
        if all(np.linalg.norm(p - q) > 0.9 for q in pos):
            pos.append(p)
    return Atoms(numbers=rng.choice([1, 6, 8], n), positions=np.array(pos))


def test_unsupported_models_and_tiny_graphs_run_eagerly_with_a_logged_reason(caplog):
    model = build_model({**TINY, "default_dtype": "float64"}, [1, 6, 8])
    qdi = build_model({**TINY, "variant": "qdi", "qdi_backend": "pennylane"}, [1, 6, 8])
    assert "pennylane" in unsupported_reason(qdi)
    assert unsupported_reason(model) is None
    assert "not a qallegro" in unsupported_reason(torch.nn.Linear(2, 2))
    single = atoms_to_graph(Atoms("H", positions=[[0, 0, 0]]), 4.0)
    for compiled in (compile_model(model, training=True), compile_model(model.eval(), training=False)):
        with caplog.at_level(logging.WARNING, logger="qallegro.models.compile"):
            out = compiled(single)
        assert out["energy"].item() == pytest.approx(-1.0)  # an isolated H atom: its shift only
        assert "fewer than 2 atoms" in caplog.text
        assert not compiled._cache  # nothing was compiled
        caplog.clear()
    frozen = compile_model(model.train(), training=False)
    with caplog.at_level(logging.WARNING, logger="qallegro.models.compile"):
        frozen(atoms_to_graph(molecule(5, 0), 4.0))
    assert "training mode" in caplog.text and not frozen._cache


def test_a_failing_compilation_runs_eagerly_with_the_reason_logged_once(monkeypatch, caplog):
    """An export or inductor failure (e.g. a torch version's limit) does not stop the run: that variant runs on the
    eager model from then on, the reason is logged once and kept in `failed`, nothing is retried."""
    model = build_model({**TINY, "default_dtype": "float64"}, [1, 6, 8]).eval()
    batch = collate([atoms_to_graph(molecule(6, 1), 4.0), atoms_to_graph(molecule(7, 2), 4.0)])
    calls = []

    def broken_export(*args, **kwargs):
        calls.append("export")
        raise RuntimeError("Constraints violated (nmax)!\nmore detail")

    def broken_compile(fn, **kwargs):
        def run(*args):
            calls.append("compile")
            raise TypeError("unhashable type: non-nested SymInt")
        return run

    monkeypatch.setattr(torch.export, "export", broken_export)
    monkeypatch.setattr(torch, "compile", broken_compile)
    ref = model(batch)
    for compiled, what in ((compile_model(model, training=False), "export"),
                           (compile_model(model, training=True), "compile")):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="qallegro.models.compile"):
            outs = [compiled(batch) for _ in range(3)]
        for out in outs:
            np.testing.assert_allclose(out["forces"].detach(), ref["forces"].detach(), rtol=1e-12)
        assert calls.count(what) == 1 and not compiled._cache and not compiled.compile_s
        (reason,) = compiled.failed.values()
        assert reason.startswith("compiling energy+forces (batch) failed") and "more detail" not in reason
        assert caplog.text.count("running eagerly") == 1 and reason in caplog.text


def _traced(model, variant_flags, state: bool):
    """The make_fx graph that compile_model hands to inductor (of the model's fused twin, which shares its
    parameters), run as plain FX (no inductor: fast)."""
    twin = fused_twin(model)
    variant = _Variant(twin, *variant_flags)
    example_graph = atoms_to_graph(molecule(5, 0), 4.0)
    names = [n for n, _ in twin.named_parameters()] + [n for n, _ in twin.named_buffers()]
    tensors = list(twin.parameters()) + list(twin.buffers())
    fn = variant.function(twin, names if state else None)
    gm = _trace(fn, variant.example(twin, example_graph) + (tensors if state else []))
    return lambda graph: dict(zip(variant.out_keys, gm(*variant.inputs(model, graph), *(tensors if state else []))))


def test_traced_graph_matches_eager_for_other_sizes_with_stress_and_gradients():
    """The traced energy-and-derivatives graph (3 layers: rank-1, atom-centred and diagonal products in their
    fused forms; traced on an 11-atom synthetic graph) reproduces the eager model in float64 to 1e-10 on graphs of
    other sizes: energies, forces, stress, and the parameter gradients of a force loss (training backward
    through the traced force computation)."""
    model = build_model({**TINY, "l_max": 2, "num_layers": 3, "default_dtype": "float64"}, [1, 6, 8])
    crystal = bulk("C", "diamond", a=3.6) * (2, 1, 1)
    crystal.rattle(0.05, seed=2)
    crystal.numbers[:3] = [1, 8, 1]
    batch = collate([atoms_to_graph(molecule(7, 4), 4.0), atoms_to_graph(crystal, 4.0)])
    model.eval()
    traced = _traced(model, (True, True, False), state=False)  # frozen weights, as for AOTInductor
    a, b = model(batch, compute_stress=True), traced(batch)
    for key in ("energy", "atomic_energy", "forces", "stress"):
        np.testing.assert_allclose(b[key].detach(), a[key].detach(), rtol=1e-10, atol=1e-10, err_msg=key)
    model.train()
    traced = _traced(model, (True, False, False), state=True)  # parameters as inputs, as for torch.compile
    grads = []
    for fn in (model, traced):
        model.zero_grad()
        out = fn(batch)
        ((out["forces"] ** 2).mean() + 1e-3 * (out["energy"] ** 2).mean()).backward()
        grads.append([p.grad.clone() for p in model.parameters()])
    for x, y in zip(*grads):
        np.testing.assert_allclose(y, x, rtol=1e-9, atol=1e-10)


def test_qdi_traces_with_parameters_as_inputs_before_any_eager_call():
    """Allegro+QDI with the paper's transferred sizes (input features not a multiple of the qubits, deep circuit),
    traced for training (circuit weights are symbolic-size inputs) before the circuit ever ran eagerly: the trace
    works, and the eager model afterwards still computes real numbers equal to the traced graph's (the circuit's
    cached constants must not be tensors made while tracing). 5 qubits: no other test builds that circuit."""
    cfg = {**TINY, "default_dtype": "float64", "variant": "qdi", "qdi_n_qubits": 5, "edge_eng_mlp_output_dim": 11,
           "qdi_depth": 3, "qdi_fc_dim": 4}
    model = build_model(cfg, [1, 6, 8]).train()
    traced = _traced(model, (True, False, False), state=True)
    batch = collate([atoms_to_graph(molecule(n, s), 4.0) for n, s in ((6, 1), (9, 2))])
    a, b = model(batch), traced(batch)
    assert type(a["forces"]) is torch.Tensor and torch.isfinite(a["forces"]).all()
    for key in ("energy", "forces"):
        np.testing.assert_allclose(b[key].detach(), a[key].detach(), rtol=1e-10, atol=1e-10, err_msg=key)


@pytest.mark.slow
def test_compiled_eval_matches_eager_and_serves_other_sizes():
    """Inductor, float64, eval mode (parameters enter detached): energies and forces agree to 1e-10 for the
    first batch and for a batch of other sizes without recompiling; an unknown element gets the eager error."""
    model = build_model({**TINY, "default_dtype": "float64"}, [1, 6, 8]).eval()
    compiled = compile_model(model, training=True)
    assert not compiled.training
    graphs = [atoms_to_graph(molecule(n, s), 4.0) for n, s in ((6, 1), (9, 2), (7, 3))]
    for batch in (collate(graphs), collate([atoms_to_graph(molecule(n, s), 4.0) for n, s in ((5, 7), (11, 8))])):
        a, b = model(batch), compiled(batch)
        np.testing.assert_allclose(b["energy"], a["energy"].detach(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(b["forces"], a["forces"].detach(), rtol=1e-10, atol=1e-10)
    single = graphs[0]  # runs through the batch graph, padded with an empty structure
    a, b = model(single), compiled(single)
    assert b["energy"].shape == (1,)
    np.testing.assert_allclose(b["forces"], a["forces"].detach(), rtol=1e-10, atol=1e-10)
    assert list(compiled.compile_s) == ["energy+forces (batch)"] and len(compiled._cache) == 1
    bad = molecule(6, 9)
    bad.numbers[2] = 3
    with pytest.raises(ValueError, match=r"species \[3\] not in the model's species"):
        compiled(collate([atoms_to_graph(bad, 4.0), graphs[0]]))


@pytest.mark.slow
def test_compiled_training_matches_eager_energies_forces_and_gradients():
    """float64: energies, forces and the gradients of a force + energy loss agree to 1e-10 (first-order backward
    through the compiled graph, which contains the force computation)."""
    batch = collate([atoms_to_graph(molecule(n, s), 4.0) for n, s in ((6, 1), (9, 2), (7, 3))])
    eager = build_model({**TINY, "default_dtype": "float64"}, [1, 6, 8]).train()
    twin = build_model({**TINY, "default_dtype": "float64"}, [1, 6, 8]).train()
    compiled = compile_model(twin, training=True)
    outs = {}
    for name, model, params in (("eager", eager, eager.parameters()), ("compiled", compiled, twin.parameters())):
        out = model(batch)
        loss = (out["energy"] ** 2).mean() * 1e-3 + (out["forces"] ** 2).mean()
        loss.backward()
        outs[name] = (out, [p.grad.clone() for p in params])
    (a, ga), (b, gb) = outs["eager"], outs["compiled"]
    np.testing.assert_allclose(b["energy"].detach(), a["energy"].detach(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(b["forces"].detach(), a["forces"].detach(), rtol=1e-10, atol=1e-10)
    assert len(ga) == len(gb) == len(list(eager.parameters()))
    for x, y in zip(ga, gb):
        np.testing.assert_allclose(y, x, rtol=1e-9, atol=1e-10)


@pytest.mark.slow
def test_frozen_inference_matches_eager_in_float32_with_stress_and_follows_weight_changes(tmp_path):
    """AOTInductor path, float32 (5e-5, nequip's tolerance): a periodic cell with stress, three layers (the
    padded atom-centred product), single structures and batches; changed weights trigger a recompilation. The
    packages go to a folder that does not exist yet."""
    model = build_model({**TINY, "num_layers": 3, "default_dtype": "float32"}, [1, 6, 8]).eval()
    packages = tmp_path / "new" / "packages"
    frozen = compile_model(model, training=False, package_dir=packages)
    crystal = bulk("C", "diamond", a=3.6) * (2, 2, 1)
    crystal.rattle(0.05, seed=2)
    crystal.numbers[:3] = [1, 8, 1]
    g = atoms_to_graph(crystal, 4.0, dtype=torch.float64)
    batch = collate([atoms_to_graph(molecule(7, 4), 4.0), atoms_to_graph(molecule(8, 5), 4.0)])
    for graph, stress in ((g, True), (batch, False)):
        a, b = model(graph, compute_stress=stress), frozen(graph, compute_stress=stress)
        for key in a:
            np.testing.assert_allclose(b[key].detach(), a[key].detach(), rtol=5e-5, atol=5e-5, err_msg=key)
    with torch.no_grad():
        next(model.parameters()).mul_(1.5)
    np.testing.assert_allclose(frozen(batch)["forces"], model(batch)["forces"].detach(), rtol=5e-5, atol=5e-5)
    assert list(packages.glob("*.pt2"))
