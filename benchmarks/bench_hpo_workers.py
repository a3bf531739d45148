"""Trials per hour with two HPO workers vs one, real smoke-scale trials (training + inference timing).

Target (issue 6): two workers on a 2-core machine give at least 1.7x the trials per hour of one worker (each
worker uses one torch thread and one BLAS thread, so they do not fight). Both set-ups train the SAME list of
configurations (enqueued from one random draw), so the work is identical; throughput is measured from the trials'
own start/complete times (steady state: process start-up excluded). The two set-ups alternate `--rounds` times
and the median ratio is printed. Two references are measured the same way: `sleep_objective` (a trial sleeps
`--sleep` seconds, no CPU): its ratio is what the study machinery (storage, claim lock, sampler) allows; and
`cpu_objective` (a fixed pure-Python computation, no qallegro code): its ratio is what the machine's free cores
allow right now. The real ratio can only approach the smaller of the two.
Uses a temporary results folder.

    python benchmarks/bench_hpo_workers.py [--trials 12] [--epochs 6] [--rounds 3] [--dataset rmd17-benzene]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import optuna
from qallegro.hpo.study import StudySpec, create_or_resume
from qallegro.models.variants import variant_names
from qallegro.utils import atomic_write_json, environment_record


def sleep_objective(overrides: dict, ctx):
    """Reference objective: sleeps `BENCH_SLEEP_S` seconds, no CPU (selected with --objective, like any other)."""
    import time

    from qallegro.hpo.objective import TrialResult

    time.sleep(float(os.environ.get("BENCH_SLEEP_S", "1")))
    return TrialResult((overrides["r_max"], overrides["learning_rate"]), {})


def cpu_objective(overrides: dict, ctx):
    """Reference objective: a fixed single-threaded computation (selected with --objective)."""
    from qallegro.hpo.objective import TrialResult

    x = 0
    for i in range(int(os.environ.get("BENCH_CPU_ITERS", "3000000"))):
        x += i * i
    return TrialResult((overrides["r_max"], overrides["learning_rate"]), {})


def configs(n: int, variant: str, seed: int = 0) -> list[dict]:
    """`n` raw parameter sets drawn at random from the smoke search space of `variant`."""
    from qallegro.hpo.space import load_space

    space = load_space(variant, "smoke")
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=optuna.samplers.RandomSampler(seed))
    out = []
    for _ in range(n):
        t = study.ask()
        out.append(space.suggest(t))
        study.tell(t, [0.0, 0.0])
    return out


def throughput(root: Path, name: str, workers: int, params: list[dict], args, kind: str = "real") -> float:
    """Trials per hour of `workers` worker processes on a fresh study that holds `params` as enqueued trials."""
    from qallegro.hpo.objective import DEFAULT_OBJECTIVE

    os.environ["QALLEGRO_RESULTS"] = str(root)
    spec = StudySpec(dataset=args.dataset, variant=args.variant, sampler="random", scale="smoke",
                     n_trials=len(params), name=name, settings={"trial_overrides": {"max_epochs": args.epochs}},
                     objective=f"bench_hpo_workers:{kind}_objective" if kind != "real" else DEFAULT_OBJECTIVE)
    op = create_or_resume(spec)
    for p in params:
        op.study.enqueue_trial(p)
    env = {**os.environ, "QALLEGRO_RESULTS": str(root), "QALLEGRO_THREADS": "1", "OMP_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "BENCH_SLEEP_S": str(args.sleep),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "qallegro", "hpo", "worker", "--storage", op.storage.url, "--study", name,
           "--threads", "1", "--no-progress"]
    procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(workers)]
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0:
            log = (op.folder / "hpo.log").read_text()[-3000:] if (op.folder / "hpo.log").exists() else ""
            raise RuntimeError(f"worker failed:\n{out[-3000:]}\n{log}")
    done = [t for t in op.study.get_trials() if t.state.name == "COMPLETE"]
    if len(done) != len(params):
        raise RuntimeError(f"{name}: {len(done)} complete trials, expected {len(params)}")
    start = min(t.datetime_start for t in done)
    end = max(t.datetime_complete for t in done)
    return len(done) / ((end - start).total_seconds() / 3600)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=12)
    ap.add_argument("--epochs", type=int, default=6,
                    help="training epochs per trial (smoke model and data; about 1 s per trial)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--dataset", default="rmd17-benzene")
    ap.add_argument("--variant", default="allegro", choices=variant_names())
    ap.add_argument("--sleep", type=float, default=1.0, help="seconds per trial of the reference objective")
    ap.add_argument("--json", help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    params = configs(args.trials, args.variant)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-hpo-workers-") as tmp:
        for r in range(args.rounds):
            for kind in ("sleep", "cpu", "real"):
                one = throughput(Path(tmp), f"{kind}-one-{r}", 1, params, args, kind)
                two = throughput(Path(tmp), f"{kind}-two-{r}", 2, params, args, kind)
                rows.append({"kind": kind, "one_worker_per_h": one, "two_workers_per_h": two, "ratio": two / one,
                             "load_average": os.getloadavg()[0]})
                print(f"round {r + 1} {kind:>5}: 1 worker {one:8.1f} trials/h   2 workers {two:8.1f} trials/h   "
                      f"ratio {two / one:.2f}   (load average {os.getloadavg()[0]:.1f})", flush=True)
    ratios = {kind: statistics.median(row["ratio"] for row in rows if row["kind"] == kind)
              for kind in ("sleep", "cpu", "real")}
    print(f"median ratio 2 workers / 1 worker: real smoke trials {ratios['real']:.2f} (target >= 1.7); references: "
          f"sleeping trials {ratios['sleep']:.2f} (the machinery's limit), pure-CPU trials {ratios['cpu']:.2f} "
          f"(what the machine's free cores allow now); {os.cpu_count()} CPUs")
    if args.json:
        atomic_write_json(args.json, {"rows": rows, "median_ratio": ratios, "trials": args.trials,
                                      "epochs": args.epochs, "env": environment_record()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
