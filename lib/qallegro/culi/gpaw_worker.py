#!/usr/bin/env python3
"""Label one structure with GPAW (plane-wave PBE). Runs under the interpreter that has GPAW, not qallegro's.

Usage: python3 gpaw_worker.py IN.extxyz OUT.extxyz SETTINGS.json

SETTINGS holds `ecut_eV`, `xc`, `kpts` (3 ints), `occupations` ({"name": "fermi-dirac", "width_eV": w}),
`maxiter`, `stress` (bool) and optionally `eigenstates` (the SCF's eigenstate criterion; else GPAW's default)
and `restart` (a .gpw file): the SCF's density is saved there atomically every `restart_every` iterations
(default 5), and a run that finds it for the same structure continues from it, so a killed SCF of hours resumes
near where it was saved (the mixer's history is not saved: a few iterations are repeated).
OUT is written only after a converged SCF (atomically: temp file, then rename) and
holds energy (eV), forces (eV/Å) and, when asked, stress (eV/Å^3). Exit status 2 = SCF not converged, 1 = other
error; the message is on stderr. GPAW's text log goes to OUT with suffix `.gpaw.txt`.
"""

import json
import os
import sys


def _same_structure(a, b):
    """`qallegro.culi.validation.same_structure` with the cell and periodicity too; this interpreter has no qallegro."""
    import numpy as np

    return (len(a) == len(b) and (a.numbers == b.numbers).all() and np.allclose(a.positions, b.positions, atol=1e-8)
            and np.allclose(a.cell.array, b.cell.array, atol=1e-8) and (a.pbc == b.pbc).all())


def _save(calc, path):
    """Write the calculator's state to `path` atomically (GPAW writes in place)."""
    tmp = path + ".tmp.gpw"
    calc.write(tmp)  # density, no wave functions: MBs, not GBs
    os.replace(tmp, path)


def main(argv):
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 1
    src, dst, cfg = argv[1:]
    from ase.calculators.singlepoint import SinglePointCalculator
    from ase.io import read, write
    from gpaw import GPAW, PW, FermiDirac, KohnShamConvergenceError

    with open(cfg) as fh:
        settings = json.load(fh)
    atoms = read(src, format="extxyz")
    restart = settings.get("restart")
    calc = None
    if restart and os.path.exists(restart):
        try:
            calc = GPAW(restart, txt=dst + ".gpaw.txt", maxiter=settings["maxiter"])
            if not _same_structure(calc.get_atoms(), atoms):
                calc = None
        except Exception as err:  # a damaged or foreign file: start afresh
            print(f"restart file {restart} not used: {err}", file=sys.stderr)
            calc = None
    if calc is None:
        calc = GPAW(mode=PW(settings["ecut_eV"]), xc=settings["xc"], kpts={"size": settings["kpts"], "gamma": True},
                    occupations=FermiDirac(settings["occupations"]["width_eV"]), maxiter=settings["maxiter"],
                    spinpol=False, symmetry={"point_group": False}, txt=dst + ".gpaw.txt",
                    **({"convergence": {"eigenstates": settings["eigenstates"]}} if settings.get("eigenstates")
                       else {}))
    else:
        atoms = calc.get_atoms()
    if restart:
        calc.attach(_save, int(settings.get("restart_every", 5)), calc, restart)
    atoms.calc = calc
    try:
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        stress = atoms.get_stress(voigt=True) if settings.get("stress") else None
    except KohnShamConvergenceError as err:
        print(f"SCF not converged: {err}", file=sys.stderr)
        return 2
    out = atoms.copy()
    results = {"energy": energy, "forces": forces}
    if stress is not None:
        results["stress"] = stress
    out.calc = SinglePointCalculator(out, **results)
    tmp = dst + ".tmp"
    write(tmp, out, format="extxyz")
    os.replace(tmp, dst)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
