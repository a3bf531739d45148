"""Labellers: SevenNet-0 (default, offline, also drives MD and relaxations) and plane-wave PBE with GPAW.

A labeller turns a structure into labels `{"energy": eV, "forces": eV/Å [N,3], "stress": eV/Å^3 [6] (only for
cells without vacuum)}` or raises `LabelError` (failed SCF, crashed worker, non-finite numbers). `settings()` is
stored in the dataset's provenance; a dataset never mixes labellers or settings (e.g. plane-wave cutoffs).

GPAW is not a Python dependency of qallegro: it runs in a subprocess of an interpreter that has it (default
`/usr/bin/python3` with the Debian packages `gpaw gpaw-data`; `$QALLEGRO_GPAW_PYTHON` or `python=` to change),
one frame per process, exchanging extxyz files with `gpaw_worker.py`; with `restart_dir` a killed SCF resumes
from its last saved density.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import subprocess
import tempfile
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from qallegro.errors import CuliError

WORKER = Path(__file__).with_name("gpaw_worker.py")
GPAW_INSTALL = ("sudo apt-get install -y gpaw gpaw-data   (Debian/Ubuntu: GPAW for /usr/bin/python3)\n"
                "  or: pip install gpaw && gpaw install-data <dir>   (then set QALLEGRO_GPAW_PYTHON to that python)")
SEVENN_INSTALL = "pip install sevenn==0.13.0   (SevenNet-0 weights ship inside the wheel)"


class LabelError(CuliError):
    """One structure could not be labelled (the frame is left out and recorded as a failure)."""


class LabelerUnavailable(CuliError):
    """The labeller's software is not installed; the message gives the install command."""


def vacuum_axes(atoms: Atoms, min_gap: float = 5.0) -> list[bool]:
    """Per cell vector: is it non-periodic or crossed by an empty slab wider than `min_gap` Å?"""
    frac = atoms.get_scaled_positions(wrap=True)
    lengths = atoms.cell.lengths()
    out = []
    for axis in range(3):
        s = np.sort(frac[:, axis])
        gaps = np.diff(np.concatenate([s, [s[0] + 1.0]]))
        out.append(bool(not atoms.pbc[axis] or gaps.max() * lengths[axis] > min_gap))
    return out


def has_vacuum(atoms: Atoms, min_gap: float = 5.0) -> bool:
    """True when some direction has vacuum (then a stress label is meaningless and is not stored)."""
    return any(vacuum_axes(atoms, min_gap))


def check_labels(results: dict[str, Any], n_atoms: int) -> dict[str, Any]:
    """Validate shapes and finiteness; raise `LabelError` otherwise."""
    energy = float(results["energy"])
    forces = np.asarray(results["forces"], float)
    if forces.shape != (n_atoms, 3):
        raise LabelError(f"forces have shape {forces.shape}, expected ({n_atoms}, 3)")
    if not (math.isfinite(energy) and np.isfinite(forces).all()):
        raise LabelError("non-finite energy or forces")
    out: dict[str, Any] = {"energy": energy, "forces": forces}
    if results.get("stress") is not None:
        stress = np.asarray(results["stress"], float).reshape(-1)
        if not np.isfinite(stress).all():
            raise LabelError("non-finite stress")
        out["stress"] = stress
    return out


class Labeler:
    """Base class. Subclasses set `name` and implement `settings`, `check`, `label`."""

    name = "base"

    def settings(self) -> dict[str, Any]:
        raise NotImplementedError

    def versions(self) -> dict[str, str | None]:
        return {}

    def check(self) -> None:
        """Raise `LabelerUnavailable` (with the install command) when the software is missing."""

    def label(self, atoms: Atoms) -> dict[str, Any]:
        raise NotImplementedError


