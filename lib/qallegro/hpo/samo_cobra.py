"""`SamoCobraSampler`: SAMO-COBRA (de Winter, van Stein and Bäck, EMO 2021) as a multi-objective Optuna sampler.

The paper optimised with "our implementation of SAMO-COBRA" (batch version pSAMO-COBRA, 12 offspring per
generation). This module re-implements the published algorithm; it was checked point by point against the
authors' code (github.com/RoydeZomer/SAMO-COBRA, Multi-Point-SAMO-COBRA and the paper's fork glatq/IOC-SAMO-COBRA,
read, not copied; the comparison is in `benchmarks/README.md`). As there:

* parameters scaled to [-1, 1] (log-scaled ones in log space), integers rounded before anything is evaluated;
* an initial design of d + 1 points (scrambled Halton here);
* per objective, radial-basis-function interpolants with a linear-plus-squares polynomial tail solved by an SVD
  pseudo-inverse (so they fit from the second point on), six kernels (cubic, Gaussian, multiquadric, inverse
  quadratic, inverse multiquadric, thin-plate spline; width 1 on the [-1, 1] scale), each on the standardised
  objective and on its standardised plog transform (plog(y) = sign(y) ln(1 + |y|));
* the kernel/transform of each objective chosen by the root-mean-square error of its one-step-ahead predictions
  (each model's prediction of a proposal, made before it was evaluated) over the evaluations that grew the
  hypervolume and the last two generations; cubic on the standardised objective until such errors exist;
* the PHV infill: maximise the hypervolume of the front with the predicted point; a predicted-dominated point
  scores minus the reference's penalty, max_j [prod_k (1 + f_k - p_jk) - 1] over the front points p_j that
  dominate it;
* the infill optimum searched by COBYLA from several starting points, subject to a minimum distance of d / 1e4
  to evaluated points;
* a batch of `batch_size` proposals per generation.

What differs (see the comparison page): objectives are min-max normalised over the evaluated points with the
reference point (1.1, 1.1) instead of a user-given reference point; COBYLA starts from the best points of a
random and Pareto-local candidate pool (plus random starts) and its result is rounded onto integers; a batch is
chosen greedily, one point after another with the earlier picks added to the front at their predicted values,
instead of one joint COBYLA over all points of the batch; constraint handling and the SMS infill's uncertainty
term are left out (our problems have no constraints).

Generations are stored in the study (`study system attrs`), so several workers sharing a study through a
database take the proposals of one generation instead of each computing its own; each trial stores the models'
predictions for it (`samo_cobra:pred`), from which the kernel selection is computed.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import numpy as np
from optuna.samplers import BaseSampler, RandomSampler

from qallegro.hpo.optuna_api import set_study_system_attr, set_trial_system_attr, study_system_attrs
from qallegro.hpo.pareto import hypervolume_2d, pareto_front, pareto_mask

BATCH_KEY = "samo_cobra:batch"
SLOT_KEY = "samo_cobra:slot"
PRED_KEY = "samo_cobra:pred"
KERNELS = ("cubic", "gaussian", "multiquadric", "invquadric", "invmultiquadric", "thin_plate")
TRANSFORMS = ("standardized", "plog")
MODELS = tuple(f"{k}/{t}" for k in KERNELS for t in TRANSFORMS)
DEFAULT_MODEL = "cubic/standardized"


# ----------------------------------------------------------------------------------------------- surrogate
def plog(y: np.ndarray) -> np.ndarray:
    """sign(y) ln(1 + |y|): compresses large values, keeps the sign (SACOBRA's transform)."""
    return np.sign(y) * np.log1p(np.abs(y))


def plog_inverse(t: np.ndarray) -> np.ndarray:
    """The inverse of `plog`."""
    return np.sign(t) * np.expm1(np.minimum(np.abs(t), 700.0))


def _kernel(name: str, r: np.ndarray) -> np.ndarray:
    if name == "cubic":
        return r**3
    if name == "thin_plate":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(r > 0, r**2 * np.log(np.where(r > 0, r, 1.0)), 0.0)
    if name == "multiquadric":
        return np.sqrt(1.0 + r**2)
    if name == "gaussian":
        return np.exp(-(r**2))
    if name == "invquadric":
        return 1.0 / (1.0 + r**2)
    if name == "invmultiquadric":
        return 1.0 / np.sqrt(1.0 + r**2)
    raise ValueError(f"unknown RBF kernel {name!r}; choose one of {KERNELS}")


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


def _tail(x: np.ndarray) -> np.ndarray:
    """The polynomial tail's columns [1, x, x^2] of rows `x` [n, d] -> [n, 1 + 2d]."""
    return np.hstack([np.ones((len(x), 1)), x, x * x])


class RBFModel:
    """An RBF interpolant on [-1, 1]^d with a linear-plus-squares tail:
    s(x) = sum_i w_i phi(|x - x_i|) + c0 + c.x + q.x^2, fitted to the standardised (optionally plog-transformed)
    targets through an SVD pseudo-inverse (singular values below 1e-14 of the largest dropped)."""

    def __init__(self, kernel: str = "cubic", transform: str = "standardized") -> None:
        if kernel not in KERNELS or transform not in TRANSFORMS:
            raise ValueError(f"unknown RBF model {kernel}/{transform}; choose from {MODELS}")
        self.kernel, self.transform = kernel, transform

    def fit(self, x: np.ndarray, y: np.ndarray) -> RBFModel:
        """Fit on `x` [n, d] and targets `y` [n]."""
        n = len(x)
        t = plog(np.asarray(y, float)) if self.transform == "plog" else np.asarray(y, float)
        self._mu, self._sd = float(t.mean()), float(t.std()) or 1.0
        p = _tail(x)
        m = np.block([[_kernel(self.kernel, _distances(x, x)), p], [p.T, np.zeros((p.shape[1], p.shape[1]))]])
        rhs = np.concatenate([(t - self._mu) / self._sd, np.zeros(p.shape[1])])
        coef = np.linalg.pinv(m, rcond=1e-14, hermitian=True) @ rhs
        self._x, self._w, self._c = x, coef[:n], coef[n:]
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for `x` [m, d] -> [m], in the original target units."""
        t = (_kernel(self.kernel, _distances(x, self._x)) @ self._w + _tail(x) @ self._c) * self._sd + self._mu
        return plog_inverse(t) if self.transform == "plog" else t


def fit_models(x: np.ndarray, y: np.ndarray) -> dict[str, RBFModel]:
    """Every kernel/transform model (`MODELS`) fitted on (x [n, d], y [n]); repeated inputs averaged first."""
    x, inverse = np.unique(x, axis=0, return_inverse=True)
    y = np.bincount(inverse.ravel(), weights=y) / np.bincount(inverse.ravel())
    return {name: RBFModel(*name.split("/")).fit(x, y) for name in MODELS}


def select_model(errors: dict[str, np.ndarray], counted: np.ndarray) -> str:
    """The model with the smallest root-mean-square one-step-ahead error over the `counted` evaluations
    (`errors[model]`: [n] prediction errors of the evaluations in order); `DEFAULT_MODEL` without any."""
    if not np.any(counted):
        return DEFAULT_MODEL
    with np.errstate(over="ignore", invalid="ignore"):
        rmse = {name: float(np.sqrt(np.mean(np.asarray(e)[counted] ** 2))) for name, e in errors.items()}
    finite = {k: v for k, v in rmse.items() if math.isfinite(v)}
    return min(finite, key=lambda k: (finite[k], MODELS.index(k))) if finite else DEFAULT_MODEL


# ------------------------------------------------------------------------------------------------ infill
def _inside(front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The non-dominated rows of `front` [k, 2] inside `ref`, sorted by f1 (returned as is when they already
    are: the infill search calls `phv_score` thousands of times with one front)."""
    front = np.asarray(front, float).reshape(-1, 2)
    if len(front) and np.all(front < ref) and np.all(np.diff(front[:, 0]) > 0) and np.all(np.diff(front[:, 1]) < 0):
        return front
    return pareto_front(front[np.all(front < ref, axis=1)]) if len(front) else np.zeros((0, 2))


def phv_score(cands: np.ndarray, front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """The PHV infill criterion of each row of `cands` [m, 2] (to maximise), given the non-dominated `front`.

    Not dominated: the hypervolume gained by adding the point to the front (0 outside `ref`, minus the distance
    to `ref` to lead back inside). Weakly dominated by a front point p_j: minus the largest
    prod_k (1 + f_k - p_jk) - 1 (the authors' penalty, 0 only on the front itself).
    """
    front = _inside(front, ref)
    # staircase of the front: for f1 in [b_j, b_{j+1}) the front's attained f2 level is h_j
    hi = np.concatenate([front[:, 0], [ref[0]]])
    h = np.concatenate([[ref[1]], front[:, 1]])
    lo = np.concatenate([[-np.inf], front[:, 0]])
    width = np.clip(np.minimum(hi[None, :], ref[0]) - np.maximum(lo[None, :], cands[:, [0]]), 0, None)
    height = np.clip(h[None, :] - cands[:, [1]], 0, None)
    gain = np.where(np.all(cands < ref, axis=1), np.sum(width * height, axis=1), 0.0)
    if len(front):
        excess = cands[:, None, :] - front[None, :, :]                # [m, k, 2]
        dominated_by = np.all(excess >= 0, axis=2)
        penalty = np.where(dominated_by, np.prod(1 + excess, axis=2) - 1, 0.0).max(axis=1)
        dominated = dominated_by.any(axis=1)
    else:
        penalty, dominated = np.zeros(len(cands)), np.zeros(len(cands), bool)
    outside = np.clip(cands - ref, 0, None).sum(axis=1)
    return np.where(dominated, -penalty - 1e-12, np.where(gain > 0, gain, -outside))


class Codec:
    """Map Optuna distributions onto [-1, 1]^d and back (integers and steps rounded, log scales in log space)."""

    def __init__(self, space: dict[str, Any]) -> None:
        from optuna.distributions import FloatDistribution, IntDistribution

        self.names = sorted(space)
        self.dists = [space[n] for n in self.names]
        for n, d in zip(self.names, self.dists, strict=True):
            if not isinstance(d, (FloatDistribution, IntDistribution)):
                raise TypeError(f"SamoCobraSampler handles float and int parameters only; {n} is {d}")

    @property
    def dim(self) -> int:
        return len(self.names)

    def _bounds(self, d) -> tuple[float, float]:
        return (math.log(d.low), math.log(d.high)) if d.log else (float(d.low), float(d.high))

    def encode(self, params: dict[str, Any]) -> np.ndarray:
        out = []
        for n, d in zip(self.names, self.dists, strict=True):
            lo, hi = self._bounds(d)
            v = math.log(params[n]) if d.log else float(params[n])
            out.append(0.0 if hi == lo else 2 * (v - lo) / (hi - lo) - 1)
        return np.array(out)

    def decode(self, z: np.ndarray) -> dict[str, Any]:
        from optuna.distributions import IntDistribution

        out: dict[str, Any] = {}
        for zi, n, d in zip(np.clip(z, -1, 1), self.names, self.dists, strict=True):
            lo, hi = self._bounds(d)
            v = lo + (zi + 1) / 2 * (hi - lo)
            v = math.exp(v) if d.log else v
            step = d.step
            if step is not None:
                v = d.low + round((v - d.low) / step) * step
            v = min(max(v, d.low), d.high)
            out[n] = round(v) if isinstance(d, IntDistribution) else float(v)
        return out

    def snap(self, z: np.ndarray) -> np.ndarray:
        """Round rows of `z` [m, d] onto the representable points (integers, steps), vectorised."""
        from optuna.distributions import IntDistribution

        z = np.clip(np.atleast_2d(np.asarray(z, float)), -1, 1).copy()
        for j, d in enumerate(self.dists):
            if d.step is None and not isinstance(d, IntDistribution):
                continue
            lo, hi = self._bounds(d)
            v = lo + (z[:, j] + 1) / 2 * (hi - lo)
            v = np.exp(v) if d.log else v
            if d.step is not None:
                v = d.low + np.round((v - d.low) / d.step) * d.step
            if isinstance(d, IntDistribution):
                v = np.round(v)
            v = np.clip(v, d.low, d.high)
            v = np.log(v) if d.log else v
            z[:, j] = 0.0 if hi == lo else 2 * (v - lo) / (hi - lo) - 1
        return z


# ------------------------------------------------------------------------------------------------ sampler
class SamoCobraSampler(BaseSampler):
    """Optuna sampler (see the module docstring) for two objectives (maximised ones are negated).

    Args:
        search_space: the Optuna distributions to search (float and int); None: inferred from finished trials.
        batch_size: proposals per generation (the paper: 12 offspring; the original SAMO-COBRA: 1).
        n_init: size of the initial Halton design (default d + 1, as the reference).
        seed: random seed (every generation is seeded from `seed` and its number, so runs are reproducible).
        n_candidates: random candidates per generation (plus as many Pareto-local ones) to start the search from.
        n_starts: starts of the infill search per proposal: the best candidates (and, for COBYLA, as many random
            points).
        optimizer: "local" (default): a vectorised shrinking-radius search from each start; "cobyla": scipy's
            COBYLA as the reference (scipy >= 1.16 runs it in pure Python: about 100x slower).
        cobyla_maxiter: COBYLA's evaluation budget per start (None: 50 (d + 2), the reference's first value).
    """

    def __init__(self, search_space: dict[str, Any] | None = None, *, batch_size: int = 12,
                 n_init: int | None = None, seed: int | None = None, n_candidates: int = 2000,
                 n_starts: int = 3, optimizer: str = "local", cobyla_maxiter: int | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"SamoCobraSampler: batch_size must be >= 1, got {batch_size}")
        if optimizer not in ("local", "cobyla"):
            raise ValueError(f"SamoCobraSampler: optimizer must be 'local' or 'cobyla', got {optimizer!r}")
        if n_init is not None and n_init < 1:
            raise ValueError(f"SamoCobraSampler: n_init must be >= 1, got {n_init}")
        self._space = dict(search_space) if search_space is not None else None
        self.batch_size, self.n_init, self.seed = batch_size, n_init, seed
        self.n_candidates, self.n_starts, self.optimizer = n_candidates, n_starts, optimizer
        self.cobyla_maxiter = cobyla_maxiter
        self._independent = RandomSampler(seed=seed)

    # -- Optuna sampler interface ------------------------------------------------------------------------
    def infer_relative_search_space(self, study, trial) -> dict[str, Any]:
        if self._space is not None:
            return self._space
        from optuna.search_space import intersection_search_space

        return intersection_search_space(study.get_trials(deepcopy=False))

    def sample_relative(self, study, trial, search_space: dict[str, Any]) -> dict[str, Any]:
        if not search_space:
            return {}
        fixed = trial.system_attrs.get("fixed_params") or {}
        if set(search_space) <= set(fixed):
            return {}  # an enqueued trial: takes no slot of the generation
        codec = Codec(search_space)
        batch = study_system_attrs(study).get(BATCH_KEY)
        if batch is not None and sorted(batch["names"]) != codec.names:
            batch = None  # the search space changed: start a fresh generation
        taken = {tuple(t.system_attrs[SLOT_KEY]) for t in study.get_trials(deepcopy=False)
                 if SLOT_KEY in t.system_attrs}
        slot = None
        if batch is not None:
            slot = next((i for i in range(len(batch["points"])) if (batch["gen"], i) not in taken), None)
        if slot is None:
            gen = 0 if batch is None else batch["gen"] + 1
            batch = json.loads(json.dumps({"gen": gen, "names": codec.names, **self._generation(study, codec, gen)}))
            set_study_system_attr(study, BATCH_KEY, batch)
            slot = 0
        set_trial_system_attr(study, trial, SLOT_KEY, [batch["gen"], slot])
        if batch.get("preds"):
            set_trial_system_attr(study, trial, PRED_KEY, batch["preds"][slot])
        return {n: batch["points"][slot][n] for n in codec.names}

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def reseed_rng(self) -> None:
        self._independent.reseed_rng()

    # -- generations ---------------------------------------------------------------------------------------
    def _data(self, study, codec: Codec) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict | None]]:
        """Scaled inputs [n, d] and minimised objective values [n, 2] of complete trials in completion order,
        scaled inputs of running ones, and the stored model predictions of each complete trial (or None)."""
        from optuna.study import StudyDirection
        from optuna.trial import TrialState

        sign = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in study.directions])
        done, pending = [], []
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING,
                                                           TrialState.WAITING)):
            if not set(codec.names) <= set(t.params):
                continue
            if t.state != TrialState.COMPLETE:
                pending.append(codec.encode(t.params))
            elif t.values is not None and np.all(np.isfinite(t.values)):
                done.append(t)
        done.sort(key=lambda t: (t.datetime_complete is None, t.datetime_complete, t.number))
        d, n_obj = codec.dim, len(study.directions)
        x = np.array([codec.encode(t.params) for t in done]).reshape(-1, d)
        y = np.array([sign * np.asarray(t.values) for t in done], float).reshape(-1, n_obj)
        return x, y, np.array(pending).reshape(-1, d), [t.system_attrs.get(PRED_KEY) for t in done]

    def _generation(self, study, codec: Codec, gen: int) -> dict[str, Any]:
        from threadpoolctl import threadpool_limits

        # small dense algebra: one BLAS thread (several threads spin and are 10-60x slower on a busy machine)
        with threadpool_limits(1, user_api="blas"):
            return self._generation_points(study, codec, gen)

    def _generation_points(self, study, codec: Codec, gen: int) -> dict[str, Any]:
        """{"points": [params], "preds": [{model: [f1, f2]}] (guided generations), "models": [chosen]}."""
        d = codec.dim
        n_init = self.n_init or d + 1
        x, y, pending, preds = self._data(study, codec)
        rng = np.random.default_rng([self.seed if self.seed is not None else 0, gen])
        if gen == 0 and len(x) < n_init:
            from scipy.stats import qmc

            halton = qmc.Halton(d, scramble=True, seed=rng)
            z = codec.snap(halton.random(n_init - len(x)) * 2 - 1)
            return {"points": [codec.decode(row) for row in z]}
        if len(x) < 2:  # everything failed so far: nothing to model
            z = codec.snap(rng.uniform(-1, 1, (self.batch_size, d)))
            return {"points": [codec.decode(row) for row in z]}
        if y.shape[1] != 2:
            raise ValueError(f"SamoCobraSampler's infill is implemented for two objectives, not {y.shape[1]}")
        models = [fit_models(x, y[:, k]) for k in range(2)]
        chosen = self.choose_models(y, preds)
        z = self.propose(x, y, pending, [models[k][chosen[k]] for k in range(2)], codec, rng)
        out = [{name: [_finite(models[k][name].predict(row[None])[0]) for k in range(2)] for name in MODELS}
               for row in z]
        return {"points": [codec.decode(row) for row in z], "preds": out, "models": chosen}

    def choose_models(self, y: np.ndarray, preds: list[dict | None]) -> list[str]:
        """Per objective, the model of smallest one-step-ahead RMSE over the evaluations (in completion order)
        that grew the hypervolume and the last two generations' (`select_model`)."""
        lo, hi = y.min(axis=0), y.max(axis=0)
        hv = np.array([hypervolume_2d(((y[: i + 1] - lo) / np.where(hi > lo, hi - lo, 1.0)), (1.1, 1.1))
                       for i in range(len(y))])
        counted = np.concatenate([[False], np.diff(hv) > 0])
        counted[-2 * self.batch_size:] = True
        has = np.array([p is not None for p in preds])
        counted &= has
        out = []
        for k in range(y.shape[1]):
            errors = {name: np.array([p[name][k] - y[i, k] if p is not None and p[name][k] is not None else np.nan
                                      for i, p in enumerate(preds)]) for name in MODELS}
            out.append(select_model(errors, counted))
        return out

    def propose(self, x: np.ndarray, y: np.ndarray, pending: np.ndarray, models: list[RBFModel], codec: Codec,
                rng: np.random.Generator) -> list[np.ndarray]:
        """One generation: `batch_size` scaled points maximising the PHV criterion, one after another."""
        lo, hi = y.min(axis=0), y.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)

        def predict(z: np.ndarray) -> np.ndarray:
            return (np.stack([m.predict(z) for m in models], axis=1) - lo) / span

        ref = np.full(2, 1.1)
        front = pareto_front((y - lo) / span)
        known = np.vstack([x, pending]) if len(pending) else x.copy()
        if len(pending):
            front = pareto_front(np.vstack([front, predict(pending)]))
        d = codec.dim
        d_min = d / 1e4  # the reference's minimum distance to evaluated points
        # one candidate pool per generation: uniform points and perturbations of the Pareto set, snapped
        pareto_x = x[pareto_mask(y)]
        cands = [rng.uniform(-1, 1, (self.n_candidates, d))]
        for sigma in (0.2, 0.05):
            base = pareto_x[rng.integers(len(pareto_x), size=self.n_candidates // 2)]
            cands.append(base + rng.normal(0, sigma, base.shape))
        pool = np.unique(codec.snap(np.vstack(cands)), axis=0)
        pool_pred = predict(pool)
        pool_dist = _distances(pool, known).min(axis=1)
        maxiter = self.cobyla_maxiter or 50 * (d + 2)
        out: list[np.ndarray] = []
        for _ in range(self.batch_size):
            sc = np.where(pool_dist > d_min, phv_score(pool_pred, front, ref), -np.inf)
            if not np.any(np.isfinite(sc)):
                best = codec.snap(rng.uniform(-1, 1, d))[0]
            elif self.optimizer == "cobyla":
                best = self._cobyla(pool, sc, known, front, ref, predict, codec, rng, d_min, maxiter)
            else:
                best = self._local(pool, sc, known, front, ref, predict, codec, rng, d_min)
            out.append(best)
            known = np.vstack([known, best])
            pool_dist = np.minimum(pool_dist, _distances(pool, best[None])[:, 0])
            front = pareto_front(np.vstack([front, predict(best[None])]))
        return out

    def _cobyla(self, pool: np.ndarray, sc: np.ndarray, known: np.ndarray, front: np.ndarray, ref: np.ndarray,
                predict: Callable, codec: Codec, rng: np.random.Generator, d_min: float,
                maxiter: int) -> np.ndarray:
        """COBYLA on the PHV criterion from the best pool points and random ones, on [-1, 1]^d, keeping
        `d_min` away from `known` points; the best (snapped) result, or the best pool point."""
        from scipy.optimize import minimize

        d = pool.shape[1]
        order = np.argsort(-sc)[: self.n_starts]
        starts = np.vstack([pool[order[np.isfinite(sc[order])]], rng.uniform(-1, 1, (self.n_starts, d))])

        def neg(z: np.ndarray) -> float:
            return -float(phv_score(predict(np.clip(z, -1, 1)[None]), front, ref)[0])

        cons = [{"type": "ineq", "fun": lambda z: float(_distances(z[None], known).min()) - d_min}]
        found = [pool[order[0]]]
        for z0 in starts:
            res = minimize(neg, z0, method="COBYLA", bounds=[(-1, 1)] * d, constraints=cons,
                           options={"maxiter": maxiter, "tol": 1e-6})
            found.append(codec.snap(res.x)[0])
        found = np.array(found)
        score = phv_score(predict(found), front, ref)
        score = np.where(_distances(found, known).min(axis=1) > d_min, score, -np.inf)
        return found[int(np.argmax(score))]


    def _local(self, pool: np.ndarray, sc: np.ndarray, known: np.ndarray, front: np.ndarray, ref: np.ndarray,
               predict: Callable, codec: Codec, rng: np.random.Generator, d_min: float) -> np.ndarray:
        """From each of the `n_starts` best pool points, a shrinking-radius (1 + 64) search on the snapped
        points keeping `d_min` away from `known` points; the best point found."""
        order = np.argsort(-sc)[: self.n_starts]
        best_z, best_s = pool[order[0]], float(sc[order[0]])
        for z in pool[order[np.isfinite(sc[order])]]:
            s_z = float(phv_score(predict(z[None]), front, ref)[0])
            for sigma in (0.1, 0.05, 0.02, 0.01):
                for _ in range(3):
                    cand = codec.snap(z + rng.normal(0, sigma, (64, len(z))))
                    s = np.where(_distances(cand, known).min(axis=1) > d_min,
                                 phv_score(predict(cand), front, ref), -np.inf)
                    i = int(np.argmax(s))
                    if s[i] > s_z:
                        z, s_z = cand[i], float(s[i])
            if s_z > best_s:
                best_z, best_s = z, s_z
        return best_z


def _finite(v: float) -> float | None:
    """`v` as a float, or None when it is not finite (stored predictions must be valid JSON)."""
    return float(v) if math.isfinite(v) else None
