"""The samplers of `qallegro hpo`, with every argument explicit (Optuna 5 changed several defaults).

`nsga2` (population 12: the paper's 12 offspring per generation), `tpe` (multivariate TPE with constant liar),
`gp` (Optuna's GPSampler, log-EHVI for two objectives), `random`, and `samo-cobra` (our SAMO-COBRA-style
sampler, `qallegro.hpo.samo_cobra`). Per-scale settings live in `presets/hpo.yaml` under `samplers`.
"""

from __future__ import annotations

from typing import Any

from qallegro.errors import HpoError

SAMPLERS = ("nsga2", "tpe", "gp", "random", "samo-cobra")

DEFAULTS: dict[str, dict[str, Any]] = {
    "nsga2": {"population_size": 12, "crossover_prob": 0.9, "swapping_prob": 0.5},
    "tpe": {"multivariate": True, "constant_liar": True, "n_startup_trials": 10, "n_ei_candidates": 24},
    "gp": {"n_startup_trials": 10, "deterministic_objective": False},
    "random": {},
    "samo-cobra": {"batch_size": 12, "n_init": None, "n_candidates": 2000, "n_starts": 3, "optimizer": "local",
                   "cobyla_maxiter": None},
}


def make_sampler(name: str, seed: int | None, search_space: dict[str, Any] | None = None,
                 options: dict[str, Any] | None = None):
    """An Optuna sampler `name` seeded with `seed`; `options` override `DEFAULTS[name]` (unknown keys raise)."""
    import optuna

    if name not in SAMPLERS:
        raise HpoError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    opts = dict(DEFAULTS[name])
    unknown = set(options or {}) - set(opts)
    if unknown:
        raise HpoError(f"sampler {name}: unknown option(s) {sorted(unknown)}; known: {sorted(opts)}")
    opts.update(options or {})
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, **opts)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **opts)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed, **opts)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    from qallegro.hpo.samo_cobra import SamoCobraSampler

    return SamoCobraSampler(search_space, seed=seed, **opts)
