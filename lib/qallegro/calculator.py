"""An ASE calculator for qallegro potentials (energy, forces, and stress for periodic cells)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator as ASECalculator
from ase.calculators.calculator import all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from qallegro.data.graph import atoms_to_graph, to
from qallegro.errors import ModelError


class Calculator(ASECalculator):
    """`qallegro.Calculator(model)`: a trained potential (or a path to a saved one) as an ASE calculator.

    Properties: `energy`, `free_energy`, `energies` (per atom), `forces`, and `stress` (Voigt, eV/Å^3) when all
    three axes are periodic. The neighbour list is rebuilt at every call (vesin).
    """

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model: torch.nn.Module | str | Path, device: str | torch.device = "cpu", **kwargs) -> None:
        super().__init__(**kwargs)
        if isinstance(model, (str, Path)):
            from qallegro.models import load_model

            model = load_model(model, map_location=device)
        self.model = model.to(device).eval()
        self.device = torch.device(device)

    def calculate(self, atoms: Atoms | None = None, properties: list[str] | None = None,
                  system_changes: list[str] = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        properties = properties or ["energy"]
        atoms = self.atoms
        want_stress = "stress" in properties
        if want_stress and not atoms.pbc.all():
            raise ValueError("stress needs a structure periodic along all three axes")
        g = to(atoms_to_graph(atoms, self.model.r_max, labels=False), self.device)
        out = self.model(g, compute_forces=True, compute_stress=want_stress)
        energy = float(out["energy"].detach().sum())
        self.results = {
            "energy": energy,
            "free_energy": energy,
            "energies": out["atomic_energy"].detach().cpu().numpy().astype(np.float64),
            "forces": out["forces"].detach().cpu().numpy().astype(np.float64),
        }
        bad = ~np.isfinite(self.results["forces"]).all(axis=1) | ~np.isfinite(self.results["energies"])
        if bad.any() or not np.isfinite(energy):
            raise ModelError(f"non-finite energy or forces at atom(s) {np.flatnonzero(bad)[:10].tolist()} of "
                             f"{len(atoms)}")
        if want_stress:
            self.results["stress"] = full_3x3_to_voigt_6_stress(out["stress"][0].detach().cpu().numpy())
