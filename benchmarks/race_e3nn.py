"""The slow reference for the race: qallegro's Allegro with every tensor product replaced by a generic
`e3nn.o3.TensorProduct` ("uuu" instructions, one output irrep per path, e3nn's mul_ir layout). Everything else
(MLPs, environment sums, linear mixing) is qallegro's, so the ratio isolates the tensor-product formulation.
Benchmark-only code: the package never uses it.
"""

from __future__ import annotations

import itertools

import torch
from e3nn import o3
from qallegro.models.tensor_product import _offsets, cg_table
from torch import nn


def _irreps(mul: int, irreps: list[tuple[int, int]]) -> o3.Irreps:
    return o3.Irreps([(mul, (l, p)) for l, p in irreps])


class E3nnTensorProduct(nn.Module):
    """Drop-in for one layer's qallegro tensor product (same call and outputs, see
    `qallegro.models.tensor_product.TensorProduct`) computed with `o3.TensorProduct`."""

    def __init__(self, ours: nn.Module, irreps, irreps_sh, u: int, first: bool) -> None:
        super().__init__()
        table = cg_table(irreps, irreps_sh)
        self.first, self.last = first, table.diagonal
        self.dim_out = table.dim_out
        self.block_sizes = [b - a for a, b in itertools.pairwise(table.block_start)]
        self.u = u
        self.off_in, self.off_sh = _offsets(irreps.irreps_in), _offsets(irreps_sh)
        # output irreps: one entry per path, in qallegro's slot order (per output irrep, paths in order)
        order = [p for o in range(len(irreps.irreps_out)) for p in irreps.paths if p[2] == o]
        self.path_dims = [2 * irreps.irreps_out[o][0] + 1 for _, _, o in order]
        self.path_block = [o for _, _, o in order]
        self.tp = o3.TensorProduct(
            _irreps(u, irreps.irreps_in), _irreps(u, irreps_sh),
            _irreps(u, [irreps.irreps_out[o] for _, _, o in order]),
            [(i1, i2, k, "uuu", False) for k, (i1, i2, _) in enumerate(order)],
            irrep_normalization="component", path_normalization="none")
        self.register_buffer("in_index", torch.repeat_interleave(
            torch.arange(len(table.in_dims)), torch.tensor(table.in_dims)), persistent=False)

    def _to_e3nn(self, x: torch.Tensor, offsets: list[int]) -> torch.Tensor:
        """[E, d, u] -> [E, sum_irreps u (2l+1)] (mul_ir)."""
        e = x.shape[0]
        return torch.cat([x[:, a:b].transpose(1, 2).reshape(e, -1) for a, b in itertools.pairwise(offsets)], -1)

    def _product(self, x: torch.Tensor, y: torch.Tensor) -> list[torch.Tensor]:
        e, u = x.shape[0], self.u
        out = self.tp(self._to_e3nn(x, self.off_in), self._to_e3nn(y, self.off_sh))
        paths = out.split([u * d for d in self.path_dims], dim=-1)
        blocks = []
        for o, size in enumerate(self.block_sizes):
            ps = [p.view(e, u, d) for p, d, b in zip(paths, self.path_dims, self.path_block) if b == o]
            blocks.append(torch.stack(ps, dim=-1).permute(0, 2, 3, 1).reshape(e, size, u))  # [E, (m, p), u]
        return blocks

    def forward(self, x: torch.Tensor, sh: torch.Tensor, env: torch.Tensor, center: torch.Tensor,
                slots) -> tuple[torch.Tensor, list[torch.Tensor]]:
        if self.first:  # x is a: the features are a (x) Y
            x = x.index_select(1, self.in_index) * sh.unsqueeze(-1)
        blocks = self._product(x, env.index_select(0, center))
        e, n0, u = blocks[0].shape
        scalars = blocks[0].transpose(1, 2).reshape(e, u * n0)  # (channel, path)
        return scalars, ([] if self.last else blocks)


def use_e3nn(model: nn.Module) -> nn.Module:
    """Replace the tensor products of `model` (an AllegroPotential) by e3nn ones, in place."""
    body = model.body
    for k, (tp, irr) in enumerate(zip(body.tps, body.layers_irreps)):
        body.tps[k] = E3nnTensorProduct(tp, irr, body.irreps_sh, body.u, first=k == 0).to(
            next(model.parameters()).dtype)
    return model
