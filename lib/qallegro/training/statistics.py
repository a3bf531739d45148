"""Training-set statistics written into the model config before `build_model`.

Legacy nequip names are accepted as values of the three statistic keys:

* `avg_num_neighbors`: `auto` (or null) -> mean number of edges per atom (atoms with no neighbour count 0;
  the plain mean, never its square).
* `per_species_rescale_shifts`:
  `dataset_per_atom_total_energy_mean` -> one value, mean over structures of E/N;
  `dataset_per_species_total_energy_mean` -> one value per species, least squares E ~ sum_Z n_Z mu_Z
  (for data sets of varying composition such as QM9).
* `per_species_rescale_scales`:
  `dataset_forces_rms` -> one value, RMS of all force components;
  `dataset_per_species_forces_rms` -> one value per species;
  `dataset_per_atom_energy_residual_std` -> one value, std over structures of (E - sum_i mu_Z_i)/N after the
  shifts (energy-only data).
Numbers (or lists of numbers, one per species) pass through unchanged; null means "none".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from qallegro.data.graph import ATOMIC_NUMBERS, EDGE_INDEX, ENERGY, FORCES, POS, Graph

AUTO = ("auto", None)
SHIFT_MODES = ("dataset_per_atom_total_energy_mean", "dataset_per_species_total_energy_mean")
SCALE_MODES = ("dataset_forces_rms", "dataset_per_species_forces_rms", "dataset_per_atom_energy_residual_std")


def avg_num_neighbors(graphs: Sequence[Graph]) -> float:
    """Mean number of edges per atom (edges counted at their centre atom)."""
    atoms = sum(int(g[POS].shape[0]) for g in graphs)
    edges = sum(int(g[EDGE_INDEX].shape[1]) for g in graphs)
    if atoms == 0:
        raise ValueError("no atoms in the training set")
    return edges / atoms


def _composition(graphs: Sequence[Graph], species: Sequence[int]) -> np.ndarray:
    """[B, T] counts of each species per structure."""
    index = {z: k for k, z in enumerate(species)}
    counts = np.zeros((len(graphs), len(species)))
    for b, g in enumerate(graphs):
        for z, n in zip(*np.unique(g[ATOMIC_NUMBERS].numpy(), return_counts=True)):
            if int(z) not in index:
                raise ValueError(f"species Z={int(z)} is not in the model's species {list(species)}")
            counts[b, index[int(z)]] = n
    return counts


def _energies(graphs: Sequence[Graph]) -> np.ndarray:
    missing = sum(ENERGY not in g for g in graphs)
    if missing:
        raise ValueError(f"{missing} training structures carry no energy label")
    return np.array([float(g[ENERGY].sum()) for g in graphs])


def per_atom_energy_mean(graphs: Sequence[Graph]) -> float:
    """Mean over structures of E / N."""
    n = np.array([g[POS].shape[0] for g in graphs], dtype=float)
    return float(np.mean(_energies(graphs) / n))


def per_species_energy_shifts(graphs: Sequence[Graph], species: Sequence[int]) -> list[float]:
    """Least-squares per-species energies mu_Z with E ~ sum_Z n_Z mu_Z (species absent from the training
    set get the mean per-atom residual, i.e. the mean of E/N after the fit)."""
    counts = _composition(graphs, species)
    energies = _energies(graphs)
    present = counts.sum(0) > 0
    mu = np.zeros(len(species))
    mu[present] = np.linalg.lstsq(counts[:, present], energies, rcond=None)[0]
    if not present.all():
        mu[~present] = float(np.mean(mu[present]))
    return [float(m) for m in mu]


def forces_rms(graphs: Sequence[Graph]) -> float:
    f = _forces(graphs)
    return float(torch.sqrt(torch.mean(f.double() ** 2)))


def per_species_forces_rms(graphs: Sequence[Graph], species: Sequence[int]) -> list[float]:
    f = _forces(graphs).double()
    z = torch.cat([g[ATOMIC_NUMBERS] for g in graphs])
    out = []
    for s in species:
        sel = f[z == s]
        out.append(float(torch.sqrt(torch.mean(sel ** 2))) if sel.numel() else float(torch.sqrt(torch.mean(f ** 2))))
    return out


def _forces(graphs: Sequence[Graph]) -> torch.Tensor:
    if any(FORCES not in g for g in graphs):
        raise ValueError("force statistics requested but the training structures carry no forces "
                         "(energy-only data: use per_species_rescale_scales: dataset_per_atom_energy_residual_std)")
    return torch.cat([g[FORCES] for g in graphs])


def energy_residual_std(graphs: Sequence[Graph], species: Sequence[int], shifts: float | Sequence[float]) -> float:
    """Std over structures of (E - sum_i mu_{Z_i}) / N."""
    counts = _composition(graphs, species)
    mu = np.broadcast_to(np.asarray(shifts, dtype=float), (len(species),))
    resid = (_energies(graphs) - counts @ mu) / counts.sum(1)
    return float(np.std(resid))


def resolve_statistics(cfg: Mapping[str, Any], graphs: Sequence[Graph], species: Sequence[int]) -> dict[str, Any]:
    """Numbers for `avg_num_neighbors`, `per_species_rescale_shifts` and `per_species_rescale_scales`.

    Values already numeric (or null for shifts/scales) are kept; legacy names are computed on `graphs`.
    """
    out: dict[str, Any] = {}
    ann = cfg.get("avg_num_neighbors", "auto")
    out["avg_num_neighbors"] = avg_num_neighbors(graphs) if ann in AUTO else float(ann)

    shift = cfg.get("per_species_rescale_shifts")
    if shift == "dataset_per_atom_total_energy_mean":
        out["per_species_rescale_shifts"] = per_atom_energy_mean(graphs)
    elif shift == "dataset_per_species_total_energy_mean":
        out["per_species_rescale_shifts"] = per_species_energy_shifts(graphs, species)
    elif isinstance(shift, str):
        raise ValueError(f"per_species_rescale_shifts: unknown value {shift!r}; use a number, a list or one of "
                         f"{SHIFT_MODES}")
    else:
        out["per_species_rescale_shifts"] = _number_or_list(shift, species, "per_species_rescale_shifts")

    scale = cfg.get("per_species_rescale_scales")
    if scale == "dataset_forces_rms":
        out["per_species_rescale_scales"] = forces_rms(graphs)
    elif scale == "dataset_per_species_forces_rms":
        out["per_species_rescale_scales"] = per_species_forces_rms(graphs, species)
    elif scale == "dataset_per_atom_energy_residual_std":
        shifts = out["per_species_rescale_shifts"]
        out["per_species_rescale_scales"] = energy_residual_std(graphs, species, 0.0 if shifts is None else shifts)
    elif isinstance(scale, str):
        raise ValueError(f"per_species_rescale_scales: unknown value {scale!r}; use a number, a list, null or one "
                         f"of {SCALE_MODES}")
    else:
        out["per_species_rescale_scales"] = _number_or_list(scale, species, "per_species_rescale_scales")
    return out


def _number_or_list(value: Any, species: Sequence[int], key: str) -> Any:
    if value is None or isinstance(value, (int, float)):
        return None if value is None else float(value)
    values = [float(v) for v in value]
    if len(values) != len(species):
        raise ValueError(f"{key}: {len(values)} values for {len(species)} species {list(species)}")
    return values
