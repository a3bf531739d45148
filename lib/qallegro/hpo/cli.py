"""`qallegro hpo ...`: multi-objective hyperparameter optimisation (run, worker, report, final, transfer,
compare, space). See `lib/qallegro/hpo/README.md` for many-machine runs (PostgreSQL, SLURM job arrays)."""

from __future__ import annotations

import argparse
import json

from qallegro.data.datasets import DATASETS
from qallegro.models.variants import variant_names
from qallegro.scales import SCALES

DATASETS_HELP = f"dataset name ({', '.join(DATASETS)})"


def register(subparsers: argparse._SubParsersAction) -> None:
    hpo = subparsers.add_parser("hpo", help="multi-objective hyperparameter optimisation (error vs inference time)",
                                description=__doc__)
    sub = hpo.add_subparsers(dest="hpo_command", metavar="HPO_COMMAND")
    hpo.set_defaults(func=lambda args: (hpo.print_help(), 2)[1])

    def common(p: argparse.ArgumentParser, study_required: bool = False) -> None:
        p.add_argument("--scale", choices=SCALES, default="quick", help="preset scale (default quick)")
        p.add_argument("--study", required=study_required, help="study name")
        p.add_argument("--storage", help="journal file path, postgresql://... or sqlite:///... "
                                         "(default: results/<scale>/hpo/<study>/journal.log)")

    p = sub.add_parser("run", help="create or resume a study and work on it until it has its trials; "
                                   "then write the Pareto front, hypervolume, chosen configs and plots")
    p.add_argument("--dataset", required=True, help=DATASETS_HELP)
    p.add_argument("--variant", choices=variant_names(), default="allegro")
    p.add_argument("--sampler", choices=("nsga2", "tpe", "gp", "random", "samo-cobra"), default="nsga2")
    common(p)
    p.add_argument("--trials", type=int, help="target number of COMPLETE trials (default: the scale preset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--space", metavar="FILE", help="YAML file overriding the search space (see qallegro hpo space)")
    p.add_argument("--warm-start", action="store_true",
                   help="enqueue the paper's best configurations (Tables 1-3) as the first trials")
    p.add_argument("--objective", metavar="MODULE:FUNCTION",
                   help="a custom objective (default: train, then time inference; see qallegro.hpo.objective)")
    p.add_argument("--pruner", choices=("none", "mo-asha"), default="none",
                   help="mo-asha: multi-fidelity over epochs (successive halving by non-dominated rank and "
                        "crowding; the preset's `multifidelity` settings); --trials then counts stopped trials too")
    p.add_argument("--heartbeat-interval", type=int, help="seconds between heartbeats (default: preset)")
    p.add_argument("--grace-period", type=int, help="seconds without heartbeat before a trial is failed")
    _worker_args(p)
    p.add_argument("--no-plots", action="store_true")
    p.set_defaults(func=_run)

    p = sub.add_parser("worker", help="join an existing study (e.g. on another machine) and run its trials")
    p.add_argument("--storage", required=True, help="the study's storage (postgresql://... or a journal path)")
    p.add_argument("--study", required=True)
    _worker_args(p)
    p.set_defaults(func=_worker)

    p = sub.add_parser("report", help="write the results of a study (trials.csv, pareto.csv, plots, ...)")
    common(p, study_required=True)
    p.set_defaults(func=_report)

    p = sub.add_parser("final", help="train a study's chosen configuration at the scale's full budget")
    common(p, study_required=True)
    p.add_argument("--choice", choices=("lowest_error", "knee", "both"), default="lowest_error")
    p.add_argument("--threads", type=int, help="torch threads (default: all available)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_final)

    p = sub.add_parser("transfer", help="Allegro+QDI with the QDI parameters of a Cu-Li QDI study and the "
                                        "Allegro parameters of another dataset's Allegro study; trains it")
    p.add_argument("--scale", choices=SCALES, default="quick")
    p.add_argument("--qdi-study", required=True, help="the Cu-Li Allegro+QDI study")
    p.add_argument("--allegro-study", required=True, help="the target dataset's Allegro study")
    p.add_argument("--qdi-storage", help="storage of the QDI study (default: its journal file)")
    p.add_argument("--allegro-storage", help="storage of the Allegro study (default: its journal file)")
    p.add_argument("--choice", choices=("lowest_error", "knee"), default="lowest_error")
    p.add_argument("--threads", type=int)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_transfer)

    p = sub.add_parser("compare", help="hypervolume vs trials of several samplers and seeds (equal budget)")
    p.add_argument("--scale", choices=SCALES, default="quick")
    p.add_argument("--dataset", help=DATASETS_HELP + " (default: preset)")
    p.add_argument("--variant", choices=variant_names())
    p.add_argument("--samplers", nargs="+")
    p.add_argument("--seeds", nargs="+", type=int)
    p.add_argument("--trials", type=int)
    p.add_argument("--objective", metavar="MODULE:FUNCTION")
    p.add_argument("--threads", type=int, default=1)
    p.set_defaults(func=_compare)

    from qallegro.hpo.artifacts_cli import register_show

    register_show(sub)

    p = sub.add_parser("space", help="print the search space of a variant (after preset and file)")
    p.add_argument("--variant", choices=variant_names(), default="allegro")
    p.add_argument("--scale", choices=SCALES)
    p.add_argument("--space", metavar="FILE")
    p.add_argument("--dataset", help="apply the scale's per-dataset ranges (space_by_dataset in presets/hpo.yaml)")
    p.set_defaults(func=_space)


