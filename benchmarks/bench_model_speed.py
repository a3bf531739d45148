"""Speed of qallegro's Allegro: the tensor-product formulations it uses against the alternatives, and the whole
model against the same model built on e3nn `TensorProduct`s (eager, and compiled with --compiled).

Part 1, one tensor product (16 channels, l_max 2, o3_full), timed as in the model: inference (forward + gradient
with respect to the inputs, as for forces) and training (forward, input gradient with create_graph, then a
backward through both, as for a force loss):
  - first layer (features a (x) Y): ours (G = Y . C per edge, one [K, 9] @ [9, u] product per edge, factor a),
    ours in its fused form run eagerly (sum over the 83 non-zero coefficients; what the compiled model uses),
    the dense outer product x (x) y then one [u E, 81] @ [81, K] GEMM (the first version of this code), e3nn;
  - a middle layer of a 3-layer model (0e+1e+1o+2e+2o x SH -> 0e+1o+2e): ours (atom-centred: C contracted with
    the centre's environment per atom, padded [nmax, d_in] @ [d_in, K] products), the dense outer product GEMM,
    e3nn.
Part 2, the model (quick preset sizes; --legacy adds the legacy example size): energy + forces of aspirin
(21 atoms) and of a 256-atom fcc Cu cell, and one training step on 5 aspirin frames; ours vs e3nn-TP reference.

All timings interleave the candidates round-robin and use per-process CPU time with one thread (robust to other
jobs); ratios of medians are printed (< 1: ours faster). The race against the maintainers' Allegro is
benchmarks/race.sh.

    python benchmarks/bench_model_speed.py [--repeats 10] [--legacy] [--compiled] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from qallegro.data import load_dataset
from qallegro.data.graph import atoms_to_graph, collate
from qallegro.models import MODEL_DEFAULTS, build_model
from qallegro.models.tensor_product import (
    AtomCentredProduct,
    CGTable,
    RankOneProduct,
    SparseRankOneProduct,
    centre_slots,
    cg_table,
    layer_irreps,
    sh_irreps,
)
from qallegro.scales import settings
from qallegro.utils import environment_record, set_threads
from race_e3nn import E3nnTensorProduct, use_e3nn

U = 16


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, dict[str, float]]:
    for fn in fns.values():
        fn()
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.process_time()
            fn()
            times[k].append(time.process_time() - t0)
    return {k: {"median_ms": 1000 * float(np.median(t)), "min_ms": 1000 * min(t)} for k, t in times.items()}


def _dense(table: CGTable) -> torch.Tensor:
    """The full [d_in * d_sh, K] Clebsch-Gordan matrix of a layer (for the dense outer-product reference)."""
    return table.cg.reshape(table.d_in * table.d_sh, table.dim_out).to(torch.get_default_dtype())


def tp_cases(graph: dict, repeats: int) -> dict[str, dict]:
    """Part 1 on the edges of `graph` (positions give the spherical harmonics; features are random)."""
    torch.manual_seed(0)
    center = graph["edge_index"][0]
    n_atoms, n_edges = graph["pos"].shape[0], center.shape[0]
    vec = (graph["pos"][graph["edge_index"][1]] - graph["pos"][center]).float()
    from e3nn import o3

    sh_fn = o3.SphericalHarmonics([0, 1, 2], True, "component")
    irr2 = layer_irreps(2, "o3_full", 2)
    irr3 = layer_irreps(2, "o3_full", 3)
    sh_ir = sh_irreps(2, "o3_full")
    out: dict[str, dict] = {}

    def run(name: str, impls: dict[str, Callable], inputs: list[torch.Tensor]) -> None:
        ref = impls["ours"](*inputs)
        for label, f in impls.items():  # all candidates compute the same numbers
            err = (f(*inputs) - ref).abs().max().item()
            if err > 1e-4 * ref.abs().max().item():
                raise AssertionError(f"{name}: {label} differs from ours by {err}")
        fns = {}
        for label, f in impls.items():
            def inf(f=f):
                xs = [x.detach().requires_grad_() for x in inputs]
                t = f(*xs)
                torch.autograd.grad(t.square().sum(), xs)

            def train(f=f):
                xs = [x.detach().requires_grad_() for x in inputs]
                t = f(*xs)
                grads = torch.autograd.grad(t.square().sum(), xs, create_graph=True)
                (sum(g.square().sum() for g in grads) + t.sum()).backward()
            fns[f"{label} | inference"] = inf
            fns[f"{label} | training"] = train
        out[name] = interleaved(fns, repeats)

    # first layer: inputs a [E, 3, u], vec [E, 3] (through Y) and the environment weights w [E, 3, u]
    table1 = cg_table(irr2[0], sh_ir)
    tp1, tp1_fused = RankOneProduct(table1), SparseRankOneProduct(table1)
    e3 = E3nnTensorProduct(tp1, irr2[0], sh_ir, U, first=True)
    dense1 = _dense(table1)
    lidx = torch.tensor([0, 1, 1, 1, 2, 2, 2, 2, 2])

    def env_of(w: torch.Tensor, sh: torch.Tensor) -> torch.Tensor:
        """The centre atoms' environments [N, 9, U]."""
        return torch.zeros(n_atoms, 9, U).index_add(0, center, w.index_select(1, lidx) * sh.unsqueeze(-1))

    def ours1(a, v, w, fused=False):
        sh = sh_fn(v)
        return torch.cat((tp1_fused if fused else tp1)(a, sh, env_of(w, sh), center, None)[1], 1)

    def dense_first(a, v, w):
        sh = sh_fn(v)
        x = a.index_select(1, lidx) * sh.unsqueeze(-1)
        y = env_of(w, sh).index_select(0, center)
        outer = (x.unsqueeze(2) * y.unsqueeze(1)).permute(0, 3, 1, 2).reshape(n_edges * U, 81)
        return (outer @ dense1).view(n_edges, U, -1).transpose(1, 2)

    def e3nn1(a, v, w):
        sh = sh_fn(v)
        return torch.cat(e3(a, sh, env_of(w, sh), center, None)[1], 1)

    inputs = [torch.randn(n_edges, 3, U), vec, torch.randn(n_edges, 3, U)]
    run("first layer", {"ours": ours1, "ours fused form": lambda a, v, w: ours1(a, v, w, True),
                        "dense outer product": dense_first, "e3nn TensorProduct": e3nn1}, inputs)
    # middle layer of 3: x [E, 17, u], env [N, 9, u]
    table2 = cg_table(irr3[1], sh_ir)
    tp2 = AtomCentredProduct(table2)
    e3m = E3nnTensorProduct(tp2, irr3[1], sh_ir, U, first=False)
    dense2 = _dense(table2)
    slots = centre_slots(center, n_atoms)

    def ours2(x, env):
        return torch.cat(tp2(x, None, env, center, slots)[1], 1)

    def dense_middle(x, env):
        outer = (x.unsqueeze(2) * env.index_select(0, center).unsqueeze(1)).permute(0, 3, 1, 2)
        return (outer.reshape(n_edges * U, -1) @ dense2).view(n_edges, U, -1).transpose(1, 2)

    def e3nn2(x, env):
        return torch.cat(e3m(x, None, env, center, None)[1], 1)

    run("middle layer", {"ours": ours2, "dense outer product": dense_middle, "e3nn TensorProduct": e3nn2},
        [torch.randn(n_edges, table2.d_in, U), torch.randn(n_atoms, 9, U)])
    return out


