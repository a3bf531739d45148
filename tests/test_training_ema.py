"""The EMA of weights (`qallegro.training.ema`) against a hand computation, and against torch's helper
(`AveragedModel` + `get_ema_multi_avg_fn`), which differs by exactly decay^n (p_0 - p_1) after n steps."""

from __future__ import annotations

import pytest
import torch
from qallegro.training.ema import ExponentialMovingAverage
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def steps(n: int, seed: int = 0) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.randn(5, generator=gen, dtype=torch.float64) for _ in range(n + 1)]


@pytest.mark.parametrize("use_num_updates", [False, True])
def test_shadow_follows_the_torch_ema_formula(use_num_updates: bool) -> None:
    values = steps(8)
    model = torch.nn.Linear(5, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(values[0][None])
    ema = ExponentialMovingAverage(list(model.parameters()), decay=0.9, use_num_updates=use_num_updates)
    expected = values[0].clone()
    for n, v in enumerate(values[1:], start=1):
        with torch.no_grad():
            model.weight.copy_(v[None])
        ema.update()
        d = min(0.9, (1 + n) / (10 + n)) if use_num_updates else 0.9
        expected = d * expected + (1 - d) * v
        torch.testing.assert_close(ema.shadow[0][0], expected, rtol=1e-14, atol=1e-14)


def test_torch_helper_drops_the_initial_weights() -> None:
    values, decay = steps(8, seed=1), 0.9
    model = torch.nn.Linear(5, 1, bias=False).double()
    with torch.no_grad():
        model.weight.copy_(values[0][None])
    ours = ExponentialMovingAverage(list(model.parameters()), decay=decay, use_num_updates=False)
    theirs = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay))
    for v in values[1:]:
        with torch.no_grad():
            model.weight.copy_(v[None])
        ours.update()
        theirs.update_parameters(model)
    n = len(values) - 1
    gap = ours.shadow[0][0] - theirs.module.weight.detach()[0]
    torch.testing.assert_close(gap, decay ** n * (values[0] - values[1]), rtol=1e-10, atol=1e-14)
    assert gap.abs().max() > 1e-3  # a real difference: not the same numbers