def _worker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=1, help="torch threads of this worker (default 1)")
    p.add_argument("--max-trials", type=int, help="stop this worker after so many trials")
    p.add_argument("--no-progress", action="store_true")


def _sigterm_as_interrupt() -> None:
    """SIGTERM (a job scheduler's time limit) stops like Ctrl-C: the running trial is retried on the next run."""
    from qallegro.utils import sigterm_as_interrupt

    sigterm_as_interrupt()


def _check_counts(args: argparse.Namespace) -> None:
    """Threads and trial counts are positive integers, `--max-trials` may be 0 (create the study only);
    checked before any study is opened or created."""
    from qallegro.errors import HpoError

    for flag, low in (("threads", 1), ("trials", 1), ("max_trials", 0)):
        value = getattr(args, flag, None)
        if value is not None and value < low:
            raise HpoError(f"--{flag.replace('_', '-')} must be an integer >= {low}, got {value}")


def _open(scale: str, study: str, storage: str | None):
    from qallegro.hpo.study import check_study_name, load, study_dir

    return load(storage or str(study_dir(scale, check_study_name(study)) / "journal.log"), study)


def _print_paths(paths: dict) -> None:
    for key, path in paths.items():
        print(f"{key}: {path}")


def _run(args: argparse.Namespace) -> int:
    from qallegro.hpo.multifidelity import MF_OBJECTIVE
    from qallegro.hpo.objective import DEFAULT_OBJECTIVE
    from qallegro.hpo.report import write_results
    from qallegro.hpo.study import StudySpec, create_or_resume, run_worker

    _check_counts(args)
    heartbeat = {k: v for k, v in (("interval", args.heartbeat_interval), ("grace_period", args.grace_period))
                 if v is not None}
    spec = StudySpec(dataset=args.dataset, variant=args.variant, sampler=args.sampler, scale=args.scale,
                     seed=args.seed, n_trials=args.trials, name=args.study, storage=args.storage,
                     space_file=args.space, objective=args.objective or (
                         MF_OBJECTIVE if args.pruner == "mo-asha" else DEFAULT_OBJECTIVE),
                     warm_start=args.warm_start, settings={"heartbeat": heartbeat} if heartbeat else {})
    op = create_or_resume(spec)
    _sigterm_as_interrupt()
    summary = run_worker(op, max_trials=args.max_trials, threads=args.threads, progress=not args.no_progress)
    print(f"study {op.name}: this worker completed {summary.completed}, failed {summary.failed}")
    _print_paths(write_results(op, plots=not args.no_plots))
    return 0


def _worker(args: argparse.Namespace) -> int:
    from qallegro.hpo.study import load, run_worker

    _check_counts(args)
    op = load(args.storage, args.study)
    _sigterm_as_interrupt()
    summary = run_worker(op, max_trials=args.max_trials, threads=args.threads, progress=not args.no_progress)
    print(f"study {op.name}: this worker completed {summary.completed}, failed {summary.failed}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from qallegro.hpo.report import write_results

    op = _open(args.scale, args.study, args.storage)
    _print_paths(write_results(op))
    return 0


def _final(args: argparse.Namespace) -> int:
    from qallegro.hpo.final import final_train

    _check_counts(args)
    op = _open(args.scale, args.study, args.storage)
    choices = ("lowest_error", "knee") if args.choice == "both" else (args.choice,)
    for choice in choices:
        out = final_train(op, choice, threads=args.threads, progress=not args.no_progress)
        print(json.dumps({k: out[k] for k in ("choice", "trial", "run_dir", "val_f_mae", "val_e_mae",
                                              "inference_total_s")}, indent=2, default=str))
    return 0


def _transfer(args: argparse.Namespace) -> int:
    from qallegro.hpo.final import transfer_train

    _check_counts(args)
    qdi = _open(args.scale, args.qdi_study, args.qdi_storage)
    allegro = _open(args.scale, args.allegro_study, args.allegro_storage)
    out = transfer_train(qdi, allegro, args.choice, threads=args.threads, progress=not args.no_progress)
    print(json.dumps({k: out[k] for k in ("transfer", "run_dir", "val_f_mae", "val_e_mae", "inference_total_s")},
                     indent=2, default=str))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from qallegro.hpo.experiment import compare_samplers
    from qallegro.hpo.objective import DEFAULT_OBJECTIVE

    _check_counts(args)
    _sigterm_as_interrupt()
    df = compare_samplers(args.scale, dataset=args.dataset, variant=args.variant, samplers=args.samplers,
                          seeds=args.seeds, n_trials=args.trials, objective=args.objective or DEFAULT_OBJECTIVE,
                          threads=args.threads)
    last = df.sort_values("n_complete").groupby(["sampler", "seed"]).tail(1)
    print(last.groupby("sampler")["hypervolume"].agg(["mean", "std", "count"]).to_string())
    return 0


def _space(args: argparse.Namespace) -> int:
    from qallegro.hpo.space import load_space

    space = load_space(args.variant, args.scale, args.space, args.dataset)
    for row in space.describe():
        rng = f"fixed {row['fixed']}" if row["fixed"] is not None else f"[{row['low']}, {row['high']}]"
        kind = row["kind"] + (", log" if row["log"] else "")
        print(f"{row['name']:<20} {row['key']:<36} {kind:<10} {rng}")
    return 0
