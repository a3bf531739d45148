"""Legacy Allegro's bias-free scalar MLP (allegro v0.2.0 `ScalarMLPFunction`)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch
from torch import nn


def _second_moment_constant(fn) -> float:
    """1/sqrt(E[fn(z)^2]) for z ~ N(0, 1), by Gauss-Hermite quadrature (e3nn's `normalize2mom`, deterministic)."""
    x, w = np.polynomial.hermite_e.hermegauss(200)
    with torch.no_grad():
        vals = fn(torch.as_tensor(x, dtype=torch.float64)).numpy()
    return float(1.0 / math.sqrt(np.sum(w * vals**2) / math.sqrt(2 * math.pi)))


_ACTIVATIONS = {"silu": torch.nn.functional.silu, "tanh": torch.tanh}
ACTIVATION_CONSTANTS = {name: _second_moment_constant(fn) for name, fn in _ACTIVATIONS.items()}


class ScalarMLP(nn.Module):
    """Bias-free MLP with widths `[in_dim, *hidden, out_dim]`.

    Each layer computes `x @ W * g / sqrt(fan_in)` with raw weights `W ~ U(-sqrt3, sqrt3)` ("uniform") or N(0, 1)
    ("normal"), `g = 1` for the first layer and the activation's second-moment constant after a nonlinearity
    (1.679 for SiLU); no nonlinearity after the last layer. A zero input gives a zero output, which keeps energies
    smooth at the cutoff.

    Shapes: [..., in_dim] -> [..., out_dim].
    """

    def __init__(self, in_dim: int, hidden: list[int], out_dim: int | None = None, nonlinearity: str | None = "silu",
                 initialization: str = "uniform") -> None:
        super().__init__()
        dims = [in_dim, *hidden] + ([out_dim] if out_dim is not None else [])
        if len(dims) < 2:
            raise ValueError("ScalarMLP needs at least one layer")
        self.dims = dims
        self.nonlinearity = nonlinearity
        self.weights = nn.ParameterList()
        for fan_in, fan_out in itertools.pairwise(dims):
            w = torch.empty(fan_in, fan_out)
            if initialization == "uniform":
                w.uniform_(-math.sqrt(3.0), math.sqrt(3.0))
            elif initialization == "normal":
                w.normal_()
            else:
                raise ValueError(f"unknown initialization {initialization!r}")
            self.weights.append(nn.Parameter(w))
        act_const = ACTIVATION_CONSTANTS[nonlinearity] if nonlinearity else 1.0
        self._scales = [1.0 / math.sqrt(dims[0])] + [act_const / math.sqrt(d) for d in dims[1:-1]]

    @property
    def out_dim(self) -> int:
        return self.dims[-1]

    def forward(self, x: torch.Tensor, out_index: torch.Tensor | None = None) -> torch.Tensor:
        """`out_index` (optional): output columns in this order (the last weight's columns are permuted)."""
        act = _ACTIVATIONS[self.nonlinearity] if self.nonlinearity else None
        last = len(self.weights) - 1
        for k, (w, scale) in enumerate(zip(self.weights, self._scales)):
            if k > 0 and act is not None:
                x = act(x)
            if k == last and out_index is not None:
                w = w.index_select(1, out_index)
            x = torch.matmul(x, w * scale)
        return x
