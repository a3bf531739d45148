"""Compiled energy and forces: the whole potential, including the inner `autograd.grad` for forces and stress, is
traced into one FX graph with `make_fx` (parameters as explicit inputs or as constants) and compiled with inductor,
as nequip does (`CompileGraphModel` for training, AOTInductor for inference).

Why the whole function: inductor cannot differentiate a compiled region twice (force training needs d/dtheta of
dE/dR), but once the force computation is part of the traced graph, training needs only an ordinary first-order
backward through it (allegro-spec §5.2).

    model = build_model(config, species)
    fast = compile_model(model, training=True)   # trainer: same call contract, shares the parameters
    out = fast(graph, compute_forces=True)       # compiled on the first call of each variant
    frozen = compile_model(model, training=False)  # inference only: AOTInductor with the weights as constants

- `training=True` (`CompiledPotential`): `torch.compile(dynamic=True)` of the traced graph with parameters and
  buffers as graph inputs. Follows `model.training`: in training mode the forces keep their dependence on the
  parameters (a force loss backpropagates through the compiled graph), in eval mode the parameters enter detached.
  Optimizer steps and EMA swaps need no recompilation.
- `training=False` (`FrozenPotential`): exported with `torch.export` and compiled ahead of time with AOTInductor
  (C++ wrapper, no Python guards); the weights are snapshotted as constants at compile time. If the parameters
  change afterwards (detected through their version counters) the model is recompiled, logged.

Each variant (forces, stress, one structure or a batch) is traced once, on a small synthetic graph with distinct
sizes (so that no size is specialised by coincidence), and serves any number of atoms, edges and structures.
The compiled models fall back to the eager model, logging the reason once, for a graph with fewer than 2 atoms or
2 edges (0/1 shape specialisation), for a QDI head on the PennyLane or Lightning backend (not traceable),
(frozen only) in training mode, and for a variant whose export or compilation fails (`failed` holds the reason;
seen with torch 2.11's AOTInductor export on a GPU, benchmarks/README.md). Threads: inductor's kernels use the
torch thread count at compile time. What is traced is the model's `fused_twin`: the same potential, sharing its
parameters and buffers, with the tensor products built in their fused forms.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qallegro.data import graph as G
from qallegro.models.tensor_product import neighbour_counts

log = logging.getLogger(__name__)

_GRAPH_KEYS = (G.POS, G.CELL, G.PBC, G.EDGE_INDEX, G.EDGE_CELL_SHIFT, G.BATCH, G.PTR)


def unsupported_reason(model: nn.Module) -> str | None:
    """Why `model` cannot be compiled at all (None when it can)."""
    if not hasattr(model, "compute") or not hasattr(model, "species_index"):
        return f"{type(model).__name__} is not a qallegro AllegroPotential"
    qdi = getattr(getattr(model, "head", None), "qdi", None)
    backend = getattr(qdi, "backend", "torch")
    if qdi is not None and backend != "torch":
        return f"the QDI layer's {backend!r} backend runs outside torch (only 'torch' can be traced)"
    return None


def _decompositions() -> dict:
    """Core ATen decompositions, with `silu_backward` rewritten in differentiable primitives (the traced force
    computation contains it and training differentiates it once more)."""
    from torch._decomp import core_aten_decompositions

    def silu_backward(grad_output: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        sig = torch.sigmoid(x)
        return grad_output * sig * (1 + x * (1 - sig))

    table = dict(core_aten_decompositions())
    table[torch.ops.aten.silu_backward.default] = silu_backward
    return table


class _Variant:
    """What one compiled graph computes, and its inputs for a given graph."""

    def __init__(self, model: nn.Module, compute_forces: bool, compute_stress: bool, single: bool) -> None:
        self.compute_forces, self.compute_stress, self.single = compute_forces, compute_stress, single
        self.padded = bool(model.body.needs_centre_slots)
        self.out_keys = ["energy", "atomic_energy"] + (["forces"] if compute_forces else []) + (
            ["stress"] if compute_stress else [])

    @property
    def label(self) -> str:
        return "+".join(["energy"] + (["forces"] if self.compute_forces else []) + (
            ["stress"] if self.compute_stress else [])) + (" (one structure)" if self.single else " (batch)")

    def inputs(self, model: nn.Module, graph: G.Graph) -> list[torch.Tensor]:
        inputs = [graph[k] for k in _GRAPH_KEYS] + [graph[G.ATOMIC_NUMBERS]]
        if self.padded:  # the per-centre padding, as a shape the compiled graph can read
            center = graph[G.EDGE_INDEX][0]
            counts = neighbour_counts(center, graph[G.POS].shape[0])
            inputs.append(torch.empty(max(2, int(counts.max())), 0, device=center.device))
        return inputs

    def example(self, model: nn.Module, graph: G.Graph) -> list[torch.Tensor]:
        """Synthetic inputs of the same dtypes with sizes unlike any model dimension (11 atoms, 37 edges, 3
        structures or 1, padding 7)."""
        n_atoms, n_edges = 11, 37
        pos = graph[G.POS]
        gen = torch.Generator().manual_seed(0)
        n_graphs = 1 if self.single else 3
        batch = torch.zeros(n_atoms, dtype=torch.int64) if self.single else torch.tensor([0] * 4 + [1] * 4 + [2] * 3)
        ptr = torch.tensor([0, n_atoms]) if self.single else torch.tensor([0, 4, 8, n_atoms])
        center = torch.arange(n_edges) % n_atoms
        neighbor = (center + 1 + torch.arange(n_edges) % 3) % n_atoms
        cell = torch.eye(3, dtype=graph[G.CELL].dtype).expand(n_graphs, 3, 3) * 9.0
        ex = {G.POS: torch.rand(n_atoms, 3, generator=gen, dtype=pos.dtype) * 3.0,
              G.CELL: cell.contiguous(), G.PBC: torch.ones(n_graphs, 3, dtype=graph[G.PBC].dtype),
              G.EDGE_INDEX: torch.stack([center, neighbor]),
              G.EDGE_CELL_SHIFT: torch.zeros(n_edges, 3, dtype=graph[G.EDGE_CELL_SHIFT].dtype),
              G.BATCH: batch, G.PTR: ptr}
        numbers = torch.tensor(model.species)[torch.arange(n_atoms) % len(model.species)]
        ex = {k: v.to(graph[k].device) for k, v in ex.items()}
        inputs = [ex[k] for k in _GRAPH_KEYS] + [numbers.to(pos.device)]
        if self.padded:
            inputs.append(torch.empty(7, 0, device=pos.device))
        return inputs

    def function(self, model: nn.Module, state_names: list[str] | None) -> Callable:
        """The traced function: graph tensors, atomic numbers (+ padding) [+ parameters and buffers] -> outputs
        and a flag that is true when an atomic number is not one of the model's species (checked after the call,
        so that the species lookup runs inside the compiled graph)."""
        n_graph = len(_GRAPH_KEYS)
        n_in = n_graph + 1 + int(self.padded)
        compute = _Compute(model)

        def energy_and_derivatives(*args: torch.Tensor) -> list[torch.Tensor]:
            graph = dict(zip(_GRAPH_KEYS, args[:n_graph]))
            numbers = args[n_graph]
            nmax = args[n_graph + 1].shape[0] if self.padded else None
            call = (numbers, graph, self.compute_forces, self.compute_stress, nmax)
            if state_names is None:
                out = compute(*call)
            else:
                state = {f"model.{n}": t for n, t in zip(state_names, args[n_in:])}
                out = torch.func.functional_call(compute, state, call)
            return [out[k] for k in self.out_keys] + [out["bad_species"]]

        return energy_and_derivatives


class _Compute(nn.Module):
    """`model.compute` as a module forward (for `torch.func.functional_call`)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, numbers: torch.Tensor, *args: Any) -> dict[str, torch.Tensor]:
        z = numbers.clamp(0, 118)
        types = self.model.type_of[z]
        bad = ((types < 0) | (z != numbers)).any()
        return {**self.model.compute(types.clamp_min(0), *args), "bad_species": bad}


