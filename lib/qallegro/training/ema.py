"""Exponential moving average of model parameters (torch_ema / nequip behaviour).

After every optimizer step: `shadow <- shadow - (1 - d) (shadow - param)` with
`d = min(decay, (1 + n) / (10 + n))` when `use_num_updates` (n = updates so far), else `d = decay`.
The shadow starts as a copy of the initial parameters. Validation and test use the shadow weights.

Why not torch's `AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))`: it gives different numbers.
Its first `update_parameters` replaces the average by the current weights (the initial weights are dropped, an
offset of `decay^n (p_0 - p_1)` after n steps; tests/test_training_ema.py), its decay is constant (no
`use_num_updates` warm-up, which nequip and torch_ema use by default), and it keeps a deep copy of the whole
model where the checkpoints here store a list of shadow tensors. `torch-ema` computes the same numbers as this
class but is unmaintained since 2021; this class is its 60 lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


class ExponentialMovingAverage:
    def __init__(self, parameters: list[torch.nn.Parameter], decay: float, use_num_updates: bool = True):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must lie in [0, 1), got {decay}")
        self.parameters = [p for p in parameters if p.requires_grad]
        self.decay = decay
        self.num_updates = 0 if use_num_updates else None
        self.shadow = [p.detach().clone() for p in self.parameters]

    @torch.no_grad()
    def update(self) -> None:
        decay = self.decay
        if self.num_updates is not None:
            self.num_updates += 1
            decay = min(decay, (1 + self.num_updates) / (10 + self.num_updates))
        for s, p in zip(self.shadow, self.parameters):
            s.sub_((1.0 - decay) * (s - p))

    @torch.no_grad()
    def copy_to(self) -> None:
        """Write the shadow weights into the model parameters."""
        for s, p in zip(self.shadow, self.parameters):
            p.copy_(s)

    @contextmanager
    def average_parameters(self) -> Iterator[None]:
        """Temporarily use the shadow weights in the model."""
        backup = [p.detach().clone() for p in self.parameters]
        self.copy_to()
        try:
            yield
        finally:
            with torch.no_grad():
                for b, p in zip(backup, self.parameters):
                    p.copy_(b)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": [s.clone() for s in self.shadow]}

    def load_state_dict(self, state: dict) -> None:
        if len(state["shadow"]) != len(self.shadow):
            raise ValueError("EMA state does not match the model's parameters")
        self.decay = state["decay"]
        self.num_updates = state["num_updates"]
        self.shadow = [s.clone().to(dtype=p.dtype, device=p.device) for s, p in zip(state["shadow"], self.parameters)]
