"""Pareto fronts, the 2-D hypervolume and the knee point (both objectives minimised).

Non-dominated sorting and the hypervolume come from moocore (the maintained C library of the EAF/hypervolume
literature); the tests check them against our own pure-numpy code (`tests/hpo_reference.py`), brute force and
Optuna's.
"""

from __future__ import annotations

import numpy as np


def _as_points(points: np.ndarray | list) -> np.ndarray:
    pts = np.asarray(points, dtype=float)
    if pts.ndim != 2:
        raise ValueError(f"expected an [n, m] array of objective values, got shape {pts.shape}")
    return pts


def pareto_mask(points: np.ndarray | list) -> np.ndarray:
    """Boolean mask of the non-dominated rows of `points` [n, m] (minimisation), by moocore.

    A row is dominated when another row is <= in every objective and < in at least one; exact duplicates of a
    non-dominated row are all kept. Rows with a NaN or an infinity are never on the front.
    """
    import moocore

    pts = _as_points(points)
    finite = np.all(np.isfinite(pts), axis=1)
    mask = np.zeros(len(pts), bool)
    if finite.any():
        mask[finite] = moocore.is_nondominated(pts[finite], keep_weakly=True)
    return mask


def pareto_front(points: np.ndarray | list) -> np.ndarray:
    """The non-dominated rows of `points`, unique and sorted by the first objective."""
    pts = _as_points(points)
    front = np.unique(pts[pareto_mask(pts)], axis=0)
    return front[np.lexsort(front[:, ::-1].T)] if len(front) else front.reshape(0, pts.shape[1])


def hypervolume_2d(points: np.ndarray | list, reference: np.ndarray | list) -> float:
    """Area dominated by `points` [n, 2] and bounded by `reference` [2] (minimisation), by moocore.

    Points that do not strictly dominate the reference point contribute nothing.
    """
    import moocore

    pts = _as_points(points)
    ref = np.asarray(reference, dtype=float)
    if pts.shape[1] != 2 or ref.shape != (2,):
        raise ValueError(f"hypervolume_2d needs [n, 2] points and a [2] reference, got {pts.shape}, {ref.shape}")
    pts = pts[np.all(np.isfinite(pts), axis=1) & np.all(pts < ref, axis=1)]
    return float(moocore.hypervolume(pts, ref=ref)) if len(pts) else 0.0


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
