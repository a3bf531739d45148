"""The full potential: graph -> per-edge energies -> per-atom energies -> total energy, forces and stress."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from qallegro.data import graph as G
from qallegro.errors import ModelError
from qallegro.models.allegro import AllegroBody
from qallegro.models.variants import make_head


def _per_species(value: Any, n: int, key: str) -> torch.Tensor:
    t = torch.as_tensor(1.0 if value is None else value, dtype=torch.float64).flatten()
    if t.numel() == 1:
        t = t.expand(n).clone()
    if t.numel() != n:
        raise ModelError(f"model config: {key}: expected 1 or {n} values (one per species), got {t.numel()}")
    return t


class AllegroPotential(nn.Module):
    """Allegro (or a variant) as an interatomic potential.

    E_i = scale_Z * (1/sqrt(avg_num_neighbors)) * sum_j eps_ij + shift_Z; E = sum_i E_i; F = -dE/dR; stress from the
    symmetric strain derivative (periodic graphs). Per-atom and total energies are accumulated in float64 whatever
    the network dtype; forces and stress come out in the dtype of the graph's positions.

    `forward(graph, compute_forces=True, compute_stress=False)` returns a dict with `energy` [B], `atomic_energy`
    [N], and `forces` [N, 3] / `stress` [B, 3, 3] when asked. In training mode the derivatives keep their graph
    (`create_graph=True`), so a force loss can be backpropagated. `fused`: the tensor products in the forms the
    compiled models trace (`qallegro.models.compile.fused_twin`); the same numbers up to rounding.
    """

    def __init__(self, cfg: dict[str, Any], species: list[int], fused: bool = False) -> None:
        super().__init__()
        self.config = cfg
        self.species = list(species)
        n = len(species)
        self.body = AllegroBody(cfg, n, fused)
        self.head = make_head(cfg, self.body.latent_dim)
        self.inv_sqrt_nbar = 1.0 / math.sqrt(float(cfg["avg_num_neighbors"]))
        type_of = torch.full((119,), -1, dtype=torch.int64)
        type_of[torch.as_tensor(self.species)] = torch.arange(n)
        self.register_buffer("type_of", type_of, persistent=False)
        self.register_buffer("shifts", _per_species(cfg["per_species_rescale_shifts"], n, "per_species_rescale_shifts"))
        self.register_buffer("scales", _per_species(cfg["per_species_rescale_scales"], n, "per_species_rescale_scales"))

    @property
    def r_max(self) -> float:
        return self.body.r_max

    def _apply(self, fn, recurse=True):
        # the energy scale/shift stay float64 when the network is cast (model.float(), model.to(dtype))
        keep = {name: getattr(self, name) for name in ("shifts", "scales")}
        out = super()._apply(fn, recurse)
        for name, old in keep.items():
            setattr(self, name, old.to(device=getattr(self, name).device))
        return out

    def species_index(self, atomic_numbers: torch.Tensor) -> torch.Tensor:
        if atomic_numbers.numel() == 0:
            return atomic_numbers.clone()
        lo, hi = torch.aminmax(atomic_numbers)
        if lo < 1 or hi > 118:
            raise ModelError("atomic numbers must be in 1..118")
        types = self.type_of[atomic_numbers]
        if types.min() < 0:
            unknown = sorted(set(atomic_numbers[types < 0].tolist()))
            raise ModelError(f"species {unknown} not in the model's species {self.species}")
        return types

    def forward(self, graph: G.Graph, compute_forces: bool = True, compute_stress: bool = False
                ) -> dict[str, torch.Tensor]:
        types = self.species_index(graph[G.ATOMIC_NUMBERS])
        return self.compute(types, graph, compute_forces, compute_stress)

    def compute(self, types: torch.Tensor, graph: G.Graph, compute_forces: bool = True,
                compute_stress: bool = False, nmax: int | None = None) -> dict[str, torch.Tensor]:
        """`forward` after the species check: tensor operations only, no data-dependent Python control flow (what
        `qallegro.models.compile` traces). `types` [N] species indices; `nmax` see `AllegroBody.forward`."""
        pos = graph[G.POS]
        batch = graph[G.BATCH]
        n_graphs = graph[G.PTR].shape[0] - 1
        cell = graph[G.CELL]
        center, neighbor = graph[G.EDGE_INDEX][0], graph[G.EDGE_INDEX][1]
        need_grad = compute_forces or compute_stress
        if need_grad:
            pos = pos.detach().requires_grad_(True)
        if compute_stress:
            strain = torch.zeros(n_graphs, 3, 3, dtype=pos.dtype, device=pos.device, requires_grad=True)
            sym = 0.5 * (strain + strain.transpose(-1, -2))
            pos_used = pos + torch.einsum("ni,nij->nj", pos, sym[batch])
            cell = cell + torch.einsum("bij,bjk->bik", cell, sym)
        else:
            pos_used = pos
        shift_vec = (graph[G.EDGE_CELL_SHIFT].to(cell.dtype).unsqueeze(-1) * cell[batch[center]]).sum(1)
        edge_vec = pos_used[neighbor] - pos_used[center] + shift_vec
        dtype = next(self.parameters()).dtype
        h, cut = self.body(types, graph[G.EDGE_INDEX], edge_vec.to(dtype), nmax)
        edge_energy = self.head(h, cut)  # [E]
        atomic = torch.zeros(pos.shape[0], dtype=dtype, device=pos.device).index_add(0, center, edge_energy)
        atomic = (atomic * self.inv_sqrt_nbar).to(torch.float64) * self.scales[types] + self.shifts[types]
        energy = torch.zeros(n_graphs, dtype=torch.float64, device=pos.device).index_add(0, batch, atomic)
        out = {"energy": energy, "atomic_energy": atomic}
        if need_grad:
            inputs = [pos] + ([strain] if compute_stress else [])
            grads = torch.autograd.grad(energy.sum(), inputs, create_graph=self.training, allow_unused=True)
            if compute_forces:
                f = grads[0]
                out["forces"] = torch.zeros_like(pos) if f is None else -f
            if compute_stress:
                c = graph[G.CELL]
                vol = (torch.linalg.cross(c[:, 0], c[:, 1], dim=-1) * c[:, 2]).sum(-1).abs()
                ds = grads[1] if grads[1] is not None else torch.zeros_like(strain)
                periodic = graph[G.PBC].any(dim=-1) & (vol > 0)
                out["stress"] = torch.where(periodic[:, None, None], ds / vol.clamp_min(1e-12)[:, None, None],
                                            torch.zeros_like(ds))
        return out