def model_cases(size: str, repeats: int, compiled: bool) -> dict[str, dict]:
    quick = settings("train", "quick")["all"]
    keys = ("r_max", "l_max", "num_layers", "env_embed_multiplicity", "two_body_latent_mlp_latent_dimensions",
            "latent_mlp_latent_dimensions", "edge_eng_mlp_latent_dimensions")
    body = {k: quick[k] for k in keys} if size == "quick" else {k: MODEL_DEFAULTS[k] for k in keys}
    frames = load_dataset("rmd17-aspirin", "train")[:5]
    from ase.build import bulk

    cu = bulk("Cu", "fcc", a=3.615, cubic=True).repeat((4, 4, 4))
    cu.rattle(stdev=0.05, seed=0)
    out = {}
    structures = {"aspirin E+F": [frames[0]], "Cu-256 E+F": [cu], "training step (5 aspirin)": frames}
    for name, atoms in structures.items():
        graphs = [atoms_to_graph(a, body["r_max"]) for a in atoms]
        batch = collate(graphs)
        species = sorted(set(np.concatenate([a.numbers for a in atoms]).tolist()))
        cfg = {**body, "avg_num_neighbors": batch["edge_index"].shape[1] / batch["pos"].shape[0],
               "per_species_rescale_shifts": -1.0}
        models = {"ours": build_model(cfg, species), "e3nn-TP reference": use_e3nn(build_model(cfg, species))}
        if compiled:
            from qallegro.models.compile import compile_model

            models["ours compiled"] = compile_model(build_model(cfg, species), training=name.startswith("training"))
        fns = {}
        for label, m in models.items():
            if name.startswith("training"):
                m.train()
                opt = torch.optim.Adam(m.parameters(), lr=1e-3)
                n_at = (batch["ptr"][1:] - batch["ptr"][:-1]).double()

                def step(m=m, opt=opt, n_at=n_at, batch=batch):
                    opt.zero_grad(set_to_none=True)
                    o = m(batch)
                    loss = torch.mean(((o["energy"] - batch["energy"]) / n_at) ** 2) + torch.mean(
                        (o["forces"] - batch["forces"]) ** 2)
                    loss.backward()
                    opt.step()
                fns[label] = step
            else:
                m.eval()
                fns[label] = lambda m=m, batch=batch: m(batch)
        reps = repeats if size == "quick" else max(2, repeats // 4)
        out[f"{size}: {name}"] = interleaved(fns, reps if not name.startswith("Cu") else max(2, reps // 2))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--legacy", action="store_true", help="also the legacy example size (slow)")
    ap.add_argument("--compiled", action="store_true", help="also compile_model (minutes of compilation)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    set_threads(1)
    results: dict[str, dict] = {}
    frames = load_dataset("rmd17-aspirin", "train")[:5]
    from ase.build import bulk

    cu = bulk("Cu", "fcc", a=3.615, cubic=True).repeat((4, 4, 4))
    cu.rattle(stdev=0.05, seed=0)
    for label, g in (("5 aspirin", collate([atoms_to_graph(a, 5.0) for a in frames])),
                     ("Cu-256", atoms_to_graph(cu, 5.0))):
        for name, res in tp_cases(g, args.repeats).items():
            results[f"tensor product, {name}, {label} ({g['edge_index'].shape[1]} edges)"] = res
    for size in ("quick", "legacy") if args.legacy else ("quick",):
        results.update(model_cases(size, args.repeats, args.compiled))
    print("# one thread, per-process CPU time, median (min) ms; ratio = ours / reference")
    for case, res in results.items():
        print(f"\n## {case}")
        for k, v in res.items():
            print(f"  {k:42s} {v['median_ms']:9.2f} ({v['min_ms']:.2f})")
        for mode in ("inference", "training", None):
            ours = res.get("ours" if mode is None else f"ours | {mode}")
            if ours is None:
                continue
            for k, v in res.items():
                ref = k if mode is None else k.split(" | ")[0]
                if (mode is None or k.endswith(mode)) and not ref.startswith("ours"):
                    print(f"  ratio ours / {ref}{'' if mode is None else ' (' + mode + ')'}: "
                          f"{ours['median_ms'] / v['median_ms']:.2f}")
            if mode is None and "ours compiled" in res:
                print(f"  speed-up compiled / eager: {ours['median_ms'] / res['ours compiled']['median_ms']:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"results": results, "env": environment_record()}, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
