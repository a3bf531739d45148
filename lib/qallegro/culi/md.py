"""Melt-quench MD of an interface and short relaxations, recording labelled frames.

Melt-quench (paper: NVT Nosé-Hoover, heat to 600 K, cool 600 K -> 10 K at 250 K/ps, 2 fs steps). We use ASE's
Langevin thermostat (NVT; public `set_temperature` for the ramp, reproducible with a seeded generator): Maxwell-
Boltzmann velocities at `t_high`, `heat_ps` at `t_high`, then a linear ramp to `t_low` at `cooling_rate` K/ps.
Frames are taken at chosen steps; every `checkpoint_every` steps the state (positions, momenta, thermostat random
generator, frames so far) is written atomically, so a killed run resumes mid-trajectory and gives the same frames.
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator

from qallegro.utils import atomic_write_bytes


@dataclass(frozen=True)
class MeltQuench:
    """Temperature schedule: `heat_ps` at `t_high` (K), then down to `t_low` at `cooling_rate` (K/ps)."""

    t_high: float = 600.0
    t_low: float = 10.0
    cooling_rate: float = 250.0
    timestep_fs: float = 2.0
    heat_ps: float = 0.5
    friction_per_fs: float = 0.01

    @property
    def heat_steps(self) -> int:
        return round(self.heat_ps * 1000.0 / self.timestep_fs)

    @property
    def cool_steps(self) -> int:
        return math.ceil((self.t_high - self.t_low) / self.cooling_rate * 1000.0 / self.timestep_fs - 1e-9)

    @property
    def n_steps(self) -> int:
        return self.heat_steps + self.cool_steps

    def temperature(self, step: int) -> float:
        """Target temperature (K) during step `step` (1-based; step 0 is the initial state)."""
        if step <= self.heat_steps:
            return self.t_high
        t = self.t_high - self.cooling_rate * (step - self.heat_steps) * self.timestep_fs / 1000.0
        return max(self.t_low, t)


def sample_steps(n_steps: int, n_frames: int) -> list[int]:
    """`n_frames` steps spread evenly over 0..n_steps, always including the last (all when there are fewer)."""
    if n_frames >= n_steps + 1:
        return list(range(n_steps + 1))
    return sorted({round(x) for x in np.linspace(n_steps, 0, n_frames)})


class Frame(dict):
    """A recorded frame: positions, energy, forces, step, temperature (target) and kinetic temperature."""


def _save_checkpoint(path: Path, atoms: Atoms, step: int, rng: np.random.Generator, frames: list[Frame]) -> None:
    buf = io.BytesIO()
    stacked = {k: np.array([f[k] for f in frames]) for k in ("positions", "energy", "forces", "step",
                                                              "temperature", "kinetic_temperature")} \
        if frames else {}
    np.savez(buf, positions_now=atoms.positions, momenta_now=atoms.get_momenta(), step_now=step,
             rng_state=json.dumps(rng.bit_generator.state), n_frames=len(frames),
             **{f"frames_{k}": v for k, v in stacked.items()})
    atomic_write_bytes(path, buf.getvalue())


def _load_checkpoint(path: Path, n_atoms: int) -> tuple[dict[str, Any], list[Frame]]:
    with np.load(path, allow_pickle=False) as z:
        data = {k: z[k] for k in z.files}
    if data["positions_now"].shape != (n_atoms, 3):
        raise ValueError(f"{path}: MD checkpoint is for {data['positions_now'].shape[0]} atoms, not {n_atoms}")
    frames = [Frame(positions=data["frames_positions"][i], energy=float(data["frames_energy"][i]),
                    forces=data["frames_forces"][i], step=int(data["frames_step"][i]),
                    temperature=float(data["frames_temperature"][i]),
                    kinetic_temperature=float(data["frames_kinetic_temperature"][i]))
              for i in range(int(data["n_frames"]))]
    return data, frames


def melt_quench(atoms: Atoms, calc: Calculator, schedule: MeltQuench, steps: list[int], seed: int,
                checkpoint: Path | None = None, checkpoint_every: int = 50,
                on_step: Callable[[int], None] | None = None) -> list[Frame]:
    """Run the schedule on a copy of `atoms`; return frames at `steps` (labelled by `calc`).

    Resumes from `checkpoint` when it exists (and deletes nothing: the caller removes it once frames are saved).
    `on_step(step)` is called after every step (progress bars).
    """
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

    work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    work.calc = calc
    wanted = set(steps)
    rng = np.random.default_rng(seed)
    frames: list[Frame] = []
    start = 0
    if checkpoint is not None and checkpoint.exists():
        data, frames = _load_checkpoint(checkpoint, len(work))
        work.positions = data["positions_now"]
        work.set_momenta(data["momenta_now"])
        start = int(data["step_now"])
        rng.bit_generator.state = json.loads(str(data["rng_state"]))
    else:
        MaxwellBoltzmannDistribution(work, temperature_K=schedule.t_high, rng=rng)
        Stationary(work)

    def record(step: int) -> None:
        frames.append(Frame(positions=work.positions.copy(), energy=float(work.get_potential_energy()),
                            forces=work.get_forces().copy(), step=step, temperature=schedule.temperature(step),
                            kinetic_temperature=float(work.get_temperature())))

    if start == 0 and 0 in wanted and not frames:
        record(0)
    dyn = Langevin(work, schedule.timestep_fs * units.fs, temperature_K=schedule.t_high,
                   friction=schedule.friction_per_fs / units.fs, fixcm=False, rng=rng)
    for step in range(start + 1, max(steps) + 1):
        dyn.set_temperature(temperature_K=schedule.temperature(step))
        dyn.step()
        if step in wanted:
            record(step)
        if checkpoint is not None and step % checkpoint_every == 0:
            _save_checkpoint(checkpoint, work, step, rng, frames)
        if on_step is not None:
            on_step(step)
    return frames


def relax(atoms: Atoms, calc: Calculator, fmax: float, max_steps: int) -> list[Frame]:
    """BFGS relaxation (constraints respected); every step's frame with unconstrained forces."""
    from ase.optimize import BFGS

    work = atoms.copy()
    work.calc = calc
    frames: list[Frame] = []

    def record() -> None:
        frames.append(Frame(positions=work.positions.copy(), energy=float(work.get_potential_energy()),
                            forces=work.get_forces(apply_constraint=False).copy(), step=len(frames),
                            temperature=0.0))

    opt = BFGS(work, logfile=None)
    opt.attach(record, interval=1)
    opt.run(fmax=fmax, steps=max_steps)
    return frames
