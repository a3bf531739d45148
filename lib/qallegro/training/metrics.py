"""Error metrics accumulated over batches: energy per atom and per structure, forces (eV, eV/Å).

Conventions (nequip's): `f_mae`/`f_rmse` over all force components; `e_mae`/`e_rmse` over structures of
|E - E_ref| / N (eV/atom); `etot_mae`/`etot_rmse` over structures of |E - E_ref| (eV).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import torch

from qallegro.data.graph import ENERGY, FORCES, PTR, Graph

METRIC_NAMES = ("e_mae", "e_rmse", "etot_mae", "etot_rmse", "f_mae", "f_rmse")


class ErrorAccumulator:
    """Sums of absolute and squared errors; `compute()` gives the metrics of everything added so far."""

    def __init__(self) -> None:
        self.sums = dict.fromkeys(("e_abs", "e_sq", "etot_abs", "etot_sq", "f_abs", "f_sq"), 0.0)
        self.n_structures = 0
        self.n_force_components = 0

    @torch.no_grad()
    def add(self, out: Mapping[str, torch.Tensor], batch: Graph) -> None:
        de = (out[ENERGY].detach() - batch[ENERGY]).double()
        n_atoms = (batch[PTR][1:] - batch[PTR][:-1]).double()
        self.sums["etot_abs"] += float(de.abs().sum())
        self.sums["etot_sq"] += float((de ** 2).sum())
        self.sums["e_abs"] += float((de / n_atoms).abs().sum())
        self.sums["e_sq"] += float(((de / n_atoms) ** 2).sum())
        self.n_structures += int(de.numel())
        if FORCES in out and FORCES in batch:
            df = (out[FORCES].detach() - batch[FORCES]).double()
            self.sums["f_abs"] += float(df.abs().sum())
            self.sums["f_sq"] += float((df ** 2).sum())
            self.n_force_components += int(df.numel())

    def compute(self) -> dict[str, float]:
        nan = float("nan")
        ns, nf = self.n_structures, self.n_force_components
        return {
            "e_mae": self.sums["e_abs"] / ns if ns else nan,
            "e_rmse": math.sqrt(self.sums["e_sq"] / ns) if ns else nan,
            "etot_mae": self.sums["etot_abs"] / ns if ns else nan,
            "etot_rmse": math.sqrt(self.sums["etot_sq"] / ns) if ns else nan,
            "f_mae": self.sums["f_abs"] / nf if nf else nan,
            "f_rmse": math.sqrt(self.sums["f_sq"] / nf) if nf else nan,
        }

    def state_dict(self) -> dict:
        return {"sums": dict(self.sums), "n_structures": self.n_structures,
                "n_force_components": self.n_force_components}

    def load_state_dict(self, state: Mapping) -> None:
        self.sums = dict(state["sums"])
        self.n_structures = int(state["n_structures"])
        self.n_force_components = int(state["n_force_components"])
