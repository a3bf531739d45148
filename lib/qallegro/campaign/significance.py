"""The paper's claim that hyperparameters such as P (`PolynomialCutoff_p`) and the edge-MLP width are not
significant, tested on each study's complete trials.

For every searched parameter: Spearman's rank correlation rho with the study's error objective, its two-sided
permutation p-value (`N_PERMUTATIONS` shuffles of the errors, seeded), Holm-corrected across the study's
parameters. A study

- `contradicted`: P or the edge-MLP width is significant (Holm p < `ALPHA`);
- `supported`: neither is, and the study has enough trials to detect `DETECTABLE_RHO` with 80% power at the
  strictest Holm level `ALPHA / m` (Fisher's z with the Spearman variance 1.06 / (n - 3)): with 40 trials and 9
  parameters the smallest detectable |rho| is about 0.55, so a weaker association can go unseen;
- `inconclusive`: neither is significant but the study is too small for that;
- `not testable at this scale`: fewer than `MIN_TRIALS` complete trials, or neither parameter searched.

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

from qallegro.campaign import stats
from qallegro.campaign.study_records import StudyRecords

ALPHA = 0.05
N_PERMUTATIONS = 9999
DETECTABLE_RHO = 0.6
MIN_TRIALS = 5
CLAIMED = ("PolynomialCutoff_p", "edge_mlp_width")


def spearman_permutation(x: Sequence[float], y: Sequence[float], n_permutations: int = N_PERMUTATIONS,
                         seed: int = 0) -> tuple[float, float]:
    """Spearman's rho of `x` and `y` (pairs with a missing value left out) and its two-sided permutation p-value,
    (1 + #{|rho*| >= |rho|}) / (1 + B); (nan, 1.0) when either is constant."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    keep = np.isfinite(x) & np.isfinite(y)
    rx, ry = sps.rankdata(x[keep]), sps.rankdata(y[keep])
    rx, ry = rx - rx.mean(), ry - ry.mean()
    norm = math.sqrt(float(rx @ rx) * float(ry @ ry))
    if norm == 0:
        return float("nan"), 1.0
    rho = float(rx @ ry) / norm
    rng = np.random.default_rng(seed)
    shuffled = rng.permuted(np.broadcast_to(ry, (n_permutations, len(ry))), axis=1)
    null = shuffled @ rx / norm
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


def detectable_rho(n: int, alpha: float, power: float = 0.8) -> float:
    """The smallest |rho| a two-sided test at level `alpha` detects with `power` from `n` pairs (Fisher's z,
    Spearman variance 1.06 / (n - 3))."""
    if n <= 3:
        return 1.0
    z = float(sps.norm.ppf(1 - alpha / 2) + sps.norm.ppf(power))
    return math.tanh(z * math.sqrt(1.06 / (n - 3)))


def study_row(study: StudyRecords, seed: int = 0) -> dict[str, Any]:
    """One study's test: every searched parameter's rho, p and Holm p; the verdict on P and the edge-MLP width."""
    row: dict[str, Any] = {"test": "significance", "study": study.name, "dataset": study.dataset,
                           "variant": study.variant, "n_trials": len(study.trials), "target": study.target}
    claimed = [p for p in CLAIMED if p in study.params]
    if len(study.trials) < MIN_TRIALS or not claimed:
        why = (f"{len(study.trials)} complete trials (need {MIN_TRIALS})" if len(study.trials) < MIN_TRIALS
               else f"neither {' nor '.join(CLAIMED)} is searched")
        return {**row, "verdict": stats.NOT_TESTABLE, "reason": why}
    err = study.trials[study.error_name].to_numpy(float)
    tested = [(name, *spearman_permutation(study.trials[name].to_numpy(float), err, seed=seed))
              for name in study.params]
    adjusted = holm([p for _, _, p in tested])
    params = {name: {"rho": rho, "p": p, "p_holm": q} for (name, rho, p), q in zip(tested, adjusted)}
    detectable = detectable_rho(len(study.trials), ALPHA / len(tested))
    significant = [p for p in claimed if params[p]["p_holm"] < ALPHA]
    if significant:
        verdict, reason = stats.CONTRADICTED, ""
    elif detectable <= DETECTABLE_RHO:
        verdict, reason = stats.SUPPORTED, ""
    else:
        verdict = stats.INCONCLUSIVE
        reason = f"{len(study.trials)} trials detect only |rho| >= {detectable:.2f} (80% power)"
    return {**row, "params": params, "claimed": claimed, "significant": significant,
            "detectable_rho": detectable, "verdict": verdict, "reason": reason}


def sentence(row: Mapping[str, Any]) -> str:
    """The evidence of one study's test in one clause."""
    head = f"{row['dataset']} {row['variant']}"
    if "params" not in row:
        return f"{head}: {row['reason']}"
    parts = ", ".join(f"{'P' if p == 'PolynomialCutoff_p' else 'edge-MLP width'} rho {row['params'][p]['rho']:+.2f} "
                      f"(Holm p {row['params'][p]['p_holm']:.3f})" for p in row["claimed"])
    return (f"{head}: {row['verdict']}, {row['n_trials']} trials: {parts}; detectable |rho| "
            f">= {row['detectable_rho']:.2f}")


RULE = ("per study, Spearman rho of each searched parameter with the error over the complete trials, permutation "
        f"p-value Holm-corrected across the study's parameters; significant at Holm p < {ALPHA}; supported only "
        f"where the study detects |rho| >= {DETECTABLE_RHO} with 80% power")
