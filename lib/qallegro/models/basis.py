"""Radial embedding of legacy Allegro: normalised trainable Bessel basis and the polynomial cutoff envelope."""

from __future__ import annotations

import math

import torch
from torch import nn


def polynomial_cutoff(x: torch.Tensor, p: float) -> torch.Tensor:
    """Polynomial envelope u(x), x = r / r_max, zero for x >= 1; u(1) = u'(1) = u''(1) = 0 (C2 at the cutoff).

    u(x) = 1 - (p+1)(p+2)/2 x^p + p(p+2) x^(p+1) - p(p+1)/2 x^(p+2). Shapes: [E] -> [E].
    """
    p = float(p)
    xp = torch.pow(x, p)
    out = 1.0 - 0.5 * (p + 1.0) * (p + 2.0) * xp + p * (p + 2.0) * xp * x - 0.5 * p * (p + 1.0) * xp * x * x
    return out * (x < 1.0)


class BesselBasis(nn.Module):
    """B_n(r) = (2 / r_max) sin(k_n r / r_max) / r, k_n initialised to n*pi, trainable or not. [E] -> [E, n]."""

    def __init__(self, r_max: float, num_basis: int = 8, trainable: bool = True) -> None:
        super().__init__()
        self.r_max = float(r_max)
        self.prefactor = 2.0 / self.r_max
        w = torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype()) * math.pi
        if trainable:
            self.bessel_weights = nn.Parameter(w)
        else:
            self.register_buffer("bessel_weights", w)

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        r = r.unsqueeze(-1)
        return self.prefactor * torch.sin(self.bessel_weights * (r / self.r_max)) / r


class NormalizedBasis(nn.Module):
    """(B_n(r) - mean_n) / std_n with the statistics frozen at construction over r uniform in (0, r_max].

    Legacy Allegro samples 4000 points; the statistics stay fixed while the Bessel frequencies train.
    """

    def __init__(self, basis: BesselBasis, n_samples: int = 4000) -> None:
        super().__init__()
        self.basis = basis
        with torch.no_grad():
            rs = torch.linspace(0.0, basis.r_max, n_samples + 1, dtype=torch.float64)[1:, None]
            k = basis.bessel_weights.detach().to(torch.float64)
            vals = basis.prefactor * torch.sin(k * rs / basis.r_max) / rs
            std, mean = torch.std_mean(vals, dim=0)
        self.register_buffer("mean", mean.to(torch.get_default_dtype()))
        self.register_buffer("inv_std", (1.0 / std).to(torch.get_default_dtype()))

    def forward(self, r: torch.Tensor) -> torch.Tensor:
        return (self.basis(r) - self.mean) * self.inv_std
