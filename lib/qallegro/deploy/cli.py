"""`qallegro export | evaluate | md | lammps`: from a trained model to numbers and simulations."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from qallegro.scales import SCALES

MODEL_HELP = "a training run directory, a model.pt or an exported .pt2"


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="write a self-contained model file that loads with plain torch",
                              description="Export a model as a torch.export archive (.pt2) with its metadata "
                                          "(species, r_max, units, dtype, variant, versions, provenance).")
    p.add_argument("model", metavar="RUN_OR_MODEL", help="a training run directory or a model.pt")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the .pt2 file to write")
    p.set_defaults(func=_export)

    p = subparsers.add_parser("evaluate", help="energy and force errors of a model on labelled structures",
                              description="Errors per structure, per atom, per species and per Cu-Li category; "
                                          "writes metrics.json and parity.png.")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("data", metavar="DATA", help="a dataset name (its test split), NAME:SPLIT, or an "
                                                "ASE-readable file with energies and forces (e.g. extxyz)")
    p.add_argument("-o", "--out", metavar="DIR", help="output folder (default evaluate-<model>-<data>)")
    p.add_argument("--max-frames", type=int, help="only the first N structures")
    p.add_argument("--scale", choices=SCALES, default=None,
                   help="the generated Cu-Li set to read (default: the one the model was trained on, else quick)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_evaluate)

    p = subparsers.add_parser("md", help="molecular dynamics (NVE or Langevin NVT) with ASE",
                              description="Writes md.traj, md.log, energy.csv, energy.png and summary.json.")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("structure", metavar="STRUCTURE", help="an ASE-readable structure file")
    p.add_argument("--index", type=int, default=0, help="frame of STRUCTURE (default 0)")
    p.add_argument("--ensemble", choices=("nve", "nvt"), default="nve")
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--dt", type=float, default=1.0, help="time step (fs)")
    p.add_argument("--temperature", type=float, default=300.0, help="initial / thermostat temperature (K)")
    p.add_argument("--friction", type=float, default=0.01, help="Langevin friction (1/fs)")
    p.add_argument("--interval", type=int, default=10, help="trajectory and log interval (steps)")
    p.add_argument("--skin", type=float, default=1.0, help="neighbour-list skin (Å; 0 rebuilds every step)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--out", metavar="DIR", help="output folder (default md-<structure>)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_md)

    p = subparsers.add_parser("lammps", help="run a LAMMPS input with a qallegro model (fix external)",
                              description="The input must use units metal and define "
                                          "'fix ID all external pf/callback 1 1' (see README).")
    p.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    p.add_argument("input", metavar="IN.lmp", help="LAMMPS input script")
    p.add_argument("--types", required=True, metavar="EL,EL,...", help="element of each atom type, e.g. Cu,Li")
    p.add_argument("--skin", type=float, default=1.0, help="neighbour-list skin (Å)")
    p.add_argument("--log", default="log.lammps", help="LAMMPS log file (default log.lammps)")
    p.set_defaults(func=_lammps)


def _fail(command: str, err: BaseException) -> int:
    print(f"qallegro {command}: {err}", file=sys.stderr)
    return 2


def _export(args: argparse.Namespace) -> int:
    from qallegro.deploy.export import export_model, load_potential, run_provenance

    if Path(args.output).is_dir():
        return _fail("export", ValueError(f"{args.output}: is a folder; give the .pt2 file to write"))
    if Path(args.output).exists() and Path(args.output).suffix != ".pt2":  # e.g. a run's model.pt or checkpoint
        return _fail("export", ValueError(f"{args.output}: exists and is not a .pt2 export; not overwritten"))
    try:
        model = load_potential(args.model)
        prov = run_provenance(args.model) if Path(args.model).is_dir() else {"model_file": Path(args.model).name}
        path = export_model(model, args.output, prov)
    except (FileNotFoundError, ValueError) as err:
        return _fail("export", err)
    print(f"exported {args.model} -> {path} (species {model.species}, r_max {model.r_max} Å)")
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from qallegro.data import DataError
    from qallegro.deploy.evaluate import evaluate_model

    out = args.out or f"evaluate-{Path(args.model).stem}-{Path(args.data.replace(':', '-')).stem}"
    try:
        record = evaluate_model(args.model, args.data, out, args.max_frames, progress=not args.no_progress,
                                options={"scale": args.scale} if args.scale else None)
    except (DataError, FileNotFoundError, ValueError) as err:
        return _fail("evaluate", err)
    print(json.dumps({k: v for k, v in record.items() if k not in ("per_species", "per_category")}, indent=2))
    print(f"wrote {out}/metrics.json and {out}/parity.png")
    return 0


def _md(args: argparse.Namespace) -> int:
    from qallegro.deploy.md import read_structure, run_md

    out = args.out or f"md-{Path(args.structure).stem}"
    try:
        atoms = read_structure(args.structure, args.index)
        summary = run_md(args.model, atoms, out, args.ensemble, args.steps, args.dt, args.temperature,
                         args.friction, args.interval, args.seed, args.skin, progress=not args.no_progress)
    except (FileNotFoundError, ValueError) as err:
        return _fail("md", err)
    except KeyboardInterrupt:  # an MD run does not resume: say where the steps so far are
        print(f"qallegro md: interrupted; the steps so far are in {Path(out) / 'md.traj.part'} and "
              f"{Path(out) / 'md.log.part'} (the same command starts again from the structure)", file=sys.stderr)
        return 130
    print(json.dumps(summary, indent=2))
    return 0


def _lammps(args: argparse.Namespace) -> int:
    from qallegro.deploy.lammps import run_input

    if not Path(args.log).resolve().parent.is_dir():
        return _fail("lammps", FileNotFoundError(f"--log {args.log}: its folder does not exist"))
    if not Path(args.model).exists():
        return _fail("lammps", FileNotFoundError(f"no model at {args.model}"))
    try:
        lmp = run_input(args.model, args.input, args.types, cmdargs=["-log", args.log], skin=args.skin)
    except (FileNotFoundError, ValueError, ImportError) as err:
        return _fail("lammps", err)
    except KeyboardInterrupt:  # LAMMPS stopped at the step it was in; a LAMMPS run does not resume
        print(f"qallegro lammps: interrupted; LAMMPS's log up to that step is {args.log}", file=sys.stderr)
        return 130
    lmp.close()
    return 0
