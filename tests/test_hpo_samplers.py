"""Samplers: seeded determinism, and our SAMO-COBRA-style sampler (surrogate, infill, bounds, quality)."""

from __future__ import annotations

import math
import warnings

import numpy as np
import optuna
import pytest
from qallegro.hpo.pareto import hypervolume_2d
from qallegro.hpo.problems import zdt1_objective, zdt1_optimal_hv, zdt1_space
from qallegro.hpo.samo_cobra import (
    MODELS,
    PRED_KEY,
    RBFModel,
    SamoCobraSampler,
    fit_models,
    phv_score,
    plog,
    plog_inverse,
    select_model,
)
from qallegro.hpo.samplers import SAMPLERS, make_sampler
from qallegro.hpo.space import default_space

optuna.logging.set_verbosity(optuna.logging.WARNING)
FAST = {"nsga2": {"population_size": 4}, "tpe": {"n_startup_trials": 3}, "gp": {"n_startup_trials": 3},
        "samo-cobra": {"batch_size": 3, "n_candidates": 300}}


def _run(name: str, seed: int, n: int) -> list[dict]:
    space = default_space("mlp")
    sampler = make_sampler(name, seed, space.distributions(), FAST.get(name, {}))
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)

    def objective(trial):
        v = space.values(space.suggest(trial))
        return (v["r_max"] - 7.0) ** 2 + 0.1 * v["num_layers"], v["edge_mlp_width"] * v["batch_size"] / v["r_max"]

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=n)
    return [t.params for t in study.trials]


@pytest.mark.parametrize("name", SAMPLERS)
def test_seeded_samplers_are_deterministic(name: str) -> None:
    n = 5 if name == "gp" else 10
    a, b, c = _run(name, 7, n), _run(name, 7, n), _run(name, 8, 4)
    assert a == b
    assert a[:4] != c


def test_make_sampler_arguments_are_explicit() -> None:
    tpe = make_sampler("tpe", 0)
    assert tpe._multivariate is True and tpe._constant_liar is True  # Optuna 5 defaults differ (None / True)
    assert make_sampler("nsga2", 0)._population_size == 12  # the paper's 12 offspring per generation
    with pytest.raises(ValueError, match="unknown option"):
        make_sampler("tpe", 0, options={"populaton_size": 3})
    with pytest.raises(ValueError, match="unknown sampler"):
        make_sampler("cma", 0)


def test_rbf_interpolates_every_kernel_and_fits_from_two_points() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (40, 3))
    y = np.exp(x[:, 0]) + x[:, 1] ** 2 + 0.5 * x[:, 2] + 3.0
    models = fit_models(x, y)
    assert set(models) == set(MODELS)
    for name, m in models.items():
        assert np.allclose(m.predict(x), y, atol=1e-5), name
    xt = rng.uniform(-1, 1, (200, 3))
    yt = np.exp(xt[:, 0]) + xt[:, 1] ** 2 + 0.5 * xt[:, 2] + 3.0
    assert np.mean(np.abs(models["cubic/standardized"].predict(xt) - yt)) < 0.1 * np.std(yt)
    # the quadratic tail reproduces a quadratic exactly, even from fewer points than tail terms (pseudo-inverse)
    q = lambda z: 1.0 + z[:, 0] - 2 * z[:, 1] ** 2  # noqa: E731
    m = RBFModel("cubic").fit(x, q(x))
    assert np.allclose(m.predict(xt), q(xt), atol=1e-6)
    two = RBFModel("gaussian", "plog").fit(x[:2], y[:2])
    assert np.allclose(two.predict(x[:2]), y[:2], rtol=1e-8)


def test_plog_is_inverted_and_keeps_sign() -> None:
    y = np.array([-1e5, -3.0, -1e-9, 0.0, 2e-7, 0.5, 7e4])
    assert np.allclose(plog_inverse(plog(y)), y, rtol=1e-12, atol=1e-15)
    assert np.array_equal(np.sign(plog(y)), np.sign(y))
    assert plog(np.array([np.e - 1]))[0] == pytest.approx(1.0)


def test_model_selection_uses_one_step_ahead_errors() -> None:
    errors = {name: np.full(4, 1.0) for name in MODELS}
    errors["gaussian/plog"] = np.array([0.1, 9.0, 0.1, 0.1])
    errors["invquadric/standardized"] = np.array([0.3, 0.0, 0.3, 0.3])
    assert select_model(errors, np.array([True, False, True, True])) == "gaussian/plog"
    assert select_model(errors, np.ones(4, bool)) == "invquadric/standardized"
    assert select_model(errors, np.zeros(4, bool)) == "cubic/standardized"  # the reference's start
    errors["thin_plate/plog"] = np.array([0.0, 0.0, np.nan, 0.0])  # a non-finite prediction excludes the model
    assert select_model(errors, np.ones(4, bool)) == "invquadric/standardized"
    assert select_model(errors, np.array([True, True, False, True])) == "thin_plate/plog"


def test_phv_score_matches_recomputed_hypervolume_and_the_reference_penalty() -> None:
    rng = np.random.default_rng(1)
    front = np.array([[0.1, 0.9], [0.4, 0.5], [0.8, 0.2]])
    ref = np.array([1.1, 1.1])
    cands = rng.uniform(0, 1.2, (300, 2))
    gain = phv_score(cands, front, ref)
    base = hypervolume_2d(front, ref)
    for c, g in zip(cands, gain, strict=True):
        want = hypervolume_2d(np.vstack([front, c]), ref) - base
        dominators = front[np.all(front <= c, axis=1)]
        if len(dominators):
            penalty = max(np.prod(1 + (c - p)) - 1 for p in dominators)
            assert g == pytest.approx(-penalty, abs=1e-11)
        elif want > 0:
            assert g == pytest.approx(want, rel=1e-9)
        else:
            assert g <= 0  # outside the reference point


