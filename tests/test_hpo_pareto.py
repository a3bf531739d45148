"""Pareto extraction and 2-D hypervolume (moocore) and the knee point, against brute force, Optuna, our own."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hpo_reference import own_hypervolume_2d, own_pareto_mask
from qallegro.hpo.pareto import (
    hypervolume_2d,
    hypervolume_history,
    knee_point,
    pareto_front,
    pareto_mask,
    reference_point,
)


def brute_mask(pts: np.ndarray) -> np.ndarray:
    n = len(pts)
    out = np.ones(n, bool)
    for i, j in itertools.product(range(n), range(n)):
        if i != j and np.all(pts[j] <= pts[i]) and np.any(pts[j] < pts[i]):
            out[i] = False
    return out


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("m", [2, 3])
def test_pareto_mask_matches_brute_force(seed: int, m: int) -> None:
    rng = np.random.default_rng(seed)
    pts = rng.integers(0, 6, size=(40, m)).astype(float)  # many ties and exact duplicates
    assert np.array_equal(pareto_mask(pts), brute_mask(pts))
    assert np.array_equal(own_pareto_mask(pts), brute_mask(pts))
    cont = rng.random((60, m))
    assert np.array_equal(pareto_mask(cont), brute_mask(cont))
    assert np.array_equal(own_pareto_mask(cont), brute_mask(cont))


def test_pareto_mask_ignores_nan_rows() -> None:
    pts = np.array([[1.0, 1.0], [np.nan, 0.0], [0.5, 2.0], [np.inf, -1.0]])
    assert pareto_mask(pts).tolist() == [True, False, True, False]


def test_pareto_front_sorted_unique() -> None:
    pts = np.array([[3.0, 1.0], [1.0, 3.0], [1.0, 3.0], [2.0, 2.0], [3.0, 3.0]])
    assert pareto_front(pts).tolist() == [[1.0, 3.0], [2.0, 2.0], [3.0, 1.0]]


def test_hypervolume_2d_simple() -> None:
    # staircase (1,3),(2,2),(3,1) with reference (4,4): 3*1 + 2*1 + 1*1 ... = 6
    assert hypervolume_2d([[1, 3], [2, 2], [3, 1]], [4, 4]) == pytest.approx(6.0)
    assert hypervolume_2d([[5, 5]], [4, 4]) == 0.0  # outside the reference box
    assert hypervolume_2d(np.zeros((0, 2)), [1, 1]) == 0.0


@pytest.mark.parametrize("seed", range(10))
def test_hypervolume_matches_optuna(seed: int) -> None:
    from optuna._hypervolume import compute_hypervolume

    rng = np.random.default_rng(seed)
    pts = rng.random((int(rng.integers(1, 80)), 2)) * rng.uniform(0.1, 10, 2)
    ref = pts.max(axis=0) * 1.05
    assert hypervolume_2d(pts, ref) == pytest.approx(compute_hypervolume(pts, ref), rel=1e-12)
    assert hypervolume_2d(pts, ref) == pytest.approx(own_hypervolume_2d(pts, ref), rel=1e-12)
    # points beyond the reference are dropped by us; Optuna needs them filtered first
    ref2 = np.median(pts, axis=0)
    inside = pts[np.all(pts < ref2, axis=1)]
    want = compute_hypervolume(inside, ref2) if len(inside) else 0.0
    assert hypervolume_2d(pts, ref2) == pytest.approx(want, rel=1e-12)
    assert hypervolume_2d(pts, ref2) == pytest.approx(own_hypervolume_2d(pts, ref2), rel=1e-12, abs=1e-15)


def test_hypervolume_history_is_prefix_hypervolume() -> None:
    rng = np.random.default_rng(3)
    pts = rng.random((30, 2))
    ref = np.array([1.2, 1.2])
    hist = hypervolume_history(pts, ref)
    assert np.all(np.diff(hist) >= -1e-15)
    for i in (0, 5, 17, 29):
        assert hist[i] == pytest.approx(hypervolume_2d(pts[: i + 1], ref))


def test_reference_point_is_beyond_every_point() -> None:
    pts = np.array([[1.0, 10.0], [2.0, 20.0], [3.0, 5.0]])
    ref = reference_point(pts, margin=0.1)
    assert ref.tolist() == pytest.approx([3.2, 21.5])


def test_knee_point_on_known_front() -> None:
    # an L-shaped front: the corner (0.1, 0.1) is the knee, whatever the scales of the axes
    front = np.array([[0.0, 1.0], [0.02, 0.5], [0.1, 0.1], [0.5, 0.03], [1.0, 0.0]])
    assert knee_point(front) == 2
    assert knee_point(front * [1e-3, 50.0]) == 2
    # order does not matter
    perm = np.array([4, 2, 0, 3, 1])
    assert perm[knee_point(front[perm])] == 2
    # a straight front: every point is equally far (0); the tie goes to the lowest f1
    line = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    assert knee_point(line) == 0
    # the convex 1 - sqrt(x) front of ZDT1: the knee sits where the slope is -1 after normalisation (x = 1/4)
    x = np.linspace(0, 1, 101)
    assert x[knee_point(np.stack([x, 1 - np.sqrt(x)], axis=1))] == pytest.approx(0.25)
