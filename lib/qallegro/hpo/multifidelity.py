"""Multi-objective asynchronous successive halving (MO-ASHA; Schmucker et al. 2021) over training epochs.

A trial trains rung by rung: at `rungs(min_epochs, max_epochs, eta)` = min_epochs, min_epochs * eta, ... epochs
it records its two objective values at that fidelity, and continues only when it is among the top
max(1, n // eta) of the n trials recorded at that rung so far, ranked by non-dominated rank (moocore) and then
by crowding distance (larger first), as NSGA-II's selection; otherwise it stops there (Optuna state PRUNED). The
decision is asynchronous (no waiting for a rung to fill), so any number of workers keep working.

The rung values live in the study (`mf:rung:<epochs>` user attrs of each trial), so workers sharing a journal
file or a PostgreSQL database see each other's, and a retried trial (after a kill) inherits its first attempt's
values and promotions (`mf:passed:<epochs>`) and decides only the rungs it had not passed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

RUNG_ATTR = "mf:rung:"
PASSED_ATTR = "mf:passed:"
MF_OBJECTIVE = "qallegro.hpo.multifidelity:train_objective"


def rungs(min_epochs: int, max_epochs: int, eta: int = 3) -> list[int]:
    """Epoch budgets of the rungs: min_epochs * eta^k below max_epochs, then max_epochs."""
    if min_epochs < 1 or max_epochs < min_epochs or eta < 2:
        raise ValueError(f"multi-fidelity: need 1 <= min_epochs ({min_epochs}) <= max_epochs ({max_epochs}) "
                         f"and eta ({eta}) >= 2")
    out, r = [], min_epochs
    while r < max_epochs:
        out.append(r)
        r *= eta
    return [*out, max_epochs]


def crowding_distance(values: np.ndarray) -> np.ndarray:
    """NSGA-II crowding distance of each row of `values` [n, m] within its own set (extremes: infinity)."""
    n, m = values.shape
    dist = np.zeros(n)
    if n <= 2:
        return np.full(n, np.inf)
    for k in range(m):
        order = np.argsort(values[:, k], kind="stable")
        span = values[order[-1], k] - values[order[0], k]
        dist[order[0]] = dist[order[-1]] = np.inf
        if span > 0:
            dist[order[1:-1]] += (values[order[2:], k] - values[order[:-2], k]) / span
    return dist


def selection_order(values: np.ndarray) -> np.ndarray:
    """Indices of `values` [n, 2] (minimised) best first: by non-dominated rank, then by crowding distance within
    the rank (larger first), then by index."""
    import moocore

    values = np.asarray(values, float).reshape(-1, 2)
    if len(values) == 0:
        return np.zeros(0, int)
    rank = moocore.pareto_rank(values)
    crowd = np.zeros(len(values))
    for r in np.unique(rank):
        members = np.flatnonzero(rank == r)
        crowd[members] = crowding_distance(values[members])
    return np.lexsort((np.arange(len(values)), -crowd, rank))


def survivors(values: np.ndarray, eta: int) -> np.ndarray:
    """The rows of a rung's values [n, 2] that train on: the top max(1, n // eta) by `selection_order`."""
    return selection_order(values)[: max(1, len(values) // eta)]


def promoted(values: np.ndarray, index: int, eta: int) -> bool:
    """Whether row `index` of the rung's values [n, 2] is among its `survivors`."""
    return bool(index in survivors(values, eta))


def rung_key(epochs: int) -> str:
    return f"{RUNG_ATTR}{epochs}"


def rung_values(trials: Sequence, epochs: int) -> tuple[np.ndarray, list[int]]:
    """The values recorded at rung `epochs` by `trials` (FrozenTrials), one row per first attempt (a retry and
    its first attempt count once), and those first attempts' numbers."""
    seen: dict[int, list[float]] = {}
    for t in trials:
        v = t.user_attrs.get(rung_key(epochs))
        if v is not None and all(math.isfinite(x) for x in v):
            seen.setdefault(int(t.system_attrs.get("failed_trial", t.number)), list(v))
    numbers = sorted(seen)
    return np.array([seen[n] for n in numbers], float).reshape(-1, 2), numbers


def passed_key(epochs: int) -> str:
    return f"{PASSED_ATTR}{epochs}"


def should_continue(study, trial, epochs: int, values: Sequence[float], eta: int) -> bool:
    """Record `values` [2] of the running `trial` (an optuna.Trial) at rung `epochs` and decide (MO-ASHA)
    whether it trains on to the next rung; a promotion is recorded (`mf:passed:<epochs>`), so that a retry of
    the trial after a kill does not decide that rung again (against more competitors than the first time)."""
    trial.set_user_attr(rung_key(epochs), [float(v) for v in values])
    mine = int(study._storage.get_trial_system_attrs(trial._trial_id).get("failed_trial", trial.number))
    vals, numbers = rung_values(study.get_trials(deepcopy=False), epochs)
    ok = promoted(vals, numbers.index(mine), eta)
    if ok:
        trial.set_user_attr(passed_key(epochs), True)
    return ok


def train_objective(overrides: dict, ctx):
    """The default objective (train, then time inference) rung by rung under MO-ASHA: after each rung's epochs
    the trial's (error, inference time) are recorded and compared (`should_continue`); a trial that is not
    promoted stops there (optuna.TrialPruned, with its last values in its user attrs). Settings:
    `multifidelity` in the study's settings: `min_epochs` (1), `eta` (3), `max_epochs` (default: the
    per-trial `max_epochs`). The training of each rung resumes the previous rung's run in the trial folder, so
    a killed trial's retry resumes from its checkpoint and skips the rungs its first attempt had passed."""
    import optuna

    from qallegro.hpo.objective import TrialResult, error_metric, measure_inference, trial_config
    from qallegro.hpo.records import hpo_settings
    from qallegro.training import load_run, train

    mf = hpo_settings(ctx.settings).multifidelity
    base = trial_config(ctx.dataset, ctx.variant, ctx.scale, overrides, ctx.settings, ctx.threads)
    ladder = rungs(mf.min_epochs, int(mf.max_epochs or base["max_epochs"]), mf.eta)
    passed = {r for r in ladder if ctx.trial.user_attrs.get(passed_key(r))}  # by the first attempt (a retry)
    timing = None
    for r in ladder:
        if r in passed:
            continue
        cfg = {**base, "max_epochs": r}
        result = train(cfg, run_dir=ctx.trial_dir, resume=True, progress=False)
        if timing is None:  # the inference time does not depend on the epochs trained
            timing = measure_inference(load_run(result.run_dir), ctx.dataset, ctx.settings, ctx.threads,
                                       cfg["dataset_options"])
        values = (error_metric(ctx.dataset, result), float(timing["total_s"]))
        attrs = {"run_dir": result.run_dir, "val_f_mae": result.val_f_mae, "val_e_mae": result.val_e_mae,
                 "epochs": result.epochs, "inference_total_s": timing["total_s"], "rungs": ladder}
        ctx.logger.info(f"trial {ctx.trial_number}: rung {r} epochs: error {values[0]:.5g}, "
                        f"inference {values[1]:.4g} s")
        if r < ladder[-1] and not should_continue(ctx.trial.study, ctx.trial, r, values, mf.eta):
            for key, value in attrs.items():
                ctx.trial.set_user_attr(key, value)
            raise optuna.TrialPruned(f"MO-ASHA stopped the trial at rung {r} epochs")
    ctx.trial.set_user_attr(rung_key(ladder[-1]), list(values))
    return TrialResult(values, attrs)