class SevenNetLabeler(Labeler):
    """SevenNet-0 (`SevenNetCalculator('7net-0')`, PBE-level, trained on MPtrj; weights inside the wheel)."""

    name = "sevenn"

    def __init__(self, model: str = "7net-0", device: str = "cpu") -> None:
        self.model = model
        self.device = device

    def settings(self) -> dict[str, Any]:
        return {"labeler": self.name, "model": self.model, "level": "SevenNet-0 (PBE surrogate, MPtrj)"}

    def versions(self) -> dict[str, str | None]:
        out: dict[str, str | None] = {}
        for pkg in ("sevenn", "torch", "ase"):
            try:
                out[pkg] = metadata.version(pkg)
            except metadata.PackageNotFoundError:
                out[pkg] = None
        return out

    def check(self) -> None:
        try:
            import sevenn.calculator  # noqa: F401
        except ImportError as err:
            raise LabelerUnavailable(f"SevenNet is not installed ({err}). Install it with:\n  {SEVENN_INSTALL}") \
                from err

    @cached_property
    def calculator(self):
        """The ASE calculator (loaded once); also the MD and relaxation driver."""
        import warnings

        self.check()
        from sevenn.calculator import SevenNetCalculator

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return SevenNetCalculator(self.model, device=self.device)

    def label(self, atoms: Atoms) -> dict[str, Any]:
        work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        work.calc = self.calculator
        try:
            results = {"energy": work.get_potential_energy(), "forces": work.get_forces()}
            if not has_vacuum(work):
                results["stress"] = work.get_stress(voigt=True)
        except Exception as err:
            raise LabelError(f"SevenNet failed: {type(err).__name__}: {err}") from err
        return check_labels(results, len(atoms))


