"""The paper's claim that hyperparameters such as P (`PolynomialCutoff_p`) and the edge-MLP width are not
significant, tested on each study's complete trials.

A guided sampler moves parameters together (in a TPE study P can follow the batch size, which drives the error at
a fixed epoch budget), so a parameter's plain rank correlation with the error can be borrowed from another one. The
test is therefore of the partial association: for every searched parameter, Spearman's rho with the error objective
given all the other searched parameters (the ranks of both residualised on the others' ranks by least squares),
with a two-sided Freedman-Lane permutation p-value (`N_PERMUTATIONS` shuffles, seeded), Holm-corrected across the
study's parameters. The plain rho and its permutation p-value are reported beside it. A study

- `contradicted`: P or the edge-MLP width is significant (Holm p < `ALPHA`);
- `supported`: neither is, and the study has enough trials to detect a partial |rho| of `DETECTABLE_RHO` with
  80% power at the strictest Holm level `ALPHA / m` (Fisher's z with the Spearman variance 1.06 / (n - 3 - k),
  k = m - 1 controls): with 40 trials and 9 parameters the smallest detectable |rho| is about 0.6, so a weaker
  association can go unseen;
- `inconclusive`: neither is significant but the study is too small for that;
- `not testable at this scale`: fewer than m + `SPARE_TRIALS` complete trials, or neither parameter searched.

The trials of a guided sampler are not a random design: the test is of the association in the trials the study
ran. The studies are tested separately, without a correction across them, which makes `supported` (no study
significant) the harder verdict for the paper's claim. The claim combines the studies (`verdicts.combine`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from scipy import stats as sps

from qallegro import stats
from qallegro.campaign import words
from qallegro.campaign.study_records import StudyRecords

ALPHA = 0.05
N_PERMUTATIONS = 9999
DETECTABLE_RHO = 0.6
SPARE_TRIALS = 5
CLAIMED = ("PolynomialCutoff_p", "edge_mlp_width")


def rank_association(x: Sequence[float], y: Sequence[float], controls: np.ndarray | None = None,
                     n_permutations: int = N_PERMUTATIONS, seed: int = 0) -> tuple[float, float]:
    """Spearman's rho of `x` and `y`, partial given the columns of `controls` (n x k) when given, and its two-sided
    permutation p-value (1 + #{|rho*| >= |rho|}) / (1 + B).

    The ranks of `x` and `y` are residualised by least squares on a constant and the controls' ranks; rho is the
    correlation of the residuals. Each permutation shuffles `y`'s residuals and residualises them again (Freedman and
    Lane); without controls this is the plain permutation test of Spearman's rho. Rows with a missing value are left
    out; (nan, 1.0) when `x` or `y` is constant given the controls."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    c = np.empty((len(x), 0)) if controls is None else np.asarray(controls, float).reshape(len(x), -1)
    keep = np.isfinite(x) & np.isfinite(y) & np.isfinite(c).all(axis=1)
    x, y, c = x[keep], y[keep], c[keep]
    z = np.column_stack([np.ones(len(x)), *(sps.rankdata(col) for col in c.T)])
    residual = np.eye(len(x)) - z @ np.linalg.pinv(z)
    ex, ey = residual @ sps.rankdata(x), residual @ sps.rankdata(y)
    nx, ny = float(np.linalg.norm(ex)), float(np.linalg.norm(ey))
    if nx < 1e-9 * len(x) or ny < 1e-9 * len(x):
        return float("nan"), 1.0
    rho = float(ex @ ey) / (nx * ny)
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.broadcast_to(ey, (n_permutations, len(ey))), axis=1) @ residual
    null = shuffled @ ex / (nx * np.linalg.norm(shuffled, axis=1))
    hits = int(np.sum(np.abs(null) >= abs(rho) - 1e-12))
    return rho, (1 + hits) / (1 + n_permutations)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (monotone, capped at 1), in the input order."""
    p = np.asarray(pvalues, float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adjusted = np.maximum.accumulate((m - np.arange(m)) * p[order])
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return out.tolist()


def detectable_rho(n: int, alpha: float, power: float = 0.8, controls: int = 0) -> float:
    """The smallest |rho| a two-sided test at level `alpha` detects with `power` from `n` pairs given `controls`
    other variables (Fisher's z, Spearman variance 1.06 / (n - 3 - controls))."""
    if n - 3 - controls <= 0:
        return 1.0
    z = float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))
    return math.tanh(z * math.sqrt(1.06 / (n - 3 - controls)))


def study_row(study: StudyRecords, seed: int = 0) -> dict[str, Any]:
    """One study's test: every searched parameter's rho, p and Holm p; the verdict on P and the edge-MLP width."""
    row: dict[str, Any] = {"test": "significance", "study": study.name, "dataset": study.dataset,
                           "variant": study.variant, "n_trials": len(study.trials), "target": study.target}
    claimed = [p for p in CLAIMED if p in study.params]
    m, n = len(study.params), len(study.trials)
    if n < m + SPARE_TRIALS or not claimed:
        why = ("no complete trials yet" if n == 0 else
               f"{n} complete trials (need {m + SPARE_TRIALS} for {m} parameters)" if n < m + SPARE_TRIALS
               else f"neither {' nor '.join(CLAIMED)} is searched")
        return {**row, "verdict": stats.NOT_TESTABLE, "reason": why}
    err = study.trials[study.error_name].to_numpy(float)
    values = study.trials[list(study.params)].to_numpy(float)
    params: dict[str, dict[str, float]] = {}
    for j, name in enumerate(study.params):
        rho, p = rank_association(values[:, j], err, seed=seed)
        partial, partial_p = rank_association(values[:, j], err, np.delete(values, j, axis=1), seed=seed)
        params[name] = {"rho": rho, "p": p, "partial_rho": partial, "partial_p": partial_p}
    for name, q in zip(params, holm([v["partial_p"] for v in params.values()])):
        params[name]["p_holm"] = q
    detectable = detectable_rho(n, ALPHA / m, controls=m - 1)
    significant = [p for p in claimed if params[p]["p_holm"] < ALPHA]
    if significant:
        verdict, reason = stats.CONTRADICTED, ""
    elif detectable <= DETECTABLE_RHO:
        verdict, reason = stats.SUPPORTED, ""
    else:
        verdict = stats.INCONCLUSIVE
        reason = f"{n} trials detect only a partial |rho| >= {detectable:.2f} (80% power)"
    return {**row, "params": params, "claimed": claimed, "significant": significant,
            "detectable_rho": detectable, "verdict": verdict, "reason": reason}


def sentence(row: Mapping[str, Any]) -> str:
    """The evidence of one study's test in one clause."""
    head = words.study(row["dataset"], row["variant"])
    if "params" not in row:
        return f"{head}: {row['reason']}"
    parts = ", ".join(f"{'P' if p == 'PolynomialCutoff_p' else 'edge-MLP width'} partial rho "
                      f"{row['params'][p]['partial_rho']:+.2f} (Holm p {row['params'][p]['p_holm']:.3f}; plain "
                      f"{row['params'][p]['rho']:+.2f})" for p in row["claimed"])
    return (f"{head}: {row['verdict']}, {row['n_trials']} trials: {parts}; detectable |rho| "
            f">= {row['detectable_rho']:.2f}")


RULE = ("per study, Spearman rho of each searched parameter with the error given the other parameters, over the "
        "complete trials, Freedman-Lane permutation p-value Holm-corrected across the study's parameters; "
        f"significant at Holm p < {ALPHA}; supported only where the study detects |rho| >= {DETECTABLE_RHO} with 80% "
        "power")
