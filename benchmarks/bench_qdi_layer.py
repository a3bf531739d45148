"""QDI layer speed: our torch state vector vs PennyLane `qml.qnn.TorchLayer` (default.qubit, backprop).

Forward + backward (gradients w.r.t. the inputs and the weights, as in force training) on `--edges` samples
(default 100,000) of the 4-qubit circuit with 4 inputs, at depth 1 (the paper's 24-weight circuit) and a deeper
case. TorchLayer can be slow, so it may run on a slice (`--pl-samples`, default: all edges) and its time is scaled
linearly to the full size (its cost is linear in the batch: one broadcast simulation); the output says so.
Both compute the same numbers: outputs and gradients are compared on the slice. One thread; the two layers are
timed in turn and the fastest of the repeats of each is used (the medians' ratio is printed too).

    python benchmarks/bench_qdi_layer.py [--edges 100000] [--pl-samples 100000] [--depths 1 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from qallegro.quantum import QDILayer
from qallegro.quantum.circuit import make_qnode
from qallegro.utils import atomic_write_json, environment_record, set_threads


def _fwd_bwd(layer: torch.nn.Module, x: torch.Tensor, cot: torch.Tensor) -> tuple[torch.Tensor, ...]:
    xx = x.detach().requires_grad_()
    out = layer(xx)
    weights = list(layer.parameters())
    grads = torch.autograd.grad((out * cot).sum(), [xx, *weights])
    return (out.detach(), *grads)


def _interleaved_times(fns: list[Callable[[], Any]], repeats: int) -> list[list[float]]:
    """Wall times of each function, run in turn `repeats` times (so machine load hits both alike)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, store in zip(fns, times):
            start = time.perf_counter()
            fn()
            store.append(time.perf_counter() - start)
    return times


def bench_case(
    depth: int, in_features: int, n_qubits: int, edges: int, pl_samples: int, repeats: int, dtype: torch.dtype
) -> dict[str, Any]:
    """Time both layers on one circuit size and check they agree; returns seconds and the speed-up."""
    import pennylane as qml

    torch.manual_seed(depth)
    ours = QDILayer(in_features, n_qubits, depth).to(dtype)
    shape = tuple(ours.weight.shape)
    reference = qml.qnn.TorchLayer(make_qnode(n_qubits), weight_shapes={"weights": shape}).to(dtype)
    with torch.no_grad():
        reference.weights.copy_(ours.weight)
    x = torch.randn(edges, in_features, dtype=dtype)
    cot = torch.randn(edges, n_qubits, dtype=dtype)
    n_ref = min(pl_samples, edges)
    xs, cs = x[:n_ref], cot[:n_ref]

    mine, theirs = _fwd_bwd(ours, xs, cs), _fwd_bwd(reference, xs, cs)  # also the warm-up
    tol = 1e-4 if dtype == torch.float32 else 1e-9
    # max |difference| relative to the largest magnitude (weight gradients are sums over the whole batch)
    errors = {
        k: ((a - b).abs().max() / b.abs().max().clamp_min(1.0)).item()
        for k, a, b in zip(("out", "d_input", "d_weight"), mine, theirs)
    }
    agree = all(err <= tol for err in errors.values())

    ours_times, ref_times = _interleaved_times(
        [lambda: _fwd_bwd(ours, x, cot), lambda: _fwd_bwd(reference, xs, cs)], repeats
    )
    # the minimum is the least load-disturbed run of each; medians are reported beside it
    t_ours, t_ref_slice = min(ours_times), min(ref_times)
    t_ref = t_ref_slice * edges / n_ref
    return {
        "depth": depth,
        "in_features": in_features,
        "n_qubits": n_qubits,
        "n_weights": ours.weight.numel(),
        "edges": edges,
        "pennylane_samples": n_ref,
        "pennylane_extrapolated": n_ref < edges,
        "ours_s": t_ours,
        "pennylane_slice_s": t_ref_slice,
        "pennylane_s": t_ref,
        "speedup": t_ref / t_ours,
        "speedup_of_medians": statistics.median(ref_times) * edges / n_ref / statistics.median(ours_times),
        "max_rel_diff": errors,
        "agree": agree,
    }


def run(
    edges: int = 100_000,
    pl_samples: int = 100_000,
    depths: tuple[int, ...] = (1, 3),
    in_features: int = 4,
    n_qubits: int = 4,
    repeats: int = 5,
    dtype: torch.dtype = torch.float32,
) -> dict[str, Any]:
    """All cases; `speedup` is the smallest over them (the conservative summary number)."""
    set_threads(1)
    cases = [bench_case(d, in_features, n_qubits, edges, pl_samples, repeats, dtype) for d in depths]
    return {
        "cases": cases,
        "speedup": min(c["speedup"] for c in cases),
        "agree": all(c["agree"] for c in cases),
        "dtype": str(dtype).removeprefix("torch."),
        "threads": torch.get_num_threads(),
        "environment": environment_record(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--edges", type=int, default=100_000)
    parser.add_argument(
        "--pl-samples",
        type=int,
        default=None,
        help="TorchLayer batch, timed and scaled linearly to --edges (default: all edges)",
    )
    parser.add_argument("--depths", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--in-features", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    res = run(
        args.edges,
        args.pl_samples or args.edges,
        tuple(args.depths),
        args.in_features,
        4,
        args.repeats,
        getattr(torch, args.dtype),
    )
    print(f"QDI layer forward+backward, {args.edges:,} edges, {res['dtype']}, {res['threads']} thread")
    for c in res["cases"]:
        note = (
            f" (TorchLayer timed on {c['pennylane_samples']:,} samples, scaled linearly)"
            if c["pennylane_extrapolated"]
            else ""
        )
        diffs = ", ".join(f"{k} {v:.1e}" for k, v in c["max_rel_diff"].items())
        print(
            f"  depth {c['depth']} ({c['n_weights']} weights): torch state vector {c['ours_s']:.3f} s, "
            f"TorchLayer {c['pennylane_s']:.2f} s{note} -> {c['speedup']:.1f}x "
            f"(medians: {c['speedup_of_medians']:.1f}x); "
            f"same numbers: {'yes' if c['agree'] else 'NO'} (max relative diff {diffs})"
        )
    if args.json:
        atomic_write_json(args.json, res)
    print(f"QDI layer speed-up vs PennyLane TorchLayer: {res['speedup']:.1f}x")
    return 0 if res["agree"] else 1


if __name__ == "__main__":
    sys.exit(main())
