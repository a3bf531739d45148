"""Sampler overhead per proposal with 200 finished trials (the Allegro+MLP search space, 9 parameters).

Targets (issue 6): under 1 s per proposal for `tpe` and `nsga2`, under 5 s for `samo-cobra`. Each sampler gets an
in-memory study holding the same 200 complete trials (random parameters, a synthetic bi-objective), then makes
`--proposals` proposals (ask + suggest every parameter + tell); `samo-cobra` makes a whole generation (its batch,
12) so its batch computation is included. Printed: mean and worst seconds per proposal, the ratio to the target
and to the random sampler measured in the same run (robust to machine load). One torch thread.

    python benchmarks/bench_hpo_overhead.py [--finished 200] [--proposals 12] [--samplers tpe nsga2 samo-cobra gp]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
import optuna
from qallegro.hpo.samplers import make_sampler
from qallegro.hpo.space import default_space
from qallegro.utils import atomic_write_json, environment_record, set_threads

TARGETS = {"tpe": 1.0, "nsga2": 1.0, "samo-cobra": 5.0}


def _values(v: dict) -> tuple[float, float]:
    err = (v["r_max"] - 7.0) ** 2 / 10 + 0.05 * v["num_layers"] + abs(np.log(v["learning_rate"] / 2e-3))
    cost = v["edge_mlp_width"] * v["num_layers"] * (1 + v["final_mlp_h1"] / 256) / v["batch_size"]
    return float(err), float(cost)


def history(n: int, seed: int = 0) -> list[optuna.trial.FrozenTrial]:
    """`n` complete trials with random parameters of the MLP space and synthetic objective values."""
    space = default_space("mlp")
    dists = space.distributions()
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=optuna.samplers.RandomSampler(seed))
    out = []
    for _ in range(n):
        t = study.ask()
        raw = space.suggest(t)
        out.append(optuna.trial.create_trial(params=raw, distributions=dists, values=_values(space.values(raw))))
        study.tell(t, _values(space.values(raw)))
    return out


def bench(name: str, finished: list, proposals: int) -> list[float]:
    space = default_space("mlp")
    sampler = make_sampler(name, 0, space.distributions(), {"batch_size": 12} if name == "samo-cobra" else None)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.add_trials(finished)
    times = []
    for _ in range(proposals):
        start = time.perf_counter()
        trial = study.ask()
        raw = space.suggest(trial)
        times.append(time.perf_counter() - start)
        study.tell(trial, _values(space.values(raw)))
    return times


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--finished", type=int, default=200)
    ap.add_argument("--proposals", type=int, default=12)
    ap.add_argument("--samplers", nargs="+", default=["random", "tpe", "nsga2", "samo-cobra", "gp"])
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    set_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    finished = history(args.finished)
    names = ["random"] + [s for s in args.samplers if s != "random"]
    results = {}
    for name in names:
        t = bench(name, finished, args.proposals)
        results[name] = {"mean_s": float(np.mean(t)), "max_s": float(np.max(t)), "times_s": t}
    ref = results["random"]["mean_s"]
    print(f"sampler overhead per proposal, {args.finished} finished trials, {args.proposals} proposals, 1 thread")
    print(f"{'sampler':<12}{'mean s':>10}{'worst s':>10}{'target s':>10}{'worst/target':>14}{'mean/random':>13}")
    ok = True
    for name, r in results.items():
        target = TARGETS.get(name)
        ratio = f"{r['max_s'] / target:.3f}" if target else "-"
        print(f"{name:<12}{r['mean_s']:>10.4f}{r['max_s']:>10.4f}{target or '-':>10}{ratio:>14}"
              f"{r['mean_s'] / ref:>13.1f}")
        if target and r["max_s"] >= target:
            ok = False
    print("all targets met" if ok else "TARGET MISSED")
    if args.json:
        atomic_write_json(args.json, {"finished": args.finished, "results": results, "targets": TARGETS,
                                      "env": environment_record()})
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