def fused_twin(model: nn.Module) -> nn.Module:
    """`model` (an `AllegroPotential`) built again with its tensor products in their fused forms, which inductor
    turns into faster kernels than the batched matrix products of the eager forms, for inference and for training
    (aspirin, quick size, one thread: 31 vs 37 ms per compiled training step; benchmarks/README.md). The twin
    shares `model`'s parameters and buffers (`share_tensors`) and its training mode at creation."""
    from qallegro.models.build import build_model

    first = next(model.parameters())
    twin = build_model(model.config, model.species, fused=True).to(device=first.device, dtype=first.dtype)
    share_tensors(twin, model)
    return twin.train(model.training)


def share_tensors(twin: nn.Module, model: nn.Module) -> None:
    """Point every parameter and buffer of `twin` that `model` has under the same name at `model`'s tensor."""
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        path, _, leaf = name.rpartition(".")
        owner = twin.get_submodule(path)
        if leaf in owner._parameters:
            owner._parameters[leaf] = tensor
        elif leaf in owner._buffers:
            owner._buffers[leaf] = tensor


def _trace(fn: Callable, example: list[torch.Tensor]) -> torch.fx.GraphModule:
    """`make_fx` of `fn` (a function of a `fused_twin`) with symbolic sizes."""
    from torch.fx.experimental import _config as fx_config
    from torch.fx.experimental.proxy_tensor import make_fx

    duck = fx_config.use_duck_shape
    fx_config.use_duck_shape = False  # equal sizes must stay distinct symbols
    try:
        return make_fx(fn, decomposition_table=_decompositions(), tracing_mode="symbolic",
                       _allow_non_fake_inputs=True, _error_on_data_dependent_ops=True)(*example)
    finally:
        fx_config.use_duck_shape = duck


