"""Speed race: qallegro's Allegro against the maintainers' Allegro (nequip 0.19.1 + nequip-allegro 0.8.3) and
against the same qallegro model built on generic e3nn `TensorProduct`s, in ONE process, same machine, same threads.

Measures, per model size (nequip-anchor §1.1 "quick" and §1.2 "legacy"):
  - energy + forces of one structure: aspirin (21 atoms, frame 0 of rmd17_aspirin_train_01.npz) and fcc Cu,
    256 atoms, periodic, rattled (nequip-anchor §2), model only (neighbour lists prepared beforehand);
  - one training step on 5 aspirin frames (MSE per-atom energy + MSE forces, backward through the forces, Adam).
Modes: ours eager, ours compiled (inference: `compile_model(training=False)`, AOTInductor, frozen weights;
training: `compile_model(training=True)`, make_fx + torch.compile), ours with e3nn tensor products (eager);
theirs eager, theirs AOTInductor (inference, as `nequip-compile --mode aotinductor --target ase`), theirs
train-time compile (`compile_mode: compile`). Calls of all modes are interleaved round-robin, so that machine
load affects them alike; with one thread the per-process CPU time is reported (robust to other processes),
with more threads the wall time. Ratios ours/theirs are printed; < 1 means ours is faster.
Each part also counts the floating-point operations of both codes' matrix products and times this core's GEMM
at the model's widest product: the time our matrix products alone need at that rate bounds any speed-up.

Run with `make bench-race` (benchmarks/race.sh creates .venv-bench) or:
    OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/race_allegro.py [--sizes quick,legacy] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

KCAL = 0.0433641153  # eV per kcal/mol
ASPIRIN = Path(os.environ.get("QALLEGRO_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / \
    "rmd17" / "rmd17_aspirin_train_01.npz"

# qallegro configs matched to nequip-anchor §1 (legacy A design vs their C design; see benchmarks/README.md)
OURS = {
    "quick": {"r_max": 5.0, "l_max": 2, "parity": "o3_full", "num_layers": 2, "env_embed_multiplicity": 16,
              "num_basis": 8, "PolynomialCutoff_p": 6.0, "BesselBasis_trainable": False,
              "two_body_latent_mlp_latent_dimensions": [64, 64], "latent_mlp_latent_dimensions": [64, 64],
              "edge_eng_mlp_latent_dimensions": [32], "edge_eng_mlp_nonlinearity": "silu"},
    "legacy": {"r_max": 6.0},  # MODEL_DEFAULTS = the legacy example config
}
R_MAX = {"quick": 5.0, "legacy": 6.0}


def aspirin_atoms(n: int):
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    d = np.load(ASPIRIN)
    frames = []
    for k in range(n):
        a = Atoms(numbers=d["nuclear_charges"], positions=d["coords"][k])
        a.calc = SinglePointCalculator(a, energy=float(d["energies"][k]) * KCAL, forces=d["forces"][k] * KCAL)
        frames.append(a)
    return frames


def cu_atoms():
    from ase.build import bulk

    a = bulk("Cu", "fcc", a=3.615, cubic=True).repeat((4, 4, 4))
    a.rattle(stdev=0.05, seed=0)
    return a


def timed_rounds(modes: dict[str, Callable], repeats: int, warmup: int, cpu: bool) -> dict[str, dict]:
    """Warm up every mode (first call = compile time), then `repeats` interleaved rounds."""
    clock = time.process_time if cpu else time.perf_counter
    res = {}
    for name, fn in modes.items():
        t0 = time.perf_counter()
        fn()
        first = time.perf_counter() - t0
        for _ in range(warmup - 1):
            fn()
        res[name] = {"first_call_s": first, "times": []}
    for _ in range(repeats):
        for name, fn in modes.items():
            t0 = clock()
            fn()
            res[name]["times"].append(clock() - t0)
    for r in res.values():
        r["median_ms"] = 1000 * float(np.median(r["times"]))
        r["min_ms"] = 1000 * float(np.min(r["times"]))
        del r["times"]
    return res


def matmul_gflop(fn: Callable) -> float:
    """The matrix-product GFLOP that `fn` runs, backward included (`qallegro.timing.matmul_flops`)."""
    from qallegro.timing import matmul_flops

    return matmul_flops(fn) / 1e9


def gemm_rate(rows: int, width: int, cpu: bool, repeats: int = 30) -> float:
    """This core's rate (GFLOP/s) for the model's widest matrix product, [rows, width] @ [width, width], float32."""
    clock = time.process_time if cpu else time.perf_counter
    a = torch.randn(rows, width, dtype=torch.float32)  # nequip sets float64 as the default dtype
    w = torch.randn(width, width, dtype=torch.float32)
    for _ in range(5):
        torch.mm(a, w)
    times = []
    for _ in range(repeats):
        t0 = clock()
        torch.mm(a, w)
        times.append(clock() - t0)
    return 2 * rows * width * width / float(np.median(times)) / 1e9


def flop_bound(res: dict, ours_fn: Callable, theirs_fn: Callable, rows: int, width: int, cpu: bool) -> None:
    """Adds `_flops` to `res`: the matrix-product GFLOP of ours (as compiled) and theirs (eager), this core's GEMM
    rate at the widest product, and the time our matrix products need at that rate (a floor for any
    implementation of the same arithmetic)."""
    ours, theirs = matmul_gflop(ours_fn), matmul_gflop(theirs_fn)
    rate = gemm_rate(rows, width, cpu)
    res["_flops"] = {"gflop_ours": ours, "gflop_theirs": theirs, "gemm_shape": [rows, width, width],
                     "gemm_gflop_s": rate, "ours_floor_ms": 1000 * ours / rate}


def our_models(size: str, species: list[int], nbar: float):
    from qallegro.models import build_model
    from race_e3nn import use_e3nn

    cfg = {**OURS[size], "avg_num_neighbors": nbar, "per_species_rescale_shifts": -1.0, "default_dtype": "float32",
           "seed": 456}
    return build_model(cfg, species), use_e3nn(build_model(cfg, species))


def inference(size: str, name: str, atoms, args, log: list[str]) -> dict:
    import race_nequip as RN
    from qallegro.data.graph import atoms_to_graph
    from qallegro.models.compile import compile_model, fused_twin

    r_max = R_MAX[size]
    g = atoms_to_graph(atoms, r_max, labels=False)
    n_edges = g["edge_index"].shape[1]
    nbar = n_edges / len(atoms)
    species = sorted(set(atoms.numbers.tolist()))
    ours, ref = our_models(size, species, nbar)
    ours.eval()
    ref.eval()
    type_names = [__import__("ase").data.chemical_symbols[z] for z in species]
    theirs = RN.build(size, type_names, r_max, nbar).eval()
    d = RN.data(atoms, r_max, type_names)
    modes = {"ours eager": lambda: ours(g), "theirs eager": lambda: RN.energy_forces(theirs, d)}
    if not args.skip_e3nn:
        modes["ours e3nn-TP eager"] = lambda: ref(g)
    if not args.skip_compile:
        frozen = compile_model(ours, training=False, package_dir=args.tmp)
        t0 = time.perf_counter()
        theirs_aoti = RN.aoti(theirs, d, Path(args.tmp) / f"theirs-{size}-{name}.nequip.pt2")
        their_compile = time.perf_counter() - t0
        modes["ours compiled"] = lambda: frozen(g)
        modes["theirs AOTI"] = lambda: theirs_aoti(d)
    check = {"ours": ours(g)["forces"], "theirs": RN.energy_forces(theirs, d)[1]}
    reps = args.repeats if size == "quick" else args.repeats_legacy
    res = timed_rounds(modes, reps, args.warmup, args.cpu_time)
    twin = fused_twin(ours)  # the tensor products' fused forms: their matrix products are the compiled graph's
    flop_bound(res, lambda: twin(g), lambda: RN.energy_forces(theirs, d), n_edges, ours.body.latent_dim,
               args.cpu_time)
    if not args.skip_compile:
        res["ours compiled"]["compile_s"] = res["ours compiled"]["first_call_s"]
        res["theirs AOTI"]["compile_s"] = their_compile
        err = (frozen(g)["forces"] - check["ours"]).abs().max().item()
        log.append(f"{size} {name}: ours compiled vs eager max |dF| = {err:.2e} eV/Å")
    if not args.skip_e3nn:
        err = (ref(g)["forces"] - check["ours"]).abs().max().item()
        log.append(f"{size} {name}: ours e3nn-TP vs ours max |dF| = {err:.2e} eV/Å")
    res["_info"] = {"atoms": len(atoms), "edges": n_edges, "reps": reps,
                    "params_ours": sum(p.numel() for p in ours.parameters()),
                    "params_theirs": sum(p.numel() for p in theirs.parameters())}
    return res


def training(size: str, args, log: list[str]) -> dict:
    import race_nequip as RN
    from bench_train_step_variants import step_fn
    from qallegro.data.graph import atoms_to_graph, collate
    from qallegro.models.compile import compile_model, fused_twin

    r_max = R_MAX[size]
    frames = aspirin_atoms(5)
    graphs = [atoms_to_graph(a, r_max) for a in frames]
    batch = collate(graphs)
    nbar = batch["edge_index"].shape[1] / batch["pos"].shape[0]
    species = sorted(set(frames[0].numbers.tolist()))
    type_names = [__import__("ase").data.chemical_symbols[z] for z in species]
    their_batch = RN.batch([RN.data(a, r_max, type_names) for a in frames])
    n_atoms = (batch["ptr"][1:] - batch["ptr"][:-1]).to(torch.float64)

    def their_step(model: torch.nn.Module) -> Callable:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        return lambda: RN.train_step(model, their_batch, opt)

    modes = {}
    ours, ref = our_models(size, species, nbar)
    ours.train()
    modes["ours eager"] = step_fn(ours, batch, n_atoms)
    theirs = RN.build(size, type_names, r_max, nbar).train()
    modes["theirs eager"] = their_step(theirs)
    if not args.skip_e3nn:
        ref.train()
        modes["ours e3nn-TP eager"] = step_fn(ref, batch, n_atoms)
    if not args.skip_compile:
        ours_c, _ = our_models(size, species, nbar)
        compiled = compile_model(ours_c.train(), training=True)
        modes["ours compiled"] = step_fn(compiled, batch, n_atoms)
        theirs_c = RN.build(size, type_names, r_max, nbar, compile_mode="compile").train()
        modes["theirs compile"] = their_step(theirs_c)
    reps = args.repeats_train if size == "quick" else args.repeats_legacy
    res = timed_rounds(modes, reps, args.warmup, args.cpu_time)
    flop_bound(res, step_fn(fused_twin(ours), batch, n_atoms), modes["theirs eager"], int(batch["edge_index"].shape[1]),
               ours.body.latent_dim, args.cpu_time)
    for k in ("ours compiled", "theirs compile"):
        if k in res:
            res[k]["compile_s"] = res[k]["first_call_s"]
    res["_info"] = {"frames": 5, "atoms": int(batch["pos"].shape[0]), "edges": int(batch["edge_index"].shape[1]),
                    "reps": reps}
    return res


def ratios(res: dict, compiled_theirs: str) -> list[tuple[str, float]]:
    out = []

    def ratio(label: str, a: str, b: str) -> None:
        if a in res and b in res:
            out.append((label, res[a]["median_ms"] / res[b]["median_ms"]))

    ratio("ours eager / theirs eager", "ours eager", "theirs eager")
    ratio(f"ours compiled / theirs {compiled_theirs}", "ours compiled", f"theirs {compiled_theirs}")
    best_o = min((res[k]["median_ms"], k) for k in ("ours eager", "ours compiled") if k in res)
    best_t = min((res[k]["median_ms"], k) for k in ("theirs eager", f"theirs {compiled_theirs}") if k in res)
    out.append((f"ours best ({best_o[1][5:]}) / theirs best ({best_t[1][7:]})", best_o[0] / best_t[0]))
    ratio("ours eager / ours e3nn-TP eager", "ours eager", "ours e3nn-TP eager")
    return out


def report(title: str, res: dict, compiled_theirs: str) -> list[str]:
    info = res.get("_info", {})
    lines = [f"\n## {title}  ({', '.join(f'{k} {v}' for k, v in info.items())})",
             f"{'mode':24s} {'median ms':>10s} {'min ms':>10s} {'compile s':>10s}"]
    for k, v in res.items():
        if k.startswith("_"):
            continue
        comp = f"{v['compile_s']:10.1f}" if "compile_s" in v else f"{'':10s}"
        lines.append(f"{k:24s} {v['median_ms']:10.2f} {v['min_ms']:10.2f} {comp}")
    for label, r in ratios(res, compiled_theirs):
        lines.append(f"  ratio {label:58s} {r:6.2f}")
    if "_flops" in res:
        f = res["_flops"]
        best_t = min(res[k]["median_ms"] for k in res if k.startswith("theirs"))
        gflop = {"ours": f["gflop_ours"], "theirs": f["gflop_theirs"]}
        rates = ", ".join(f"{k} {1000 * gflop[k.split()[0]] / v['median_ms']:.0f}"
                          for k, v in res.items() if not k.startswith("_") and "e3nn" not in k)
        lines += [f"  matrix products per call: ours {f['gflop_ours']:.3f}, theirs {f['gflop_theirs']:.3f} GFLOP; "
                  f"GFLOP/s: {rates}",
                  f"  this core's GEMM rate at {'x'.join(map(str, f['gemm_shape']))}: {f['gemm_gflop_s']:.0f} GFLOP/s;"
                  f" our matrix products alone need {f['ours_floor_ms']:.2f} ms: best ratio possible at that rate"
                  f" {f['ours_floor_ms'] / best_t:.2f}"]
    return lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="quick,legacy")
    ap.add_argument("--parts", default="aspirin,cu,train")
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--repeats", type=int, default=20, help="interleaved rounds, quick inference")
    ap.add_argument("--repeats-train", type=int, default=10, help="interleaved rounds, quick training step")
    ap.add_argument("--repeats-legacy", type=int, default=3, help="interleaved rounds, legacy size")
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--skip-compile", action="store_true")
    ap.add_argument("--skip-e3nn", action="store_true")
    ap.add_argument("--json", type=Path, default=None, help="write all numbers here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.cpu_time = args.threads == 1
    args.tmp = tempfile.mkdtemp(prefix="qallegro-race-")
    from qallegro.utils import environment_record

    env = environment_record()
    print(f"# race: threads {args.threads}, timing {'process CPU time' if args.cpu_time else 'wall time'}, "
          f"load average {os.getloadavg()[0]:.1f}, torch {torch.__version__}", flush=True)
    results: dict = {"env": env, "threads": args.threads, "cpu_time": args.cpu_time,
                     "loadavg_start": os.getloadavg()[0], "results": {}}
    log: list[str] = []
    for size in args.sizes.split(","):
        for part in args.parts.split(","):
            t0 = time.perf_counter()
            if part == "train":
                res, compiled, title = training(size, args, log), "compile", f"{size}: training step, 5 aspirin"
            else:
                atoms = aspirin_atoms(1)[0] if part == "aspirin" else cu_atoms()
                res = inference(size, part, atoms, args, log)
                compiled, title = "AOTI", f"{size}: energy+forces, {part}"
            results["results"][f"{size}/{part}"] = res
            print("\n".join(report(title, res, compiled)) + f"\n  ({time.perf_counter() - t0:.0f} s)", flush=True)
    results["loadavg_end"] = os.getloadavg()[0]
    results["checks"] = log
    print("\n" + "\n".join(log))
    print(f"# load average at the end {results['loadavg_end']:.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
