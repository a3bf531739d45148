"""The CUDA paths: the same numbers on a GPU as on the CPU, training and timing with `device: cuda`, the compiled
model on a GPU. Skipped where no GPU is visible (this project's CI has none); run on a GPU machine with
`pytest tests/test_cuda.py` (benchmarks/README.md has the last run).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk
from qallegro.calculator import Calculator
from qallegro.data.graph import atoms_to_graph, collate, to
from qallegro.models import build_model
from qallegro.models.compile import compile_model
from qallegro.timing import inference_time
from qallegro.training import load_run, resolve_config, train
from test_models_physics import BASE, SPECIES, VARIANTS
from test_models_physics import random_molecule as molecule

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible")


def crystal() -> Atoms:
    atoms = bulk("C", "diamond", a=3.6, cubic=True)
    atoms.numbers[::3] = 8
    atoms.rattle(0.05, seed=1)
    return atoms


def outputs(model: torch.nn.Module, graph: dict, stress: bool) -> dict[str, np.ndarray]:
    out = model(graph, compute_forces=True, compute_stress=stress)
    return {k: v.detach().cpu().numpy() for k, v in out.items()}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_gpu_equals_cpu_in_float64(variant: str) -> None:
    cpu = build_model({**BASE, **VARIANTS[variant]}, SPECIES).eval()
    gpu = build_model({**BASE, **VARIANTS[variant]}, SPECIES).eval().cuda()
    batch = collate([atoms_to_graph(molecule(9, s), 4.0) for s in range(3)] + [atoms_to_graph(crystal(), 4.0)])
    ref = outputs(cpu, batch, stress=True)
    got = outputs(gpu, to(batch, "cuda"), stress=True)
    assert set(got) == set(ref)
    for key in ref:
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-9, atol=1e-10, err_msg=key)


def test_gpu_rotation_equivariance() -> None:
    model = build_model(BASE, SPECIES).eval().cuda()
    atoms = molecule(10, 4)
    q, r = np.linalg.qr(np.random.default_rng(7).normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    turned = atoms.copy()
    turned.positions = atoms.positions @ q.T
    a = outputs(model, to(atoms_to_graph(atoms, 4.0), "cuda"), stress=False)
    b = outputs(model, to(atoms_to_graph(turned, 4.0), "cuda"), stress=False)
    np.testing.assert_allclose(b["energy"], a["energy"], rtol=1e-10)
    np.testing.assert_allclose(b["forces"], a["forces"] @ q.T, atol=1e-9)


def test_calculator_on_gpu_matches_cpu() -> None:
    model = build_model(BASE, SPECIES).eval()
    atoms = crystal()
    ref = atoms.copy()
    ref.calc = Calculator(model, device="cpu")
    atoms.calc = Calculator(build_model(BASE, SPECIES), device="cuda")
    assert atoms.get_potential_energy() == pytest.approx(ref.get_potential_energy(), rel=1e-10)
    np.testing.assert_allclose(atoms.get_forces(), ref.get_forces(), atol=1e-9)
    np.testing.assert_allclose(atoms.get_stress(), ref.get_stress(), atol=1e-9)


def test_training_on_gpu_then_loading_on_cpu(tmp_path) -> None:
    cfg = resolve_config("rmd17-aspirin", variant="qdi", scale="smoke",
                         overrides={"device": "cuda", "max_epochs": 3, "learning_rate": 0.01})
    res = train(cfg, run_dir=tmp_path / "run", progress=False)
    assert res["epochs"] == 3 and np.isfinite(res["test"]["f_mae"])
    assert "on cuda" in (tmp_path / "run" / "train.log").read_text()
    model = load_run(tmp_path / "run")   # checkpoints hold CPU tensors: a GPU run loads anywhere
    assert next(model.parameters()).device.type == "cpu"
    frames = [atoms_to_graph(molecule(21, s), model.r_max) for s in range(2)]
    gpu = load_run(tmp_path / "run").cuda()
    a, b = outputs(model, collate(frames), False), outputs(gpu, to(collate(frames), "cuda"), False)
    np.testing.assert_allclose(b["forces"], a["forces"], rtol=1e-4, atol=1e-5)   # float32 model


def test_inference_time_on_gpu() -> None:
    model = build_model(BASE, SPECIES).cuda()
    res = inference_time(model, [molecule(9, s) for s in range(6)], batch_size=3, repeats=2)
    assert res["n_structures"] == 6 and res["total_s"] > 0 and len(res["times_s"]) == 2
    assert res["hardware"]["gpu"]


OLD_TORCH = tuple(int(v) for v in torch.__version__.split("+")[0].split(".")[:2]) < (2, 13)


@pytest.mark.parametrize("training", [True, False])
def test_compiled_model_on_gpu_matches_eager(training: bool) -> None:
    if not training and OLD_TORCH:   # a segfault would end the whole test run
        pytest.skip("torch < 2.13 (the project's pin): its AOTInductor package loader crashed on CUDA "
                    "(benchmarks/README.md)")
    model = build_model({**BASE, "num_layers": 2}, SPECIES).cuda()
    if not training:
        model.eval()
    compiled = compile_model(model, training=training)
    batch = to(collate([atoms_to_graph(molecule(9, s), 4.0) for s in range(3)]), "cuda")
    ref = outputs(model, batch, stress=False)
    got = outputs(compiled, batch, stress=False)
    assert not compiled.failed, compiled.failed   # compiled, not the eager fallback
    for key in ("energy", "forces"):
        np.testing.assert_allclose(got[key], ref[key], rtol=1e-8, atol=1e-9, err_msg=key)
