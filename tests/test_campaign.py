"""The campaign's statistics (against scipy's paired t-test and by coverage on synthetic data), its verdicts, the
claims over ablation records, the unit queue's claims (two workers, dead workers), and `qallegro ablate` end to end."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from qallegro import stats
from qallegro.campaign.claims import CLAIMS, Claim, evaluate_claim, paired_values
from qallegro.campaign.units import CLAIM, ELAPSED, RECORD, Unit, UnitQueue, status, work
from scipy import stats as sps

ROOT = Path(__file__).resolve().parents[1]


def test_interval_equals_scipys_paired_t_test() -> None:
    rng = np.random.default_rng(0)
    ref = rng.normal(10, 1, 7)
    oth = ref - 0.8 + rng.normal(0, 0.5, 7)
    d = stats.paired_difference(ref, oth)
    ci = sps.ttest_rel(oth, ref).confidence_interval(0.95)
    assert d.low == pytest.approx(ci.low, rel=1e-12) and d.high == pytest.approx(ci.high, rel=1e-12)
    assert d.n == 7 and d.mean == pytest.approx(float(np.mean(oth - ref)))
    assert d.percent == pytest.approx(100 * d.mean / np.mean(ref))


def test_coverage_and_verdicts_on_synthetic_seeds() -> None:
    """With a known effect the 95% interval covers it in about 95% of campaigns; a zero effect is called
    inconclusive about 95% of the time, and a large effect supported (never contradicted)."""
    rng = np.random.default_rng(1)
    n_rep, n = 2000, 5
    covered, verdicts_zero, verdicts_big = 0, [], []
    for _ in range(n_rep):
        ref = rng.normal(40, 3, n)               # seed-to-seed spread of the reference head
        noise = rng.normal(0, 2, n)              # spread of the paired difference
        d = stats.paired_difference(ref, ref - 4 + noise)
        covered += d.low <= -4 <= d.high
        verdicts_zero.append(stats.verdict(stats.paired_difference(ref, ref + noise)))
        verdicts_big.append(stats.verdict(stats.paired_difference(ref, ref - 12 + noise)))
    assert 0.935 < covered / n_rep < 0.965
    share = verdicts_zero.count(stats.INCONCLUSIVE) / n_rep
    assert 0.935 < share < 0.965
    assert verdicts_big.count(stats.SUPPORTED) / n_rep > 0.99 and stats.CONTRADICTED not in verdicts_big


def test_verdict_directions_and_bad_input() -> None:
    lower = stats.paired_difference([10, 11, 12, 10.5], [8, 9.1, 10, 8.4])
    assert stats.verdict(lower, "lower") == stats.SUPPORTED
    assert stats.verdict(lower, "higher") == stats.CONTRADICTED
    with pytest.raises(stats.StatisticsError, match="at least two seeds"):
        stats.paired_difference([1.0], [2.0])
    with pytest.raises(stats.StatisticsError, match="equal lengths"):
        stats.paired_difference([1.0, 2.0], [2.0])
    with pytest.raises(stats.StatisticsError, match="non-finite"):
        stats.paired_difference([1.0, math.nan], [2.0, 3.0])
    with pytest.raises(stats.StatisticsError, match="direction"):
        stats.verdict(lower, "sideways")


def test_seeds_needed_matches_the_t_quantile_condition() -> None:
    n = stats.seeds_needed(2.0, 1.5)
    t = sps.t.ppf(0.975, [n - 2, n - 1])
    assert t[1] * 2.0 / math.sqrt(n) < 1.5 <= t[0] * 2.0 / math.sqrt(n - 1)


def _record(dataset: str, variant: str, seed: int, f: float, truncated: bool = False, lr: float = 0.02) -> dict:
    return {"dataset": dataset, "variant": variant, "seed": seed, "truncated": truncated,
            "stop_reason": "max_wall_s" if truncated else "max_epochs",
            "protocol": {"version": 1, "split_version": 2, "budget": {"kind": "epochs", "max_epochs": 40},
                         "learning_rate": lr, "batch_size": 2, "n_train": 400, "n_val": 100},
            "test": {"f_mae": f, "e_mae": f / 10}, "val": {"f_mae": f, "e_mae": f / 10}}


def test_claims_pair_by_seed_skip_truncated_and_refuse_mixed_protocols() -> None:
    claim = next(c for c in CLAIMS if c.id == "culi-f-qdi-mlp")
    recs = [_record("culi", "mlp", s, 0.050 + 0.001 * s) for s in range(5)]
    recs += [_record("culi", "qdi", s, 0.044 + 0.001 * s + 0.0003 * (-1) ** s) for s in range(4)]
    recs.append(_record("culi", "qdi", 4, 0.03, truncated=True))
    seeds, _, _, problems = paired_values(recs, claim, "test")
    assert seeds == [0, 1, 2, 3] and len(problems) == 1 and "truncated" in problems[0]
    row = evaluate_claim(recs, claim)
    assert row["verdict"] == stats.SUPPORTED and row["n"] == 4
    assert row["paper_percent"] == pytest.approx(100 * (37.8 - 43.3) / 43.3)
    assert evaluate_claim(recs[:1], claim)["verdict"] == stats.NOT_TESTABLE
    with pytest.raises(ValueError, match="different protocols"):
        paired_values([*recs, _record("culi", "mlp", 9, 0.05, lr=0.01)], claim, "test")


def test_pilot_reports_spread_and_seeds_needed() -> None:
    from qallegro.campaign.claims import pilot

    rng = np.random.default_rng(3)
    base = rng.normal(0.05, 0.004, 6)
    recs = [_record("culi", "allegro", s, base[s]) for s in range(6)]
    recs += [_record("culi", "mlp", s, base[s] * 0.9 + rng.normal(0, 0.001)) for s in range(6)]
    out = pilot(recs, "culi", "f_mae", "test")
    assert out["heads"]["allegro"]["n"] == 6
    assert out["heads"]["allegro"]["sd"] == pytest.approx(float(np.std(base, ddof=1)))
    pair = out["pairs"]["mlp - allegro"]
    diffs = [r["test"]["f_mae"] for r in recs[6:]]
    assert pair["sd_difference"] == pytest.approx(float(np.std(np.array(diffs) - base, ddof=1)))
    assert pair["seeds_for_10_percent"] == stats.seeds_needed(pair["sd_difference"], 0.1 * float(np.mean(base)))
    assert pair["seeds_for_15_percent"] <= pair["seeds_for_10_percent"]


def test_non_inferiority_claim() -> None:
    claim = Claim("x", "competitive", "rmd17-benzene", "f_mae", "allegro", "qdi", "within", 10.0)
    same = [_record("rmd17-benzene", v, s, 0.020 + 0.0002 * s + (0.0001 if v == "qdi" else 0))
            for s in range(5) for v in ("allegro", "qdi")]
    worse = [_record("rmd17-benzene", v, s, 0.020 * (1.3 if v == "qdi" else 1) + 0.0002 * s)
             for s in range(5) for v in ("allegro", "qdi")]
    assert evaluate_claim(same, claim)["verdict"] == stats.SUPPORTED
    assert evaluate_claim(worse, claim)["verdict"] == stats.CONTRADICTED


def _sleepy(unit: Unit, folder: Path) -> dict:
    time.sleep(0.3)
    (folder / f"ran-by-{os.getpid()}").write_text("x")
    return {"value": unit.spec["v"]}


def _worker(root: str) -> None:
    units = [Unit(f"u/{k}", "sleep", {"v": k}) for k in range(8)]
    work(units, UnitQueue(Path(root), grace_s=5.0, heartbeat_s=0.5), {"sleep": _sleepy}, log=lambda m: None,
         poll_s=0.1)


def test_two_workers_share_units_and_never_run_one_twice(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(str(tmp_path),)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    runs = {k: list((tmp_path / "u" / str(k)).glob("ran-by-*")) for k in range(8)}
    assert all(len(v) == 1 for v in runs.values()), runs
    assert len({v[0].name for v in runs.values()}) == 2, "both workers took units"
    assert all(json.loads((tmp_path / "u" / str(k) / RECORD).read_text())["value"] == k for k in range(8))
    assert not list(tmp_path.rglob(CLAIM))


def test_a_dead_workers_claim_is_taken_over_and_dependencies_wait(tmp_path: Path) -> None:
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True)
    units = [Unit("a", "sleep", {"v": 1}), Unit("b", "sleep", {"v": 2}, after=("a",))]
    queue = UnitQueue(tmp_path, grace_s=3600.0)
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / CLAIM).write_text(json.dumps({"host": queue.host, "pid": int(dead.stdout)}))
    assert status(units, queue) == {"done": [], "running": [], "ready": ["a"], "waiting": ["b"]}
    assert work(units, queue, {"sleep": _sleepy}, log=lambda m: None) == 2
    live = UnitQueue(tmp_path / "other", grace_s=3600.0)
    (tmp_path / "other" / "a").mkdir(parents=True)
    (tmp_path / "other" / "a" / CLAIM).write_text(json.dumps({"host": "elsewhere", "pid": 1}))
    assert live.claim(units[0]) is None, "a fresh claim of another host is respected"
    with pytest.raises(ValueError, match="no runner"):
        work(units, queue, {}, log=lambda m: None)
    late = [Unit("c", "sleep", {"v": 3})]
    assert work(late, queue, {"sleep": _sleepy}, log=lambda m: None, stop_at=time.time() - 1) == 0
    assert not queue.done(late[0])
    # a worker given a subset (`--only`): a dependency outside it counts once its record exists, else it waits
    subset = [Unit("d", "sleep", {"v": 4}, after=("b",)), Unit("e", "sleep", {"v": 5}, after=("c",))]
    assert status(subset, queue) == {"done": [], "running": [], "ready": ["d"], "waiting": ["e"]}
    assert work(subset, queue, {"sleep": _sleepy}, log=lambda m: None) == 1 and queue.done(subset[0])


def test_a_units_time_counts_its_interrupted_attempts(tmp_path: Path) -> None:
    """A unit interrupted after 0.6 s and finished in a second attempt of 0.3 s records about 0.9 s over 2 attempts;
    the elapsed-time file is gone once the record exists."""
    queue = UnitQueue(tmp_path, heartbeat_s=0.1)
    unit = [Unit("a", "slow")]
    attempts: list[float] = []

    def slow(u: Unit, folder: Path) -> dict:
        attempts.append(time.time())
        if len(attempts) == 1:
            time.sleep(0.6)
            raise KeyboardInterrupt  # a Ctrl-C or SIGTERM in the first attempt
        busy = time.process_time() + 0.3
        while time.process_time() < busy:  # 0.3 s of CPU
            pass
        return {"value": 1}

    with pytest.raises(KeyboardInterrupt):
        work(unit, queue, {"slow": slow}, log=lambda m: None)
    kept = json.loads((tmp_path / "a" / ELAPSED).read_text())
    assert kept["attempts"] == 1 and 0.6 <= kept["elapsed_s"] < 3.0  # upper bounds loose: a loaded machine
    assert work(unit, queue, {"slow": slow}, log=lambda m: None) == 1
    record = json.loads((tmp_path / "a" / RECORD).read_text())
    assert record["unit_attempts"] == 2 and 0.9 <= record["unit_wall_s"] < 5.0
    assert 0.3 <= record["unit_cpu_s"] < 0.6  # the sleeping first attempt used next to no CPU
    assert not (tmp_path / "a" / ELAPSED).exists() and not (tmp_path / "a" / CLAIM).exists()


def test_ablate_smoke_writes_per_seed_records_and_a_verdict_table(tmp_path: Path) -> None:
    env = {**os.environ, "QALLEGRO_RESULTS": str(tmp_path), "QALLEGRO_THREADS": "1"}
    cmd = [sys.executable, "-m", "qallegro", "ablate", "--dataset", "rmd17-benzene", "--scale", "smoke"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    root = tmp_path / "smoke" / "campaign"
    recs = [json.loads(p.read_text()) for p in sorted((root / "ablation" / "rmd17-benzene").glob("*/record.json"))]
    assert sorted((r["variant"], r["seed"]) for r in recs) == [(v, s) for v in ("allegro", "mlp", "qdi")
                                                                for s in (0, 1)]
    for r in recs:
        assert r["protocol"]["budget"] == {"kind": "epochs", "max_epochs": 2} and r["epochs"] == 2
        assert r["protocol"]["learning_rate"] in (0.005, 0.02) and not r["truncated"]
        assert r["test"]["f_mae"] > 0
    sweep = [json.loads(p.read_text()) for p in (root / "sweep" / "rmd17-benzene").glob("*/record.json")]
    best = min(sweep, key=lambda r: r["val"]["f_mae"])
    assert {r["protocol"]["learning_rate"] for r in recs} == {best["protocol"]["learning_rate"]}
    table = json.loads((root / "ablation" / "rmd17-benzene-verdicts.json").read_text())
    assert {r["claim"] for r in table} >= {"benzene-f-mlp-allegro", "benzene-e-qdi-allegro"}
    assert all(r["n"] == 2 and r["verdict"] in (stats.SUPPORTED, stats.CONTRADICTED, stats.INCONCLUSIVE)
               for r in table)
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert again.returncode == 0 and "start" not in again.stdout, "a finished campaign runs nothing again"
    bad = subprocess.run([sys.executable, "-m", "qallegro", "ablate", "--dataset", "nosuch", "--scale", "smoke"],
                         env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert bad.returncode == 2 and "nosuch" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


def test_campaign_runs_study_slices_then_finals_of_the_chosen_configuration(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    env = {**os.environ, "QALLEGRO_RESULTS": str(tmp_path), "QALLEGRO_THREADS": "1"}
    cmd = [sys.executable, "-m", "qallegro", "campaign", "run", "--scale", "smoke", "--only", "*benzene-allegro*"]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = [ln.split()[-1] for ln in out.stdout.splitlines() if " start " in ln]
    assert lines == ["study/rmd17-benzene-allegro-random-s0/0002", "study/rmd17-benzene-allegro-random-s0/0004",
                     "retime/rmd17-benzene-allegro-random-s0", "final/rmd17-benzene-allegro/s0",
                     "final/rmd17-benzene-allegro/s1"]
    root = tmp_path / "smoke" / "campaign"
    slices = [json.loads((root / "study" / "rmd17-benzene-allegro-random-s0" / f"{t:04d}" / RECORD).read_text())
              for t in (2, 4)]
    assert [s["n_trials"] for s in slices] == [2, 4]
    import optuna

    journal = tmp_path / "smoke" / "hpo" / "rmd17-benzene-allegro-random-s0" / "journal.log"
    study = optuna.load_study(study_name="rmd17-benzene-allegro-random-s0",
                              storage=optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(
                                  str(journal))))
    best = min((t for t in study.trials if t.values), key=lambda t: t.values[0])
    finals = [json.loads((root / "final" / "rmd17-benzene-allegro" / f"s{s}" / RECORD).read_text()) for s in (0, 1)]
    assert {f["chosen"]["trial"] for f in finals} == {best.number}, "the lowest-error trial of the front"
    assert [f["seed"] for f in finals] == [0, 1] and finals[0]["test"] != finals[1]["test"]
    front = json.loads((root / "retime" / "rmd17-benzene-allegro-random-s0" / RECORD).read_text())["front"]
    # a fresh clone has the study's records but no model files: the re-timing retrains the front from its configs
    from qallegro.campaign.studies import _with_model

    trial_dir = Path(next(t for t in study.trials if t.number == best.number).user_attrs["trial_dir"])
    (trial_dir / "checkpoint.pt").rename(trial_dir / "checkpoint.bak")
    spare = _with_model(trial_dir, tmp_path / "spare")
    assert spare == tmp_path / "spare" and (spare / "checkpoint.pt").is_file()
    assert json.loads((spare / "metrics.json").read_text())["val"] == json.loads(
        (trial_dir / "metrics.json").read_text())["val"], "the retrained trial is the same run"
    assert str(best.number) in front
    assert all(len(v["times_s"]) >= 5 and v["matmul_flops_per_structure"] > 0 and v["during_study_s"] > 0
               for v in front.values())
    # the final models of one seed re-timed together (here the one variant this run trained)
    from qallegro.campaign.studies import run_retime_finals_unit
    from qallegro.campaign.units import Unit

    unit = Unit("retime/finals-rmd17-benzene", "retime-finals", {"scale": "smoke", "dataset": "rmd17-benzene",
                                                                 "seed": 0}, ("final/rmd17-benzene-allegro/s0",))
    monkeypatch.setenv("QALLEGRO_RESULTS", str(tmp_path))
    record = run_retime_finals_unit(unit, root / unit.id)
    timed = record["finals"]["allegro"]
    assert timed["unit"] == "final/rmd17-benzene-allegro/s0" and len(timed["times_s"]) >= 5
    assert timed["clock"] == "process" and timed["matmul_flops_per_structure"] > 0


def test_final_models_are_retimed_per_dataset_after_the_first_seed(monkeypatch: pytest.MonkeyPatch) -> None:
    from qallegro import scales
    from qallegro.campaign.plan import plan
    from qallegro.campaign.studies import final_units, retime_final_units

    assert [u.id for u in retime_final_units("overnight")] == ["retime/finals-rmd17-benzene",
                                                                "retime/finals-rmd17-aspirin",
                                                                "retime/finals-qm9"]  # Cu-Li cut
    settings = scales.settings
    real = settings("campaign", "overnight")  # overnight with every final (its budget cuts Cu-Li's)
    uncut = {**real, "cut": {k: v for k, v in real["cut"].items() if not k.startswith("finals")}}
    monkeypatch.setattr(scales, "settings", lambda kind, scale: uncut if (kind, scale) == ("campaign", "overnight")
                        else settings(kind, scale))
    units = retime_final_units("overnight")
    assert [u.id for u in units] == [f"retime/finals-{d}" for d in ("culi", "rmd17-benzene", "rmd17-aspirin", "qm9")]
    benzene = next(u for u in units if u.spec["dataset"] == "rmd17-benzene")
    assert set(benzene.after) == {"final/rmd17-benzene-allegro/s0", "final/rmd17-benzene-mlp/s0",
                                  "final/rmd17-benzene-qdi-transfer/s0"}
    finals = {u.id for u in final_units("overnight")}
    assert all(set(u.after) <= finals for u in units)
    ids = [u.id for u in plan("overnight")]
    assert all(ids.index(u.id) > max(ids.index(a) for a in u.after) for u in units)


def test_study_slices_follow_each_datasets_trial_count(monkeypatch: pytest.MonkeyPatch) -> None:
    from qallegro.campaign import studies

    monkeypatch.setattr(studies, "_settings", lambda scale: {"studies": {
        "sampler": "tpe", "seed": 0, "slice": 10, "n_trials": 25, "n_trials_by_dataset": {"culi": 40},
        "pairs": [["culi", "qdi"], ["rmd17-benzene", "mlp"]]}})
    units = {u.id: u for u in studies.study_units("overnight")}
    assert sorted(units) == sorted([*(f"study/culi-qdi-tpe-s0/{t:04d}" for t in (10, 20, 30, 40)),
                                    *(f"study/rmd17-benzene-mlp-tpe-s0/{t:04d}" for t in (10, 20, 25))])
    assert units["study/rmd17-benzene-mlp-tpe-s0/0025"].after == ("study/rmd17-benzene-mlp-tpe-s0/0020",)
    assert units["study/rmd17-benzene-mlp-tpe-s0/0025"].spec["n_trials"] == 25
    assert units["study/culi-qdi-tpe-s0/0040"].after == ("study/culi-qdi-tpe-s0/0030", "data/culi")


def test_claim_bundles_combine_their_comparisons() -> None:
    from qallegro.campaign.claims import CLAIMS as COMPARISONS
    from qallegro.campaign.verdicts import BUNDLES, claim_verdicts, combine, tally

    known = {c.id for c in COMPARISONS}
    assert all(i in known for ids in BUNDLES.values() for i in ids)
    assert combine([stats.SUPPORTED, stats.SUPPORTED]) == stats.SUPPORTED
    assert combine([stats.SUPPORTED, stats.INCONCLUSIVE]) == stats.INCONCLUSIVE
    assert combine([stats.SUPPORTED, stats.CONTRADICTED, stats.INCONCLUSIVE]) == stats.CONTRADICTED
    assert combine([stats.SUPPORTED, stats.NOT_TESTABLE]) == stats.NOT_TESTABLE
    # a contradicted part is not hidden by a part that could not be tested
    assert combine([stats.NOT_TESTABLE, stats.CONTRADICTED, stats.SUPPORTED]) == stats.CONTRADICTED
    assert combine([]) == stats.NOT_TESTABLE
    assert tally([stats.SUPPORTED] * 6 + [stats.INCONCLUSIVE, stats.NOT_TESTABLE, stats.NOT_TESTABLE]) == \
        "6 supported, 1 inconclusive, 2 not testable of 9"
    recs = [_record("culi", v, s, {"mlp": 0.05, "qdi": 0.044, "allegro": 0.052}[v] + 0.001 * s + 0.0002 * (s % 2))
            for s in range(4) for v in ("allegro", "mlp", "qdi")]
    from qallegro.campaign.claims import verdict_table

    out = {r["claim"]: r for r in claim_verdicts(verdict_table(recs))}
    assert out["qdi-13"]["verdict"] == stats.SUPPORTED and "over 4 seeds" in out["qdi-13"]["evidence"]
    assert out["mlp-forces"]["verdict"] == stats.NOT_TESTABLE   # no rMD17 runs
    assert out["mlp-forces"]["tally"] == "1 supported, 2 not testable of 3"
    # the validation split, judged by the same rule, beside it
    both = verdict_table(recs, splits=("test", "val"))
    val = {r["claim"]: r for r in claim_verdicts(both, split="val")}
    test = {r["claim"]: r for r in claim_verdicts(both)}
    assert test["qdi-13"]["verdict_val"] == val["qdi-13"]["verdict"] and "verdict_val" not in val["qdi-13"]
    assert "verdict_val" not in out["qdi-13"]  # rows of the test split only: nothing to set beside it
    qdi_mlp = next(r for r in verdict_table(recs) if r["claim"] == "culi-f-qdi-mlp" and r["split"] == "test")
    assert out["qdi-13"]["ours"][0] == (f"Allegro+QDI vs Allegro+MLP, Cu-Li forces: {qdi_mlp['percent']:+.1f}% "
                                        f"[{qdi_mlp['percent_low']:+.1f}, {qdi_mlp['percent_high']:+.1f}], n = 4")
    from qallegro.report import claims as book_claims

    assert set(BUNDLES) <= set(book_claims.CLAIMS), "every bundle is a claim the book's page shows"
    assert {stats.SUPPORTED, stats.CONTRADICTED, stats.INCONCLUSIVE, stats.NOT_TESTABLE} == set(book_claims.VERDICTS)


def test_energy_claim_needs_every_head_beaten_somewhere_and_refutes_one_winner_everywhere() -> None:
    from qallegro.campaign.claims import energy_pairs, verdict_table
    from qallegro.campaign.verdicts import energy_verdict

    def rows(means: dict[str, dict[str, float]], seeds: int = 4) -> list[dict]:
        recs = [_record(d, v, s, m[v] + 0.001 * s + 0.0002 * (s % 2)) for d, m in means.items()
                for s in range(seeds) for v in m]
        return verdict_table(recs, ("test",), energy_pairs(tuple(means)))

    qdi_everywhere = {"culi": {"allegro": 0.06, "mlp": 0.055, "qdi": 0.04},
                      "rmd17-benzene": {"allegro": 0.03, "mlp": 0.032, "qdi": 0.02}}
    out = energy_verdict(rows(qdi_everywhere))
    assert out["verdict"] == stats.CONTRADICTED
    assert out["items"][0].startswith("Cu-Li: Allegro+QDI significantly lowest")
    each_beaten = {"culi": {"allegro": 0.06, "mlp": 0.05, "qdi": 0.04},      # Allegro, MLP above QDI
                   "rmd17-benzene": {"allegro": 0.02, "mlp": 0.02, "qdi": 0.03}}  # QDI above both
    out = energy_verdict(rows(each_beaten))
    assert out["verdict"] == stats.SUPPORTED and out["tally"] == "2 of 2 datasets tested"
    assert "Allegro+QDI above Allegro" in out["items"][1]
    ties = {"culi": {"allegro": 0.05, "mlp": 0.05, "qdi": 0.05}}
    assert energy_verdict(rows(ties))["verdict"] == stats.INCONCLUSIVE
    one_seed = rows({**qdi_everywhere, "qm9": {"allegro": 0.05, "mlp": 0.05, "qdi": 0.05}}, seeds=1)
    out = energy_verdict(one_seed)
    assert out["verdict"] == stats.NOT_TESTABLE and out["tally"] == "0 of 3 datasets tested"


def test_reproduce_status_reports_the_campaign_and_the_pages() -> None:
    from qallegro.campaign.plan import plan

    out = subprocess.run([sys.executable, "-m", "qallegro", "reproduce", "--scale", "overnight", "--status"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    first = out.stdout.splitlines()[0]
    assert first.startswith(f"campaign: {len(plan('overnight'))} units: ") and " done" in first
    assert "pages:" in out.stdout.splitlines()[1]
    dry = subprocess.run([sys.executable, "-m", "qallegro", "reproduce", "--scale", "overnight", "--campaign-only",
                          "--dry-run"], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert dry.returncode == 0 and dry.stdout.startswith(f"campaign at overnight: {len(plan('overnight'))} units, ")
    assert "would run:" in dry.stdout and "running" not in dry.stderr
    smoke = subprocess.run([sys.executable, "-m", "qallegro", "reproduce", "--scale", "smoke", "--status"],
                           capture_output=True, text=True, timeout=300, cwd=ROOT)
    pages = next(line for line in smoke.stdout.splitlines() if line.startswith("pages:"))
    assert "0 of " in pages and "(book/ holds pages of scale overnight; running this scale replaces them)" in pages


def test_sampler_comparison_runs_as_units_the_page_then_resumes(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The optimiser page's comparison as one unit per sampler and seed (last in a plan that has it); a unit runs
    exactly the study the page's `compare_samplers` opens, which then finds it complete and leaves it unchanged."""
    from qallegro.campaign.plan import plan
    from qallegro.campaign.studies import compare_units, run_compare_unit
    from qallegro.hpo.experiment import compare_samplers

    units = compare_units("overnight")
    assert len(units) == 4 * 2 and units[0].id == "compare/compare-rmd17-benzene-allegro-random-s0"
    ids = [u.id for u in plan("overnight")]
    labels = [i for i in ids if i.startswith("labels/")]  # the last part: the Cu-Li models against DFT
    assert ids[-len(units) - len(labels):] == [u.id for u in units] + labels
    monkeypatch.setenv("QALLEGRO_RESULTS", str(tmp_path))
    unit = next(u for u in compare_units("smoke") if u.spec == {"scale": "smoke", "sampler": "tpe", "seed": 1})
    record = run_compare_unit(unit, tmp_path / "smoke" / "campaign" / unit.id)
    assert record["study"] == "compare-rmd17-benzene-allegro-tpe-s1" and record["n_complete"] == 4
    table = tmp_path / "smoke" / "hpo" / "compare-rmd17-benzene-allegro" / "hypervolume.csv"
    assert not table.exists(), "a unit (one sampler and seed) leaves the comparison's table to the page"
    import optuna

    journal = tmp_path / "smoke" / "hpo" / record["study"] / "journal.log"

    def trials() -> int:
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(journal)))
        return len(optuna.load_study(study_name=record["study"], storage=storage).trials)

    before, text = trials(), journal.read_bytes()
    hv = compare_samplers("smoke", samplers=["tpe"], seeds=[1], progress=False, plots=False)
    assert trials() == before == 4, "the page trained nothing more"
    assert journal.read_bytes() == text, "a finished study is read, not joined (its committed journal unchanged)"
    assert hv["hypervolume"].iloc[-1] == pytest.approx(record["hypervolume"]) and table.is_file()


