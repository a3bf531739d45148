"""`qallegro md`: ASE molecular dynamics with a qallegro model (NVE velocity Verlet or Langevin NVT).

Writes to a folder: `md.traj` (ASE trajectory, every `interval` steps), `md.log` (ASE's MD log), `energy.csv`
(time, potential, kinetic and total energy at every step), `energy.png` (the energies and the total-energy drift)
and `summary.json`. Files appear under their names only when complete (written atomically or renamed at the
end); an interrupted run leaves `*.part` files.
"""

from __future__ import annotations

import io
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms, units
from tqdm import tqdm

from qallegro.errors import DataError
from qallegro.utils import atomic_write_bytes, atomic_write_json, atomic_write_text

ENSEMBLES = ("nve", "nvt")


def read_structure(path: str | Path, index: int = 0) -> Atoms:
    """Frame `index` of an ASE-readable structure file (negative: counted from the end). An index outside the
    file is a DataError naming the file, the frame and the number of frames."""
    import ase.io

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no structure file at {path}")
    try:
        try:
            atoms: Atoms | None = ase.io.read(path, index=index)
        except (StopIteration, IndexError):  # past the last frame
            atoms = None
        # ASE gives the first frame for a negative index before it: count the frames then, too
        n = sum(1 for _ in ase.io.iread(path, index=":")) if atoms is None or index < -1 else None
    except Exception as err:  # ASE raises many types for unreadable files
        raise ValueError(f"{path}: not a structure file ASE can read ({type(err).__name__}: {err})") from err
    if atoms is None or (n is not None and not -n <= index < n):
        raise DataError(f"{path}: frame {index} not in file ({n} frames)")
    return atoms


def energy_figure(time_fs: np.ndarray, epot: np.ndarray, ekin: np.ndarray, path: str | Path, n_atoms: int) -> Path:
    """Potential, kinetic and total energy, and the total-energy drift per atom, against time (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    etot = epot + ekin
    fig, (a, b) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True)
    for y, label in ((epot - epot[0], "potential"), (ekin - ekin[0], "kinetic"), (etot - etot[0], "total")):
        a.plot(time_fs, y, label=label)
    a.set_ylabel("E(t) - E(0) (eV)")
    a.legend()
    b.plot(time_fs, 1000 * (etot - etot[0]) / n_atoms, color="k")
    b.set_xlabel("time (fs)")
    b.set_ylabel("total-energy drift (meV/atom)")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def run_md(model: Any, atoms: Atoms, out_dir: str | Path, ensemble: str = "nve", steps: int = 1000,
           dt_fs: float = 1.0, temperature_K: float = 300.0, friction_per_fs: float = 0.01, interval: int = 10,
           seed: int = 0, skin: float = 1.0, progress: bool = True) -> dict[str, Any]:
    """Run `steps` MD steps of `atoms` (a copy) with `model` (a module or a model path) from Maxwell-Boltzmann
    velocities at `temperature_K`; write the files of the module docstring to `out_dir`; return the summary."""
    from ase.io import Trajectory
    from ase.md import MDLogger
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import Stationary, thermalize_momenta
    from ase.md.verlet import VelocityVerlet

    from qallegro.deploy.calculator import Calculator

    if ensemble not in ENSEMBLES:
        raise ValueError(f"ensemble {ensemble!r}: expected one of {', '.join(ENSEMBLES)}")
    if steps < 1 or dt_fs <= 0 or interval < 1:
        raise ValueError(f"need steps >= 1, dt > 0 and interval >= 1; got {steps}, {dt_fs}, {interval}")
    if not temperature_K >= 0:  # also NaN
        raise ValueError(f"temperature {temperature_K} K: must be >= 0")
    if ensemble == "nvt" and not friction_per_fs > 0:
        raise ValueError(f"friction {friction_per_fs} 1/fs: the Langevin thermostat needs a friction > 0")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    atoms = atoms.copy()
    atoms.calc = Calculator(model, skin=skin)
    rng = np.random.default_rng(seed)
    thermalize_momenta(atoms, temperature_K=temperature_K, rng=rng)
    Stationary(atoms)
    if ensemble == "nve":
        dyn = VelocityVerlet(atoms, timestep=dt_fs * units.fs)
    else:
        dyn = Langevin(atoms, timestep=dt_fs * units.fs, temperature_K=temperature_K,
                       friction=friction_per_fs / units.fs, fixcm=False, rng=rng)
    traj_part, log_part = out_dir / "md.traj.part", out_dir / "md.log.part"
    traj = Trajectory(str(traj_part), "w", atoms)
    logger = MDLogger(dyn, atoms, str(log_part), header=True, stress=False, peratom=False, mode="w")
    rows: list[tuple[float, float, float]] = []
    bar = tqdm(total=steps, desc=f"md {ensemble}", unit="step", disable=not progress)

    def record() -> None:
        rows.append((dyn.get_time() / units.fs, atoms.get_potential_energy(), atoms.get_kinetic_energy()))
        if dyn.nsteps:
            bar.update(1)

    dyn.attach(record, interval=1)  # ASE calls observers at step 0 too: steps + 1 rows
    dyn.attach(traj.write, interval=interval)
    dyn.attach(logger, interval=interval)
    t0 = time.perf_counter()
    try:
        dyn.run(steps)
    finally:
        bar.close()
        traj.close()
        logger.close()
    wall = time.perf_counter() - t0
    os.replace(traj_part, out_dir / "md.traj")
    os.replace(log_part, out_dir / "md.log")
    t, epot, ekin = (np.array(c) for c in zip(*rows))
    etot = epot + ekin
    atomic_write_text(out_dir / "energy.csv", "time_fs,epot_eV,ekin_eV,etot_eV\n" + "".join(
        f"{a:.6g},{b:.10f},{c:.10f},{d:.10f}\n" for a, b, c, d in zip(t, epot, ekin, etot)))
    energy_figure(t, epot, ekin, out_dir / "energy.png", len(atoms))
    n = len(atoms)
    summary = {"ensemble": ensemble, "steps": steps, "dt_fs": dt_fs, "n_atoms": n, "temperature_K": temperature_K,
               "mean_temperature_K": float(ekin[1:].mean() / (1.5 * units.kB * n)) if steps else float("nan"),
               "max_abs_drift_per_atom_eV": float(np.abs(etot - etot[0]).max() / n),
               "drift_slope_eV_per_atom_per_ps": float(np.polyfit(t / 1000.0, etot / n, 1)[0]),
               "wall_s": wall, "steps_per_s": steps / wall, "neighbor_list_builds": atoms.calc.neighbors.builds}
    atomic_write_json(out_dir / "summary.json", summary)
    return summary
