"""Analytic bi-objective test problems (milliseconds per evaluation) for checking and timing the samplers.

ZDT1-3 (Zitzler, Deb and Thiele 2000) and DTLZ2 with two objectives (Deb, Thiele, Laumanns and Zitzler 2002), on
x in [0, 1]^d. ZDT: f1 = x1, g = 1 + 9 mean(x2..xd), f2 = g h(f1 / g) with h(u) = 1 - sqrt(u) (ZDT1, convex
front), 1 - u^2 (ZDT2, concave), 1 - sqrt(u) - u sin(10 pi f1) (ZDT3, five disconnected pieces). DTLZ2:
g = sum_{i>1} (x_i - 1/2)^2, f = (1 + g) (cos(pi x1 / 2), sin(pi x1 / 2)) (a quarter circle). Their Pareto fronts
are known (g at its minimum), so the best hypervolume is known (`optimal_hv`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from qallegro.hpo.pareto import hypervolume_2d, pareto_front


def _zdt_h(kind: str, f1: np.ndarray, g: np.ndarray) -> np.ndarray:
    u = f1 / g
    if kind == "zdt1":
        return 1.0 - np.sqrt(u)
    if kind == "zdt2":
        return 1.0 - u**2
    return 1.0 - np.sqrt(u) - u * np.sin(10 * np.pi * f1)


def evaluate(problem: str, x: np.ndarray) -> tuple[float, float]:
    """Objectives of `problem` (one of `PROBLEMS`) at a point `x` [d] in [0, 1]^d."""
    x = np.asarray(x, float)
    if problem == "dtlz2":
        g = float(np.sum((x[1:] - 0.5) ** 2))
        return (1 + g) * float(np.cos(np.pi * x[0] / 2)), (1 + g) * float(np.sin(np.pi * x[0] / 2))
    if problem not in PROBLEMS:
        raise ValueError(f"unknown test problem {problem!r}; choose one of {', '.join(PROBLEMS)}")
    f1 = float(x[0])
    g = 1.0 + 9.0 * float(np.mean(x[1:])) if len(x) > 1 else 1.0
    return f1, float(g * _zdt_h(problem, np.array(f1), np.array(g)))


def true_front(problem: str, n: int = 20_001) -> np.ndarray:
    """`n` points along the Pareto-optimal set's image, reduced to the non-dominated ones [k, 2]."""
    t = np.linspace(0.0, 1.0, n)
    if problem == "dtlz2":
        pts = np.stack([np.cos(np.pi * t / 2), np.sin(np.pi * t / 2)], axis=1)
    else:
        pts = np.stack([t, _zdt_h(problem, t, np.ones_like(t))], axis=1)
    return pareto_front(pts)


def optimal_hv(problem: str, reference: tuple[float, float] = (1.1, 1.1)) -> float:
    """Hypervolume of `true_front(problem)` w.r.t. `reference` (20,001 points: within 1e-4 of the integral)."""
    return hypervolume_2d(true_front(problem), reference)


def zdt1(x: np.ndarray) -> tuple[float, float]:
    """ZDT1 objectives of a point `x` [d] in [0, 1]^d."""
    return evaluate("zdt1", x)


def zdt1_optimal_hv(reference: tuple[float, float] = (1.1, 1.1), n: int = 100_000) -> float:
    """Hypervolume of the true ZDT1 front w.r.t. `reference` (numerical quadrature of the front curve)."""
    r1, r2 = reference
    f1 = np.linspace(0.0, min(1.0, r1), n)
    f2 = np.clip(1.0 - np.sqrt(f1), None, r2)
    return float(np.trapezoid(r2 - f2, f1) + max(r1 - 1.0, 0.0) * r2)


def problem_objective(problem: str, dim: int = 4, int_params: int = 0) -> Callable:
    """An Optuna objective of `problem` in `dim` variables named x0..; the last `int_params` are integers 0..10
    (mapped to x = k/10), to exercise integer handling."""
    def objective(trial) -> tuple[float, float]:
        x = []
        for i in range(dim):
            if i >= dim - int_params:
                x.append(trial.suggest_int(f"x{i}", 0, 10) / 10)
            else:
                x.append(trial.suggest_float(f"x{i}", 0.0, 1.0))
        return evaluate(problem, np.array(x))
    return objective


def zdt1_objective(dim: int = 4, int_params: int = 0) -> Callable:
    """`problem_objective("zdt1", dim, int_params)`."""
    return problem_objective("zdt1", dim, int_params)


def problem_space(dim: int = 4, int_params: int = 0) -> dict:
    """The Optuna distributions of `problem_objective(..., dim, int_params)`."""
    from optuna.distributions import FloatDistribution, IntDistribution

    return {f"x{i}": (IntDistribution(0, 10) if i >= dim - int_params else FloatDistribution(0.0, 1.0))
            for i in range(dim)}


zdt1_space = problem_space
PROBLEMS = ("zdt1", "zdt2", "zdt3", "dtlz2")


def run_problem(problem: str, sampler: str, seed: int, n_trials: int, dim: int = 6,
                options: dict | None = None) -> np.ndarray:
    """Objective values [n_trials, 2], in evaluation order, of one study of `sampler` (a name of
    `qallegro.hpo.samplers.SAMPLERS`, with `options`) on `problem` in `dim` variables."""
    import warnings

    import optuna

    from qallegro.hpo.samplers import make_sampler

    study = optuna.create_study(directions=["minimize", "minimize"],
                                sampler=make_sampler(sampler, seed, problem_space(dim), options))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's experimental-feature warnings
        study.optimize(problem_objective(problem, dim), n_trials=n_trials)
    return np.array([t.values for t in study.trials], float)
