"""`SamoCobraSampler`: a surrogate-based multi-objective Optuna sampler in the spirit of SAMO-COBRA.

The paper optimised with "our implementation of SAMO-COBRA" (de Winter, van Stein and Bäck, EMO 2021; batch
version pSAMO-COBRA with 12 offspring per generation). This module is a re-implementation from the published
description, not a copy of the MIT-licensed scripts at github.com/RoydeZomer/SAMO-COBRA; what it keeps:

* parameters scaled to [-1, 1] (log-scaled ones in log space), integers rounded before anything is evaluated;
* an initial design from a scrambled Halton sequence (`n_init` = max(batch, d + 1) points by default);
* one radial-basis-function surrogate per objective with a linear polynomial tail, the kernel (cubic, thin-plate
  spline, multiquadric, Gaussian) and the target transform (identity or log) chosen per objective and per
  generation by the smallest leave-one-out error (Rippa's closed form), i.e. "self-adaptive";
* infill by maximising the predicted hypervolume (PHV): the hypervolume gained when the predicted objective
  vector joins the current front; predicted-dominated points get a negative score, their distance to the front;
* a cycling distance requirement around evaluated points (exploration -> exploitation);
* a batch of `batch_size` proposals per generation, chosen one after another with the earlier picks added to the
  front at their predicted values ("believer"), as in the multi-point version.

What it leaves out: constraint handling (our problem has none), the S-metric-selection infill and the
uncertainty terms; and the infill optimum is searched on random and Pareto-local candidates, then refined by a
shrinking-radius local search instead of COBYLA (integers stay integers throughout, and it is vectorised).

Generations are stored in the study (`study system attrs`), so several workers sharing a study through a
database take the proposals of one generation instead of each computing its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from optuna.samplers import BaseSampler, RandomSampler

from qallegro.hpo.optuna_api import set_study_system_attr, set_trial_system_attr, study_system_attrs
from qallegro.hpo.pareto import pareto_front, pareto_mask

BATCH_KEY = "samo_cobra:batch"
SLOT_KEY = "samo_cobra:slot"
KERNELS = ("cubic", "thin_plate", "multiquadric", "gaussian")


# ----------------------------------------------------------------------------------------------- surrogate
def _kernel(name: str, r: np.ndarray, eps: float) -> np.ndarray:
    if name == "cubic":
        return r**3
    if name == "thin_plate":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(r > 0, r**2 * np.log(np.where(r > 0, r, 1.0)), 0.0)
    if name == "multiquadric":
        return np.sqrt(r**2 + eps**2)
    if name == "gaussian":
        return np.exp(-((r / eps) ** 2))
    raise ValueError(f"unknown RBF kernel {name!r}")


def _distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d2 = np.sum(a**2, 1)[:, None] + np.sum(b**2, 1)[None, :] - 2 * a @ b.T
    return np.sqrt(np.maximum(d2, 0.0))


class RBFModel:
    """An RBF interpolant with a linear tail on [-1, 1]^d: s(x) = sum_i w_i phi(|x - x_i|) + c0 + c.x."""

    def __init__(self, kernel: str = "cubic", transform: str = "identity", ridge: float = 1e-8) -> None:
        self.kernel, self.transform, self.ridge = kernel, transform, ridge

    def _fwd(self, y: np.ndarray) -> np.ndarray:
        return np.log(y) if self.transform == "log" else y

    def _inv(self, t: np.ndarray) -> np.ndarray:
        return np.exp(np.clip(t, -700, 700)) if self.transform == "log" else t

    def fit(self, x: np.ndarray, y: np.ndarray) -> RBFModel:
        """Fit on `x` [n, d] and targets `y` [n]; also stores the leave-one-out predictions (`loo`)."""
        n, d = x.shape
        t = self._fwd(np.asarray(y, float))
        self._mu, self._sd = t.mean(), t.std() or 1.0
        ts = (t - self._mu) / self._sd
        dist = _distances(x, x)
        nn = np.where(np.eye(n, dtype=bool), np.inf, dist).min(axis=1) if n > 1 else np.ones(1)
        self.eps = float(np.median(nn[np.isfinite(nn)])) if np.any(np.isfinite(nn)) else 1.0
        self.eps = max(self.eps, 1e-3)
        phi = _kernel(self.kernel, dist, self.eps)
        phi = phi + self.ridge * max(1.0, float(np.abs(phi).max())) * np.eye(n)
        p = np.hstack([np.ones((n, 1)), x])
        m = np.block([[phi, p], [p.T, np.zeros((d + 1, d + 1))]])
        rhs = np.concatenate([ts, np.zeros(d + 1)])
        try:
            minv = np.linalg.inv(m)
        except np.linalg.LinAlgError:
            minv = np.linalg.pinv(m, hermitian=True)
        coef = minv @ rhs
        self._x, self._w, self._c = x, coef[:n], coef[n:]
        diag = np.diag(minv)[:n]
        with np.errstate(divide="ignore", invalid="ignore"):
            loo_err = np.where(np.abs(diag) > 1e-300, coef[:n] / diag, np.inf)  # Rippa: e_i = a_i / (M^-1)_ii
        self.loo = self._inv((ts - loo_err) * self._sd + self._mu)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Predictions for `x` [m, d] -> [m], in the original target units."""
        phi = _kernel(self.kernel, _distances(x, self._x), self.eps)
        ts = phi @ self._w + self._c[0] + x @ self._c[1:]
        return self._inv(ts * self._sd + self._mu)


