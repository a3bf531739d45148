"""An ASE calculator for qallegro potentials (energy, forces, and stress for periodic cells)."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from ase import Atoms
from ase.calculators.calculator import Calculator as ASECalculator
from ase.calculators.calculator import all_changes
from ase.stress import full_3x3_to_voigt_6_stress

from qallegro.data import graph as G
from qallegro.data.neighbors import neighbor_list
from qallegro.errors import ModelError


def check_skin(skin: float) -> float:
    """`skin` (Å), or a ModelError when it is negative."""
    if skin < 0:
        raise ModelError(f"neighbour-list skin must be >= 0 Å, got {skin}")
    return skin


class VerletList:
    """Candidate pairs within `r_max + skin`, reused while no atom has moved more than `skin / 2` and the cell,
    periodicity and atom count are unchanged; every call keeps the candidates closer than `r_max`, so the edges
    equal a fresh neighbour list's (`skin = 0`: a fresh list at every call)."""

    def __init__(self, r_max: float, skin: float) -> None:
        self.r_max, self.skin = r_max, check_skin(skin)
        self.builds = 0
        self._ref: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self._pairs: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def __call__(self, pos: np.ndarray, cell: np.ndarray, pbc: np.ndarray) -> tuple[np.ndarray, ...]:
        bad = ~np.isfinite(pos).all(axis=1)
        if bad.any():  # a kept list would compare NaN distances as "not moved" and silently drop every edge
            raise ModelError(f"positions contain NaN or inf (atom(s) {np.flatnonzero(bad)[:10].tolist()})")
        stale = (self._ref is None or self.skin == 0 or pos.shape != self._ref[0].shape
                 or not np.array_equal(cell, self._ref[1]) or not np.array_equal(pbc, self._ref[2])
                 or np.einsum("ij,ij->i", pos - self._ref[0], pos - self._ref[0]).max(initial=0.0)
                 >= (self.skin / 2) ** 2)
        if stale:
            self._pairs = neighbor_list(pos, cell if pbc.any() else None, pbc, self.r_max + self.skin)
            self._ref = (pos.copy(), cell.copy(), pbc.copy())
            self.builds += 1
        i, j, s = self._pairs
        if self.skin == 0:
            return i, j, s
        vec = pos[j] - pos[i] + (s @ cell if pbc.any() else 0.0)
        keep = np.einsum("ij,ij->i", vec, vec) < self.r_max * self.r_max
        return i[keep], j[keep], s[keep]


class Calculator(ASECalculator):
    """A potential module (`qallegro.models.AllegroPotential` or a loaded export) as an ASE calculator; the public
    `qallegro.Calculator` (`qallegro.deploy.calculator`) also takes a model file or a training run directory.

    Properties: `energy`, `free_energy`, `energies` (per atom), `forces`, and `stress` (Voigt, eV/Å^3) when all
    three axes are periodic. Neighbour pairs within `r_max + skin` (Å) are kept between calls and rebuilt (vesin)
    once an atom has moved more than `skin / 2`; `skin=0` rebuilds at every call.
    """

    implemented_properties: ClassVar[list[str]] = ["energy", "free_energy", "energies", "forces", "stress"]

    def __init__(self, model: torch.nn.Module, device: str | torch.device = "cpu", skin: float = 1.0,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        if not isinstance(model, torch.nn.Module):
            raise ModelError(f"qallegro.calculator.Calculator takes a potential module, got {type(model).__name__} "
                             f"{model!r}; qallegro.Calculator loads model files")
        self.model = model.to(device).eval()
        self.device = torch.device(device)
        self.neighbors = VerletList(float(self.model.r_max), skin)

    def _graph(self, atoms: Atoms) -> G.Graph:
        """`qallegro.data.graph.atoms_to_graph` with the kept neighbour pairs."""
        pos = atoms.get_positions()
        pbc = np.asarray(atoms.get_pbc(), dtype=bool)
        cell = np.asarray(atoms.get_cell().array, dtype=np.float64)
        i, j, s = self.neighbors(pos, cell, pbc)
        G.check_distances(pos, cell, i, j, s)  # coincident atoms: an error naming them, never NaN
        n, dev, f64 = len(atoms), self.device, torch.float64
        return {G.POS: torch.as_tensor(pos, dtype=f64, device=dev),
                G.ATOMIC_NUMBERS: torch.as_tensor(atoms.numbers, dtype=torch.int64, device=dev),
                G.CELL: torch.as_tensor(cell, dtype=f64, device=dev).reshape(1, 3, 3),
                G.PBC: torch.as_tensor(pbc, device=dev).reshape(1, 3),
                G.EDGE_INDEX: torch.as_tensor(np.stack([i, j]), dtype=torch.int64, device=dev).reshape(2, -1),
                G.EDGE_CELL_SHIFT: torch.as_tensor(s, dtype=f64, device=dev).reshape(-1, 3),
                G.BATCH: torch.zeros(n, dtype=torch.int64, device=dev),
                G.PTR: torch.tensor([0, n], dtype=torch.int64, device=dev)}

    def calculate(self, atoms: Atoms | None = None, properties: list[str] | None = None,
                  system_changes: list[str] = all_changes) -> None:
        super().calculate(atoms, properties, system_changes)
        properties = properties or ["energy"]
        atoms = self.atoms
        want_stress = "stress" in properties
        if want_stress and not atoms.pbc.all():
            raise ModelError("stress needs a structure periodic along all three axes")
        unknown = sorted(set(atoms.numbers.tolist()) - set(self.model.species))
        if unknown:
            raise ModelError(f"species {unknown} not in the model's species {self.model.species}")
        out = self.model(self._graph(atoms), compute_forces=True, compute_stress=want_stress)
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
