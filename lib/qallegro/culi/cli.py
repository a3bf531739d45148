"""`qallegro culi ...`: generate the Cu-Li dataset, show its statistics, measure the labeller against DFT."""

from __future__ import annotations

import argparse
import json
import sys

from qallegro.scales import SCALES


def register(subparsers: argparse._SubParsersAction) -> None:
    culi = subparsers.add_parser("culi", help="the Cu-Li dataset (generation, statistics, labeller error)")
    sub = culi.add_subparsers(dest="culi_command", metavar="ACTION")

    g = sub.add_parser("generate", help="generate (or resume) the dataset by the paper's recipe")
    g.add_argument("--scale", choices=SCALES, default="quick")
    g.add_argument("--labeler", choices=("sevenn", "gpaw"), default="sevenn",
                   help="sevenn: SevenNet-0 labels (offline); gpaw: plane-wave PBE single points (slow)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--out", default=None, help="dataset folder (default <results>/<scale>/culi[-gpaw])")
    g.add_argument("--retry-failed", action="store_true", help="re-run structures that recorded failures")
    g.add_argument("--threads", type=int, default=1,
                   help="torch threads of the labeller and MD (default 1; the bytes of a dataset depend on it)")
    g.add_argument("--gpaw-ecut", type=float, default=500.0, help="GPAW plane-wave cutoff (eV)")
    g.add_argument("--gpaw-kpt-density", type=float, default=32.0, help="k-points: n_i = ceil(density / |a_i|)")
    g.add_argument("--gpaw-python", default=None, help="interpreter with GPAW (default /usr/bin/python3)")
    g.add_argument("--no-progress", action="store_true")
    g.add_argument("--plan-only", action="store_true",
                   help="print the structures and frames per category (and the MD steps), write nothing")
    g.set_defaults(func=_generate)

    s = sub.add_parser("stats", help="frames per category and label ranges of a generated dataset")
    s.add_argument("--scale", choices=SCALES, default="quick")
    s.add_argument("--out", default=None, help="dataset folder (default <results>/<scale>/culi)")
    s.set_defaults(func=_stats)

    v = sub.add_parser("validate", help="the labeller's force and mixing-energy error vs the GPAW references")
    v.add_argument("--labeler", choices=("sevenn",), default="sevenn")
    v.add_argument("--json", default=None, help="write the full result (per cell and summary) to this file")
    v.set_defaults(func=_validate)

    d = sub.add_parser("gpaw-subset", help="label a subset of a generated dataset with GPAW and compare")
    d.add_argument("--scale", choices=SCALES, default="quick")
    d.add_argument("--out", default=None, help="dataset folder (default <results>/<scale>/culi)")
    d.add_argument("-n", type=int, default=16, help="number of frames, taken in turn from each category")
    d.add_argument("--max-electrons", type=int, default=380,
                   help="largest frame in GPAW valence electrons (Cu 11, Li 1; GPAW's cost grows with them)")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--split", default=None, help="only frames of these splits (val,test: held out from training)")
    d.add_argument("--work", default=None,
                   help="folder of the GPAW-labelled frames, one file each as it lands (default <dataset>/gpaw-subset)")
    d.add_argument("--table", default=None, help="CSV file for the comparison (a JSON provenance goes beside it)")
    d.add_argument("--no-new", action="store_true",
                   help="label nothing: the table from the selected frames already labelled (a partial run)")
    d.add_argument("--gpaw-ecut", type=float, default=500.0)
    d.add_argument("--gpaw-kpt-density", type=float, default=32.0)
    d.add_argument("--gpaw-python", default=None)
    d.add_argument("--gpaw-eigenstates", type=float, default=None,
                   help="SCF eigenstate criterion (eV^2 per electron; default GPAW's 4e-8)")
    d.add_argument("--gpaw-timeout", type=float, default=None,
                   help="seconds per frame (default: no limit; a killed SCF resumes from <work>/restart/)")
    d.set_defaults(func=_gpaw_subset)
    culi.set_defaults(func=lambda args: (culi.print_help(), 2)[1])