def test_measured_campaign_time_schedules_the_recorded_seconds(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Four finished smoke units: their seconds (the CPU time where recorded, else the wall time of all attempts,
    at least the training's own) scheduled on two workers in the plan's order, computed by hand: sweeps 100 s and
    50 s at 0; the ablation runs wait for both sweeps, 40 s and 20 s (CPU; 35 s of wall) from 100 s: 140 s."""
    from qallegro.campaign.measured import CampaignTime, campaign_time, measured

    monkeypatch.setenv("QALLEGRO_RESULTS", str(tmp_path))
    root = tmp_path / "smoke" / "campaign"
    for uid, rec in {"sweep/rmd17-benzene/lr0.005-bs5": {"unit_wall_s": 100.0},
                     "sweep/rmd17-benzene/lr0.02-bs5": {"unit_wall_s": 30.0, "wall_s": 50.0},
                     "ablation/rmd17-benzene/allegro-s0": {"unit_wall_s": 40.0, "unit_attempts": 2},
                     "ablation/rmd17-benzene/mlp-s0": {"unit_wall_s": 35.0, "unit_cpu_s": 20.0}}.items():
        (root / uid).mkdir(parents=True)
        (root / uid / RECORD).write_text(json.dumps(rec))
    m = measured("smoke", workers=2)
    assert (m["done"], m["worker_s"], m["makespan_s"], m["interrupted"], m["cpu_timed"]) == (4, 210.0, 140.0, 1, 1)
    assert m["parts"] == {"sweep/rmd17-benzene": {"units": 2, "worker_s": 150.0},
                          "ablation/rmd17-benzene": {"units": 2, "worker_s": 60.0}}
    timed, parts = campaign_time("smoke", pages_s=60.0)
    assert timed.campaign_h == pytest.approx(140 / 3600) and "not comparable" in timed.verdict()
    assert list(parts["units"]) == [2, 2]
    done = CampaignTime(workers=2, units=4, done=4, interrupted=0, cpu_timed=4, worker_h=6.0, campaign_h=11.5,
                        pages_h=0.25, target_h=12.0)
    assert done.verdict() == "within the target of 12 hours"
    over = CampaignTime(**{**done.__dict__, "campaign_h": 12.0})
    assert over.verdict() == "over the target of 12 hours by 15 minutes"
    from qallegro.campaign.measured import hours_text

    assert [hours_text(h) for h in (0.25, 1 / 60, 0.001, 0.995, 1.0, 11.64, 11.97, 12.0)] == [
        "15 minutes", "1 minute", "less than a minute", "1 hour", "1 hour", "11.6 hours", "12 hours", "12 hours"]


@pytest.mark.parametrize("scale", ["quick", "overnight"])
def test_campaign_studies_initial_designs_are_at_most_a_quarter_of_their_trials(scale: str) -> None:
    """The HPO issue's sizing: guided proposals dominate every study the book shows (TPE and GP start with
    `n_startup_trials` independent trials, SAMO-COBRA with `n_init` (None: d + 1), NSGA-II with a random population)."""
    from qallegro import scales
    from qallegro.campaign.studies import study_units
    from qallegro.hpo import space as space_mod
    from qallegro.hpo.samplers import DEFAULTS

    last = {}
    for u in study_units(scale):
        last[u.id.rsplit("/", 1)[0]] = u
    hpo = scales.settings("hpo", scale)
    for u in last.values():
        sp = u.spec
        opts = {**DEFAULTS[sp["sampler"]], **(hpo.get("samplers") or {}).get(sp["sampler"], {}),
                **sp.get("sampler_options", {})}
        dim = len(space_mod.load_space(sp["variant"], scale, None, sp["dataset"]).distributions())
        initial = {"tpe": opts.get("n_startup_trials"), "gp": opts.get("n_startup_trials"),
                   "samo-cobra": opts.get("n_init") or dim + 1, "nsga2": opts.get("population_size"),
                   "random": 0}[sp["sampler"]]
        assert initial <= sp["n_trials"] / 4, (u.id, initial, sp["n_trials"])


def test_study_units_carry_their_datasets_sampler_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from qallegro.campaign import studies

    monkeypatch.setattr(studies, "_settings", lambda scale: {"studies": {
        "sampler": "tpe", "seed": 0, "slice": 10, "n_trials": 40, "n_trials_by_dataset": {"culi": 20},
        "sampler_options_by_dataset": {"culi": {"n_startup_trials": 5}},
        "pairs": [["culi", "qdi"], ["rmd17-benzene", "mlp"]]}})
    units = studies.study_units("overnight")
    assert {u.spec.get("sampler_options", {}).get("n_startup_trials") for u in units if "culi" in u.id} == {5}
    assert all("sampler_options" not in u.spec for u in units if "benzene" in u.id)


def test_a_cut_part_is_not_planned_and_named_where_its_evidence_would_be(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from qallegro.campaign import ablation
    from qallegro.campaign import plan as plan_mod
    from qallegro.campaign.verdicts import write_verdicts
    from qallegro.errors import CampaignError

    monkeypatch.setenv("QALLEGRO_RESULTS", str(tmp_path))
    now = plan_mod.cuts("overnight")
    assert "finals:culi" in now and not {"finals", "finals:qm9"} & set(now)
    real = ablation.settings("overnight")
    cut = {**real["cut"], "ablation:qm9": "cut for the budget", "compare": "cut too"}   # as overnight was first
    monkeypatch.setattr(ablation, "settings", lambda scale: {**real, "cut": cut, "order": [
        p for p in real["order"] if p not in cut]} if scale == "overnight" else real)
    assert plan_mod.cuts("overnight") == cut
    ids = [u.id for u in plan_mod.plan("overnight")]
    assert not any(i.startswith(("ablation/qm9/", "sweep/qm9/", "compare/")) for i in ids)
    # the finals of the uncut datasets only: rMD17's and QM9's (Allegro, Allegro+MLP, the QDI transfer) with 3
    # seeds, and their three final re-timings, after the studies
    finals = [i for i in ids if i.startswith(("final/", "retime/finals-"))]
    assert len(finals) == 30 and finals == [i for i in ids if not i.startswith("labels/")][-30:]
    assert sorted({i.split("/")[1] for i in finals if i.startswith("final/")}) == sorted(
        f"{ds}-{v}" for ds in ("rmd17-aspirin", "rmd17-benzene", "qm9") for v in ("allegro", "mlp", "qdi-transfer"))
    assert not any("culi" in i for i in finals)
    assert sorted({i.rsplit("/", 1)[1] for i in finals if i.startswith("final/")}) == ["s0", "s1", "s2"]
    assert [i for i in finals if i.startswith("retime/")] == ["retime/finals-rmd17-benzene",
                                                               "retime/finals-rmd17-aspirin", "retime/finals-qm9"]
    recs = [_record("culi", v, s, {"allegro": 0.05, "mlp": 0.048, "qdi": 0.047}[v] + 0.001 * s)
            for s in range(3) for v in ("allegro", "mlp", "qdi")]
    monkeypatch.setattr(plan_mod, "ablation_records", lambda scale, dataset=None: recs)
    rows, _ = write_verdicts("overnight")
    qm9 = [r for r in rows if r["dataset"] == "qm9"]
    assert qm9 and all(r["reason"] == f"not run at this scale: {cut['ablation:qm9']}" for r in qm9)
    assert all("percent" in r for r in rows if r["dataset"] == "culi" and r["split"] == "test")
    benzene = [r for r in rows if r["dataset"] == "rmd17-benzene"]   # planned, not yet run: no cut reason
    assert benzene and not any("not run at this scale" in r["reason"] for r in benzene)
    monkeypatch.setattr(ablation, "settings", lambda scale: {**real, "cut": {"studies": "a reason"}})
    with pytest.raises(CampaignError, match="both in `order` and in `cut`"):
        plan_mod.plan("overnight")


def test_cut_parts_in_words() -> None:
    from qallegro.campaign.words import cut_sentence, part

    assert part("ablation:qm9") == "the QM9 head ablation" and part("compare") == "the sampler comparison"
    assert part("finals:culi") == "the Cu-Li final runs"
    assert cut_sentence({}) == ""
    assert cut_sentence({"ablation:rmd17-aspirin": "cut for time", "compare": "cut too"}).endswith(
        ": the rMD17-aspirin head ablation, cut for time; the sampler comparison, cut too.")


def test_projected_time_takes_recorded_seconds_where_units_finished(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Two finished smoke units count at their recorded (CPU) seconds, every other unit at its estimate; all are
    scheduled together in the plan's order."""
    from qallegro.campaign.estimate import schedule
    from qallegro.campaign.measured import projected
    from qallegro.campaign.plan import plan

    monkeypatch.setenv("QALLEGRO_RESULTS", str(tmp_path))
    units = plan("smoke")
    estimated = {u.id: 10.0 for u in units}
    root = tmp_path / "smoke" / "campaign"
    finished = {units[0].id: {"unit_wall_s": 100.0, "unit_cpu_s": 80.0}, units[1].id: {"unit_wall_s": 30.0}}
    for uid, rec in finished.items():
        (root / uid).mkdir(parents=True)
        (root / uid / RECORD).write_text(json.dumps(rec))
    p = projected("smoke", estimated, workers=2)
    assert (p["done"], p["done_worker_s"], p["left_worker_s"]) == (2, 110.0, 10.0 * (len(units) - 2))
    merged = {**estimated, units[0].id: 80.0, units[1].id: 30.0}
    assert p["makespan_s"] == schedule(units, merged, 2)["makespan_s"] > schedule(units, estimated, 2)["makespan_s"]


def test_final_seeds_per_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    """`finals.seeds_by_dataset` gives a dataset (and the QDI transfer to it) its own seeds; seed by seed, the
    units keep the plan's priority (every dataset's first seed before any second one); `cut` `finals:NAME` drops
    a dataset's finals, `finals` all of them."""
    from qallegro.campaign import studies

    monkeypatch.setattr(studies, "_settings", lambda scale: {
        "studies": {"sampler": "tpe", "seed": 0, "slice": 10, "n_trials": 10,
                    "pairs": [["culi", "qdi"], ["rmd17-benzene", "allegro"]]},
        "finals": {"seeds": [0, 1, 2], "seeds_by_dataset": {"culi": [0]}, "rule": "lowest_error",
                   "transfer": ["rmd17-benzene"]}})
    ids = [u.id for u in studies.final_units("overnight")]
    assert ids == ["final/culi-qdi/s0", "final/rmd17-benzene-allegro/s0", "final/rmd17-benzene-qdi-transfer/s0",
                   "final/rmd17-benzene-allegro/s1", "final/rmd17-benzene-qdi-transfer/s1",
                   "final/rmd17-benzene-allegro/s2", "final/rmd17-benzene-qdi-transfer/s2"]
    settings = studies._settings("overnight")
    monkeypatch.setattr(studies, "_settings", lambda scale: {**settings, "cut": {"finals:culi": "cut for time"}})
    assert [u.id for u in studies.final_units("overnight")] == [i for i in ids if "culi" not in i]
    assert [u.id for u in studies.retime_final_units("overnight")] == ["retime/finals-rmd17-benzene"]
    monkeypatch.setattr(studies, "_settings", lambda scale: {**settings, "cut": {"finals": "cut for time"}})
    assert studies.final_units("overnight") == [] and studies.retime_final_units("overnight") == []
    cut = {"finals:culi": "Cu-Li's reason", "finals": "every dataset's reason"}
    assert studies.finals_cut(cut, "culi") == "Cu-Li's reason" and studies.finals_cut(cut, "qm9") == cut["finals"]
    assert studies.finals_cut({"finals:culi": "x"}, "qm9") is None


def test_training_units_use_the_workers_threads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sweep or ablation run trains with the worker's torch threads, not every CPU (`threads: null` would: two
    one-thread workers then oversubscribe the machine)."""
    import qallegro.training
    import torch
    from qallegro.campaign.ablation import run_training_unit
    from qallegro.campaign.plan import plan

    seen: list[int | None] = []

    class Stop(Exception):
        pass

    def fake_train(cfg, **kwargs):
        seen.append(cfg["threads"])
        raise Stop

    monkeypatch.setattr(qallegro.training, "train", fake_train)
    monkeypatch.delenv("QALLEGRO_THREADS", raising=False)
    unit = next(u for u in plan("smoke") if u.id.startswith("sweep/"))
    folder = tmp_path.joinpath(*Path(unit.id).parts)
    previous = torch.get_num_threads()
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            with pytest.raises(Stop):
                run_training_unit(unit, folder)
    finally:
        torch.set_num_threads(previous)
    assert seen == [1, 2]
