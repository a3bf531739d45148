"""Run the speed benchmarks one after another and print their summary lines (`make bench`).

Each benchmark runs in its own process (1 torch thread unless it says otherwise) and prints ratios measured in that
one run against its reference; full outputs go to `_build/bench/<name>.log`. The 30-minute accuracy benchmark and
the race against the maintainers' Allegro are separate (`bench_accuracy.py`, `make bench-race`).

    python benchmarks/run_all.py [--only NAME ...] [--list]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
BENCHMARKS = {
    "qdi_layer": ["bench_qdi_layer.py"],
    "train_step_variants": ["bench_train_step_variants.py"],
    "model_speed": ["bench_model_speed.py"],
    "hpo_overhead": ["bench_hpo_overhead.py"],
    "hpo_workers": ["bench_hpo_workers.py"],
    "culi": ["bench_culi.py"],
    "md_skin": ["bench_md_skin.py"],
}
SUMMARY = re.compile(
    r"(ratio|speed-?up|faster|slower|frames per second|per proposal|trials per hour|target|:\s*[\d.]+x)", re.IGNORECASE)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=sorted(BENCHMARKS), help="run only these benchmarks")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = parser.parse_args()
    if args.list:
        print("\n".join(f"{k}: benchmarks/{' '.join(v)}" for k, v in BENCHMARKS.items()))
        return 0
    logs = ROOT / "_build" / "bench"
    logs.mkdir(parents=True, exist_ok=True)
    failed = []
    for name in args.only or BENCHMARKS:
        script, *extra = BENCHMARKS[name]
        path = HERE / script
        if not path.exists():
            print(f"[{name}] missing benchmark script {path}")
            failed.append(name)
            continue
        print(f"[{name}] running {script} ...", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(path), *extra], cwd=ROOT, capture_output=True, text=True)
        (logs / f"{name}.log").write_text(proc.stdout + proc.stderr)
        lines = [ln for ln in proc.stdout.splitlines() if SUMMARY.search(ln)] or proc.stdout.splitlines()[-5:]
        for ln in lines:
            print(f"  {ln}")
        status = "ok" if proc.returncode == 0 else f"FAILED (exit {proc.returncode}; see {logs / (name + '.log')})"
        print(f"[{name}] {status} in {time.perf_counter() - t0:.0f} s", flush=True)
        if proc.returncode:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
