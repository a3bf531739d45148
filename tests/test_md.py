"""NVE molecular dynamics through qallegro.Calculator on a potential trained on benzene at smoke scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from qallegro import Calculator
from qallegro.calculator import Calculator as ModuleCalculator
from qallegro.data import load_dataset
from qallegro.errors import ModelError
from qallegro.training import nve_drift, resolve_config, train
from qallegro.training.trainer import load_run


@pytest.fixture(scope="module")
def benzene_model(tmp_path_factory: pytest.TempPathFactory):
    cfg = resolve_config("rmd17-benzene", scale="smoke", overrides={"n_test": 5})
    res = train(cfg, run_dir=tmp_path_factory.mktemp("benzene") / "run", progress=False)
    return load_run(res["run_dir"])


class ScaledForces(Calculator):
    """A deliberately non-conservative calculator: forces scaled by 1.2 (the negative control)."""

    def calculate(self, *args, **kwargs) -> None:
        super().calculate(*args, **kwargs)
        self.results["forces"] = 1.2 * self.results["forces"]


def test_nve_total_energy_is_conserved(benzene_model) -> None:
    atoms = load_dataset("rmd17-benzene", "test", max_frames=1)[0]
    out = nve_drift(benzene_model, atoms, steps=80, dt_fs=0.5, temperature_K=300.0, seed=1)
    assert len(out["etot"]) == 81 and out["n_atoms"] == 12
    assert out["ekin_std_eV"] > 0.02                       # the molecule really moves
    assert out["max_abs_drift_per_atom_eV"] < 1e-4         # measured ~1e-5 eV/atom at 0.5 fs
    assert out["etot_std_eV"] < 0.01 * out["ekin_std_eV"]
    np.testing.assert_allclose(out["etot"], out["epot"] + out["ekin"])
    # the same check fails for forces that are not -dE/dR
    bad = nve_drift(None, atoms, steps=80, dt_fs=0.5, temperature_K=300.0, seed=1,
                    calculator=ScaledForces(benzene_model))
    assert bad["max_abs_drift_per_atom_eV"] > 1e-3 and bad["etot_std_eV"] > 0.05 * bad["ekin_std_eV"]


def test_drift_shrinks_with_the_time_step(benzene_model) -> None:
    """Velocity Verlet's energy error scales as dt^2: halving dt cuts the fluctuation about 4x."""
    atoms = load_dataset("rmd17-benzene", "test", max_frames=1)[0]
    coarse = nve_drift(benzene_model, atoms, steps=40, dt_fs=1.0, seed=2)
    fine = nve_drift(benzene_model, atoms, steps=80, dt_fs=0.5, seed=2)
    assert 2.0 < coarse["etot_std_eV"] / fine["etot_std_eV"] < 8.0


def test_calculator_from_saved_model_file(benzene_model, tmp_path: Path) -> None:
    from qallegro.models import save_model

    path = save_model(benzene_model, tmp_path / "m.pt")
    atoms = load_dataset("rmd17-benzene", "test", max_frames=1)[0]
    a, b = atoms.copy(), atoms.copy()
    a.calc, b.calc = Calculator(benzene_model), Calculator(path)
    np.testing.assert_allclose(a.get_forces(), b.get_forces(), atol=1e-6)
    with pytest.raises(ModelError, match=r"takes a potential module.*qallegro\.Calculator loads model files"):
        ModuleCalculator(path)  # the floor below deploy reads no files
