"""Verdicts on the paper's claims about its studies and final models (`qallegro.campaign.study_claims`): each rule's
supported / contradicted / inconclusive / not-testable cases on synthetic records, the numbers against scipy and
against exact enumeration, and `qallegro campaign verdicts` end to end on records written by the campaign's own
writers (the unit queue's record writer, `hpo.report.write_results`, `ablation.run_outcome`)."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from qallegro import stats
from qallegro.campaign import final_claims, significance, tradeoff
from qallegro.campaign.study_records import StudyRecords, check_retime, read_trials
from qallegro.errors import CampaignError
from scipy import stats as sps

ROOT = Path(__file__).resolve().parents[1]


def _study(errors: dict[int, float], times: dict[int, list[float]] | None, dataset: str = "rmd17-benzene",
           variant: str = "allegro", flops: dict[int, float] | None = None) -> StudyRecords:
    trials = pd.DataFrame({"number": list(errors), "state": "COMPLETE", "val_f_mae": list(errors.values())})
    retime = None if times is None else {"front": {str(k): {
        "times_s": v, "total_s": float(np.median(v)), "clock": "process",
        "matmul_flops_per_structure": (flops or {}).get(k, 1e6)} for k, v in times.items()}}
    return StudyRecords(f"{dataset}-{variant}-tpe-s0", dataset, variant, 40, trials, (), retime, Path("."))


def _ablation(dataset: str, variant: str, vals: list[float]) -> list[dict]:
    return [{"dataset": dataset, "variant": variant, "seed": s, "truncated": False, "val": {"f_mae": v}}
            for s, v in enumerate(vals)]


# ---- trade-off ---------------------------------------------------------------------------------------------------

def test_tradeoff_supported_when_error_and_time_both_differ_beyond_the_spread() -> None:
    slow = [1.00, 1.02, 0.99, 1.01, 1.03]
    fast = [0.50, 0.52, 0.49, 0.50, 0.51]
    study = _study({3: 0.030, 7: 0.045}, {3: slow, 7: fast})
    ablation = _ablation("rmd17-benzene", "allegro", [0.050, 0.052, 0.049])
    row = tradeoff.study_row(study, ablation)
    assert row["verdict"] == stats.SUPPORTED and row["n_members"] == 2
    vals = np.array([0.050, 0.052, 0.049])
    assert row["seed_spread"] == pytest.approx(np.std(vals, ddof=1) / vals.mean())
    p = row["pair"]
    assert (p["accurate"], p["other"]) == (3, 7) and p["error_resolved"]
    threshold = 1.959964 * np.sqrt(2) * row["seed_spread"] * (0.030 + 0.045) / 2
    assert p["error_threshold_percent"] == pytest.approx(100 * threshold / 0.045, rel=1e-5)
    ci = sps.ttest_rel(slow, fast).confidence_interval(0.95)
    assert p["time_low"] == pytest.approx(100 * ci.low / np.mean(fast))
    assert p["time_high"] == pytest.approx(100 * ci.high / np.mean(fast))
    assert "trial 3 vs 7" in tradeoff.sentence(row)


def test_tradeoff_contradicted_when_one_member_is_most_accurate_and_fastest() -> None:
    # the study's single timings put both on the front; re-timed round by round, trial 3 is ahead in both
    study = _study({3: 0.030, 7: 0.045, 9: 0.060}, {3: [0.40, 0.42, 0.41, 0.40, 0.43],
                                                    7: [0.60, 0.61, 0.63, 0.60, 0.62],
                                                    9: [0.50, 0.52, 0.50, 0.51, 0.53]})
    row = tradeoff.study_row(study, _ablation("rmd17-benzene", "allegro", [0.050, 0.052, 0.049]))
    assert row["verdict"] == stats.CONTRADICTED
    assert row["pair"]["accurate"] == 3 and row["pair"]["other"] == 9, "the closest competitor in time"


@pytest.mark.parametrize("case", ["errors within spread", "times overlap", "one member", "trade among dominated"])
def test_tradeoff_inconclusive(case: str) -> None:
    rng = np.random.default_rng(1)
    if case == "trade among dominated":   # 7 and 9 trade off, but 3 is ahead of 7 in both and ties 9 in time
        study = _study({3: 0.030, 7: 0.045, 9: 0.060}, {3: [0.40, 0.42, 0.41, 0.40, 0.43],
                                                        7: [0.60, 0.61, 0.63, 0.60, 0.62],
                                                        9: [0.41, 0.41, 0.42, 0.39, 0.43]})
    elif case == "errors within spread":   # a 3% error difference against a 5% seed spread
        study = _study({3: 0.0300, 7: 0.0309}, {3: [1.0, 1.01, 0.99, 1.0, 1.02], 7: [0.5, 0.51, 0.5, 0.49, 0.5]})
    elif case == "times overlap":
        base = rng.normal(1.0, 0.05, 5)
        study = _study({3: 0.030, 7: 0.045}, {3: list(base + rng.normal(0, 0.05, 5)), 7: list(base)})
    else:
        study = _study({3: 0.030}, {3: [1.0, 1.0, 1.01]})
    row = tradeoff.study_row(study, _ablation("rmd17-benzene", "allegro", [0.050, 0.0525, 0.0475]))
    assert row["verdict"] == stats.INCONCLUSIVE and row["reason"]


def test_tradeoff_not_testable_without_retime_or_seed_spread() -> None:
    spread = _ablation("rmd17-benzene", "allegro", [0.050, 0.052])
    row = tradeoff.study_row(_study({3: 0.03, 7: 0.04}, None), spread)
    assert row["verdict"] == stats.NOT_TESTABLE and "not re-timed" in row["reason"]
    timed = _study({3: 0.03, 7: 0.04}, {3: [1.0, 1.1], 7: [0.5, 0.6]})
    row = tradeoff.study_row(timed, _ablation("rmd17-benzene", "allegro", [0.050]))
    assert row["verdict"] == stats.NOT_TESTABLE and "seed spread" in row["reason"]
    truncated = [{**r, "truncated": True} for r in spread]
    assert tradeoff.study_row(timed, truncated)["verdict"] == stats.NOT_TESTABLE


# ---- hyperparameter significance ----------------------------------------------------------------------------------

def test_rank_association_matches_scipy_and_exact_enumeration() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=30), rng.normal(size=30)
    y = y + 0.5 * x
    rho, p = significance.rank_association(x, y)
    assert rho == pytest.approx(sps.spearmanr(x, y).statistic, abs=1e-12)
    ref = sps.permutation_test((x,), lambda a: sps.spearmanr(a, y).statistic, permutation_type="pairings",
                               n_resamples=4999, random_state=1).pvalue
    assert abs(p - ref) < 0.01
    # small n with ties: the exact p-value over every permutation
    xs = np.array([5.0, 6.0, 6.0, 8.0, 9.5, 11.0, 12.0])
    ys = np.array([0.05, 0.03, 0.06, 0.04, 0.02, 0.03, 0.01])
    r0 = sps.spearmanr(xs, ys).statistic
    null = [sps.spearmanr(xs, ys[list(perm)]).statistic for perm in itertools.permutations(range(7))]
    exact = float(np.mean(np.abs(null) >= abs(r0) - 1e-12))
    rho, p = significance.rank_association(xs, ys, n_permutations=20000)
    assert rho == pytest.approx(r0) and p == pytest.approx(exact, abs=0.01)
    assert significance.rank_association([1.0] * 5, [1, 2, 3, 4, 5])[1] == 1.0
    with_gap = significance.rank_association([*xs, np.nan], [*ys, 0.1], n_permutations=20000)
    assert with_gap[0] == pytest.approx(r0), "a pair with a missing value is left out"


def test_partial_rank_association_matches_the_precision_matrix_and_is_calibrated() -> None:
    rng = np.random.default_rng(4)
    n = 40
    batch = rng.integers(1, 6, n).astype(float)
    p = 5 + batch + rng.normal(0, 1.5, n)           # the sampler moved P with the batch size
    lr = rng.uniform(0, 1, n)
    err = 0.01 * batch + 0.002 * rng.normal(size=n)  # only the batch size drives the error
    rho, _ = significance.rank_association(p, err, np.column_stack([batch, lr]))
    ranks = np.column_stack([sps.rankdata(v) for v in (p, err, batch, lr)])
    precision = np.linalg.inv(np.corrcoef(ranks, rowvar=False))
    assert rho == pytest.approx(-precision[0, 1] / np.sqrt(precision[0, 0] * precision[1, 1]), abs=1e-10)
    plain = significance.rank_association(p, err)
    assert plain[1] < 0.01 and significance.rank_association(p, err, np.column_stack([batch, lr]))[1] > 0.05
    # under the null (error independent of x given the controls) the p-values are uniform: 5% fall below 0.05
    below = []
    for k in range(300):
        c = rng.normal(size=(25, 3))
        x = c[:, 0] + rng.normal(size=25)
        y = c[:, 0] - c[:, 1] + rng.normal(size=25)
        below.append(significance.rank_association(x, y, c, n_permutations=199, seed=k)[1] < 0.05)
    assert abs(np.mean(below) - 0.05) < 0.035


def test_holm_matches_its_definition() -> None:
    p = [0.01, 0.04, 0.03, 0.005, 0.5]
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    expected, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        expected[i] = running
    assert significance.holm(p) == pytest.approx(expected)
    assert significance.holm([0.3, 0.6]) == pytest.approx([0.6, 0.6])


def test_detectable_rho_has_its_power_in_simulation() -> None:
    n, alpha = 40, 0.05 / 6
    rho_s = significance.detectable_rho(n, alpha)
    assert 0.5 < rho_s < 0.6
    pearson = 2 * np.sin(np.pi * rho_s / 6)   # a Gaussian copula with this Spearman rho
    rng = np.random.default_rng(3)
    cov = [[1, pearson], [pearson, 1]]
    hits = [sps.spearmanr(*rng.multivariate_normal([0, 0], cov, n).T).pvalue < alpha for _ in range(1500)]
    assert abs(np.mean(hits) - 0.8) < 0.06


def _space_study(n: int, error_of, seed: int = 0, variant: str = "allegro") -> StudyRecords:
    rng = np.random.default_rng(seed)
    params = ("r_max", "PolynomialCutoff_p", "batch_size", "num_layers", "edge_mlp_width", "learning_rate")
    df = pd.DataFrame({"number": range(n), "state": "COMPLETE", "r_max": rng.uniform(5, 12, n),
                       "PolynomialCutoff_p": rng.uniform(5, 12, n), "batch_size": rng.integers(1, 6, n),
                       "num_layers": rng.integers(2, 5, n), "edge_mlp_width": 2 ** rng.integers(2, 8, n),
                       "learning_rate": np.exp(rng.uniform(np.log(9e-4), np.log(6e-3), n))})
    df["val_f_mae"] = error_of(df, rng)
    return StudyRecords(f"rmd17-benzene-{variant}-tpe-s0", "rmd17-benzene", variant, 40, df, params, None,
                        Path("."))


def test_significance_verdicts() -> None:
    noise = lambda df, rng: 0.03 + 0.005 * rng.normal(size=len(df))  # noqa: E731
    p_matters = lambda df, rng: 0.01 * df["PolynomialCutoff_p"] + 0.005 * rng.normal(size=len(df))  # noqa: E731
    row = significance.study_row(_space_study(40, p_matters))
    assert row["verdict"] == stats.CONTRADICTED and row["significant"] == ["PolynomialCutoff_p"]
    ps = [row["params"][k]["partial_p"] for k in row["params"]]
    assert [row["params"][k]["p_holm"] for k in row["params"]] == pytest.approx(significance.holm(ps))
    trials = _space_study(40, p_matters).trials
    assert row["params"]["PolynomialCutoff_p"]["rho"] == pytest.approx(
        sps.spearmanr(trials["PolynomialCutoff_p"], trials["val_f_mae"]).statistic)
    row = significance.study_row(_space_study(40, noise))
    assert row["verdict"] == stats.SUPPORTED, row
    assert row["detectable_rho"] == pytest.approx(significance.detectable_rho(40, 0.05 / 6, controls=5))
    # P follows the batch size, which alone drives the error: plainly associated, not given the others
    def borrowed(df, rng):
        df["PolynomialCutoff_p"] = 5 + df["batch_size"] + rng.uniform(0, 1.5, len(df))
        return 0.01 * df["batch_size"] + 0.002 * rng.normal(size=len(df))
    row = significance.study_row(_space_study(40, borrowed))
    p_row = row["params"]["PolynomialCutoff_p"]
    assert p_row["p"] < 0.01 and p_row["p_holm"] >= 0.05 and row["verdict"] == stats.SUPPORTED
    assert row["params"]["batch_size"]["p_holm"] < 0.05
    row = significance.study_row(_space_study(12, noise))
    assert row["verdict"] == stats.INCONCLUSIVE and "detect only" in row["reason"]
    assert significance.study_row(_space_study(3, noise))["verdict"] == stats.NOT_TESTABLE
    unsearched = _space_study(40, noise)
    unsearched = StudyRecords(**{**unsearched.__dict__, "params": ("r_max",)})
    assert "neither" in significance.study_row(unsearched)["reason"]


# ---- final models: accuracy by seed, inference time of the chosen configurations ----------------------------------

def test_welch_interval_matches_scipy() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.normal(1.0, 0.02, 5), rng.normal(1.1, 0.08, 7)
    d = final_claims.welch(a, b)
    ci = sps.ttest_ind(b, a, equal_var=False).confidence_interval(0.95)
    assert d.low == pytest.approx(ci.low, rel=1e-10) and d.high == pytest.approx(ci.high, rel=1e-10)
    assert d.percent == pytest.approx(100 * (b.mean() - a.mean()) / a.mean())
    with pytest.raises(stats.StatisticsError):
        final_claims.welch([1.0], [1.0, 2.0])


def _final(dataset: str, variant: str, seed: int, f_mae: float, trial: int = 3, transfer: bool = False) -> dict:
    return {"dataset": dataset, "variant": variant, "seed": seed, "transfer": transfer, "truncated": False,
            "stop_reason": "max_epochs", "chosen": {"study": f"{dataset}-{variant}-tpe-s0", "trial": trial},
            "protocol": {"version": 1, "budget": {"kind": "epochs", "max_epochs": 30}, "n_train": 200},
            "val": {"f_mae": f_mae}, "test": {"f_mae": f_mae}}


def _timed(variant: str, times: list[float], flops: float) -> StudyRecords:
    return _study({3: 0.03}, {3: times}, variant=variant, flops={3: flops})


@pytest.mark.parametrize(("allegro_s", "mlp_s", "flops", "verdict"), [
    (0.50, 1.00, (1e6, 2e6), stats.SUPPORTED),
    (1.00, 0.50, (2e6, 1e6), stats.CONTRADICTED),
    (0.50, 1.00, (2e6, 1e6), stats.INCONCLUSIVE),     # the FLOPs point the other way
    (0.50, 0.50, (1e6, 2e6), stats.INCONCLUSIVE),
])
def test_time_claim_from_the_chosen_trials_retimings(allegro_s, mlp_s, flops, verdict) -> None:
    jitter = np.array([0.0, 0.01, -0.01, 0.02, -0.005])
    studies = [_timed("allegro", list(allegro_s + jitter), flops[0]), _timed("mlp", list(mlp_s + jitter[::-1]),
                                                                             flops[1])]
    finals = [_final("rmd17-benzene", v, s, 0.03) for v in ("allegro", "mlp") for s in (0, 1)]
    row = final_claims.time_row(finals, studies, "rmd17-benzene", "allegro", "mlp")
    assert row["verdict"] == verdict and row["n"] == [5, 5]
    ci = sps.ttest_ind(mlp_s + jitter[::-1], allegro_s + jitter, equal_var=False).confidence_interval(0.95)
    assert row["percent_low"] == pytest.approx(100 * ci.low / np.mean(allegro_s + jitter))
    assert row["flops_ratio"] == pytest.approx(flops[1] / flops[0])
    assert ("opposite ways" in row["reason"]) == (flops == (2e6, 1e6) and verdict == stats.INCONCLUSIVE)


def test_time_claim_not_testable_and_bad_finals() -> None:
    studies = [_timed("allegro", [0.5, 0.51, 0.49], 1e6), _timed("mlp", [1.0, 1.01, 0.99], 2e6)]
    one_seed = [_final("rmd17-benzene", v, 0, 0.03) for v in ("allegro", "mlp")]
    row = final_claims.time_row(one_seed, studies, "rmd17-benzene", "allegro", "mlp")
    assert row["verdict"] == stats.NOT_TESTABLE and "Allegro 1, Allegro+MLP 1; need two each" in row["reason"]
    finals = [_final("rmd17-benzene", v, s, 0.03) for v in ("allegro", "mlp") for s in (0, 1)]
    untimed = [studies[0], _study({3: 0.03}, None, variant="mlp")]
    row = final_claims.time_row(finals, untimed, "rmd17-benzene", "allegro", "mlp")
    assert row["verdict"] == stats.NOT_TESTABLE and "re-timing" in row["reason"]
    mixed = [*finals, _final("rmd17-benzene", "mlp", 2, 0.03, trial=8)]
    with pytest.raises(CampaignError, match="rmd17-benzene mlp trained different configurations"):
        final_claims.time_row(mixed, studies, "rmd17-benzene", "allegro", "mlp")


def test_error_claim_pairs_finals_by_seed_and_leaves_out_transfers() -> None:
    allegro, mlp = [0.040, 0.043, 0.041, 0.045], [0.034, 0.038, 0.035, 0.037]
    finals = ([_final("rmd17-aspirin", "allegro", s, v) for s, v in enumerate(allegro)]
              + [_final("rmd17-aspirin", "mlp", s, v) for s, v in enumerate(mlp)]
              + [_final("rmd17-aspirin", "qdi", s, 0.01, transfer=True) for s in range(4)])
    row = final_claims.error_row(finals, "rmd17-aspirin", "mlp", "allegro")
    ci = sps.ttest_rel(mlp, allegro).confidence_interval(0.95)
    assert row["verdict"] == stats.SUPPORTED and row["n"] == 4
    assert row["percent_low"] == pytest.approx(100 * ci.low / np.mean(allegro))
    assert row["paper_percent"] == pytest.approx(100 * (9.0 - 10.2) / 10.2)
    worse = final_claims.error_row(finals, "rmd17-aspirin", "allegro", "mlp")
    assert worse["verdict"] == stats.CONTRADICTED
    assert final_claims.error_row(finals[:1], "rmd17-aspirin", "mlp", "allegro")["verdict"] == stats.NOT_TESTABLE


# ---- records: malformed files are named ---------------------------------------------------------------------------

def test_malformed_records_name_the_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(CampaignError, match=r"record\.json: front\['3'\] lacks \['times_s'\]"):
        check_retime({"front": {"3": {"total_s": 1.0}}}, tmp_path / "record.json")
    with pytest.raises(CampaignError, match="times_s has 1 round"):
        check_retime({"front": {"3": {"total_s": 1.0, "times_s": [1.0]}}}, tmp_path / "record.json")
    (tmp_path / "trials.csv").write_text("number,state,val_f_mae\n0,COMPLETE,0.1\n")
    (tmp_path / "study.json").write_text(json.dumps({"space": [{"name": "r_max", "fixed": None}]}))
    with pytest.raises(CampaignError, match=r"trials\.csv: missing column\(s\) \['inference_total_s', 'r_max'\]"):
        read_trials(tmp_path, "rmd17-benzene")
    (tmp_path / "study.json").write_text("{")
    with pytest.raises(CampaignError, match=r"study\.json: no readable 'space'") as err:
        read_trials(tmp_path, "rmd17-benzene")
    assert "\n" not in str(err.value)


# ---- end to end: records in the campaign's own formats, `qallegro campaign verdicts` ---------------------------

def _write_study(scale: str, dataset: str, variant: str, points: list[tuple[float, float]], seed: int) -> Path:
    """A study whose trials have `points` (error, time) as objectives, written by `hpo.report.write_results`
    and with the `study.json` the study worker writes."""
    import optuna
    from qallegro.campaign.studies import study_name
    from qallegro.hpo.report import write_results
    from qallegro.hpo.space import default_space
    from qallegro.hpo.study import study_dir
    from qallegro.utils import atomic_write_json

    s = _smoke_studies(scale)
    name = study_name(dataset, variant, s["sampler"], int(s["seed"]))
    folder = study_dir(scale, name)
    space = default_space(variant)
    dists = space.distributions()
    rng = np.random.default_rng(seed)
    study = optuna.create_study(directions=["minimize", "minimize"], study_name=name)
    for k, (err, t) in enumerate(points):
        raw = {key: (float(rng.uniform(d.low, d.high)) if isinstance(d, optuna.distributions.FloatDistribution)
                     else int(rng.integers(d.low, d.high + 1))) for key, d in dists.items()}
        study.add_trial(optuna.trial.create_trial(params=raw, distributions=dists, values=[err, t],
                                                  user_attrs={"trial_dir": str(folder / "trials" / f"{k:05d}")}))
    spec = SimpleNamespace(dataset=dataset, variant=variant, sampler=s["sampler"], scale=scale, seed=int(s["seed"]))
    write_results(SimpleNamespace(folder=folder, study=study, space=space, name=name, target=len(points),
                                  spec=spec), plots=False)
    atomic_write_json(folder / "study.json", {"spec": vars(spec), "target": len(points), "space": space.describe(),
                                              "env": {}})
    return folder


def _smoke_studies(scale: str) -> dict:
    from qallegro import scales

    return scales.settings("campaign", scale)["studies"]


def _write_units(root: Path, payload: dict[str, dict], kind: str) -> None:
    """Records written by the unit queue's own writer (`units.work`), one per unit id."""
    from qallegro.campaign.units import Unit, UnitQueue, work

    units = [Unit(uid, kind) for uid in payload]
    assert work(units, UnitQueue(root), {kind: lambda unit, folder: payload[unit.id]}, log=lambda m: None) == len(units)


