"""Pareto fronts, our own 2-D hypervolume and the knee point (both objectives minimised).

Pure numpy. `hypervolume_2d` is checked against Optuna's (private) `optuna._hypervolume.compute_hypervolume`
in the tests; we keep our own so that the published numbers do not depend on a private API.
"""

from __future__ import annotations

import numpy as np


def _as_points(points: np.ndarray | list) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2:
        raise ValueError(f"expected an [n, m] array of objective values, got shape {pts.shape}")
    return pts


def pareto_mask(points: np.ndarray | list) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `points` [n, m] (minimisation).

    A row is dominated when another row is <= in every objective and < in at least one; exact duplicates of a
    non-dominated row are all kept. Rows with a NaN are never on the front.
    """
    pts = _as_points(points)
    n = len(pts)
    finite = np.all(np.isfinite(pts), axis=1)
    mask = finite.copy()
    if n == 0:
        return mask
    # sort by the first objective (then the others) so that a dominating row always comes earlier
    order = np.lexsort(pts[:, ::-1].T)
    front: list[int] = []
    for i in order:
        if not finite[i]:
            continue
        p = pts[i]
        dominated = False
        for j in front:
            q = pts[j]
            if np.all(q <= p) and np.any(q < p):
                dominated = True
                break
        mask[i] = not dominated
        if not dominated:
            front.append(i)
    return mask


def pareto_front(points: np.ndarray | list) -> np.ndarray:
    """The non-dominated rows of `points`, unique and sorted by the first objective."""
    pts = _as_points(points)
    front = np.unique(pts[pareto_mask(pts)], axis=0)
    return front[np.lexsort(front[:, ::-1].T)] if len(front) else front.reshape(0, pts.shape[1])


def hypervolume_2d(points: np.ndarray | list, reference: np.ndarray | list) -> float:
    """Area dominated by `points` [n, 2] and bounded by `reference` [2] (minimisation).

    Points that do not strictly dominate the reference point contribute nothing.
    """
    pts = _as_points(points)
    ref = np.asarray(reference, dtype=float)
    if pts.shape[1] != 2 or ref.shape != (2,):
        raise ValueError(f"hypervolume_2d needs [n, 2] points and a [2] reference, got {pts.shape}, {ref.shape}")
    pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(pts < ref, axis=1)]
    if len(pts) == 0:
        return 0.0
    front = pareto_front(pts)  # sorted by f1 ascending, hence f2 descending
    widths = ref[0] - front[:, 0]
    heights = np.diff(np.concatenate([[ref[1]], front[:, 1]]))  # negative steps down the staircase
    return float(np.sum(widths * -heights))


def hypervolume_history(points: np.ndarray | list, reference: np.ndarray | list) -> np.ndarray:
    """Hypervolume of the first i+1 rows of `points` [n, 2] for every i (in the given order)."""
    pts = _as_points(points)
    out = np.zeros(len(pts))
    best = np.zeros((0, 2))
    hv = 0.0
    for i, p in enumerate(pts):
        if np.all(np.isfinite(p)) and not any(np.all(q <= p) for q in best):
            best = pareto_front(np.vstack([best, p]))
            hv = hypervolume_2d(best, reference)
        out[i] = hv
    return out


def reference_point(points: np.ndarray | list, margin: float = 0.1) -> np.ndarray:
    """A reference point just worse than every finite point: max + `margin` x (max - min) per objective."""
    pts = _as_points(points)
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    if len(pts) == 0:
        raise ValueError("no finite points to place a reference point")
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    span = np.where(hi > lo, hi - lo, np.maximum(np.abs(hi), 1.0))
    return hi + margin * span


def knee_point(front: np.ndarray | list) -> int:
    """Index (into `front`) of the knee of a 2-D front: after min-max normalisation, the point farthest from the
    straight line through the two extreme points (below it, towards the ideal point). Ties: the lower f1.

    With one or two points the knee is the first point of lowest f1.
    """
    pts = _as_points(front)
    if len(pts) == 0:
        raise ValueError("empty front")
    if len(pts) <= 2:
        return int(np.lexsort(pts[:, ::-1].T)[0])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    norm = (pts - lo) / np.where(hi > lo, hi - lo, 1.0)
    a = norm[np.lexsort((norm[:, 1], norm[:, 0]))[0]]  # the extreme of best f1
    b = norm[np.lexsort((norm[:, 0], norm[:, 1]))[0]]  # the extreme of best f2
    d = b - a
    length = np.hypot(*d)
    if length == 0:
        return int(np.lexsort(pts[:, ::-1].T)[0])
    # signed distance: positive on the side of the ideal point (0, 0)
    dist = (d[0] * (norm[:, 1] - a[1]) - d[1] * (norm[:, 0] - a[0])) / length
    ideal_side = np.sign(d[0] * (0 - a[1]) - d[1] * (0 - a[0])) or 1.0
    dist = dist * ideal_side
    order = np.lexsort((pts[:, 0], -dist))
    return int(order[0])
