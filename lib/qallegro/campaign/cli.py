"""`qallegro ablate` (the head ablation of one dataset) and `qallegro campaign` (workers and status)."""

from __future__ import annotations

import argparse
import fnmatch
import json
import time
from pathlib import Path

from qallegro.scales import SCALES


def register(subparsers: argparse._SubParsersAction) -> None:
    a = subparsers.add_parser(
        "ablate", help="head ablation of one dataset: the optimiser sweep, then every head with paired seeds",
        description="Runs the learning-rate / batch-size sweep and the head ablation of DATASET at SCALE "
                    "(presets/campaign.yaml) in this process, resuming what earlier or parallel workers did, "
                    "then writes and prints the verdict table of the paper's claims on that dataset.")
    a.add_argument("--dataset", required=True)
    a.add_argument("--scale", choices=SCALES, default="quick")
    a.add_argument("--status", action="store_true", help="only show what is done, running and left")
    a.set_defaults(func=_ablate)
    c = subparsers.add_parser(
        "campaign", help="the evidence campaign's units of work: run a worker, or show the status",
        description="Every unit (dataset generation, sweep point, ablation run) of the campaign at SCALE. Any number "
                    "of workers may run at once, on one machine or on nodes sharing the results folder (a SLURM "
                    "array of `qallegro campaign run`); a killed unit resumes from its last epoch.")
    c.add_argument("action", choices=("run", "status", "verdicts", "pilot", "estimate"))
    c.add_argument("--scale", choices=SCALES, default="overnight")
    c.add_argument("--only", metavar="GLOB", help="only units whose id matches, e.g. 'ablation/culi/*'")
    c.add_argument("--max-units", type=int, help="stop after this many units")
    c.add_argument("--threads", type=int, default=1, help="torch threads of this worker (default 1)")
    c.add_argument("--stop-after", type=float, metavar="MINUTES",
                   help="start no new unit after this many minutes (the running one finishes)")
    c.add_argument("--reference", default="overnight",
                   help="estimate: the scale whose records give the unit costs (default overnight)")
    c.add_argument("--workers", type=int, default=2, help="estimate: one-thread workers (default 2)")
    c.add_argument("--culi-folder", metavar="DIR",
                   help="estimate: a Cu-Li generation folder whose timings give the generation's cost (default "
                        "<results>/REFERENCE/culi; any scale's: the costs are per MD atom-step and per structure)")
    c.add_argument("--probe", action="store_true",
                   help="estimate: measure the epoch cost of datasets the reference has not run yet, relative to "
                        "benzene (a minute of training), instead of reusing the last estimate's")
    c.set_defaults(func=_campaign)


def _units(scale: str, datasets: list[str] | None, only: str | None):
    from qallegro.campaign.plan import plan

    units = plan(scale, datasets)
    return [u for u in units if only is None or fnmatch.fnmatch(u.id, only)]


def _print_status(units, queue) -> None:
    from qallegro.campaign.units import status

    state = status(units, queue)
    print(f"{len(units)} units at {queue.root}: " + ", ".join(f"{len(v)} {k}" for k, v in state.items()))
    for key in ("running", "ready", "waiting"):
        for uid in state[key]:
            print(f"  {key:8s} {uid}")


def _verdicts(scale: str, dataset: str | None) -> list[dict]:
    from qallegro.campaign.verdicts import write_verdicts

    rows, path = write_verdicts(scale, dataset)
    for r in rows:
        ours = (f"{r['percent']:+.1f}% [{r['percent_low']:+.1f}, {r['percent_high']:+.1f}]" if "percent" in r
                else "-")
        paper = f"{r['paper_percent']:+.1f}%" if r["paper_percent"] is not None else "-"
        print(f"{r['claim']:28s} {r['split']:5s} n={r['n']}  paper {paper:>7s}  ours {ours:28s} {r['verdict']}")
    print(f"written to {path}")
    if dataset is None:
        from qallegro.report.claims import read_verdicts, verdicts_path

        for key, rec in read_verdicts(verdicts_path(scale)).items():
            print(f"claim {key:28s} {rec['verdict']}")
        print(f"written to {verdicts_path(scale)}")
    return rows


