"""Legacy Allegro's tensor track: irreps per layer, the weightless channel-wise tensor product ("uuu") and the
channel-and-path mixing linear layer, as dense batched contractions (Clebsch-Gordan tables precomputed).

Features use the strided layout [E, u, d]: u channels, d concatenated irrep components (e3nn real basis).
An irrep is a pair (l, p) with parity p = +1 (even) or -1 (odd).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from e3nn import o3
from torch import nn

Irrep = tuple[int, int]


def irrep_str(ir: Irrep) -> str:
    return f"{ir[0]}{'e' if ir[1] == 1 else 'o'}"


def irreps_str(irreps: list[Irrep]) -> str:
    return "+".join(irrep_str(ir) for ir in irreps)


def _sorted(irreps) -> list[Irrep]:
    """Scalars first; then by l, even before odd."""
    return sorted(set(irreps), key=lambda ir: (ir[0], -ir[1]))


def sh_irreps(l_max: int, parity: str) -> list[Irrep]:
    """Irreps of the spherical harmonics Y^0..Y^l_max (all labelled even for `so3`)."""
    return [(l, 1 if parity == "so3" else (-1) ** l) for l in range(l_max + 1)]


def allowed_irreps(l_max: int, parity: str) -> list[Irrep]:
    if parity == "o3_full":
        return _sorted((l, p) for l in range(l_max + 1) for p in (1, -1))
    return sh_irreps(l_max, parity)


def _products(a: Irrep, b: Irrep) -> list[Irrep]:
    return [(l, a[1] * b[1]) for l in range(abs(a[0] - b[0]), a[0] + b[0] + 1)]


def _paths(irreps_in: list[Irrep], irreps_sh: list[Irrep], irreps_out: list[Irrep]) -> list[tuple[int, int, int]]:
    """(i_in, i_sh, i_out) for every allowed coupling, ordered by output irrep (scalars first)."""
    out = []
    for i3, ir3 in enumerate(irreps_out):
        for i1, ir1 in enumerate(irreps_in):
            for i2, ir2 in enumerate(irreps_sh):
                if ir3 in _products(ir1, ir2):
                    out.append((i1, i2, i3))
    return out


@dataclass(frozen=True)
class LayerIrreps:
    irreps_in: list[Irrep]
    irreps_out: list[Irrep]
    paths: list[tuple[int, int, int]]

    @property
    def n_scalar_paths(self) -> int:
        return sum(1 for _, _, i3 in self.paths if self.irreps_out[i3] == (0, 1))


def layer_irreps(l_max: int, parity: str, num_layers: int) -> list[LayerIrreps]:
    """Input/output irreps and paths of every layer (forward: all reachable allowed irreps, last layer only 0e;
    backward: drop irreps that cannot reach the next layer's outputs)."""
    sh = sh_irreps(l_max, parity)
    allowed = allowed_irreps(l_max, parity)
    outs: list[list[Irrep]] = []
    cur = sh
    for layer in range(num_layers):
        if layer == num_layers - 1:
            nxt = [(0, 1)]
        else:
            nxt = _sorted(ir for a in cur for b in sh for ir in _products(a, b) if ir in allowed)
        outs.append(nxt)
        cur = nxt
    for layer in range(num_layers - 2, -1, -1):
        target = set(outs[layer + 1])
        outs[layer] = [a for a in outs[layer] if any(ir in target for b in sh for ir in _products(a, b))]
    ins = [sh] + outs[:-1]
    return [LayerIrreps(i, o, _paths(i, sh, o)) for i, o in zip(ins, outs)]


def _offsets(irreps: list[Irrep]) -> list[int]:
    off = [0]
    for l, _ in irreps:
        off.append(off[-1] + 2 * l + 1)
    return off


class ChannelwiseTensorProduct(nn.Module):
    """Weightless "uuu" tensor product of edge features with the centre's environment, one output slot per path.

    T[e, c, slot] = sqrt(2 l3 + 1) * sum_{m1, m2} C^{l1 l2 l3}_{m1 m2 m3} x[e, c, m1] y[e, c, m2], where C is e3nn's
    `wigner_3j`. The output slots are grouped per output irrep o as (m3, path) blocks, scalars first.

    Shapes: x [E, u, d_in], y [E, u, d_sh] -> [E, u, K], K = sum over paths of (2 l3 + 1).
    """

    def __init__(self, irreps: LayerIrreps, irreps_sh: list[Irrep]) -> None:
        super().__init__()
        oi, osh, oo = _offsets(irreps.irreps_in), _offsets(irreps_sh), _offsets(irreps.irreps_out)
        d_in, d_sh = oi[-1], osh[-1]
        n_per_out = [sum(1 for p in irreps.paths if p[2] == o) for o in range(len(irreps.irreps_out))]
        block_start = [0]
        for o, (l3, _) in enumerate(irreps.irreps_out):
            block_start.append(block_start[-1] + (2 * l3 + 1) * n_per_out[o])
        cg = torch.zeros(d_in, d_sh, block_start[-1], dtype=torch.float64)
        seen = [0] * len(irreps.irreps_out)
        for i1, i2, i3 in irreps.paths:
            (l1, _), (l2, _), (l3, _) = irreps.irreps_in[i1], irreps_sh[i2], irreps.irreps_out[i3]
            w3j = o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * math.sqrt(2 * l3 + 1)
            k = seen[i3]
            seen[i3] += 1
            slots = block_start[i3] + torch.arange(2 * l3 + 1) * n_per_out[i3] + k
            cg[oi[i1]:oi[i1 + 1], osh[i2]:osh[i2 + 1], slots] = w3j
        self.d_in, self.d_sh, self.dim_out = d_in, d_sh, block_start[-1]
        self.n_per_out = n_per_out
        self.block_start = block_start
        self.n_scalar = irreps.n_scalar_paths
        # "Diagonal" when every path pairs component m of x with component m of y (l x l -> 0 with matching
        # layouts, e.g. the last layer): then T = (x * y) @ D, skipping the outer product.
        nz = cg.abs() > 1e-12
        diag = d_in == d_sh and not (nz & ~torch.eye(d_in, dtype=torch.bool)[:, :, None]).any()
        self.diagonal = bool(diag)
        dtype = torch.get_default_dtype()
        if self.diagonal:
            self.register_buffer("cg", torch.diagonal(cg, dim1=0, dim2=1).T.contiguous().to(dtype))  # [d, K]
        else:
            self.register_buffer("cg", cg.reshape(d_in * d_sh, -1).to(dtype))  # [d_in * d_sh, K]
        # Rank-1 form for inputs x[e, c, (l1, m1)] = a[e, c, l1] * Y[e, (l1, m1)] (the first layer):
        # T[e, c, :] = v[e, c, :] @ B_e with v = a (x) y per channel and B_e[(l1, j), k] = sum_m1 Y[e, m1] C[m1, j, k]
        # computed per edge, never per channel.
        n_in = len(irreps.irreps_in)
        rank1 = torch.zeros(d_in, n_in, d_sh, block_start[-1], dtype=torch.float64)
        for b in range(n_in):
            rank1[oi[b]:oi[b + 1], b] = cg[oi[b]:oi[b + 1]]
        self.n_in = n_in
        self.register_buffer("cg_rank1", rank1.reshape(d_in, -1).to(dtype))  # [d_in, n_in * d_sh * K]
        self.register_buffer("in_index", torch.repeat_interleave(
            torch.arange(n_in), torch.tensor([2 * l + 1 for l, _ in irreps.irreps_in])), persistent=False)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        e, u = x.shape[0], x.shape[1]
        if self.diagonal:
            return torch.matmul(x * y, self.cg)
        outer = (x.unsqueeze(-1) * y.unsqueeze(-2)).reshape(e, u, self.d_in * self.d_sh)
        return torch.matmul(outer, self.cg)

    def forward_rank1(self, a: torch.Tensor, sh: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Same product for x = a (per channel and input irrep) times the spherical harmonics `sh`.

        Shapes: a [E, u, n_in], sh [E, d_in], y [E, u, d_sh] -> [E, u, K].
        """
        e, u = a.shape[0], a.shape[1]
        if self.diagonal:
            return self.forward(a[:, :, self.in_index] * sh.unsqueeze(1), y)
        b = torch.matmul(sh, self.cg_rank1).reshape(e, self.n_in * self.d_sh, self.dim_out)
        v = (a.unsqueeze(-1) * y.unsqueeze(-2)).reshape(e, u, self.n_in * self.d_sh)
        return torch.bmm(v, b)


class ChannelPathLinear(nn.Module):
    """Equivariant linear layer mixing channels and paths into each output irrep (legacy Allegro "uuulin").

    out[e, c', (o, m)] = 1/sqrt(u n_o) sum_{c, p -> o} W_o[c', c, p] T[e, c, (o, m, p)], W ~ N(0, 1).
    Shapes: [E, u, K] -> [E, u_out, d_out].
    """

    def __init__(self, tp: ChannelwiseTensorProduct, irreps_out: list[Irrep], u_in: int, u_out: int) -> None:
        super().__init__()
        self.blocks = [(tp.block_start[o], 2 * l + 1, tp.n_per_out[o]) for o, (l, _) in enumerate(irreps_out)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(u_in * n, u_out)) for _, _, n in self.blocks
        )
        self.scales = [1.0 / math.sqrt(u_in * n) for _, _, n in self.blocks]
        self.u_out = u_out

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        e, u = t.shape[0], t.shape[1]
        outs = []
        for (start, dim, n), w, scale in zip(self.blocks, self.weights, self.scales):
            block = t[:, :, start:start + dim * n].reshape(e, u, dim, n).transpose(1, 2).reshape(e, dim, u * n)
            outs.append(torch.matmul(block, w * scale).transpose(1, 2))
        return torch.cat(outs, dim=-1)
