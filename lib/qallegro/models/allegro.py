"""The legacy Allegro body (Musaelian et al. 2023; allegro v0.2.0): edge vectors -> final per-edge latents."""

from __future__ import annotations

import math
from typing import Any

import e3nn
import torch
from e3nn import o3
from torch import nn

from qallegro.errors import ModelError
from qallegro.models.basis import BesselBasis, NormalizedBasis, polynomial_cutoff
from qallegro.models.mlp import ScalarMLP
from qallegro.models.tensor_product import (
    AtomCentredProduct,
    ChannelPathLinear,
    centre_slots,
    layer_irreps,
    sh_irreps,
    tensor_product,
)


def _spherical_harmonics(l_max: int) -> nn.Module:
    """e3nn's Y^0..Y^l_max (component normalisation, normalised input) as plain PyTorch code: its TorchScript mode
    (which other packages may select globally) specialises shapes when the model is traced for compilation."""
    previous = e3nn.get_optimization_defaults()["jit_mode"]
    e3nn.set_optimization_defaults(jit_mode="eager")
    try:
        return o3.SphericalHarmonics(list(range(l_max + 1)), normalize=True, normalization="component")
    finally:
        e3nn.set_optimization_defaults(jit_mode=previous)


class AllegroBody(nn.Module):
    """Strictly local equivariant edge features of legacy Allegro.

    Inputs: `types` [N] (species index 0..T-1), `edge_index` [2, E] (centre, neighbour), `edge_vec` [E, 3]
    (r_j - r_i, Å). Output: the final invariant latent h [E, D] (already multiplied by the cutoff envelope) and the
    envelope u(r) [E].

    Steps (allegro-spec §1.8): one-hot species and the normalised Bessel basis times u(r) feed the two-body latent
    MLP; a linear map of the latent weights the spherical harmonics into the initial tensor features and the
    centre's environment (summed over neighbours, times 1/sqrt(avg_num_neighbors)); per layer a weightless
    channel-wise tensor product, a channel/path mixing linear layer, and a ResNet latent update fed with the
    tensor product's scalars, with u(r) multiplied into every latent.

    Each layer's tensor product is built in one form (`tensor_product`); `fused` builds the forms a loop-fusing
    compiler runs best (`qallegro.models.compile` traces such a twin of the eager model).
    """

    def __init__(self, cfg: dict[str, Any], num_species: int, fused: bool = False) -> None:
        super().__init__()
        self.r_max = float(cfg["r_max"])
        self.p = float(cfg["PolynomialCutoff_p"])
        self.num_layers = int(cfg["num_layers"])
        self.u = int(cfg["env_embed_multiplicity"])
        self.num_species = num_species
        if not cfg["embed_initial_edge"]:
            raise ModelError("model config: embed_initial_edge: only true (the legacy default) is implemented")
        self.inv_sqrt_nbar = 1.0 / math.sqrt(float(cfg["avg_num_neighbors"]))

        bessel = BesselBasis(self.r_max, int(cfg["num_basis"]), bool(cfg["BesselBasis_trainable"]))
        self.basis = NormalizedBasis(bessel) if cfg["normalize_basis"] else bessel
        self.l_max = int(cfg["l_max"])
        self.irreps_sh = sh_irreps(self.l_max, cfg["parity"])
        self.spherical_harmonics = _spherical_harmonics(self.l_max)
        # component -> irrep index, to broadcast per-(channel, l) weights over m
        self.register_buffer("sh_l_index", torch.repeat_interleave(
            torch.arange(self.l_max + 1), torch.tensor([2 * l + 1 for l in range(self.l_max + 1)])), persistent=False)
        n_sh = self.l_max + 1
        # env-embedding output columns are stored (channel, irrep)-ordered (legacy layout); read them (irrep, channel)
        order = torch.arange(self.u * n_sh).view(self.u, n_sh).T.reshape(-1)
        self.register_buffer("env_order", order, persistent=False)
        self.register_buffer("env_order_first", torch.cat([order, order + self.u * n_sh]), persistent=False)
        self.layers_irreps = layer_irreps(self.l_max, cfg["parity"], self.num_layers)

        def mlp(prefix: str, in_dim: int, out_dim: int | None = None, hidden: list[int] | None = None) -> ScalarMLP:
            dims = cfg[f"{prefix}_latent_dimensions"] if hidden is None else hidden
            return ScalarMLP(in_dim, list(dims), out_dim, cfg[f"{prefix}_nonlinearity"],
                             cfg[f"{prefix}_initialization"])

        self.two_body = mlp("two_body_latent_mlp", 2 * num_species + int(cfg["num_basis"]))
        self.latent_dim = self.two_body.out_dim
        env_out = self.u * n_sh
        self.env_embed = nn.ModuleList()
        self.tps = nn.ModuleList()
        self.linears = nn.ModuleList()
        self.latents = nn.ModuleList()
        for layer, irr in enumerate(self.layers_irreps):
            first = 2 * env_out if layer == 0 else env_out
            self.env_embed.append(mlp("env_embed_mlp", self.latent_dim, first))
            tp = tensor_product(irr, self.irreps_sh, first=layer == 0, fused=fused)
            self.tps.append(tp)
            if layer < self.num_layers - 1:  # the last layer's tensor output is never used: scalars only
                self.linears.append(ChannelPathLinear(tp, irr.irreps_out, self.u, self.u))
            latent = mlp("latent_mlp", self.latent_dim + self.u * irr.n_scalar_paths)
            if latent.out_dim != self.latent_dim:
                raise ModelError("model config: latent_mlp_latent_dimensions must end with the two-body latent width "
                                 f"({self.latent_dim}) for the ResNet update, got {latent.out_dim}")
            self.latents.append(latent)
        self.latent_resnet = bool(cfg["latent_resnet"])
        ratios = cfg["latent_resnet_update_ratios"]
        params = (torch.zeros(self.num_layers) if ratios is None
                  else torch.special.logit(torch.as_tensor(ratios, dtype=torch.get_default_dtype())).clamp(-6, 6))
        if cfg["latent_resnet_update_ratios_learnable"]:
            self.resnet_params = nn.Parameter(params)
        else:
            self.register_buffer("resnet_params", params)

    @property
    def needs_centre_slots(self) -> bool:
        """Whether a layer uses the atom-centred tensor product (any layer but the first and the last)."""
        return any(isinstance(tp, AtomCentredProduct) for tp in self.tps)

    def forward(self, types: torch.Tensor, edge_index: torch.Tensor, edge_vec: torch.Tensor,
                nmax: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """`nmax`: padding of the per-centre edge layout (>= the largest neighbour count; computed if None)."""
        center, neighbor = edge_index[0], edge_index[1]
        n_atoms, n_edges = types.shape[0], edge_vec.shape[0]
        r = torch.linalg.vector_norm(edge_vec, dim=-1)
        cut = polynomial_cutoff(r / self.r_max, self.p)  # [E]
        cut_ = cut.unsqueeze(-1)
        radial = self.basis(r) * cut_  # [E, n_b]
        sh = self.spherical_harmonics(edge_vec)  # [E, d_sh]
        onehot = torch.nn.functional.one_hot(types, self.num_species).to(edge_vec.dtype)
        h = cut_ * self.two_body(torch.cat([onehot[center], onehot[neighbor], radial], dim=-1))  # [E, D]

        n_sh = self.l_max + 1
        sh_env = (sh * self.inv_sqrt_nbar).unsqueeze(-1)  # [E, d_sh, 1]
        # the env-embedding outputs come (irrep, channel)-ordered, so that tensor features are channels last
        w_feat, w = self.env_embed[0](h, self.env_order_first).split(self.u * n_sh, dim=-1)
        a = w_feat.view(n_edges, n_sh, self.u)  # the initial features w_feat (x) Y stay in rank-1 form
        feats = a  # the tensor features: layer 0 reads them in rank-1 form (a and Y), later layers mixed
        slots = centre_slots(center, n_atoms, nmax) if self.needs_centre_slots else None
        coeffs = torch.sigmoid(self.resnet_params)
        for layer in range(self.num_layers):
            env_edge = w.view(n_edges, n_sh, self.u).index_select(1, self.sh_l_index) * sh_env  # [E, d_sh, u]
            env = torch.zeros(n_atoms, sh.shape[-1], self.u, dtype=env_edge.dtype, device=env_edge.device)
            env = env.index_add(0, center, env_edge)  # [N, d_sh, u], the centre's environment
            scalars, blocks = self.tps[layer](feats, sh, env, center, slots)
            new_h = cut_ * self.latents[layer](torch.cat([h, scalars], dim=-1))
            if self.latent_resnet:
                c = torch.rsqrt(coeffs[layer] ** 2 + 1.0)
                h = c * h + (coeffs[layer] * c) * new_h
            else:
                h = new_h
            if layer < self.num_layers - 1:
                feats = self.linears[layer](blocks)
                w = self.env_embed[layer + 1](h, self.env_order)
        return h, cut