def _gpaw_options(args: argparse.Namespace) -> dict:
    return {"ecut": args.gpaw_ecut, "kpt_density": args.gpaw_kpt_density, "python": args.gpaw_python}


def _generate(args: argparse.Namespace) -> int:
    from qallegro.culi.generate import generate
    from qallegro.utils import set_threads

    set_threads(1)
    if args.threads < 1:
        print(f"qallegro culi generate: --threads {args.threads}: must be at least 1", file=sys.stderr)
        return 2
    if args.plan_only:
        return _print_plan(args.scale, args.seed)
    options = _gpaw_options(args) if args.labeler == "gpaw" else {}
    prov = generate(args.scale, args.labeler, seed=args.seed, out=args.out, retry_failed=args.retry_failed,
                    progress=not args.no_progress, labeler_options=options, threads=args.threads)
    print(f"{prov['n_frames']} frames in {prov['folder']}/culi.extxyz ({prov['labelling_seconds']:.0f} s of "
          "structure building, relaxation, MD and labelling)")
    print("frames per category: " + ", ".join(f"{k} {v}" for k, v in prov["counts"].items()))
    if prov["n_failures"]:
        print(f"{prov['n_failures']} failure(s), kept out of the dataset (see provenance.json):", file=sys.stderr)
        for f in prov["failures"]:
            print(f"  {f}", file=sys.stderr)
    return 0


def _print_plan(scale: str, seed: int) -> int:
    from qallegro.culi.generate import CATEGORIES, make_plan, schedule
    from qallegro.scales import settings

    config = settings("culi", scale)
    tasks = make_plan(config, seed)
    print(f"{'category':<18} {'structures':>10} {'frames':>7} {'atoms min-max':>14} {'frames x atoms':>15}")
    for cat in CATEGORIES:
        sel = [t for t in tasks if t.category == cat]
        atoms = [t.n_atoms for t in sel] or [0]
        print(f"{cat:<18} {len(sel):>10} {sum(t.n_frames for t in sel):>7} {min(atoms):>6}-{max(atoms):<7} "
              f"{sum(t.n_frames * t.n_atoms for t in sel):>15}")
    md = schedule(config)
    print(f"total frames {sum(t.n_frames for t in tasks)}; each melt-quench runs {md.n_steps} steps of "
          f"{md.timestep_fs} fs; relaxations at most {config['relax']['max_steps']} steps")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from qallegro.culi.stats import category_counts, frame_table
    from qallegro.data.culi import DATASET_FILE, dataset_folder, read_frames

    folder = dataset_folder(args.out, args.scale)
    frames = read_frames(folder / DATASET_FILE)
    print(category_counts(frames).to_string())
    table = frame_table(frames)
    print(table.groupby("category")[["n_atoms", "energy_per_atom", "force_max"]].describe().T.to_string())
    return 0


def _validate(args: argparse.Namespace) -> int:
    from qallegro.culi.validation import labeller_error
    from qallegro.utils import set_threads

    set_threads(1)
    result = labeller_error(args.labeler)
    if args.json:
        from qallegro.utils import atomic_write_json, environment_record

        atomic_write_json(args.json, {**result, "environment": environment_record(),
                                      "command": "qallegro culi validate --json " + args.json})
    print(json.dumps(result["summary"], indent=2))
    return 0


def _gpaw_subset(args: argparse.Namespace) -> int:
    from qallegro.culi.labelers import GPAWLabeler
    from qallegro.culi.validation import gpaw_subset
    from qallegro.data.culi import dataset_folder
    from qallegro.utils import set_threads

    set_threads(1)
    folder = dataset_folder(args.out, args.scale)
    labeler = GPAWLabeler(**_gpaw_options(args), eigenstates=args.gpaw_eigenstates, timeout=args.gpaw_timeout)
    result = gpaw_subset(folder, n=args.n, max_electrons=args.max_electrons, seed=args.seed, work=args.work,
                         table=args.table, split=args.split, labeler=labeler, label_missing=not args.no_new)
    print(json.dumps(result["summary"], indent=2))
    return 0