def _ablate(args: argparse.Namespace) -> int:
    from qallegro.campaign.plan import RUNNERS, campaign_root
    from qallegro.campaign.units import UnitQueue, work
    from qallegro.utils import set_threads

    units = _units(args.scale, [args.dataset], None)
    queue = UnitQueue(campaign_root(args.scale))
    if args.status:
        _print_status(units, queue)
        return 0
    set_threads(None)
    work(units, queue, RUNNERS)
    _verdicts(args.scale, args.dataset)
    return 0


def _campaign(args: argparse.Namespace) -> int:
    from qallegro.campaign.plan import RUNNERS, campaign_root
    from qallegro.campaign.units import UnitQueue, work
    from qallegro.utils import set_threads

    units = _units(args.scale, None, args.only)
    queue = UnitQueue(campaign_root(args.scale))
    if args.action == "status":
        _print_status(units, queue)
        return 0
    if args.action == "verdicts":
        _verdicts(args.scale, None)
        return 0
    if args.action == "pilot":
        from qallegro.campaign.ablation import error_key, settings
        from qallegro.campaign.claims import pilot
        from qallegro.campaign.plan import ablation_records
        from qallegro.utils import atomic_write_json

        out = {name: pilot(ablation_records(args.scale, name), name, error_key(name))
               for name in settings(args.scale)["ablation"]["datasets"]}
        atomic_write_json(campaign_root(args.scale) / "pilot.json", out)
        print(json.dumps(out, indent=1))
        return 0
    if args.action == "estimate":
        return _estimate(args)
    set_threads(args.threads)
    stop_at = time.time() + 60 * args.stop_after if args.stop_after is not None else None
    n = work(units, queue, RUNNERS, max_units=args.max_units, log=lambda m: print(m, flush=True), stop_at=stop_at)
    print(json.dumps({"units_run": n}))
    return 0


def _estimate(args: argparse.Namespace) -> int:
    """`qallegro campaign estimate`: the parts' worker minutes and the wall time on the workers; the result goes to
    `<results>/<scale>/campaign/estimate.json` (its relative costs are reused unless --probe)."""
    from qallegro.campaign.estimate import BASE, estimate, measured_costs, probe_relative
    from qallegro.campaign.plan import campaign_root, plan
    from qallegro.paths import culi_dir
    from qallegro.utils import atomic_write_json, set_threads

    set_threads(args.threads)
    path = campaign_root(args.scale) / "estimate.json"
    relative = json.loads(path.read_text()).get("relative", {}) if path.is_file() and not args.probe else {}
    culi = Path(args.culi_folder) if args.culi_folder else culi_dir(args.reference)
    if args.probe:
        costs = measured_costs(args.reference, culi_folder=culi)  # checks the Cu-Li folder before the probe
        missing = sorted({u.spec["dataset"] for u in plan(args.scale) if "dataset" in u.spec} - costs.measured())
        relative = probe_relative(missing, args.scale) if missing else {}
    out = estimate(args.scale, args.reference, args.workers, relative, culi)
    atomic_write_json(path, out)
    print(f"campaign at {args.scale}: unit costs from the {args.reference} records"
          + (f"; epoch cost relative to {BASE}: {out['relative']}" if out["relative"] else ""))
    print(f"{'part':32s} {'units':>5s} {'worker min':>10s}")
    for part, row in out["parts"].items():
        print(f"{part:32s} {row['units']:5d} {row['worker_s'] / 60:10.1f}")
    print(f"{'total':32s} {len(out['units']):5d} {out['worker_s'] / 60:10.1f}")
    print(f"wall time on {args.workers} one-thread worker(s): {out['makespan_s'] / 60:.0f} min (written to {path})")
    if args.reference == args.scale:
        from qallegro.campaign.measured import projected

        p = projected(args.scale, out["units"], args.workers)
        print(f"with the {p['done']} finished units at their recorded time ({p['done_worker_s'] / 60:.0f} worker min) "
              f"and the {p['units'] - p['done']} others estimated ({p['left_worker_s'] / 60:.0f} worker min): "
              f"{p['makespan_s'] / 60:.0f} min on {args.workers} worker(s), before the pages")
    return 0
