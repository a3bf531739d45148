"""Analytic bi-objective test problems (milliseconds per evaluation) for checking and timing the samplers.

ZDT1 (Zitzler, Deb and Thiele 2000): x in [0, 1]^d, f1 = x1, g = 1 + 9 mean(x2..xd), f2 = g (1 - sqrt(f1 / g)).
Its Pareto front is f2 = 1 - sqrt(f1) (g = 1), so the best hypervolume with reference (1.1, 1.1) is known:
`ZDT1_HV_REF11` = 1.21 - 2/3 + ... computed in `zdt1_optimal_hv`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def zdt1(x: np.ndarray) -> tuple[float, float]:
    """ZDT1 objectives of a point `x` [d] in [0, 1]^d."""
    x = np.asarray(x, float)
    f1 = float(x[0])
    g = 1.0 + 9.0 * float(np.mean(x[1:])) if len(x) > 1 else 1.0
    return f1, float(g * (1.0 - np.sqrt(f1 / g)))


def zdt1_optimal_hv(reference: tuple[float, float] = (1.1, 1.1), n: int = 100_000) -> float:
    """Hypervolume of the true ZDT1 front w.r.t. `reference` (numerical quadrature of the front curve)."""
    r1, r2 = reference
    f1 = np.linspace(0.0, min(1.0, r1), n)
    f2 = np.clip(1.0 - np.sqrt(f1), None, r2)
    return float(np.trapezoid(r2 - f2, f1) + max(r1 - 1.0, 0.0) * r2)


def zdt1_objective(dim: int = 4, int_params: int = 0) -> Callable:
    """An Optuna objective of ZDT1 in `dim` variables named x0..; the last `int_params` are integers 0..10
    (mapped to x = k/10), to exercise integer handling."""
    def objective(trial) -> tuple[float, float]:
        x = []
        for i in range(dim):
            if i >= dim - int_params:
                x.append(trial.suggest_int(f"x{i}", 0, 10) / 10)
            else:
                x.append(trial.suggest_float(f"x{i}", 0.0, 1.0))
        return zdt1(np.array(x))
    return objective


def zdt1_space(dim: int = 4, int_params: int = 0) -> dict:
    """The Optuna distributions of `zdt1_objective(dim, int_params)`."""
    from optuna.distributions import FloatDistribution, IntDistribution

    return {f"x{i}": (IntDistribution(0, 10) if i >= dim - int_params else FloatDistribution(0.0, 1.0))
            for i in range(dim)}