class GPAWLabeler(Labeler):
    """Plane-wave PBE with GPAW: `ecut` eV, Fermi-Dirac `smearing` eV, Monkhorst-Pack k-points from a density.

    k-points: n_i = max(1, ceil(kpt_density / |a_i|)) along each cell vector, 1 along a vacuum direction;
    `kpt_density` = 32 Å follows the paper's "minimum density of 32/Å" (VASP's length rule). `eigenstates`: the
    SCF's eigenstate criterion (eV^2 per valence electron; None: GPAW's default, 4e-8), which large Li slabs with
    15 Å of vacuum reach only slowly or not at all once energy and density have converged. `restart_dir`: each
    structure's SCF density is saved there every `restart_every` iterations (`<structure hash>.gpw`, removed once
    labelled), so that a killed or timed-out SCF resumes from it. `timeout`: seconds per structure (None: none).
    """

    name = "gpaw"

    def __init__(self, ecut: float = 500.0, kpt_density: float = 32.0, smearing: float = 0.1, xc: str = "PBE",
                 python: str | None = None, timeout: float | None = 7200.0, maxiter: int = 300,
                 workdir: str | os.PathLike | None = None, eigenstates: float | None = None,
                 restart_dir: str | os.PathLike | None = None, restart_every: int = 5) -> None:
        self.ecut = float(ecut)
        self.kpt_density = float(kpt_density)
        self.smearing = float(smearing)
        self.xc = xc
        self.maxiter = int(maxiter)
        self.eigenstates = None if eigenstates is None else float(eigenstates)
        self.python = python or os.environ.get("QALLEGRO_GPAW_PYTHON") or "/usr/bin/python3"
        self.timeout = timeout
        self.workdir = Path(workdir) if workdir else None
        self.restart_dir = Path(restart_dir) if restart_dir else None
        self.restart_every = int(restart_every)

    def settings(self) -> dict[str, Any]:
        return {"labeler": self.name, "mode": "pw", "ecut_eV": self.ecut, "xc": self.xc,
                "kpt_density_A": self.kpt_density,
                "kpt_rule": "n_i = max(1, ceil(kpt_density / |a_i|)); 1 along vacuum",
                "occupations": {"name": "fermi-dirac", "width_eV": self.smearing}, "spinpol": False,
                "maxiter": self.maxiter, **({"eigenstates": self.eigenstates} if self.eigenstates else {})}

    def kpts(self, atoms: Atoms) -> tuple[int, int, int]:
        lengths = atoms.cell.lengths()
        return tuple(1 if vac else max(1, math.ceil(self.kpt_density / length - 1e-9))
                     for length, vac in zip(lengths, vacuum_axes(atoms)))  # type: ignore[return-value]

    def restart_file(self, atoms: Atoms) -> Path | None:
        """Where the SCF state of `atoms` (at these settings) is saved while it runs; None without `restart_dir`."""
        if self.restart_dir is None:
            return None
        physics = {k: v for k, v in self.settings().items() if k != "maxiter"}
        key = hashlib.sha256(json.dumps(physics, sort_keys=True).encode())
        for array in (atoms.numbers, atoms.positions, atoms.cell.array, atoms.pbc):
            key.update(np.ascontiguousarray(array).tobytes())
        return self.restart_dir / f"{key.hexdigest()[:16]}.gpw"

    def _run(self, args: list[str], timeout: float | None = 120.0) -> subprocess.CompletedProcess:
        env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
        env.pop("PYTHONPATH", None)
        return subprocess.run([self.python, *args], capture_output=True, text=True, timeout=timeout, env=env,
                              check=False)

    @cached_property
    def _versions(self) -> dict[str, str | None]:
        self.check()
        script = ("import gpaw, ase, json, platform, sys; print(json.dumps({'gpaw': gpaw.__version__, "
                  "'ase': ase.__version__, 'python': platform.python_version(), 'python_executable': sys.executable}))")
        out = self._run(["-c", script])
        return json.loads(out.stdout.strip().splitlines()[-1])

    def versions(self) -> dict[str, str | None]:
        return dict(self._versions)

    def check(self) -> None:
        try:
            out = self._run(["-c", "import gpaw"])
        except (OSError, subprocess.SubprocessError) as err:
            raise LabelerUnavailable(f"cannot run {self.python} ({err}). Install GPAW with:\n  {GPAW_INSTALL}") \
                from err
        if out.returncode != 0:
            raise LabelerUnavailable(f"GPAW is not importable by {self.python}: {out.stderr.strip()[-300:]}\n"
                                     f"Install it with:\n  {GPAW_INSTALL}")

    def label(self, atoms: Atoms) -> dict[str, Any]:
        from ase.io import read, write

        work = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
        params = {**self.settings(), "kpts": list(self.kpts(work)), "stress": not has_vacuum(work)}
        restart = self.restart_file(work)
        if restart is not None:
            restart.parent.mkdir(parents=True, exist_ok=True)
            params.update(restart=str(restart.resolve()), restart_every=self.restart_every)
        if self.workdir:
            self.workdir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="gpaw-", dir=self.workdir) as tmp:
            src, dst, cfg = Path(tmp, "in.extxyz"), Path(tmp, "out.extxyz"), Path(tmp, "settings.json")
            write(src, work, format="extxyz")
            cfg.write_text(json.dumps(params))
            try:
                proc = self._run([str(WORKER), str(src), str(dst), str(cfg)], timeout=self.timeout)
            except subprocess.TimeoutExpired as err:
                raise LabelError(f"GPAW timed out after {self.timeout} s") from err
            if proc.returncode != 0 or not dst.exists():
                tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
                raise LabelError(f"GPAW worker failed (exit {proc.returncode}): {' | '.join(tail)}")
            out = read(dst, format="extxyz")
        if restart is not None:
            restart.unlink(missing_ok=True)
        results = {"energy": out.get_potential_energy(), "forces": out.get_forces()}
        if params["stress"]:
            results["stress"] = out.get_stress(voigt=True)
        return check_labels(results, len(atoms))


LABELERS = {"sevenn": SevenNetLabeler, "gpaw": GPAWLabeler}


def get_labeler(name: str | Labeler, **options: Any) -> Labeler:
    """A labeller by name ('sevenn' or 'gpaw'), with keyword options for its constructor."""
    if isinstance(name, Labeler):
        return name
    if name not in LABELERS:
        raise ValueError(f"unknown labeller {name!r}; choose one of {', '.join(LABELERS)}")
    return LABELERS[name](**options)

