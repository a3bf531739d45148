"""`QDILayer`: the quantum depth-infused layer as a torch module with three interchangeable backends."""

from __future__ import annotations

import math
from functools import cache
from typing import Any

import torch
from torch import Tensor, nn

from .statevector import n_blocks_for, pad_inputs, qdi_expectations

__all__ = ["BACKENDS", "QDILayer"]

BACKENDS = ("torch", "pennylane", "lightning")


class QDILayer(nn.Module):
    """Data re-uploading variational circuit: `[..., in_features] -> [..., n_qubits]` Pauli-Y expectations.

    The inputs are split into `c = ceil(in_features / n_qubits)` chunks of `n_qubits` features; when
    `in_features` is not a multiple of `n_qubits` the last chunk is **padded with zeros** (an RZ(0) encoding is the
    identity, so the padded qubits simply get no encoding in that chunk). The circuit is
    `T_0 -> RZ(chunk 0) -> T_1 -> ... -> RZ(chunk c-1) -> T_c -> <Y_q>`, where each trainable block `T_b` is `depth`
    strongly entangling layers (Rot per qubit, then the CNOT ring 0->1->...->0). The weight has shape
    `[c + 1, depth, n_qubits, 3]` (4 inputs, 4 qubits, depth 1: 24 weights), initialised uniformly in [0, 2pi).

    Backends (they share the one `weight` parameter, so any backend can evaluate a model trained with another):

    * `torch` (default): exact batched state vector in torch; fast, double-backward safe (forces in training);
    * `pennylane`: the reference QNode on `default.qubit` with backprop (trains too, slower);
    * `lightning`: `lightning.qubit`, inference only; it raises when gradients could be needed (grad mode on and
      the input or the weight requires grad): call it under `torch.no_grad()` / `torch.inference_mode()`.

    Outputs follow the input dtype (float32 or float64).
    """

    def __init__(self, in_features: int, n_qubits: int = 4, depth: int = 1, backend: str = "torch") -> None:
        super().__init__()
        if depth < 1:
            raise ValueError(f"QDILayer: depth must be >= 1, got {depth}")
        n_blocks = n_blocks_for(in_features, n_qubits)
        self.in_features = in_features
        self.n_qubits = n_qubits
        self.depth = depth
        self.backend = backend
        self.weight = nn.Parameter(torch.empty(n_blocks, depth, n_qubits, 3))
        self.reset_parameters()

    @property
    def backend(self) -> str:
        return self._backend

    @backend.setter
    def backend(self, value: str) -> None:
        if value not in BACKENDS:
            raise ValueError(f"QDILayer: backend must be one of {BACKENDS}, got {value!r}")
        self._backend = value

    @property
    def out_features(self) -> int:
        return self.n_qubits

    def reset_parameters(self) -> None:
        with torch.no_grad():
            self.weight.uniform_(0.0, 2 * math.pi)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, n_qubits={self.n_qubits}, depth={self.depth}, "
            f"n_weights={self.weight.numel()}, backend={self.backend!r}"
        )

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(
                f"QDILayer: expected {self.in_features} input features, got shape {tuple(x.shape)}"
            )
        lead = x.shape[:-1]
        xp = pad_inputs(x.reshape(-1, self.in_features), self.n_qubits)
        if self.backend == "torch":
            out = qdi_expectations(xp, self.weight)
        elif self.backend == "pennylane":
            out = self._pennylane(xp)
        else:
            out = self._lightning(xp)
        return out.reshape(*lead, self.n_qubits)

    def _pennylane(self, xp: Tensor) -> Tensor:
        out = _qnode(self.n_qubits, "default.qubit")(xp, self.weight.to(xp.dtype))
        return torch.stack(list(out), -1).to(xp.dtype)

    def _lightning(self, xp: Tensor) -> Tensor:
        if torch.is_grad_enabled() and (xp.requires_grad or self.weight.requires_grad):
            raise RuntimeError(
                "QDILayer backend='lightning' is inference only (lightning's adjoint method has no double "
                "backward): call it under torch.no_grad(), or use backend='torch' for gradients and forces"
            )
        if xp.shape[0] == 0:
            return xp.new_zeros(0, self.n_qubits)
        out = _qnode(self.n_qubits, "lightning.qubit")(xp.to(torch.float64), self.weight.to(torch.float64))
        return torch.stack(list(out), -1).to(xp.dtype)


@cache
def _qnode(n_qubits: int, device: str) -> Any:
    """One QNode per (qubit count, device), kept outside the module so that models pickle cleanly."""
    from .circuit import make_qnode

    return make_qnode(n_qubits, device=device, diff_method="backprop" if device == "default.qubit" else None)
