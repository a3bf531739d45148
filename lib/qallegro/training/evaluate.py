"""Evaluate a model on graphs: error metrics and predictions (eV, eV/Å)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from qallegro.data.graph import ENERGY, FORCES, PTR, Graph, iterate_batches, to
from qallegro.training.metrics import ErrorAccumulator


def evaluate(model: torch.nn.Module, graphs: Sequence[Graph], batch_size: int = 50,
             compute_forces: bool = True) -> dict[str, float]:
    """Metrics of `model` (in eval mode) on `graphs`: e_mae, e_rmse (eV/atom), etot_mae, etot_rmse (eV),
    f_mae, f_rmse (eV/Å; NaN without forces) and n_structures, n_atoms."""
    was_training = model.training
    model.eval()
    acc = ErrorAccumulator()
    n_atoms = 0
    device = next(model.parameters()).device
    try:
        for batch in iterate_batches(graphs, batch_size):
            batch = to(batch, device)
            out = model(batch, compute_forces=compute_forces and FORCES in batch)
            acc.add(out, batch)
            n_atoms += int(batch[PTR][-1])
    finally:
        model.train(was_training)
    return {**acc.compute(), "n_structures": acc.n_structures, "n_atoms": n_atoms}


def predict(model: torch.nn.Module, graphs: Sequence[Graph], batch_size: int = 50,
            compute_forces: bool = True) -> dict[str, Any]:
    """Predicted and reference energies per structure and forces per atom, as numpy arrays
    (`energy`, `energy_ref`, `n_atoms` [B]; `forces`, `forces_ref` [N, 3] when available)."""
    was_training = model.training
    model.eval()
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("energy", "energy_ref", "n_atoms", "forces", "forces_ref")}
    device = next(model.parameters()).device
    try:
        for batch in iterate_batches(graphs, batch_size):
            batch = to(batch, device)
            want_f = compute_forces and FORCES in batch
            out = model(batch, compute_forces=want_f)
            cols["energy"].append(out[ENERGY].detach().double().cpu().numpy())
            cols["n_atoms"].append((batch[PTR][1:] - batch[PTR][:-1]).cpu().numpy())
            if ENERGY in batch:
                cols["energy_ref"].append(batch[ENERGY].double().cpu().numpy())
            if want_f:
                cols["forces"].append(out[FORCES].detach().double().cpu().numpy())
                cols["forces_ref"].append(batch[FORCES].double().cpu().numpy())
    finally:
        model.train(was_training)
    return {k: np.concatenate(v) for k, v in cols.items() if v}
