"""Accuracy benchmark: rMD17 aspirin, 950/50 split of train_01, at most 30 minutes of training on this CPU,
test force MAE on all 1000 frames of test_01 (issue 3 target: <= 60 meV/Å).

The race partner is the maintainers' Allegro (nequip 0.19.1 + nequip-allegro 0.8.3) measured on this machine
with the same protocol in 25 minutes (../shared/notes/nequip-anchor.md): test F-MAE 67.3 meV/Å (eager, 2 threads)
and 54.6 meV/Å (train-time compile, 1 thread). Besides the test numbers this script prints the equal-time
comparison on the validation curve: our validation F-MAE at 1500 s against theirs (67.4 / 54.8 meV/Å at 1501 s).

    .venv/bin/python benchmarks/bench_accuracy.py                 # 30 min budget, 1 thread, fresh run
    .venv/bin/python benchmarks/bench_accuracy.py --resume        # continue an interrupted run
    .venv/bin/python benchmarks/bench_accuracy.py --minutes 5 --set learning_rate=0.004   # a quick probe

Run it only on an otherwise idle machine: the budget is wall-clock time.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "accuracy_aspirin.yaml"
ANCHOR = {  # ../shared/notes/nequip-anchor.md, sections 3.2 and 3.3 (meV/Å, 25-minute runs)
    "nequip eager 2 threads": {"test_f_mae": 67.25, "test_etot_mae": 37.96, "val_f_mae_at_1500s": 67.4},
    "nequip compiled 1 thread": {"test_f_mae": 54.64, "test_etot_mae": 29.02, "val_f_mae_at_1500s": 54.8},
}
TARGET_MEV = 60.0
ANCHOR_WALL_S = 1500.0


def val_at(run_dir: Path, wall_s: float) -> float | None:
    """Validation F-MAE (eV/Å) of the last epoch that ended by `wall_s`."""
    with open(run_dir / "epochs.csv") as fh:
        rows = [r for r in csv.DictReader(fh) if float(r["wall_s"]) <= wall_s]
    return float(rows[-1]["val_f_mae"]) if rows else None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default=str(CONFIG), help="training config (default: %(default)s)")
    p.add_argument("--minutes", type=float, default=30.0, help="training wall-clock budget (default 30)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--run-dir", help="default: results/bench/accuracy/aspirin-<config hash>")
    p.add_argument("--resume", action="store_true")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)

    from qallegro.paths import results_root
    from qallegro.training.config import identity, resolve_config
    from qallegro.training.trainer import train
    from qallegro.utils import config_hash

    cfg = resolve_config(config_file=args.config,
                         overrides=[*args.overrides, f"max_wall_s={args.minutes * 60.0}", f"threads={args.threads}"])
    run_dir = Path(args.run_dir) if args.run_dir else (
        results_root() / "bench" / "accuracy" / f"aspirin-{config_hash(identity(cfg))}")
    command = " ".join(["python", "benchmarks/bench_accuracy.py", *(argv if argv is not None else sys.argv[1:])])
    res = train(cfg, run_dir=run_dir, resume=args.resume, progress=not args.no_progress)

    test = res["test"]
    f_mev, e_mev = 1000 * test["f_mae"], 1000 * test["etot_mae"]
    val_eq = val_at(run_dir, ANCHOR_WALL_S)
    report = {
        "command": command, "run_dir": str(run_dir), "budget_s": args.minutes * 60.0, "threads": args.threads,
        "epochs": res["epochs"], "steps": res["steps"], "wall_s": res["wall_s"], "best_epoch": res["best_epoch"],
        "n_parameters": res["n_parameters"], "test_n_structures": test["n_structures"],
        "test_f_mae_meV_per_A": f_mev, "test_f_rmse_meV_per_A": 1000 * test["f_rmse"],
        "test_etot_mae_meV": e_mev, "test_e_mae_meV_per_atom": 1000 * test["e_mae"],
        "val_f_mae_at_1500s_meV_per_A": None if val_eq is None else 1000 * val_eq,
        "target_meV_per_A": TARGET_MEV, "meets_target": f_mev <= TARGET_MEV,
        "ratios_vs_anchor": {name: {"test_f_mae": f_mev / a["test_f_mae"], "test_etot_mae": e_mev / a["test_etot_mae"],
                                    "val_f_mae_at_1500s": None if val_eq is None
                                    else 1000 * val_eq / a["val_f_mae_at_1500s"]}
                             for name, a in ANCHOR.items()},
    }
    from qallegro.utils import atomic_write_json

    atomic_write_json(run_dir / "bench_accuracy.json", report)
    print(f"rMD17 aspirin, {test['n_structures']} test frames, {res['epochs']} epochs / {res['steps']} steps in "
          f"{res['wall_s']:.0f} s ({args.threads} thread(s)), {res['n_parameters']} parameters")
    print(f"test force MAE  {f_mev:6.1f} meV/Å   (target <= {TARGET_MEV:.0f}: "
          f"{'met' if report['meets_target'] else 'NOT met'})")
    print(f"test energy MAE {e_mev:6.1f} meV ({1000 * test['e_mae']:.2f} meV/atom)")
    if val_eq is not None:
        print(f"val force MAE at {ANCHOR_WALL_S:.0f} s: {1000 * val_eq:.1f} meV/Å")
    for name, r in report["ratios_vs_anchor"].items():
        eq = "" if r["val_f_mae_at_1500s"] is None else f", val F-MAE at 1500 s {r['val_f_mae_at_1500s']:.2f}"
        print(f"ours / {name}: test F-MAE {r['test_f_mae']:.2f}, test E-MAE {r['test_etot_mae']:.2f}{eq}")
    print(f"command: {command}")
    print(json.dumps({k: report[k] for k in ("test_f_mae_meV_per_A", "test_etot_mae_meV", "meets_target")}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
