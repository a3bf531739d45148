"""Paper scale on one GPU: an HPO trial at the paper's best rMD17-aspirin configuration of each variant (Tables
1-3; the legacy example model, 950/50 split, float32), trained for a fixed wall-clock budget on the GPU, then
the paper's second objective (inference time over the whole 1,000-frame test split, batch 10, median of 3), eager
and compiled (AOTInductor). Prints seconds per epoch, what the paper's budgets cost at that rate, and the
errors reached.

    python benchmarks/bench_gpu_paper.py [--wall 90] [--variants allegro mlp qdi] [--compiled-training]
                                         [--json out.json]

Needs a CUDA device; the data mirror (QALLEGRO_DATA) must hold the rMD17 aspirin split.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from qallegro.hpo.objective import measure_inference, trial_config
from qallegro.hpo.space import default_space, paper_values
from qallegro.models.compile import compile_model
from qallegro.models.variants import variant_names, variant_spec
from qallegro.paper import values
from qallegro.scales import settings
from qallegro.training import load_run, train
from qallegro.utils import environment_record

DATASET = "rmd17-aspirin"


def paper_overrides(variant: str) -> dict[str, Any]:
    space = default_space(variant)
    vals = paper_values(DATASET, variant)
    if variant == "mlp":   # Table 2 does not print k: the model's default
        vals["k"] = variant_spec(variant).defaults["edge_eng_mlp_output_dim"]
    raw, _ = space.raw_from_values(vals)
    return space.overrides(raw)


def run_variant(variant: str, wall: float, root: Path, compiled_training: bool = False) -> dict[str, Any]:
    hpo = settings("hpo", "paper")
    overrides = paper_overrides(variant)
    cfg = trial_config(DATASET, variant, "paper", {**overrides, "device": "cuda", "compile": compiled_training}, hpo)
    paper_wall = float(cfg["max_wall_s"])
    cfg["max_wall_s"] = wall
    res = train(cfg, run_dir=root / variant, progress=False)
    with open(root / variant / "epochs.csv") as fh:
        rows = list(csv.DictReader(fh))
    # seconds per step after the first epoch (CUDA warm-up; compilation), else over the whole run; the last epoch
    # may be cut by the budget, so steps, not epochs, are counted
    if len(rows) > 1:
        step_s = sum(float(r["epoch_s"]) for r in rows[1:]) / (int(rows[-1]["steps"]) - int(rows[0]["steps"]))
    else:
        step_s = res["wall_s"] / int(rows[-1]["steps"])
    per_epoch = step_s * math.ceil(int(cfg["n_train"]) / int(cfg["batch_size"]))
    model = load_run(root / variant).cuda()
    eager = measure_inference(model, DATASET, hpo, threads=1)
    compiled = {}
    for kind in ("inductor", "aoti"):   # compile_model(training=True) / (training=False): see models.compile
        t0 = time.perf_counter()
        try:
            fast = compile_model(model, training=kind == "inductor", package_dir=root / f"{variant}-aoti")
            res_c = measure_inference(fast, DATASET, hpo, threads=1)
        except Exception as err:
            compiled[kind] = {"error": f"{type(err).__name__}: {str(err).splitlines()[0][:300]}"}
            continue
        if fast.failed:   # compile_model ran the eager model instead: that is not a compiled time
            compiled[kind] = {"error": "; ".join(fast.failed.values())}
            continue
        compiled[kind] = {"total_s": res_c["total_s"],
                          "compile_s": time.perf_counter() - t0 - res_c["total_s"] * (
                              hpo["timing"]["warmup"] + hpo["timing"]["repeats"])}
    final_epochs = int(values()["final_training_epochs"][DATASET])
    return {
        "variant": variant, "compiled_training": compiled_training,
        "config": {k: cfg[k] for k in overrides},
        "n_parameters": res["n_parameters"], "epochs": res["epochs"], "wall_s": res["wall_s"],
        "step_s": step_s, "epoch_s": per_epoch, "val_f_mae_meV_A": 1000 * res["val_f_mae"],
        "test_f_mae_meV_A": 1000 * res["test"]["f_mae"],
        "paper_trial_budget_s": paper_wall, "epochs_in_paper_trial_budget": paper_wall / per_epoch,
        "paper_final_epochs": final_epochs, "paper_final_training_h": final_epochs * per_epoch / 3600,
        "inference_eager_s": eager["total_s"], "inference_compiled": compiled,
        "n_test_structures": eager["n_structures"],
        "timing_batch_size": eager["batch_size"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wall", type=float, default=90.0, help="training budget per variant, seconds")
    ap.add_argument("--variants", nargs="+", default=list(variant_names(paper_only=True)))
    ap.add_argument("--compiled-training", action="store_true", help="train with `compile: true`")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("bench_gpu_paper.py needs a CUDA device")
    torch.backends.cuda.matmul.allow_tf32 = False   # float32 as the paper's runs (no TF32 on a T4)
    rows: list[dict[str, Any]] = []
    out = {"benchmark": "gpu-paper", "dataset": DATASET, "wall_per_variant_s": args.wall,
           "environment": environment_record()}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            row = run_variant(variant, args.wall, Path(tmp), args.compiled_training)
            rows.append(row)
            if args.json:   # after every variant, so a cut-off run keeps what it measured
                args.json.write_text(json.dumps({**out, "rows": rows}, indent=1))
            print(f"{variant:8s} {row['n_parameters']:>9,d} params  {row['epoch_s']:7.2f} s/epoch "
                  f"({row['epochs']} epochs in {row['wall_s']:.0f} s)  val F-MAE {row['val_f_mae_meV_A']:6.1f} "
                  f"test {row['test_f_mae_meV_A']:6.1f} meV/A  inference {row['inference_eager_s']:.3f} s eager, "
                  f"compiled {row['inference_compiled']}  final run ({row['paper_final_epochs']} epochs) "
                  f"~{row['paper_final_training_h']:.1f} h", flush=True)


if __name__ == "__main__":
    main()
