"""Samplers on standard bi-objective test problems: hypervolume after 50 and 100 evaluations, 10 seeds.

Issue 15: the SAMO-COBRA paper's claim is that its method wins at small budgets; this measures whether ours does.
Problems ZDT1, ZDT2, ZDT3 and DTLZ2 (2 objectives) in 6 variables (`qallegro.hpo.problems`), reference point
(1.1, 1.1) on the raw objectives (all four fronts lie in [0, 1]^2); every sampler with the options below, one
thread. Every (problem, sampler, seed) run is saved as it finishes (`--out`), so a killed run resumes; the table
(median and interquartile range over seeds, as a fraction of the true front's hypervolume) is printed and written
as markdown beside the JSON.

    python benchmarks/bench_hpo_problems.py                       # about 30-40 CPU-minutes (GP is most of it)
    python benchmarks/bench_hpo_problems.py --seeds 2 --evals 20 --out /tmp/p.json   # a smoke run
    # two processes: the GP sampler apart, then merged
    python benchmarks/bench_hpo_problems.py --samplers gp --out /tmp/gp.json
    python benchmarks/bench_hpo_problems.py --merge /tmp/gp.json --table-only
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import optuna
from qallegro.hpo.pareto import hypervolume_2d
from qallegro.hpo.problems import PROBLEMS, optimal_hv, run_problem
from qallegro.report.search import problems_cells, problems_summary
from qallegro.utils import atomic_write_text, environment_record, set_threads

REF = (1.1, 1.1)
# label -> (sampler, options): initial designs of about 10 points at d = 6; samo-cobra: the original sequential
# algorithm (batch 1) and the paper's parallel one (batch 4 here)
SETTINGS = {
    "random": ("random", {}),
    "nsga2": ("nsga2", {"population_size": 10}),
    "tpe": ("tpe", {"n_startup_trials": 10}),
    "gp": ("gp", {"n_startup_trials": 10}),
    "samo-cobra": ("samo-cobra", {"batch_size": 1}),
    "samo-cobra-b4": ("samo-cobra", {"batch_size": 4}),
}
# in a folder of its own: the speed page reads every benchmarks/results/*.json
OUT = Path(__file__).resolve().parent / "results" / "hpo-problems" / "hpo-problems.json"


def save(path: Path, dim: int, runs: dict) -> None:
    """The runs as compact JSON (objective values to 8 significant digits), atomically."""
    record = {"dim": dim, "reference": REF, "settings": SETTINGS, "runs": runs, "env": environment_record()}
    atomic_write_text(path, json.dumps(record, separators=(",", ":"), sort_keys=True) + "\n")


def table(runs: dict, checkpoints: list[int]) -> str:
    """Markdown: per problem and checkpoint, median [q25, q75] of hypervolume / optimal hypervolume per sampler
    (`qallegro.report.search`, which the book's search page also reads); the best median marked *."""
    cells = problems_cells(problems_summary({"reference": REF, "runs": runs}, checkpoints))
    labels = [k for k in SETTINGS if k in cells.columns]
    lines = ["| problem | evals | " + " | ".join(labels) + " |", "|---|---|" + "---|" * len(labels)]
    for row in cells.to_dict("records"):
        lines.append(f"| {row['problem']} | {row['evaluations']} | "
                     + " | ".join(str(row.get(k)) if isinstance(row.get(k), str) else "-" for k in labels) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", nargs="+", default=list(PROBLEMS), choices=PROBLEMS)
    ap.add_argument("--samplers", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--evals", type=int, default=100)
    ap.add_argument("--dim", type=int, default=6)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--merge", type=Path, nargs="+", default=[],
                    help="add the runs of these files (e.g. samplers run in another process) to --out first")
    ap.add_argument("--table-only", action="store_true", help="run nothing: tabulate the saved (and merged) runs")
    args = ap.parse_args(argv)
    set_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    saved = json.loads(args.out.read_text()) if args.out.exists() else {}
    runs = saved.get("runs", {}) if saved.get("dim") == args.dim else {}
    for path in args.merge:
        other = json.loads(path.read_text())
        if other.get("dim") != args.dim:
            raise SystemExit(f"{path}: runs in {other.get('dim')} variables, not {args.dim}")
        runs.update(other["runs"])
    for problem in args.problems:
        for label in args.samplers:
            for seed in range(args.seeds):
                key = f"{problem}/{label}/{seed}"
                if args.table_only or (key in runs and len(runs[key]["values"]) >= args.evals):
                    continue
                sampler, options = SETTINGS[label]
                start = time.process_time()
                values = run_problem(problem, sampler, seed, args.evals, args.dim, options)
                runs[key] = {"problem": problem, "label": label, "seed": seed,
                             "values": [[float(f"{v:.8g}") for v in row] for row in values],
                             "cpu_s": time.process_time() - start}
                save(args.out, args.dim, runs)
                print(f"{key}: {hypervolume_2d(values, REF) / optimal_hv(problem, REF):.3f} of the optimum, "
                      f"{runs[key]['cpu_s']:.1f} CPU s", flush=True)
    if args.merge:
        save(args.out, args.dim, runs)
    checkpoints = sorted({min(50, args.evals), args.evals})
    md = (f"Hypervolume / true front's, reference (1.1, 1.1), d = {args.dim}, median [q25, q75] over seeds\n\n"
          + table({k: v for k, v in runs.items() if v["problem"] in args.problems
                   and v["label"] in args.samplers}, checkpoints))
    atomic_write_text(args.out.with_suffix(".md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
