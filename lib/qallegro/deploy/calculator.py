"""`qallegro.Calculator`: the ASE calculator of `qallegro.calculator`, also given a model file or a run directory."""

from __future__ import annotations

from pathlib import Path

import torch

from qallegro.calculator import Calculator as ModuleCalculator
from qallegro.deploy.export import load_potential


class Calculator(ModuleCalculator):
    """`qallegro.Calculator(model)`: a potential as an ASE calculator. `model` is a module or a path: an exported
    `.pt2` archive (`qallegro export`), a `model.pt`, or a training run directory (`load_potential`).

    Properties: `energy`, `free_energy`, `energies` (per atom), `forces`, and `stress` (Voigt, eV/Å^3) when all
    three axes are periodic. Neighbour pairs within `r_max + skin` (Å) are kept between calls and rebuilt (vesin)
    once an atom has moved more than `skin / 2`; `skin=0` rebuilds at every call.
    """

    def __init__(self, model: torch.nn.Module | str | Path, device: str | torch.device = "cpu", skin: float = 1.0,
                 **kwargs) -> None:
        if isinstance(model, (str, Path)):
            model = load_potential(model, device=device)
        super().__init__(model, device=device, skin=skin, **kwargs)
