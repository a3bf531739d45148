"""NVE molecular dynamics through `qallegro.Calculator`: the total-energy drift check of a trained potential."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from ase import Atoms, units
from ase.calculators.calculator import Calculator as ASECalculator
from ase.md.velocitydistribution import Stationary, ZeroRotation, thermalize_momenta
from ase.md.verlet import VelocityVerlet


def nve_drift(model: torch.nn.Module | None, atoms: Atoms, steps: int = 200, dt_fs: float = 0.5,
              temperature_K: float = 300.0, seed: int = 0, calculator: ASECalculator | None = None
              ) -> dict[str, Any]:
    """Run velocity-Verlet NVE dynamics from `atoms` (a copy) with velocities drawn at `temperature_K`.

    Uses `qallegro.Calculator(model)` unless `calculator` is given. Returns the trajectory of potential,
    kinetic and total energy (eV) at every step (`time_fs`, `epot`, `ekin`, `etot`), and the drift measures
    `max_abs_drift_eV` (max |E_tot(t) - E_tot(0)|), `max_abs_drift_per_atom_eV`, `drift_slope_eV_per_ps`
    (least-squares slope of E_tot), `etot_std_eV` and `ekin_std_eV` (a conservative integrator keeps
    `etot_std` far below `ekin_std`), and `temperature_K` (mean instantaneous temperature).
    """
    if steps < 1 or dt_fs <= 0:
        raise ValueError(f"need steps >= 1 and dt_fs > 0, got {steps}, {dt_fs}")
    atoms = atoms.copy()
    if calculator is None:
        from qallegro.calculator import Calculator

        calculator = Calculator(model)
    atoms.calc = calculator
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=np.random.default_rng(seed))
    Stationary(atoms)
    if len(atoms) > 2:
        ZeroRotation(atoms)
    epot, ekin = [], []

    def record() -> None:
        epot.append(atoms.get_potential_energy())
        ekin.append(atoms.get_kinetic_energy())

    dyn = VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    dyn.attach(record, interval=1)  # ASE calls observers at step 0 too: steps + 1 records
    dyn.run(steps)
    epot_a, ekin_a = np.array(epot), np.array(ekin)
    etot = epot_a + ekin_a
    time_fs = dt_fs * np.arange(len(etot))
    drift = np.abs(etot - etot[0])
    slope = float(np.polyfit(time_fs / 1000.0, etot, 1)[0]) if len(etot) > 1 else 0.0
    return {
        "time_fs": time_fs, "epot": epot_a, "ekin": ekin_a, "etot": etot,
        "max_abs_drift_eV": float(drift.max()), "max_abs_drift_per_atom_eV": float(drift.max() / len(atoms)),
        "drift_slope_eV_per_ps": slope, "etot_std_eV": float(etot.std()), "ekin_std_eV": float(ekin_a.std()),
        "temperature_K": float(np.mean(ekin_a) / (1.5 * units.kB * len(atoms))),
        "steps": steps, "dt_fs": dt_fs, "n_atoms": len(atoms),
    }
