"""The training loss: weighted force MSE + per-atom energy MSE (physical units, eV and eV/Å)."""

from __future__ import annotations

from collections.abc import Mapping

import torch

from qallegro.data.graph import ENERGY, FORCES, PTR, Graph


class EnergyForceLoss:
    """`c_F * mean(|F - F_ref|^2) + c_E * mean(((E - E_ref) / N)^2)`.

    The force mean runs over all components of all atoms, the energy mean over structures (N = atoms of the
    structure). With `forces: 0` (or absent) the loss is energy-only and forces need not be predicted (QM9).
    """

    def __init__(self, coeffs: Mapping[str, float]):
        self.forces = float(coeffs.get("forces", 0.0))
        self.energy_per_atom = float(coeffs.get("energy_per_atom", 0.0))
        if self.forces < 0 or self.energy_per_atom < 0 or self.forces + self.energy_per_atom == 0:
            raise ValueError(f"loss_coeffs need non-negative weights, at least one positive; got {dict(coeffs)}")

    @property
    def uses_forces(self) -> bool:
        return self.forces > 0

    def __call__(self, out: Mapping[str, torch.Tensor], batch: Graph) -> torch.Tensor:
        loss = out[ENERGY].new_zeros(())
        if self.energy_per_atom > 0:
            n_atoms = (batch[PTR][1:] - batch[PTR][:-1]).to(out[ENERGY].dtype)
            loss = loss + self.energy_per_atom * torch.mean(((out[ENERGY] - batch[ENERGY]) / n_atoms) ** 2)
        if self.forces > 0:
            loss = loss + self.forces * torch.mean((out[FORCES] - batch[FORCES]) ** 2)
        return loss

    def from_metrics(self, metrics: Mapping[str, float]) -> float:
        """The same loss over a whole set, from accumulated MSEs (`e_rmse` per atom and `f_rmse`)."""
        loss = 0.0
        if self.energy_per_atom > 0:
            loss += self.energy_per_atom * metrics["e_rmse"] ** 2
        if self.forces > 0:
            loss += self.forces * metrics["f_rmse"] ** 2
        return loss
