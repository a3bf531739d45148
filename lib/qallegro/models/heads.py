"""Edge-energy readouts: the slot where the paper's variants differ.

- `allegro`: edge-energy MLP -> 1 (legacy Allegro).
- `mlp` (Allegro+MLP, as in the authors' released code): edge-energy MLP -> k features -> final MLP with hidden
  widths [h1, h2] -> 1.
- `qdi` (Allegro+QDI): edge-energy MLP -> k features -> QDI circuit (one Pauli-Y expectation per qubit) -> one
  fully connected layer of width `qdi_fc_dim` (SiLU) -> 1, times the cutoff envelope u(r). The circuit maps a zero
  input to a non-zero output, so without the envelope the edge energy would jump when an edge crosses r_max.

All heads see only invariant scalars, so the model stays E(3)-equivariant. Shapes: h [E, D], cut [E] -> [E].
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from qallegro.errors import ModelError
from qallegro.models.mlp import ScalarMLP


def _mlp(cfg: dict[str, Any], prefix: str, in_dim: int, out_dim: int) -> ScalarMLP:
    return ScalarMLP(in_dim, list(cfg[f"{prefix}_latent_dimensions"]), out_dim, cfg[f"{prefix}_nonlinearity"],
                     cfg[f"{prefix}_initialization"])


class EdgeEnergyHead(nn.Module):
    """Legacy Allegro readout (also the `mlp` variant when `final` is given)."""

    def __init__(self, edge_eng: ScalarMLP, final: ScalarMLP | None = None) -> None:
        super().__init__()
        self.edge_eng = edge_eng
        self.final = final

    def forward(self, h: torch.Tensor, cut: torch.Tensor) -> torch.Tensor:
        x = self.edge_eng(h)
        if self.final is not None:
            x = self.final(x)
        return x.squeeze(-1)


class QDIHead(nn.Module):
    """Edge-energy MLP -> QDI layer -> FC(qdi_fc_dim) -> 1, times u(r)."""

    def __init__(self, edge_eng: ScalarMLP, qdi: nn.Module, fc: ScalarMLP) -> None:
        super().__init__()
        self.edge_eng = edge_eng
        self.qdi = qdi
        self.fc = fc

    def forward(self, h: torch.Tensor, cut: torch.Tensor) -> torch.Tensor:
        return self.fc(self.qdi(self.edge_eng(h))).squeeze(-1) * cut


def make_head(cfg: dict[str, Any], latent_dim: int) -> nn.Module:
    """The readout for `cfg["variant"]` on latents of width `latent_dim`."""
    k = int(cfg["edge_eng_mlp_output_dim"])
    edge_eng = _mlp(cfg, "edge_eng_mlp", latent_dim, k)
    variant = cfg["variant"]
    if variant == "allegro":
        return EdgeEnergyHead(edge_eng)
    if variant == "mlp":
        return EdgeEnergyHead(edge_eng, _mlp(cfg, "final_mlp", k, 1))
    if variant == "qdi":
        from qallegro.quantum.layer import QDILayer

        qdi = QDILayer(k, n_qubits=int(cfg["qdi_n_qubits"]), depth=int(cfg["qdi_depth"]), backend=cfg["qdi_backend"])
        fc = ScalarMLP(int(cfg["qdi_n_qubits"]), [int(cfg["qdi_fc_dim"])], 1, "silu", "uniform")
        return QDIHead(edge_eng, qdi, fc)
    raise ModelError(f"model config: variant: unknown {variant!r}")
