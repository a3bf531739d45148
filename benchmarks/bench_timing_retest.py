"""Test-retest agreement of the inference-time objective: the same models timed in two separate runs.

Eight architectures from the HPO search space (layers, widths, r_max, heads) are built once; each run times them
all with the protocol of the campaign (energies + forces over a fixed test sample, one thread, warm-up, the process's
CPU time, interleaved rounds, median) and with the old quick protocol (wall clock, the first 30 test structures,
median of 3, one model after the other). The Spearman rank correlation between the two runs says how repeatable
each protocol ranks the models (target for the campaign protocol: at least 0.95). The machine's load average is
recorded: the campaign's studies time their trials while other workers run, which is the case this measures.

    python benchmarks/bench_timing_retest.py [--structures 200] [--rounds 5] [--out benchmarks/results/...]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parents[1]
ARCHS = [
    {"num_layers": 1, "latent_mlp_latent_dimensions": [32], "r_max": 4.0},
    {"num_layers": 1, "latent_mlp_latent_dimensions": [64, 64], "r_max": 5.0},
    {"num_layers": 2, "latent_mlp_latent_dimensions": [32], "r_max": 4.5},
    {"num_layers": 2, "latent_mlp_latent_dimensions": [64, 64], "r_max": 5.0},
    {"num_layers": 2, "latent_mlp_latent_dimensions": [128, 128], "r_max": 6.0},
    {"num_layers": 3, "latent_mlp_latent_dimensions": [64, 64], "r_max": 5.5},
    {"num_layers": 2, "latent_mlp_latent_dimensions": [64, 64], "r_max": 5.0, "variant": "mlp",
     "final_mlp_latent_dimensions": [32, 32]},
    {"num_layers": 3, "latent_mlp_latent_dimensions": [128, 128], "r_max": 7.0},
]
BASE = {"l_max": 2, "env_embed_multiplicity": 16, "edge_eng_mlp_latent_dimensions": [32], "avg_num_neighbors": 11.0}


def build_models() -> dict[str, object]:
    from qallegro.models import build_model

    return {f"arch{k}": build_model({**BASE, **a, "seed": k, "two_body_latent_mlp_latent_dimensions":
                                     [32, a["latent_mlp_latent_dimensions"][-1]]}, [1, 6])
            for k, a in enumerate(ARCHS)}


def run_once(models: dict, frames: list, rounds: int) -> dict[str, dict[str, float]]:
    from qallegro.timing import inference_time, retime_interleaved

    new = retime_interleaved(models, frames, batch_size=10, rounds=rounds, warmup=1, threads=1, clock="process")
    old = {n: inference_time(m, frames[:30], batch_size=10, repeats=3, warmup=1, threads=1)["total_s"]
           for n, m in models.items()}
    return {"campaign": {n: v["total_s"] for n, v in new.items()}, "quick": old,
            "flops": {n: v["matmul_flops_per_structure"] for n, v in new.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--structures", type=int, default=200, help="benzene test structures timed (campaign protocol)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "timing-retest.json"))
    args = ap.parse_args()
    from qallegro.data import load_dataset
    from qallegro.utils import atomic_write_json, environment_record, set_threads

    set_threads(1)
    frames = load_dataset("rmd17-benzene", "test", max_frames=args.structures)
    models = build_models()
    t0 = time.perf_counter()
    runs = [run_once(models, frames, args.rounds) for _ in range(2)]
    names = sorted(models)
    out = {"structures": args.structures, "rounds": args.rounds, "runs": runs, "seconds": time.perf_counter() - t0,
           "load_average_1_5_15": list(os.getloadavg()), "environment": environment_record()}
    for proto in ("campaign", "quick"):
        a, b = ([r[proto][n] for n in names] for r in runs)
        rho = float(spearmanr(a, b).statistic)
        gap = float(np.max(np.abs(np.log(np.array(a) / np.array(b)))))
        out[f"spearman_{proto}"], out[f"max_log_ratio_{proto}"] = rho, gap
        print(f"{proto} protocol: test-retest Spearman {rho:.3f} (target >= 0.95 for campaign); largest ratio "
              f"between the runs {np.exp(gap):.2f}x")
    flops = [runs[0]["flops"][n] for n in names]
    rho_f = float(spearmanr(flops, [runs[0]["campaign"][n] for n in names]).statistic)
    out["spearman_flops_vs_time"] = rho_f
    print(f"matrix-product FLOPs per structure vs campaign time: Spearman {rho_f:.3f}")
    atomic_write_json(args.out, out)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
