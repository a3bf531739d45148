"""Inference time, the paper's second objective: wall time to predict energies AND forces for a whole test set.

`inference_time` runs the model over all structures in batches, `warmup` untimed passes first, then `repeats`
timed passes, and reports the median pass (`total_s`), per structure and per atom, with the thread count and
the hardware. Neighbour lists (graph construction) are timed separately and reported as `graph_s`; they are
NOT part of `total_s` unless `include_graphs=True` (the paper does not say; we keep the model's cost apart from
the data pipeline's). Batches are collated (and moved to the model's device) before timing; on CUDA the
device is synchronised around each pass.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from ase import Atoms

from qallegro.data.graph import EDGE_INDEX, PTR, Graph, atoms_to_graph, collate, to
from qallegro.utils import hardware_info, torch_threads


def _graphs(structures: Sequence[Graph] | Sequence[Atoms], r_max: float) -> tuple[list[Graph], float | None]:
    if structures and isinstance(structures[0], Atoms):
        t = time.perf_counter()
        graphs = [atoms_to_graph(a, r_max, labels=False) for a in structures]
        return graphs, time.perf_counter() - t
    return list(structures), None


CLOCKS: dict[str, Callable[[], float]] = {"wall": time.perf_counter, "process": time.process_time}


def _one_pass(model: torch.nn.Module, batches: list[Graph], device: torch.device, clock: str = "wall") -> float:
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    now = CLOCKS[clock]
    sync()
    t = now()
    for batch in batches:
        out = model(batch, compute_forces=True)
        out["energy"].detach()
        out["forces"].detach()
    sync()
    return now() - t


def matmul_flops(fn: Callable[[], object]) -> int:
    """Floating-point operations of the matrix products (mm, addmm, bmm, ...) that `fn()` runs, backward included
    (torch.utils.flop_counter's formulas; elementwise work is not counted): a cost that does not move with the
    machine's load. A plain dispatch mode, because FlopCounterMode's module hooks break inside `autograd.grad`."""
    from torch.utils._python_dispatch import TorchDispatchMode
    from torch.utils.flop_counter import flop_registry

    class Count(TorchDispatchMode):
        total = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            kwargs = kwargs or {}
            out = func(*args, **kwargs)
            formula = flop_registry.get(func._overloadpacket)
            if formula is not None:
                self.total += formula(*args, **kwargs, out_val=out)
            return out

    with Count() as counter:
        fn()
    return int(counter.total)


def inference_time(model: torch.nn.Module, structures: Sequence[Graph] | Sequence[Atoms], batch_size: int = 1,
                   repeats: int = 5, warmup: int = 1, threads: int | None = None,
                   include_graphs: bool = False, clock: str = "wall", flops: bool = False) -> dict[str, Any]:
    """Median wall time of predicting energies and forces for all `structures` (graphs or ase.Atoms).

    Returns `total_s` (median over `repeats` timed passes; plus `graph_s` when `include_graphs`),
    `per_structure_s`, `per_atom_s`, `times_s` (every timed pass), `graph_s` (neighbour lists, only when
    Atoms are given), `includes_graphs`, `n_structures`, `n_atoms`, `n_edges`, `batch_size`, `repeats`,
    `warmup`, `threads`, `dtype` and `hardware`. With `threads`, torch uses that many threads during the
    measurement (restored afterwards). `clock` "process" times the process's CPU time instead of the wall clock
    (robust to other jobs on a shared machine when one thread is used); `flops` adds `matmul_flops` (one pass)
    and `matmul_flops_per_structure`.
    """
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {sorted(CLOCKS)}, got {clock!r}")
    if not structures:
        raise ValueError("inference_time needs at least one structure")
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise ValueError(f"need batch_size >= 1, repeats >= 1, warmup >= 0; got {batch_size}, {repeats}, {warmup}")
    r_max = float(getattr(model, "r_max", None) or model.config["r_max"])
    graphs, graph_s = _graphs(structures, r_max)
    device = next(model.parameters()).device
    batches = [to(collate(graphs[k:k + batch_size]), device) for k in range(0, len(graphs), batch_size)]
    was_training = model.training
    model.eval()
    try:
        with torch_threads(threads):
            for _ in range(warmup):
                _one_pass(model, batches, device, clock)
            times = [_one_pass(model, batches, device, clock) for _ in range(repeats)]
            counted = matmul_flops(lambda: _one_pass(model, batches, device)) if flops else None
            used_threads = torch.get_num_threads()
            hardware = hardware_info()
    finally:
        model.train(was_training)
    total = statistics.median(times) + ((graph_s or 0.0) if include_graphs else 0.0)
    n_atoms = sum(int(b[PTR][-1]) for b in batches)
    return {
        "total_s": total,
        "per_structure_s": total / len(graphs),
        "per_atom_s": total / n_atoms,
        "times_s": times,
        "graph_s": graph_s,
        "includes_graphs": bool(include_graphs and graph_s is not None),
        "n_structures": len(graphs),
        "n_atoms": n_atoms,
        "n_edges": sum(int(b[EDGE_INDEX].shape[1]) for b in batches),
        "batch_size": batch_size,
        "repeats": repeats,
        "warmup": warmup,
        "threads": used_threads,
        "clock": clock,
        **({"matmul_flops": counted, "matmul_flops_per_structure": counted / len(graphs)} if flops else {}),
        "dtype": str(next(model.parameters()).dtype).replace("torch.", ""),
        "hardware": hardware,
    }


def retime_interleaved(models: Mapping[str, torch.nn.Module], structures: Sequence[Atoms], batch_size: int = 1,
                       rounds: int = 5, warmup: int = 1, threads: int = 1, clock: str = "process",
                       seed: int = 0) -> dict[str, dict[str, Any]]:
    """Re-time several models (a study's front) together: `rounds` rounds, each timing every model once in a new
    random order, so that a slow period of the machine hits all of them alike. Per model: the median over rounds
    (`total_s`), every round's time, and the matrix-product FLOPs per structure."""
    if not models:
        raise ValueError("retime_interleaved needs at least one model")
    rng = np.random.default_rng(seed)
    names = list(models)
    prepared = {}
    for name in names:
        m = models[name]
        graphs, _ = _graphs(structures, float(getattr(m, "r_max", None) or m.config["r_max"]))
        device = next(m.parameters()).device
        prepared[name] = [to(collate(graphs[k:k + batch_size]), device) for k in range(0, len(graphs), batch_size)]
    times: dict[str, list[float]] = {n: [] for n in names}
    with torch_threads(threads):
        for name in names:
            models[name].eval()
            for _ in range(warmup):
                _one_pass(models[name], prepared[name], next(models[name].parameters()).device, clock)
        for _ in range(rounds):
            for k in rng.permutation(len(names)):
                name = names[k]
                times[name].append(_one_pass(models[name], prepared[name], next(models[name].parameters()).device,
                                             clock))
        flops = {n: matmul_flops(lambda n=n: _one_pass(models[n], prepared[n], next(models[n].parameters()).device))
                 for n in names}
    return {n: {"total_s": statistics.median(times[n]), "times_s": times[n], "rounds": rounds, "clock": clock,
                "threads": threads, "n_structures": len(structures),
                "matmul_flops_per_structure": flops[n] / len(structures)} for n in names}