def fit_best_rbf(x: np.ndarray, y: np.ndarray) -> RBFModel:
    """The kernel/transform pair with the smallest leave-one-out mean absolute error on (x, y).

    Repeated inputs (a noisy objective measured twice) are averaged first: an interpolant cannot take two values.
    """
    x, inverse = np.unique(x, axis=0, return_inverse=True)
    y = np.bincount(inverse.ravel(), weights=y) / np.bincount(inverse.ravel())
    transforms = ("identity", "log") if np.all(y > 0) else ("identity",)
    best, best_err = None, np.inf
    for kernel in KERNELS:
        for transform in transforms:
            try:
                model = RBFModel(kernel, transform).fit(x, y)
            except np.linalg.LinAlgError:
                continue
            err = float(np.mean(np.abs(model.loo - y)))
            if np.isfinite(err) and err < best_err:
                best, best_err = model, err
    if best is None:
        raise np.linalg.LinAlgError("no RBF surrogate could be fitted")
    best.loo_mae = best_err
    return best


# ------------------------------------------------------------------------------------------------ infill
def hv_improvement_2d(cands: np.ndarray, front: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Hypervolume gained by adding each row of `cands` [m, 2] to `front` (a non-dominated set), vectorised.

    Dominated candidates (or outside `ref`) score minus their distance to leave the dominated region.
    """
    front = pareto_front(front[np.all(front < ref, axis=1)]) if len(front) else np.zeros((0, 2))
    # staircase of the front: for x in [b_j, b_{j+1}) the front's attained f2 level is h_j
    b = np.concatenate([front[:, 0], [ref[0]]])
    h = np.concatenate([[ref[1]], front[:, 1]])
    lo = np.concatenate([[-np.inf], front[:, 0]])
    hi = b
    a_ = cands[:, [0]]
    width = np.clip(np.minimum(hi[None, :], ref[0]) - np.maximum(lo[None, :], a_), 0, None)
    height = np.clip(h[None, :] - cands[:, [1]], 0, None)
    gain = np.sum(width * height, axis=1)
    gain = np.where(np.all(cands < ref, axis=1), gain, 0.0)
    # penalty for predicted-dominated points: how far they must move to leave the dominated region
    if len(front):
        excess = cands[:, None, :] - front[None, :, :]                # [m, k, 2]
        dominated_by = np.all(excess >= 0, axis=2)
        escape = np.where(dominated_by, excess.min(axis=2), 0.0).max(axis=1)
    else:
        escape = np.zeros(len(cands))
    outside = np.clip(cands - ref, 0, None).sum(axis=1)
    return np.where(gain > 0, gain, -(escape + outside) - 1e-12)


class _Codec:
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
        batch_size: proposals per generation (the paper: 12 offspring).
        n_init: size of the initial Halton design (default max(batch_size, d + 1)).
        seed: random seed (every generation is seeded from `seed` and its number, so runs are reproducible).
        n_candidates: random candidates per proposal for the infill search (plus as many Pareto-local ones).
        rho: the cycling distance requirements, as fractions of the [-1, 1]^d diagonal.
    """

    def __init__(self, search_space: dict[str, Any] | None = None, *, batch_size: int = 12,
                 n_init: int | None = None, seed: int | None = None, n_candidates: int = 2000,
                 rho: Sequence[float] = (0.1, 0.03, 0.01, 0.0), refine: bool = True) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self._space = dict(search_space) if search_space is not None else None
        self.batch_size, self.n_init, self.seed = batch_size, n_init, seed
        self.n_candidates, self.rho, self.refine = n_candidates, tuple(rho), refine
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
        codec = _Codec(search_space)
        batch = study_system_attrs(study).get(BATCH_KEY)
        if batch is not None and sorted(batch["names"]) != codec.names:
            batch = None  # the search space changed: start a fresh generation
        taken = {tuple(t.system_attrs[SLOT_KEY]) for t in study.get_trials(deepcopy=False)
                 if SLOT_KEY in t.system_attrs}
        if batch is not None:
            for i, params in enumerate(batch["points"]):
                if (batch["gen"], i) not in taken:
                    set_trial_system_attr(study, trial, SLOT_KEY, [batch["gen"], i])
                    return {n: params[n] for n in codec.names}
        gen = 0 if batch is None else batch["gen"] + 1
        points = self._generation(study, codec, gen)
        record = {"gen": gen, "names": codec.names, "points": points}
        set_study_system_attr(study, BATCH_KEY, json.loads(json.dumps(record)))
        set_trial_system_attr(study, trial, SLOT_KEY, [gen, 0])
        return dict(points[0])

    def sample_independent(self, study, trial, param_name, param_distribution) -> Any:
        return self._independent.sample_independent(study, trial, param_name, param_distribution)

    def before_trial(self, study, trial) -> None:
        pass

    def after_trial(self, study, trial, state, values) -> None:
        pass

    def reseed_rng(self) -> None:
        self._independent.reseed_rng()

    # -- generations ---------------------------------------------------------------------------------------
    def _data(self, study, codec: _Codec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Scaled inputs and objective values of complete trials, and scaled inputs of running ones."""
        from optuna.study import StudyDirection
        from optuna.trial import TrialState

        sign = np.array([-1.0 if d == StudyDirection.MAXIMIZE else 1.0 for d in study.directions])
        xs, ys, pending = [], [], []
        for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.RUNNING,
                                                           TrialState.WAITING)):
            if not set(codec.names) <= set(t.params):
                continue
            z = codec.encode(t.params)
            if t.state == TrialState.COMPLETE and t.values is not None and np.all(np.isfinite(t.values)):
                xs.append(z)
                ys.append(sign * np.asarray(t.values))
            elif t.state != TrialState.COMPLETE:
                pending.append(z)
        d = codec.dim
        n_obj = len(study.directions)
        return (np.array(xs).reshape(-1, d), np.array(ys, float).reshape(-1, n_obj),
                np.array(pending).reshape(-1, d))

    def _generation(self, study, codec: _Codec, gen: int) -> list[dict[str, Any]]:
        from threadpoolctl import threadpool_limits

        # small dense algebra: one BLAS thread (several threads spin and are 10-60x slower on a busy machine)
        with threadpool_limits(1, user_api="blas"):
            return self._generation_points(study, codec, gen)

    def _generation_points(self, study, codec: _Codec, gen: int) -> list[dict[str, Any]]:
        d = codec.dim
        n_init = self.n_init or max(self.batch_size, d + 1)
        x, y, pending = self._data(study, codec)
        rng = np.random.default_rng([self.seed if self.seed is not None else 0, gen])
        if gen == 0 and len(x) < n_init:
            from scipy.stats import qmc

            halton = qmc.Halton(d, scramble=True, seed=rng)
            z = codec.snap(halton.random(n_init - len(x)) * 2 - 1)
            return [codec.decode(row) for row in z]
        if len(x) < d + 2:  # not enough data for the linear tail yet: keep exploring
            z = codec.snap(rng.uniform(-1, 1, (self.batch_size, d)))
            return [codec.decode(row) for row in z]
        return [codec.decode(z) for z in self.propose(x, y, pending, codec, rng, gen)]

    def propose(self, x: np.ndarray, y: np.ndarray, pending: np.ndarray, codec: _Codec,
                rng: np.random.Generator, gen: int) -> list[np.ndarray]:
        """One generation: `batch_size` scaled points maximising the predicted hypervolume, one after another."""
        if y.shape[1] != 2:
            raise ValueError("SamoCobraSampler's infill is implemented for two objectives")
        models = [fit_best_rbf(x, y[:, k]) for k in range(y.shape[1])]
        lo, hi = y.min(axis=0), y.max(axis=0)
        span = np.where(hi > lo, hi - lo, 1.0)

        def norm(v: np.ndarray) -> np.ndarray:
            return (v - lo) / span

        def predict(z: np.ndarray) -> np.ndarray:
            return norm(np.stack([m.predict(z) for m in models], axis=1))

        ref = np.full(2, 1.1)
        front = norm(pareto_front(y))
        known = np.vstack([x, pending]) if len(pending) else x.copy()
        if len(pending):
            front = pareto_front(np.vstack([front, predict(pending)]))
        pareto_x = x[pareto_mask(y)]
        d = codec.dim
        diag = 2 * math.sqrt(d)
        # one candidate pool per generation: uniform points and perturbations of the Pareto set, snapped; the
        # surrogates do not change within a generation, so their predictions are computed once
        cands = [rng.uniform(-1, 1, (self.n_candidates, d))]
        if len(pareto_x):
            for sigma in (0.2, 0.05):
                base = pareto_x[rng.integers(len(pareto_x), size=self.n_candidates // 2)]
                cands.append(base + rng.normal(0, sigma, base.shape))
        pool = np.unique(codec.snap(np.vstack(cands)), axis=0)
        pool_pred = predict(pool)
        pool_dist = _distances(pool, known).min(axis=1)
        out: list[np.ndarray] = []
        for i in range(self.batch_size):
            rho = self.rho[(gen * self.batch_size + i) % len(self.rho)] * diag

            def score(zz: np.ndarray, pred: np.ndarray | None = None, dist: np.ndarray | None = None,
                      rho: float = rho, known: np.ndarray = known, front: np.ndarray = front) -> np.ndarray:
                pred = predict(zz) if pred is None else pred
                dist = _distances(zz, known).min(axis=1) if dist is None else dist
                return np.where(dist <= max(rho, 1e-9), -np.inf, hv_improvement_2d(pred, front, ref))

            sc = score(pool, pool_pred, pool_dist)
            if not np.any(np.isfinite(sc)):  # every candidate is too close: relax to "not evaluated yet"
                sc = np.where(pool_dist > 1e-9, hv_improvement_2d(pool_pred, front, ref), -np.inf)
            if not np.any(np.isfinite(sc)):
                best = codec.snap(rng.uniform(-1, 1, d))[0]
            else:
                best = pool[int(np.argmax(sc))]
                if self.refine:
                    best = self._refine(best, score, codec, rng)
            out.append(best)
            known = np.vstack([known, best])
            pool_dist = np.minimum(pool_dist, _distances(pool, best[None])[:, 0])
            front = pareto_front(np.vstack([front, predict(best[None])]))
        return out

    @staticmethod
    def _refine(z0: np.ndarray, score, codec: _Codec, rng: np.random.Generator) -> np.ndarray:
        """A shrinking-radius (1 + 64) local search around `z0` on the snapped points; keeps the best."""
        best, s_best = z0, float(score(z0[None])[0])
        for sigma in (0.1, 0.05, 0.02, 0.01):
            for _ in range(3):
                cand = codec.snap(best + rng.normal(0, sigma, (64, len(z0))))
                s = score(cand)
                i = int(np.argmax(s))
                if np.isfinite(s[i]) and s[i] > s_best:
                    best, s_best = cand[i], float(s[i])
        return best
