"""The objective of one HPO trial, pluggable.

An objective is any callable `objective(overrides, ctx) -> TrialResult`: `overrides` are the config keys the
trial sets (from `SearchSpace.overrides`), `ctx` says where and at which budget to run. The default,
`train_objective`, trains the model through `qallegro.training` at the scale's per-trial budget and returns
(validation force MAE, total inference time over the test set); for QM9 the first objective is the validation
energy MAE, as in the paper. Another objective is chosen by a "module:function" spec (`--objective`), which is
also how the tests plug in a fast synthetic one.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qallegro.errors import HpoError
from qallegro.hpo.records import HpoSettings, hpo_settings

DEFAULT_OBJECTIVE = "qallegro.hpo.objective:train_objective"


@dataclass
class TrialContext:
    """Everything an objective needs besides the parameters."""

    dataset: str
    variant: str
    scale: str
    trial_dir: Path          # this attempt's own folder (a retry's starts as a copy of the previous attempt's)
    trial_number: int        # the number of the first attempt
    settings: HpoSettings     # `presets/hpo.yaml[scale]` with the study's overrides
    threads: int = 1
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("qallegro.hpo"))
    trial: Any = None         # the running optuna.Trial (multi-fidelity objectives record per-rung values on it)


@dataclass
class TrialResult:
    """The two objective values (error, time) and what to store with the trial (JSON-able)."""

    values: tuple[float, float]
    attrs: dict[str, Any] = field(default_factory=dict)


Objective = Callable[[dict[str, Any], TrialContext], TrialResult]


def objective_names(dataset: str) -> tuple[str, str]:
    """Names of the two objectives: the validation error metric (energies where the dataset has no forces, as
    for QM9 in the paper) and the inference time."""
    from qallegro.data import dataset_spec

    return ("val_f_mae" if dataset_spec(dataset).has_forces else "val_e_mae", "inference_total_s")


def load_objective(spec: str = DEFAULT_OBJECTIVE) -> Objective:
    """Import the objective named by `spec` ("package.module:function")."""
    module, sep, name = spec.partition(":")
    if not sep or not module or not name:
        raise HpoError(f"objective {spec!r}: expected 'module:function'")
    try:
        fn = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise HpoError(f"objective {spec!r} cannot be imported: {err}") from None
    if not callable(fn):
        raise HpoError(f"objective {spec!r} is not callable")
    return fn


def trial_config(dataset: str, variant: str, scale: str, overrides: dict[str, Any], settings: Mapping[str, Any],
                 threads: int | None = None, final: bool = False) -> dict[str, Any]:
    """The training config of a trial: training defaults at `scale` <- the HPO budget (`trial_overrides`, then
    `trial_overrides_by_dataset[dataset]`; or `final_overrides` when `final`) <- the trial's parameters."""
    from qallegro.training import resolve_config

    budget = hpo_settings(settings).budget(dataset, final)
    extra = {"threads": threads} if threads else {}
    return resolve_config(dataset, variant, scale, overrides={**budget, **overrides, **extra})


def error_metric(dataset: str, metrics: Mapping[str, Any]) -> float:
    """The first objective from a training result (a `TrainResult`, or any mapping with its keys)."""
    return float(metrics[objective_names(dataset)[0]])


_TEST_CACHE: dict[str, list] = {}


def test_structures(dataset: str, max_structures: int | None, options: dict[str, Any] | None = None) -> list:
    """The test split of `dataset` (its first `max_structures` when given), loaded with the training config's
    `dataset_options` (e.g. the Cu-Li scale), cached per process."""
    import json

    opts = dict(options or {})
    if max_structures:
        opts["max_frames"] = int(max_structures)
    key = json.dumps([dataset, opts], sort_keys=True, default=str)
    if key not in _TEST_CACHE:
        from qallegro.data import load_dataset

        _TEST_CACHE[key] = load_dataset(dataset, split="test", **opts)
    return _TEST_CACHE[key]


def measure_inference(model, dataset: str, settings: Mapping[str, Any], threads: int,
                      options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Total inference time (energies and forces) of `model` over the test set, through
    `qallegro.timing.inference_time`; `settings["timing"]` gives max_structures (null: the whole test split),
    batch_size, repeats, warmup, clock ("wall" or "process": CPU time) and flops (count matrix-product FLOPs);
    `options` are the training config's `dataset_options` (the same test split
    as the training run's). Neighbour lists are not timed (see `qallegro.timing`)."""
    from qallegro.timing import inference_time

    timing = hpo_settings(settings).timing
    atoms = test_structures(dataset, timing.max_structures, options)
    return inference_time(model, atoms, batch_size=timing.batch_size, repeats=timing.repeats, warmup=timing.warmup,
                          threads=threads, clock=timing.clock, flops=timing.flops)


def train_objective(overrides: dict[str, Any], ctx: TrialContext) -> TrialResult:
    """Train at the scale's per-trial budget, then time inference on the test set (the paper's objectives)."""
    from qallegro.training import load_run, train

    cfg = trial_config(ctx.dataset, ctx.variant, ctx.scale, overrides, ctx.settings, ctx.threads)
    result = train(cfg, run_dir=ctx.trial_dir, resume=True, progress=False)
    model = load_run(result.run_dir)
    timing = measure_inference(model, ctx.dataset, ctx.settings, ctx.threads, cfg["dataset_options"])
    error = error_metric(ctx.dataset, result)
    attrs = {"run_dir": result.run_dir, "val_f_mae": result.val_f_mae, "val_e_mae": result.val_e_mae,
             "epochs": result.epochs, "train_wall_s": result.wall_s,
             "inference_total_s": timing["total_s"], "inference_per_atom_s": timing["per_atom_s"],
             "inference_n_structures": timing["n_structures"], "inference_clock": timing["clock"],
             "matmul_flops_per_structure": timing.get("matmul_flops_per_structure"),  # only with timing.flops
             "stop_reason": result.stop_reason,
             "truncated": result.stop_reason in ("max_wall_s", "non-finite loss")}
    ctx.logger.info(f"trial {ctx.trial_number}: error {error:.5g}, inference {timing['total_s']:.4g} s")
    return TrialResult((error, float(timing["total_s"])), attrs)