class _CompiledBase(nn.Module):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self._reason = unsupported_reason(model)
        self._warned: set[str] = set()
        self._cache: dict[tuple, Any] = {}
        self.compile_s: dict[str, float] = {}
        self.failed: dict[tuple, str] = {}  # variants whose compilation failed (they run eagerly): the reason
        self.training = model.training

    def train(self, mode: bool = True) -> _CompiledBase:
        self.training = mode
        self.model.train(mode)
        return self

    def __getattr__(self, name: str) -> Any:  # config, species, r_max, ... of the wrapped model
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["model"], name)

    def _eager_reason(self, graph: G.Graph) -> str | None:
        if self._reason is not None:
            return self._reason
        if graph[G.POS].shape[0] < 2 or graph[G.EDGE_INDEX].shape[1] < 2:
            return "a graph with fewer than 2 atoms or 2 edges (0/1 shape specialisation)"
        return None

    def forward(self, graph: G.Graph, compute_forces: bool = True, compute_stress: bool = False
                ) -> dict[str, torch.Tensor]:
        reason = self._eager_reason(graph)
        if reason is not None:
            if reason not in self._warned:
                self._warned.add(reason)
                log.warning("compiled model: running eagerly: %s", reason)
            return self.model(graph, compute_forces, compute_stress)
        original = graph
        single = graph[G.PTR].shape[0] == 2
        if single and self.pad_single:  # one structure: add an empty one, so that the batch graph serves
            graph = {**graph, G.PTR: torch.cat([graph[G.PTR], graph[G.PTR][-1:]]),
                     G.CELL: graph[G.CELL].repeat(2, 1, 1), G.PBC: graph[G.PBC].repeat(2, 1)}
        flags = (bool(compute_forces), bool(compute_stress), single and not self.pad_single)
        key = (*flags, graph[G.POS].dtype, graph[G.POS].device)
        if key in self.failed:
            return self.model(original, compute_forces, compute_stress)
        if key not in self._cache:
            variant = _Variant(self.model, *flags)
            t0 = time.perf_counter()
            try:
                compiled = self._compile(variant, graph)
                *outs, bad = self._run(compiled, variant.inputs(self.model, graph))  # torch.compile compiles here
            except Exception as err:
                first = (str(err).strip().splitlines() or [""])[0][:300]
                self.failed[key] = f"compiling {variant.label} failed: {type(err).__name__}: {first}"
                log.warning("compiled model: running eagerly: %s", self.failed[key])
                return self.model(original, compute_forces, compute_stress)
            self._cache[key] = (variant, compiled)
            self.compile_s[variant.label] = time.perf_counter() - t0
            log.info("compiled %s in %.1f s", variant.label, self.compile_s[variant.label])
        else:
            variant, compiled = self._cache[key]
            *outs, bad = self._run(compiled, variant.inputs(self.model, graph))
        if bad:
            self.model.species_index(graph[G.ATOMIC_NUMBERS])  # raises the error that explains it
        out = dict(zip(variant.out_keys, outs))
        if single and self.pad_single:
            out.update({k: out[k][:1] for k in ("energy", "stress") if k in out})
        return out

    def _compile(self, variant: _Variant, graph: G.Graph) -> Any:
        raise NotImplementedError

    def _run(self, compiled: Any, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        raise NotImplementedError


class CompiledPotential(_CompiledBase):
    """`torch.compile` of the traced energy-and-derivatives graph, parameters as inputs (training and eval).
    A single structure runs through the batch graph (padded with an empty structure), so that training and
    validation need one compilation per (forces, stress) setting."""

    pad_single = True

    def _twin(self) -> nn.Module:
        """The fused twin, sharing the model's current tensors and mode (rebuilt when the model was cast or
        moved: its own tables must follow)."""
        first = next(self.model.parameters())
        key, twin = self.__dict__.get("_fused", (None, None))  # not a submodule: its tensors are the model's
        if key != (first.device, first.dtype):
            twin = fused_twin(self.model)
            self.__dict__["_fused"] = ((first.device, first.dtype), twin)
        share_tensors(twin, self.model)
        return twin.train(self.model.training)

    def _state(self) -> list[torch.Tensor]:
        twin = self._twin()
        params = [p if self.model.training else p.detach() for p in twin.parameters()]
        return params + list(twin.buffers())

    def _compile(self, variant: _Variant, graph: G.Graph) -> Callable:
        twin = self._twin()
        names = [n for n, _ in twin.named_parameters()] + [n for n, _ in twin.named_buffers()]
        traced = _trace(variant.function(twin, names), variant.example(twin, graph) + self._state())
        return torch.compile(traced, dynamic=True, fullgraph=True)

    def _run(self, compiled: Callable, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        return compiled(*inputs, *self._state())


class FrozenPotential(_CompiledBase):
    """AOTInductor-compiled inference graph with the weights frozen as constants (eval mode only). Single
    structures get their own graph (a static structure count), batches another."""

    pad_single = False

    def __init__(self, model: nn.Module, package_dir: str | Path | None = None) -> None:
        super().__init__(model)
        self._dir = Path(package_dir) if package_dir is not None else Path(tempfile.mkdtemp(prefix="qallegro-aoti-"))
        self._dir.mkdir(parents=True, exist_ok=True)
        # the weights are snapshotted at compilation; their version counters tell when they change in place
        # (optimizer steps, load_state_dict, EMA swaps). Casting or moving the model makes new tensors: wrap anew.
        self._tensors = list(model.parameters()) + list(model.buffers())
        self._versions = self._weight_versions()

    def _weight_versions(self) -> tuple[int, ...]:
        return tuple(t._version for t in self._tensors)

    def _eager_reason(self, graph: G.Graph) -> str | None:
        if self.model.training:
            return "training mode (frozen weights serve inference only; use compile_model(model, training=True))"
        versions = self._weight_versions()
        if versions != self._versions:
            if self._cache:
                log.info("compiled model: the weights changed since compilation; recompiling")
            self._cache.clear()
            self._versions = versions
        return super()._eager_reason(graph)

    def _compile(self, variant: _Variant, graph: G.Graph) -> Callable:
        model = self.model
        flags = [p.requires_grad for p in model.parameters()]
        for p in model.parameters():
            p.requires_grad_(False)
        try:
            example = variant.example(model, graph)
            traced = _trace(variant.function(fused_twin(model), None), example)
            n_atoms = torch.export.Dim("n_atoms", min=2)
            n_edges = torch.export.Dim("n_edges", min=2)
            if variant.single:
                per_graph = None
                ptr = None
            else:
                n_graphs = torch.export.Dim("n_graphs", min=2)
                per_graph, ptr = {0: n_graphs}, {0: n_graphs + 1}
            shapes: list[Any] = [{0: n_atoms}, per_graph, per_graph, {1: n_edges}, {0: n_edges}, {0: n_atoms}, ptr,
                                 {0: n_atoms}]
            if variant.padded:
                shapes.append({0: torch.export.Dim("nmax", min=2)})
            exported = torch.export.export(traced, tuple(example), dynamic_shapes=tuple(shapes))
            path = self._dir / f"{abs(hash((variant.label, self._versions))):x}.pt2"
            torch._inductor.aoti_compile_and_package(exported, package_path=str(path))
            return torch._inductor.aoti_load_package(str(path))
        finally:
            for p, flag in zip(model.parameters(), flags):
                p.requires_grad_(flag)

    def _run(self, compiled: Callable, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        with torch.inference_mode():
            return compiled(inputs)


def compile_model(model: nn.Module, training: bool = True, package_dir: str | Path | None = None) -> nn.Module:
    """`model` (an `AllegroPotential`) with its energy-and-derivatives function compiled; see the module
    docstring. `training=True`: for training and validation (`CompiledPotential`); `training=False`: inference
    with frozen weights (`FrozenPotential`, AOTInductor packages written to `package_dir`, default a temp dir)."""
    return CompiledPotential(model) if training else FrozenPotential(model, package_dir)
