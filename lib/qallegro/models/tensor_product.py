"""Legacy Allegro's tensor track: irreps per layer, the weightless channel-wise tensor product ("uuu") and the
channel-and-path mixing linear layer, as dense batched contractions (Clebsch-Gordan tables precomputed).

Features use the strided layout [E, u, d]: u channels, d concatenated irrep components (e3nn real basis).
An irrep is a pair (l, p) with parity p = +1 (even) or -1 (odd).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

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
    ins = [sh, *outs[:-1]]
    return [LayerIrreps(i, o, _paths(i, sh, o)) for i, o in zip(ins, outs)]


def _offsets(irreps: list[Irrep]) -> list[int]:
    off = [0]
    for l, _ in irreps:
        off.append(off[-1] + 2 * l + 1)
    return off


@dataclass(frozen=True)
class CGTable:
    """The Clebsch-Gordan table of one layer's "uuu" tensor product and the layout of its output slots.

    T[e, slot, c] = sqrt(2 l3 + 1) * sum_{m1, m2} C^{l1 l2 l3}_{m1 m2 m3} x[e, c, m1] y[e, c, m2], where C is e3nn's
    `wigner_3j`. The output slots are grouped per output irrep o as (m3, path) blocks, scalars first. `cg` is
    [d_in, d_sh, K] (float64, exact zeros off the couplings); `diagonal`: every path pairs component m of x with
    component m of y (the last layer, l x l -> 0).
    """

    cg: torch.Tensor
    d_in: int
    d_sh: int
    n_per_out: list[int]
    block_start: list[int]
    block_dims: list[int]
    n_scalar: int
    in_dims: list[int]                 # 2 l + 1 of each input irrep
    path_inputs: list[list[int]]       # per output block: the input irrep of each path

    @property
    def dim_out(self) -> int:
        return self.block_start[-1]

    @property
    def nonzero(self) -> torch.Tensor:
        return self.cg != 0

    @property
    def diagonal(self) -> bool:
        eye = torch.eye(self.d_in, dtype=torch.bool)[:, :, None] if self.d_in == self.d_sh else None
        return eye is not None and not (self.nonzero & ~eye).any()


def cg_table(irreps: LayerIrreps, irreps_sh: list[Irrep]) -> CGTable:
    """The table of the layer with `irreps` on spherical harmonics `irreps_sh`."""
    oi, osh = _offsets(irreps.irreps_in), _offsets(irreps_sh)
    n_out = len(irreps.irreps_out)
    n_per_out = [sum(1 for p in irreps.paths if p[2] == o) for o in range(n_out)]
    block_start = [0]
    for o, (l3, _) in enumerate(irreps.irreps_out):
        block_start.append(block_start[-1] + (2 * l3 + 1) * n_per_out[o])
    cg = torch.zeros(oi[-1], osh[-1], block_start[-1], dtype=torch.float64)
    path_inputs: list[list[int]] = [[] for _ in range(n_out)]
    for i1, i2, i3 in irreps.paths:
        (l1, _), (l2, _), (l3, _) = irreps.irreps_in[i1], irreps_sh[i2], irreps.irreps_out[i3]
        w3j = o3.wigner_3j(l1, l2, l3, dtype=torch.float64) * math.sqrt(2 * l3 + 1)
        slots = block_start[i3] + torch.arange(2 * l3 + 1) * n_per_out[i3] + len(path_inputs[i3])
        cg[oi[i1]:oi[i1 + 1], osh[i2]:osh[i2 + 1], slots] = w3j
        path_inputs[i3].append(i1)
    cg = torch.where(cg.abs() > 1e-12, cg, torch.zeros_like(cg))
    return CGTable(cg, oi[-1], osh[-1], n_per_out, block_start, [2 * l + 1 for l, _ in irreps.irreps_out],
                   irreps.n_scalar_paths, [2 * l + 1 for l, _ in irreps.irreps_in], path_inputs)


class TensorProduct(nn.Module):
    """Base of the weightless "uuu" tensor products of one layer (`CGTable`); each subclass is one exact form
    with one `forward`, fixed when the model is built (`tensor_product` picks it). Every form is called alike:

        scalars, blocks = tp(x, sh, env, center, slots)

    x [E, d_in, u] the edge features (the first layer: a [E, n_in, u], the features being a (x) Y), sh [E, d_sh]
    the spherical harmonics, env [N, d_sh, u] the centre atoms' environments, center [E], slots the per-centre
    layout (`CentreSlots`, None where no layer needs it). Layout: channels last (the 16-64 channels are the
    contiguous, vectorised axis). Returns the scalars [E, u * n_0] in (channel, path) order (what the latent MLP
    reads) and the per-output-irrep blocks of T, [E, (2 l_o + 1) n_o, u] each (what the mixing linear layer
    reads; none for the last layer, whose diagonal product computes the scalars only).
    """

    def __init__(self, table: CGTable) -> None:
        super().__init__()
        self.d_in, self.d_sh, self.dim_out = table.d_in, table.d_sh, table.dim_out
        self.n_per_out, self.block_start, self.block_dims = table.n_per_out, table.block_start, table.block_dims
        self.n_scalar = table.n_scalar
        self.register_buffer("in_index", torch.repeat_interleave(
            torch.arange(len(table.in_dims)), torch.tensor(table.in_dims)), persistent=False)

    @property
    def block_sizes(self) -> list[int]:
        """Sizes of the per-output-irrep blocks of the K output slots."""
        return [b - a for a, b in zip(self.block_start[:-1], self.block_start[1:])]

    @staticmethod
    def scalars(blocks: list[torch.Tensor]) -> torch.Tensor:
        """The 0e block (it comes first) as [E, u * n_0], (channel, path) order."""
        e, n0, u = blocks[0].shape
        return blocks[0].transpose(1, 2).reshape(e, u * n0)


class DiagonalProduct(TensorProduct):
    """The last layer (l x l -> 0): T = (x * y) @ D, D [d, K], y = env[center]; scalars only, [E, u * K]."""

    def __init__(self, table: CGTable) -> None:
        super().__init__(table)
        diag = torch.diagonal(table.cg, dim1=0, dim2=1).T  # [d, K]
        self.register_buffer("cg_diag", diag.contiguous().to(torch.get_default_dtype()), persistent=False)

    def forward(self, x: torch.Tensor, sh: torch.Tensor, env: torch.Tensor, center: torch.Tensor,
                slots: CentreSlots | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        e, d, u = x.shape
        xy = x * env.index_select(0, center)
        return torch.mm(xy.transpose(1, 2).reshape(e * u, d), self.cg_diag).view(e, u * self.dim_out), []


def diagonal_ranges(table: CGTable) -> list[tuple[int, int, float]] | None:
    """For a diagonal table: each path p sums components a..b of x * y with one coefficient (1/sqrt(2l+1) for
    e3nn's tables) -> [(a, b, coefficient)]; None when a path does not have that shape."""
    out = []
    for col in torch.diagonal(table.cg, dim1=0, dim2=1):
        rows = col.nonzero().flatten().tolist()
        a, b = rows[0], rows[-1] + 1
        if rows != list(range(a, b)) or not torch.allclose(col[a:b], col[a], rtol=1e-14, atol=0):
            return None
        out.append((a, b, float(col[a])))
    return out


class SummedDiagonalProduct(TensorProduct):
    """The fused form of `DiagonalProduct` (what a loop-fusing compiler runs best): per-path sums of x * y."""

    def __init__(self, table: CGTable, ranges: list[tuple[int, int, float]]) -> None:
        super().__init__(table)
        self.ranges = ranges

    def forward(self, x: torch.Tensor, sh: torch.Tensor, env: torch.Tensor, center: torch.Tensor,
                slots: CentreSlots | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        e, _, u = x.shape
        xy = x * env.index_select(0, center)
        return torch.stack([xy[:, a:b].sum(1) * c for a, b, c in self.ranges], -1).view(e, u * self.dim_out), []


class DiagonalFirstProduct(nn.Module):
    """A one-layer model: the first layer's features x[e, m1, c] = a[e, i(m1), c] Y[e, m1] into the diagonal
    product (called as `TensorProduct`, with a [E, n_in, u] in place of x)."""

    def __init__(self, diagonal: DiagonalProduct | SummedDiagonalProduct) -> None:
        super().__init__()
        self.diagonal = diagonal

    def forward(self, a: torch.Tensor, sh: torch.Tensor, env: torch.Tensor, center: torch.Tensor,
                slots: CentreSlots | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        return self.diagonal(a.index_select(1, self.diagonal.in_index) * sh.unsqueeze(-1), sh, env, center, slots)


class RankOneProduct(TensorProduct):
    """The first layer, x[e, m1, c] = a[e, i(m1), c] Y[e, m1]: the table is contracted with Y once per edge,
    G[e, slot, m2] = sum_m1 Y[e, m1] C[m1, m2, slot], then one batched [K, d_sh] @ [d_sh, u] product per edge and
    the factor a of each path's input irrep; no per-channel outer product (y = env[center]; called with a
    [E, n_in, u] in place of x)."""

    def __init__(self, table: CGTable) -> None:
        super().__init__(table)
        self.register_buffer("cg_rank1", table.cg.permute(0, 2, 1).reshape(table.d_in, table.dim_out * table.d_sh)
                             .to(torch.get_default_dtype()), persistent=False)
        n_in = len(table.in_dims)
        # per output block: the input irrep of each path (None when it is 0, 1, ..., n_in - 1: no gather needed)
        self.path_inputs = [None if pi == list(range(n_in)) else pi for pi in table.path_inputs]
        for o, pi in enumerate(self.path_inputs):
            if pi is not None:
                self.register_buffer(f"path_inputs_{o}", torch.tensor(pi), persistent=False)

    def slots(self, sh: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """T / a: [E, K, u]."""
        e = sh.shape[0]
        return torch.bmm(torch.mm(sh, self.cg_rank1).view(e, self.dim_out, self.d_sh), y)

    def forward(self, a: torch.Tensor, sh: torch.Tensor, env: torch.Tensor, center: torch.Tensor,
                slots: CentreSlots | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        e, u = a.shape[0], a.shape[2]
        blocks = []
        for o, block in enumerate(self.slots(sh, env.index_select(0, center)).split(self.block_sizes, dim=1)):
            dim, n = self.block_dims[o], self.n_per_out[o]
            factor = a if self.path_inputs[o] is None else a.index_select(1, getattr(self, f"path_inputs_{o}"))
            blocks.append((block.view(e, dim, n, u) * factor.unsqueeze(1)).view(e, dim * n, u))
        return self.scalars(blocks), blocks


class SparseRankOneProduct(RankOneProduct):
    """The fused form of `RankOneProduct`: a sum over only the non-zero coefficients (83 of 2835 for l_max = 2;
    gathered rows of Y and y, no [E, K, d_sh] table). Term j adds coef_j * Y[e, m1_j] * y[e, m2_j, :] to slot k_j.
    """

    def __init__(self, table: CGTable) -> None:
        super().__init__(table)
        k_nz, m1_nz, m2_nz = table.nonzero.permute(2, 0, 1).nonzero(as_tuple=True)
        self.register_buffer("sparse_m1", m1_nz, persistent=False)
        self.register_buffer("sparse_m2", m2_nz, persistent=False)
        self.register_buffer("sparse_slot", k_nz, persistent=False)
        self.register_buffer("sparse_coef", table.cg[m1_nz, m2_nz, k_nz].unsqueeze(-1).to(torch.get_default_dtype()),
                             persistent=False)

    def slots(self, sh: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        e, u = y.shape[0], y.shape[2]
        # Y is broadcast over the channels before the gather: the force backward then sums over channels once per
        # component of Y (9 per edge for l_max = 2), not once per coefficient
        sh_u = sh.unsqueeze(-1).expand(e, self.d_in, u)
        terms = sh_u.index_select(1, self.sparse_m1) * y.index_select(1, self.sparse_m2) * self.sparse_coef
        return terms.new_zeros(e, self.dim_out, u).index_add(1, self.sparse_slot, terms)


class AtomCentredProduct(TensorProduct):
    """Any other layer: the environment belongs to the centre atom, so the table is contracted with it once per
    atom, M[i, c, m1, slot] = sum_m2 C[m1, m2, slot] env[i, m2, c]; the edges of each centre are laid out in `nmax`
    padded rows and one [nmax, d_in] @ [d_in, K] product per (atom, channel) finishes it (also the fused form)."""

    def __init__(self, table: CGTable) -> None:
        super().__init__(table)
        self.register_buffer("cg_atom", table.cg.permute(1, 0, 2).reshape(table.d_sh, table.d_in * table.dim_out)
                             .to(torch.get_default_dtype()), persistent=False)

    def forward(self, x: torch.Tensor, sh: torch.Tensor, env: torch.Tensor, center: torch.Tensor,
                slots: CentreSlots | None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        n, u, pad, k = env.shape[0], env.shape[2], slots.nmax, self.dim_out
        m = torch.mm(env.transpose(1, 2).reshape(n * u, self.d_sh), self.cg_atom).view(n * u, self.d_in, k)
        xp = x.new_zeros(n * pad, self.d_in, u).index_copy(0, slots.slot, x)
        xp = xp.view(n, pad, self.d_in, u).permute(0, 3, 1, 2).reshape(n * u, pad, self.d_in)
        t = torch.bmm(xp, m).view(n, u, pad, k).permute(0, 2, 3, 1).reshape(n * pad, k, u)
        blocks = list(t.index_select(0, slots.slot).split(self.block_sizes, dim=1))
        return self.scalars(blocks), blocks


def tensor_product(irreps: LayerIrreps, irreps_sh: list[Irrep], first: bool, fused: bool = False) -> nn.Module:
    """The tensor product of one layer in its form: rank-1 (`first`), diagonal (the last layer) or atom-centred;
    `fused` picks the forms a loop-fusing compiler runs best (what `qallegro.models.compile` traces); eager models
    keep the BLAS forms (benchmarks/bench_model_speed.py times them)."""
    table = cg_table(irreps, irreps_sh)
    if table.diagonal:
        ranges = diagonal_ranges(table) if fused else None
        diag = SummedDiagonalProduct(table, ranges) if ranges is not None else DiagonalProduct(table)
        return DiagonalFirstProduct(diag) if first else diag
    if first:
        return SparseRankOneProduct(table) if fused else RankOneProduct(table)
    return AtomCentredProduct(table)


class CentreSlots(NamedTuple):
    """Edges laid out per centre atom: edge e sits in row `slot[e]` = centre * nmax + (its rank among the edges of
    that centre) of an [N * nmax] padded table."""

    slot: torch.Tensor
    nmax: int


def neighbour_counts(center: torch.Tensor, n_atoms: int) -> torch.Tensor:
    """The number of edges of each centre atom, [N], from the edges' centres `center` [E]."""
    return torch.zeros(n_atoms, dtype=center.dtype, device=center.device).index_add(
        0, center, torch.ones_like(center))


def centre_slots(center: torch.Tensor, n_atoms: int, nmax: int | None = None) -> CentreSlots:
    """The padded per-centre layout of edges with centres `center` [E] (any order). `nmax` (at least the largest
    neighbour count) is computed when not given."""
    counts = neighbour_counts(center, n_atoms)
    if nmax is None:
        nmax = max(1, int(counts.max())) if n_atoms else 1
    start = counts.cumsum(0) - counts
    order = torch.argsort(center, stable=True)
    sorted_center = center.index_select(0, order)
    rank = torch.empty_like(center).index_copy(
        0, order, torch.arange(center.shape[0], dtype=center.dtype, device=center.device) - start[sorted_center])
    return CentreSlots(center * nmax + rank, nmax)


class ChannelPathLinear(nn.Module):
    """Equivariant linear layer mixing channels and paths into each output irrep (legacy Allegro "uuulin").

    out[e, (o, m), c'] = 1/sqrt(u n_o) sum_{c, p -> o} W_o[(c, p), c'] T[e, (o, m, p), c], W ~ N(0, 1).
    Shapes (channels last): the per-output-irrep blocks of T, [E, (2 l_o + 1) n_o, u] each -> [E, d_out, u_out].
    """

    def __init__(self, tp: TensorProduct, irreps_out: list[Irrep], u_in: int, u_out: int) -> None:
        super().__init__()
        self.blocks = [(tp.block_start[o], 2 * l + 1, tp.n_per_out[o]) for o, (l, _) in enumerate(irreps_out)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(u_in * n, u_out)) for _, _, n in self.blocks
        )
        self.scales = [1.0 / math.sqrt(u_in * n) for _, _, n in self.blocks]
        self.u_in, self.u_out = u_in, u_out

    def forward(self, blocks: list[torch.Tensor]) -> torch.Tensor:
        outs = []
        e = blocks[0].shape[0]
        for t, (_, dim, n), w, scale in zip(blocks, self.blocks, self.weights, self.scales):
            # the block's (p, c) entries are contiguous per (e, m): reorder the (c, p) weight rows to match
            w_pc = (w * scale).view(self.u_in, n, self.u_out).transpose(0, 1).reshape(n * self.u_in, self.u_out)
            outs.append(torch.mm(t.reshape(e * dim, n * self.u_in), w_pc).view(e, dim, self.u_out))
        return torch.cat(outs, dim=1)