def test_samo_cobra_proposals_stay_in_bounds_and_integers_are_integers() -> None:
    space = zdt1_space(5, int_params=2)
    sampler = SamoCobraSampler(space, batch_size=4, seed=0, n_candidates=300)
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
    study.optimize(zdt1_objective(5, int_params=2), n_trials=24)
    for t in study.trials:
        for name, v in t.params.items():
            dist = space[name]
            assert dist.low <= v <= dist.high
            if isinstance(dist, optuna.distributions.IntDistribution):
                assert isinstance(v, int)
    slots = [tuple(t.system_attrs["samo_cobra:slot"]) for t in study.trials]
    assert len(set(slots)) == len(slots)  # every proposal of every generation used once
    assert slots[:6] == [(0, i) for i in range(6)]  # the initial Halton design: d + 1 = 6 points
    assert slots[6] == (1, 0)
    # every guided trial carries every model's prediction for it (the kernel selection's data)
    guided = [t for t in study.trials if t.system_attrs["samo_cobra:slot"][0] > 0]
    assert all(set(t.system_attrs[PRED_KEY]) == set(MODELS) for t in guided)
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == len(study.trials)  # no duplicates


def test_samo_cobra_beats_random_on_zdt1() -> None:
    """At the same small budget (30 evaluations, 4 variables, one integer), the surrogate sampler must reach a
    clearly larger hypervolume than random search, and most of the true front's."""
    ref = (1.1, 1.1)
    hv = {"random": [], "samo-cobra": []}
    for seed in range(3):
        for name, values in hv.items():
            sampler = (optuna.samplers.RandomSampler(seed=seed) if name == "random" else
                       SamoCobraSampler(zdt1_space(4, 1), batch_size=5, seed=seed, n_candidates=500))
            study = optuna.create_study(directions=["minimize", "minimize"], sampler=sampler)
            study.optimize(zdt1_objective(4, 1), n_trials=30)
            values.append(hypervolume_2d(np.array([t.values for t in study.trials]), ref))
    best = zdt1_optimal_hv(ref)
    assert min(hv["samo-cobra"]) > max(hv["random"]) + 0.2, hv
    assert np.mean(hv["samo-cobra"]) > 0.85 * best, (hv, best)


def test_samo_cobra_survives_failed_and_maximised_objectives() -> None:
    space = zdt1_space(3)
    sampler = SamoCobraSampler(space, batch_size=3, seed=0, n_candidates=200)
    study = optuna.create_study(directions=["minimize", "maximize"], sampler=sampler)
    obj = zdt1_objective(3)

    def f(trial):
        a, b = obj(trial)
        if trial.number % 5 == 4:
            return math.nan, math.nan  # a failed trial
        return a, -b

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(f, n_trials=20)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    assert len(done) == 16
    vals = np.array([[t.values[0], -t.values[1]] for t in done])
    assert hypervolume_2d(vals, (1.1, 1.1)) > 0.6


@pytest.mark.parametrize("n_init", [None, 3])
def test_samo_cobra_trials_after_the_initial_design_depend_on_the_data(n_init: int | None) -> None:
    """Two problems (two datasets), one seed: the initial designs (d + 1 = 10 points, or a quarter of a
    12-trial study) agree and every later trial differs."""
    space = zdt1_space(9)
    f = zdt1_objective(9)

    def other(trial):
        a, b = f(trial)
        return b, a + 0.3 * trial.params["x5"]

    params = []
    for objective in (f, other):
        study = optuna.create_study(directions=["minimize", "minimize"],
                                    sampler=SamoCobraSampler(space, batch_size=4, seed=3, n_candidates=300,
                                                             n_init=n_init))
        study.optimize(objective, n_trials=18 if n_init is None else 12)
        params.append([t.params for t in study.trials])
    k = n_init or 10
    assert params[0][:k] == params[1][:k]
    assert all(a != b for a, b in zip(params[0][k:], params[1][k:], strict=True))


def test_test_problems_fronts_and_optimal_hypervolumes() -> None:
    from qallegro.hpo.problems import PROBLEMS, evaluate, optimal_hv, true_front

    assert optimal_hv("dtlz2") == pytest.approx(1.21 - math.pi / 4, abs=1e-4)  # square minus a quarter disc
    assert optimal_hv("zdt2") == pytest.approx(1.21 - 2 / 3, abs=1e-4)       # 1.1^2 - integral of 1 - x^2
    assert optimal_hv("zdt1") == pytest.approx(zdt1_optimal_hv(), abs=1e-4)
    rng = np.random.default_rng(0)
    for problem in PROBLEMS:
        front = true_front(problem)
        for t in rng.random(5):  # a point of the Pareto set maps onto the front curve
            x = np.r_[t, np.full(5, 0.5 if problem == "dtlz2" else 0.0)]
            f = np.array(evaluate(problem, x))
            assert np.min(np.linalg.norm(front - f, axis=1)) < 1e-3 or problem == "zdt3"
        worse = np.array(evaluate(problem, np.r_[0.3, np.full(5, 0.9)]))
        assert np.any(np.all(front <= worse, axis=1))  # off the Pareto set: dominated by the front
    with pytest.raises(ValueError, match="unknown test problem"):
        evaluate("zdt9", np.zeros(3))
