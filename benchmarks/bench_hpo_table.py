"""Learning-curve table benchmark (issue 15): build a table of configurations trained once with every epoch
recorded, then compare samplers and MO-ASHA on it as hypervolume against epochs consumed.

    # build (resumable; about 1.2 CPU-hours for 100 benzene configurations x 27 epochs at the quick size)
    python benchmarks/bench_hpo_table.py build --dataset rmd17-benzene --variant allegro --configs 100 \
        --epochs 27 --out benchmarks/results/lctable-benzene
    # compare (minutes): 20 seeds, budget 30 full trainings' epochs
    python benchmarks/bench_hpo_table.py compare --table benchmarks/results/lctable-benzene/table.csv --seeds 20

    # bounds (seconds): is the target reachable on this table at all? (after compare)
    python benchmarks/bench_hpo_table.py bounds --table benchmarks/results/lctable-benzene/table.csv

`compare` prints the median [q25, q75] hypervolume per method at a grid of epoch budgets, the final median
hypervolume of the best full-fidelity sampler and the epochs MO-ASHA needs to reach it (target: at most a third;
`mo-asha` counts only configurations trained to the last epoch, `mo-asha-reached` every configuration at the
last epoch it reached, i.e. the models a study has),
and writes `<table folder>/compare.csv`, `compare-summary.csv`, `compare.json` and `compare.png`. `bounds` writes
`bounds.json`: the fewest configurations an oracle must train to the end to reach that sampler's final median (a
lower bound for any search), and synchronous successive halving (MO-ASHA's schedule in hindsight) over a grid of
rungs and eta (1 or 3 first epochs; eta 3, 5, 9), each with its epochs and final hypervolume.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from qallegro.hpo.lctable import (
    FULL_FIDELITY,
    Table,
    build_table,
    compare_on_table,
    compute_to_reach,
    front_hypervolume,
    oracle_epochs,
    plot_table_comparison,
    successive_halving,
    summarise,
)
from qallegro.utils import atomic_write_json, atomic_write_text, environment_record, set_threads


def sampler_options(budget_trials: int) -> dict[str, dict]:
    """Initial designs (random population, start-up trials, Halton design) of a quarter of the budget (>= 2)."""
    k = max(2, budget_trials // 4)
    return {"nsga2": {"population_size": k}, "tpe": {"n_startup_trials": k}, "gp": {"n_startup_trials": k},
            "samo-cobra": {"batch_size": 1, "n_init": k}}


def compare(args: argparse.Namespace) -> int:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    table = Table.read(args.table)
    budget = args.budget_trials * table.epochs
    options = sampler_options(args.budget_trials)
    df = compare_on_table(table, methods=args.methods, seeds=args.seeds, budget=budget,
                          sampler_options=options, min_epochs=args.min_epochs, eta=args.eta)
    grid = np.unique(np.linspace(table.epochs, budget, 30).astype(int))
    summary = summarise(df, grid)
    folder = Path(args.table).parent
    atomic_write_text(folder / "compare.csv", df.to_csv(index=False))
    atomic_write_text(folder / "compare-summary.csv", summary.to_csv(index=False))
    final = summary[summary["epochs"] == grid[-1]].set_index("method")["median"]
    full = [m for m in args.methods if m in FULL_FIDELITY]
    result: dict = {"table": str(args.table), "configs": len(table.params), "epochs": table.epochs,
                    "budget_epochs": int(budget), "seeds": args.seeds, "options": options, "eta": args.eta,
                    "min_epochs": args.min_epochs, "final_median": final.to_dict(),
                    "front_hypervolume": front_hypervolume(table), "env": environment_record()}
    print(f"{len(table.params)} configurations x {table.epochs} epochs; budget {budget} epochs; {args.seeds} seeds")
    print(summary[summary["epochs"].isin([*grid[:: max(1, len(grid) // 6)].tolist(), grid[-1]])]
          .to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if full:
        best = max(full, key=lambda m: final[m])
        result["best_full_fidelity"] = best
        print(f"best full-fidelity sampler: {best} (median final hypervolume {final[best]:.3f})")
        for asha in [m for m in args.methods if m.startswith("mo-asha")]:
            need = compute_to_reach(summary, asha, float(final[best]))
            result[f"{asha}_epochs_to_reach"] = need
            print(f"{asha} reaches it " + ("never within the budget" if need is None else
                                           f"after {need} epochs = {need / budget:.2f} of the budget (target <= 0.33)"))
    atomic_write_json(folder / "compare.json", result)
    from qallegro.hpo.report import save_figure

    save_figure(plot_table_comparison(summary, title=f"{len(table.params)} configurations, {args.seeds} seeds",
                                      front=result["front_hypervolume"]), folder / "compare.png")
    return 0


def bounds(args: argparse.Namespace) -> int:
    import json

    table = Table.read(args.table)
    folder = Path(args.table).parent
    record = json.loads((folder / "compare.json").read_text())
    best = record["best_full_fidelity"]
    target = float(record["final_median"][best])
    result = {"table": str(args.table), "target_method": best, "target": target,
              "budget_epochs": record["budget_epochs"], "oracle": oracle_epochs(table, target),
              "successive_halving": [successive_halving(table, m, eta) for m in (1, 3) for eta in (3, 5, 9)]}
    atomic_write_json(folder / "bounds.json", result)
    o = result["oracle"]
    print(f"target: {best}'s final median hypervolume {target:.4f}; an oracle needs {o['configs']} configurations "
          f"({o['epochs']} epochs)")
    for s in result["successive_halving"]:
        print(f"successive halving rungs {s['rungs']} eta {s['eta']}: {s['epochs']} epochs, hypervolume "
              f"{s['hypervolume']:.4f} ({s['trained']} trained to the end)")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="train the table's configurations (resumable)")
    b.add_argument("--dataset", default="rmd17-benzene")
    b.add_argument("--variant", default="allegro")
    b.add_argument("--scale", default="quick", help="the scale whose per-trial settings and space are used")
    b.add_argument("--configs", type=int, default=100)
    b.add_argument("--epochs", type=int, default=27)
    b.add_argument("--limit", type=int, help="train only the first LIMIT configurations now")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--out", type=Path, required=True, help="folder of table.csv and spec.json (and compare's files)")
    b.add_argument("--runs", type=Path,
                   help="folder of the training runs "
                        "(default results/<scale>/lctable/<dataset>-<variant>-s<seed>-e<epochs>)")
    c = sub.add_parser("compare", help="replay samplers and MO-ASHA on a table")
    c.add_argument("--table", type=Path, required=True)
    c.add_argument("--methods", nargs="+",
                   default=["random", "nsga2", "tpe", "samo-cobra", "mo-asha", "mo-asha-reached"],
                   help="samplers, and mo-asha (hypervolume of the configurations trained to the last epoch) or "
                        "mo-asha-reached (of every configuration at the last epoch it reached)")
    c.add_argument("--seeds", type=int, default=20)
    c.add_argument("--budget-trials", type=int, default=30, help="budget in full trainings' epochs")
    c.add_argument("--min-epochs", type=int, default=1)
    c.add_argument("--eta", type=int, default=3)
    d = sub.add_parser("bounds", help="an oracle's and synchronous successive halving's epochs to reach the target")
    d.add_argument("--table", type=Path, required=True)
    args = ap.parse_args(argv)
    set_threads(1)
    if args.cmd == "build":
        df = build_table(args.dataset, args.variant, args.out, n_configs=args.configs, epochs=args.epochs,
                         scale=args.scale, seed=args.seed, limit=args.limit, runs=args.runs)
        print(f"{df['config'].nunique()} configurations in {args.out / 'table.csv'}")
        return 0
    return bounds(args) if args.cmd == "bounds" else compare(args)


if __name__ == "__main__":
    sys.exit(main())
