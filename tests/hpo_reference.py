"""Our own Pareto mask and 2-D hypervolume (pure numpy), kept as an independent reference for the tests of
`qallegro.hpo.pareto`, which computes both with moocore."""

from __future__ import annotations

import numpy as np


def own_pareto_mask(points: np.ndarray) -> np.ndarray:
    """Non-dominated rows of `points` [n, m] (minimisation; duplicates kept, NaN rows never on the front)."""
    pts = np.asarray(points, float)
    finite = np.all(np.isfinite(pts), axis=1)
    mask = finite.copy()
    front: list[int] = []
    for i in np.lexsort(pts[:, ::-1].T):  # a dominating row always comes earlier
        if not finite[i]:
            continue
        dominated = any(np.all(pts[j] <= pts[i]) and np.any(pts[j] < pts[i]) for j in front)
        mask[i] = not dominated
        if not dominated:
            front.append(i)
    return mask


def own_hypervolume_2d(points: np.ndarray, reference: np.ndarray) -> float:
    """Area dominated by `points` [n, 2] and bounded by `reference` [2] (minimisation), by the staircase."""
    pts = np.asarray(points, float).reshape(-1, 2)
    ref = np.asarray(reference, float)
    pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    front = np.unique(pts[own_pareto_mask(pts)], axis=0)  # sorted by f1 ascending, hence f2 descending
    return float(np.sum((ref[0] - front[:, 0]) * -np.diff(np.concatenate([[ref[1]], front[:, 1]]))))
