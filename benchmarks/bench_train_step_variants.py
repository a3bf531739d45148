"""Training-step cost of the three variants at the same sizes: Allegro+QDI vs Allegro+MLP (issue 4 target: at most
1.3x) and Allegro vs Allegro+MLP.

One training step = forward with forces (create_graph), per-atom energy + force MSE, backward through the forces,
Adam step, on a batch of rMD17 aspirin frames. All variants share the `quick` training preset's Allegro body
(r_max 5, l_max 2, 2 layers, 16 channels, two-body [32, 64], latent [64, 64], edge MLP [32]); the heads differ:
  allegro  edge MLP -> 1
  mlp      edge MLP -> k -> final MLP [h1, h2] -> 1
  qdi      edge MLP -> k -> QDI circuit (n_qubits 4, depth d, torch state vector) -> FC(fc) -> 1
Two head settings are timed: each variant's defaults (mlp k 16, final [32, 32]; qdi k 4, depth 1, fc 16) and the
same k for both (k 4, final [16, 16], fc 16, depth 1). Steps of all models are interleaved round-robin; with one
thread the per-process CPU time is used (robust to other jobs on the machine); min and median are printed.

    python benchmarks/bench_train_step_variants.py [--batch 5] [--repeats 15] [--compiled] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from qallegro.data import load_dataset
from qallegro.data.graph import atoms_to_graph, collate
from qallegro.models import build_model
from qallegro.scales import settings
from qallegro.utils import environment_record, set_threads

HEADS = {
    "defaults": {
        "allegro": {"variant": "allegro"},
        "mlp": {"variant": "mlp", "edge_eng_mlp_output_dim": 16, "final_mlp_latent_dimensions": [32, 32]},
        "qdi": {"variant": "qdi", "edge_eng_mlp_output_dim": 4, "qdi_depth": 1, "qdi_fc_dim": 16},
    },
    "same k=4": {
        "allegro": {"variant": "allegro"},
        "mlp": {"variant": "mlp", "edge_eng_mlp_output_dim": 4, "final_mlp_latent_dimensions": [16, 16]},
        "qdi": {"variant": "qdi", "edge_eng_mlp_output_dim": 4, "qdi_depth": 1, "qdi_fc_dim": 16},
    },
}
BODY_KEYS = ("r_max", "l_max", "num_layers", "env_embed_multiplicity", "two_body_latent_mlp_latent_dimensions",
             "latent_mlp_latent_dimensions", "edge_eng_mlp_latent_dimensions")


def step_fn(model: torch.nn.Module, batch: dict, n_atoms: torch.Tensor) -> Callable[[], None]:
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        out = model(batch, compute_forces=True)
        loss = torch.mean(((out["energy"] - batch["energy"]) / n_atoms) ** 2) + torch.mean(
            (out["forces"] - batch["forces"]) ** 2)
        loss.backward()
        opt.step()
    return step


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=5, help="aspirin frames per step")
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--compiled", action="store_true", help="also time compile_model(training=True) versions")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    set_threads(args.threads)
    clock = time.process_time if args.threads == 1 else time.perf_counter
    body = {k: v for k, v in settings("train", "quick")["all"].items() if k in BODY_KEYS}
    frames = load_dataset("rmd17-aspirin", "train")[: args.batch]
    batch = collate([atoms_to_graph(a, body["r_max"]) for a in frames])
    n_atoms = (batch["ptr"][1:] - batch["ptr"][:-1]).to(torch.float64)
    nbar = batch["edge_index"].shape[1] / batch["pos"].shape[0]
    species = sorted(set(frames[0].numbers.tolist()))
    models: dict[str, torch.nn.Module] = {}
    for setting, heads in HEADS.items():
        for variant, head in heads.items():
            if setting != "defaults" and variant == "allegro":
                continue
            cfg = {**body, **head, "avg_num_neighbors": nbar, "per_species_rescale_shifts": -838.9, "seed": 0}
            models[f"{variant} ({setting})"] = build_model(cfg, species)
    fns = {name: step_fn(m, batch, n_atoms) for name, m in models.items()}
    if args.compiled:
        from qallegro.models.compile import compile_model

        for name in list(models):
            twin = build_model(models[name].config, species)
            fns[f"{name} compiled"] = step_fn(compile_model(twin, training=True), batch, n_atoms)
    print(f"# training step, {args.batch} aspirin frames ({batch['pos'].shape[0]} atoms, "
          f"{batch['edge_index'].shape[1]} edges), {args.threads} thread(s), "
          f"{'CPU' if args.threads == 1 else 'wall'} time", flush=True)
    times: dict[str, list[float]] = {name: [] for name in fns}
    first: dict[str, float] = {}
    for name, fn in fns.items():
        t0 = time.perf_counter()
        fn()
        first[name] = time.perf_counter() - t0
        fn()
    for _ in range(args.repeats):
        for name, fn in fns.items():
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    res = {name: {"min_ms": 1000 * min(t), "median_ms": 1000 * float(np.median(t)), "first_call_s": first[name],
                  "parameters": sum(p.numel() for p in models[name.replace(" compiled", "")].parameters())}
           for name, t in times.items()}
    print(f"{'model':32s} {'params':>8s} {'median ms':>10s} {'min ms':>9s}")
    for name, r in res.items():
        print(f"{name:32s} {r['parameters']:8d} {r['median_ms']:10.2f} {r['min_ms']:9.2f}")
    ratios = {}
    for suffix in ("", " compiled") if args.compiled else ("",):
        for setting in HEADS:
            qdi, mlp = f"qdi ({setting}){suffix}", f"mlp ({setting}){suffix}"
            ratios[f"QDI / MLP, {setting}{suffix}"] = res[qdi]["median_ms"] / res[mlp]["median_ms"]
        allegro, mlp = f"allegro (defaults){suffix}", f"mlp (defaults){suffix}"
        ratios[f"Allegro / MLP, defaults{suffix}"] = res[allegro]["median_ms"] / res[mlp]["median_ms"]
    for label, r in ratios.items():
        target = "  (target <= 1.3)" if label.startswith("QDI") else ""
        print(f"ratio {label}: {r:.2f}{target}")
    if args.json:
        args.json.write_text(json.dumps({"results": res, "ratios": ratios, "env": environment_record()}, indent=1,
                                        default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