def test_campaign_verdicts_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qallegro.campaign.ablation import ablation_units, run_outcome
    from qallegro.campaign.studies import final_units, retime_units

    scale = "smoke"
    monkeypatch.setenv("QALLEGRO_RESULTS", str(tmp_path))
    root = tmp_path / scale / "campaign"
    pairs = [tuple(p) for p in _smoke_studies(scale)["pairs"]]
    assert ("rmd17-benzene", "allegro") in pairs and ("rmd17-benzene", "mlp") in pairs
    rng = np.random.default_rng(5)
    # 40 trials: two on the front (0: accurate and slow, 1: less accurate and fast), 38 dominated by both
    points = [(0.030, 0.9), (0.045, 0.5)] + [(float(e), float(t)) for e, t in
                                             zip(rng.uniform(0.05, 0.1, 38), rng.uniform(1.0, 2.0, 38))]
    for k, (dataset, variant) in enumerate(pairs):
        _write_study(scale, dataset, variant, points, seed=k)
    jitter = np.array([0.0, 0.01, -0.01, 0.02, -0.005, 0.004])
    retimed = {"allegro": {0: 1.0, 1: 0.5}, "mlp": {0: 0.40, 1: 0.60}}   # mlp: trial 0 re-timed fastest too
    flops = {"allegro": 2e6, "mlp": 1e6, "qdi": 3e6}
    payload = {}
    for unit in retime_units(scale):
        v = unit.spec["variant"]
        front = {str(n): {"total_s": float(np.median(t + jitter)), "times_s": list(t + jitter), "rounds": 6,
                          "clock": "process", "threads": 1, "n_structures": 10,
                          "matmul_flops_per_structure": flops[v] * (1 + n), "during_study_s": points[n][1]}
                 for n, t in retimed.get(v, {0: 1.0, 1: 0.5}).items()}
        payload[unit.id] = {"study": unit.id.removeprefix("retime/"), "time_objective": "inference_total_s",
                            "front": front}
    _write_units(root, payload, "retime")
    test_err = {"allegro": [0.040, 0.043], "mlp": [0.034, 0.038]}
    payload = {}
    for unit in final_units(scale):
        sp = unit.spec
        cfg = {"dataset": sp["dataset"], "variant": sp["variant"], "seed": sp["seed"], "max_epochs": 2}
        err = test_err.get(sp["variant"], [0.05] * 9)[sp["seed"]]
        result = {"val": {"f_mae": err}, "test": {"f_mae": err, "e_mae": 0.001}, "epochs": 2, "best_epoch": 2,
                  "wall_s": 1.0, "stop_reason": "max_epochs", "n_parameters": 100}
        payload[unit.id] = {"dataset": sp["dataset"], "variant": sp["variant"], "seed": sp["seed"],
                            "rule": sp["rule"], "transfer": "qdi_study" in sp,
                            "chosen": {"study": sp["study"], "trial": 0, "params": {}},
                            "protocol": {"version": 1, "budget": {"kind": "epochs", "max_epochs": 2},
                                         "n_train": 5, "n_val": 5, "n_test": 5},
                            **run_outcome(cfg, result)}
    _write_units(root, payload, "final")
    payload = {}
    for unit in ablation_units(scale, "rmd17-benzene"):
        sp = unit.spec
        err = 0.05 * (1 + 0.02 * sp["seed"])
        cfg = {"dataset": sp["dataset"], "variant": sp["variant"], "seed": sp["seed"]}
        payload[unit.id] = {"dataset": sp["dataset"], "variant": sp["variant"], "seed": sp["seed"], "scale": scale,
                            "protocol": {"version": 1, "budget": {"kind": "epochs", "max_epochs": 2}},
                            **run_outcome(cfg, {"val": {"f_mae": err, "e_mae": 0.001},
                                                "test": {"f_mae": err, "e_mae": 0.001},
                                                "stop_reason": "max_epochs"})}
    _write_units(root, payload, "train")

    env = {**os.environ, "QALLEGRO_RESULTS": str(tmp_path), "QALLEGRO_THREADS": "1"}
    out = subprocess.run([sys.executable, "-m", "qallegro", "campaign", "verdicts", "--scale", scale], env=env,
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    from qallegro.report.claims import CLAIMS, read_verdicts, verdicts_path

    verdicts = read_verdicts(verdicts_path(scale))
    for key in ("trade-off", "mlp-accuracy-allegro-speed", "hyperparameter-significance", "qdi-time"):
        assert key in CLAIMS and f"claim {key}" in out.stdout
        assert verdicts[key]["evidence"].startswith("Rule: ")
    assert verdicts["trade-off"]["page"] == "moo_summary" and verdicts["qdi-time"]["page"] == "final_training"
    tests = json.loads((root / "study-verdicts.json").read_text())
    trade = {r["variant"]: r for r in tests["trade-off"] if r["dataset"] == "rmd17-benzene"}
    assert trade["allegro"]["verdict"] == stats.SUPPORTED and trade["mlp"]["verdict"] == stats.CONTRADICTED
    # the smoke studies of datasets without a smoke ablation (aspirin, QM9) have no seed spread: not testable; the
    # claim as a whole is contradicted by benzene's MLP study all the same (an untestable part hides no contradiction)
    others = {r["verdict"] for r in tests["trade-off"] if r["dataset"] in ("rmd17-aspirin", "qm9")}
    assert others == {stats.NOT_TESTABLE} and verdicts["trade-off"]["verdict"] == stats.CONTRADICTED
    assert "1 supported, 1 contradicted" in verdicts["trade-off"]["tally"]
    seeds = [0.05 * (1 + 0.02 * s) for s in range(2)]
    assert trade["allegro"]["seed_spread"] == pytest.approx(np.std(seeds, ddof=1) / np.mean(seeds))
    benzene = [r for r in tests["mlp-accuracy-allegro-speed"] if r["dataset"] == "rmd17-benzene"]
    err = next(r for r in benzene if r["test"] == "error")
    ci = sps.ttest_rel(test_err["mlp"], test_err["allegro"]).confidence_interval(0.95)
    assert err["n"] == 2 and err["percent_low"] == pytest.approx(100 * ci.low / np.mean(test_err["allegro"]))
    time = next(r for r in benzene if r["test"] == "time")
    # the chosen trial 0: Allegro re-timed at 1.0 s, Allegro+MLP at 0.4 s, FLOPs agree: Allegro is not faster
    assert time["verdict"] == stats.CONTRADICTED and time["chosen"]["mlp"][1] == 0
    ci = sps.ttest_ind(0.40 + jitter, 1.0 + jitter, equal_var=False).confidence_interval(0.95)
    assert time["percent_high"] == pytest.approx(100 * ci.high / np.mean(1.0 + jitter))
    others = [r for r in tests["mlp-accuracy-allegro-speed"] if r["dataset"] != "rmd17-benzene"]
    assert {r["dataset"] for r in others} == {"rmd17-aspirin", "qm9"}  # the smoke studies of every Fig. 2 pair
    assert verdicts["mlp-accuracy-allegro-speed"]["verdict"] == stats.CONTRADICTED  # benzene's time, at least
    sig = {r["variant"]: r for r in tests["hyperparameter-significance"]}
    assert all(r["n_trials"] == 40 and "PolynomialCutoff_p" in r["params"] for r in sig.values())


def test_new_claims_carry_the_papers_numbers() -> None:
    import yaml
    from qallegro.report import claims

    fig2 = pd.read_csv(ROOT / "data" / "paper" / "fig2_pareto_points.csv", comment="#")
    panel = fig2[fig2["dataset"] == "rMD17-aspirin"]
    best = panel.groupby("variant")["val_mae"].min()
    fastest = panel.groupby("variant")["inference_time_s"].min()
    text = claims.paper_evidence(claims.CLAIMS["mlp-accuracy-allegro-speed"])
    assert (f"aspirin {best['Allegro+MLP']:.4f} vs {best['Allegro']:.4f} eV/Å, "
            f"{fastest['Allegro+MLP']:.1f} vs {fastest['Allegro']:.1f} s") in text
    culi = fig2[fig2["dataset"].str.startswith("Cu")].groupby("variant")["inference_time_s"].min()
    assert f"{culi['Allegro+QDI']:.2f} s vs Allegro+MLP {culi['Allegro+MLP']:.2f} s" in claims.paper_evidence(
        claims.CLAIMS["qdi-time"])
    tables = yaml.safe_load((ROOT / "data" / "paper" / "paper_values.yaml").read_text())
    p = [tables[t]["culi"]["P"] for t in ("table1_allegro", "table2_mlp", "table3_qdi")]
    assert f"on Cu-Li {p[0]} / {p[1]} / {p[2]}" in claims.paper_evidence(claims.CLAIMS["hyperparameter-significance"])


@pytest.mark.parametrize(("allegro_s", "mlp_s", "verdict"), [(0.50, 1.00, stats.SUPPORTED),
                                                              (1.00, 0.50, stats.CONTRADICTED),
                                                              (0.50, 0.50, stats.INCONCLUSIVE)])
def test_time_claim_from_the_final_models_paired_rounds(allegro_s, mlp_s, verdict) -> None:
    """With the dataset's final-model re-timing (retime/finals-<dataset>) the rounds pair: the t interval of the
    per-round differences (scipy's paired t test), and the study re-timings are not needed."""
    a = allegro_s + np.array([0.0, 0.01, -0.01, 0.02, -0.005])
    b = mlp_s + np.array([0.003, 0.012, -0.02, 0.01, 0.0])
    retime = {"finals": {"allegro": {"times_s": list(a), "clock": "process", "matmul_flops_per_structure": 1e6},
                         "mlp": {"times_s": list(b), "clock": "process",
                                 "matmul_flops_per_structure": 2e6 if mlp_s >= allegro_s else 5e5},
                         "qdi-transfer": {"times_s": [1.0] * 5, "clock": "process"}}}
    finals = [_final("rmd17-benzene", v, s, 0.03) for v in ("allegro", "mlp") for s in (0, 1)]
    row = final_claims.time_row(finals, [], "rmd17-benzene", "allegro", "mlp", {"rmd17-benzene": retime})
    assert row["paired"] and row["n"] == [5, 5] and row["verdict"] == verdict
    ci = sps.ttest_rel(b, a).confidence_interval(0.95)
    assert (row["percent_low"], row["percent_high"]) == pytest.approx((100 * ci.low / a.mean(),
                                                                        100 * ci.high / a.mean()))
    assert "paired rounds of the final models" in final_claims.time_sentence(row)
    # another dataset's re-timing, or one without both variants, leaves the unpaired path
    row = final_claims.time_row(finals, [], "rmd17-benzene", "allegro", "mlp", {"qm9": retime})
    assert row["verdict"] == stats.NOT_TESTABLE and "re-timing" in row["reason"]


@pytest.mark.parametrize(("mlp_error", "verdict"), [
    (0.0240, stats.SUPPORTED),        # 20% lower: beyond the threshold (1.96·√2·5%·ē ≈ 12.5%)
    (0.0280, stats.INCONCLUSIVE),     # 6.7% lower: within it
    (0.0360, stats.CONTRADICTED),     # 20% higher
])
def test_error_claim_on_the_studies_where_the_finals_are_cut(mlp_error: float, verdict: str) -> None:
    """Each study's most accurate trial (not its last, not another member) against the head ablation's spread."""
    studies = [_study({0: 0.05, 4: 0.030, 7: 0.031}, None, variant="allegro"),
               _study({1: 0.06, 5: mlp_error, 6: mlp_error + 0.01}, None, variant="mlp")]
    ablation = (_ablation("rmd17-benzene", "allegro", [0.95, 1.0, 1.05])       # relative sd 5%
                + _ablation("rmd17-benzene", "mlp", [0.99, 1.0, 1.01]))        # relative sd 1%
    row = final_claims.study_error_row(studies, ablation, "rmd17-benzene", "mlp", "allegro")
    assert row["level"] == "studies" and row["chosen"] == {"mlp": ["rmd17-benzene-mlp-tpe-s0", 5],
                                                           "allegro": ["rmd17-benzene-allegro-tpe-s0", 4]}
    spread = float(np.std([0.95, 1.0, 1.05], ddof=1))  # mean 1: the relative spread, the larger of the two
    threshold = 1.959963984540054 * np.sqrt(2) * spread * (0.030 + mlp_error) / 2
    assert row["spread"] == pytest.approx(spread)
    assert row["threshold_percent"] == pytest.approx(100 * threshold / 0.030)
    assert row["percent"] == pytest.approx(100 * (0.030 - mlp_error) / 0.030) and row["verdict"] == verdict
    assert "most accurate trials" in final_claims.error_sentence(row)
    assert f"{abs(row['percent']):.1f}% {'lower' if mlp_error < 0.030 else 'higher'}, against" in \
        final_claims.error_sentence(row)
    no_spread = final_claims.study_error_row(studies, ablation[:3], "rmd17-benzene", "mlp", "allegro")
    assert no_spread["verdict"] == stats.NOT_TESTABLE and "seed spread" in no_spread["reason"]


def test_time_claim_on_the_studies_where_the_finals_are_cut() -> None:
    jitter = np.array([0.0, 0.01, -0.01, 0.02, -0.005])
    allegro = _study({2: 0.04, 3: 0.03}, {2: list(0.2 + jitter), 3: list(0.5 + jitter)}, variant="allegro",
                     flops={2: 5e5, 3: 1e6})
    mlp = _study({8: 0.02}, {8: list(1.0 + jitter[::-1])}, variant="mlp", flops={8: 2e6})
    row = final_claims.study_time_row([allegro, mlp], "rmd17-benzene", "allegro", "mlp")
    assert row["chosen"] == {"allegro": [allegro.name, 3], "mlp": [mlp.name, 8]}  # the most accurate, not fastest
    ci = sps.ttest_ind(1.0 + jitter[::-1], 0.5 + jitter, equal_var=False).confidence_interval(0.95)
    assert row["percent_low"] == pytest.approx(100 * ci.low / np.mean(0.5 + jitter))
    assert row["verdict"] == stats.SUPPORTED and "studies' most accurate trials" in final_claims.time_sentence(row)
    assert final_claims.study_time_row([allegro], "rmd17-benzene", "allegro", "mlp")["verdict"] == stats.NOT_TESTABLE


def test_a_cut_datasets_final_claims_are_tested_on_its_studies(monkeypatch: pytest.MonkeyPatch) -> None:
    """`finals` in the scale's `cut`: every final-model claim from the studies, with the studies' rule and page; a
    dataset whose head ablation is cut too (QM9) is not testable with that cut's reason; `finals:NAME` only
    moves that dataset's tests."""
    from qallegro.campaign import plan, study_claims, study_records
    from qallegro.campaign.verdicts import study_claim_verdicts

    jitter = [0.0, 0.01, -0.01, 0.02, -0.005]
    studies = [_study({3: e}, {3: [t + j for j in jitter]}, dataset=ds, variant=v)
               for ds in ("rmd17-aspirin", "rmd17-benzene", "qm9", "culi")
               for v, e, t in (("allegro", 0.03, 0.5), ("mlp", 0.02, 1.0), ("qdi", 0.02, 1.2))]
    for study in studies:  # QM9's error is the energy's
        if study.dataset == "qm9":
            study.trials["val_e_mae"] = study.trials.pop("val_f_mae")
    ablation = [r for ds in ("rmd17-aspirin", "rmd17-benzene", "culi") for v in ("allegro", "mlp", "qdi")
                for r in _ablation(ds, v, [0.99, 1.0, 1.01])]
    finals = [_final(ds, v, s, 0.03) for ds in ("rmd17-aspirin", "rmd17-benzene", "qm9", "culi")
              for v in ("allegro", "mlp", "qdi") for s in (0, 1)]
    monkeypatch.setattr(study_records, "load_studies", lambda scale: studies)
    monkeypatch.setattr(study_records, "final_records", lambda scale: finals)
    monkeypatch.setattr(study_records, "finals_retimes", lambda scale: {})
    monkeypatch.setattr(plan, "ablation_records", lambda scale: ablation)
    monkeypatch.setattr(plan, "cuts", lambda scale: {"finals": "cut for time", "ablation:qm9": "cut too"})
    out = study_claims.study_claim_tests("overnight")
    rows = out["mlp-accuracy-allegro-speed"] + out["qdi-time"]
    assert all(r["level"] == "studies" for r in rows)
    qm9_error = next(r for r in rows if r["dataset"] == "qm9" and r["test"] == "error")
    assert qm9_error["verdict"] == stats.NOT_TESTABLE and qm9_error["reason"].endswith("not run at this scale: cut too")
    qm9_fronts = [r for r in out["trade-off"] if r["dataset"] == "qm9"]  # no seed spread: the ablation cut says why
    assert qm9_fronts and all(r["reason"].endswith("not run at this scale: cut too") for r in qm9_fronts)
    benzene = next(r for r in rows if r["dataset"] == "rmd17-benzene" and r["test"] == "error")
    assert benzene["verdict"] == stats.SUPPORTED  # 0.02 vs 0.03 with a 1% seed spread
    assert out["qdi-time"][0]["verdict"] == stats.SUPPORTED  # 1.2 s vs 1.0 s
    verdicts = {v["claim"]: v for v in study_claim_verdicts(out)}
    assert verdicts["qdi-time"]["page"] == "moo_summary"
    assert verdicts["qdi-time"]["rule"] == f"{final_claims.STUDY_RULE}; {final_claims.STUDY_TIME}"
    assert final_claims.STUDY_ERROR in verdicts["mlp-accuracy-allegro-speed"]["rule"]
    assert verdicts["trade-off"]["rule"] == study_claims.RULES["trade-off"]
    monkeypatch.setattr(plan, "cuts", lambda scale: {"finals:culi": "cut for time"})
    out = study_claims.study_claim_tests("overnight")
    assert out["qdi-time"][0]["level"] == "studies"
    assert not any(r.get("level") for r in out["mlp-accuracy-allegro-speed"])  # finals of the others
    # overnight's cut: the rMD17 tests on the finals, QM9's on the studies, and the rule says which is which
    monkeypatch.setattr(plan, "cuts", lambda scale: {"finals:culi": "cut for time", "finals:qm9": "cut by priority",
                                                     "ablation:qm9": "cut too"})
    out = study_claims.study_claim_tests("overnight")
    accuracy = out["mlp-accuracy-allegro-speed"]
    assert {r["dataset"] for r in accuracy if r.get("level") == "studies"} == {"qm9"}
    assert {r["dataset"] for r in accuracy if not r.get("level")} == {"rmd17-aspirin", "rmd17-benzene"}
    verdicts = {v["claim"]: v for v in study_claim_verdicts(out)}
    assert verdicts["mlp-accuracy-allegro-speed"]["page"] == "final_training"
    assert verdicts["mlp-accuracy-allegro-speed"]["rule"] == (
        f"{study_claims.RULES['mlp-accuracy-allegro-speed']}; for QM9: {final_claims.STUDY_RULE}; "
        f"{final_claims.STUDY_ERROR}; {final_claims.STUDY_TIME}")
    assert verdicts["qdi-time"]["page"] == "moo_summary"
