"""Study machinery with a fast synthetic objective: target counting, results, resume, Ctrl-C, SIGKILL.

Test hook: `synthetic_objective` below is selected like any custom objective (`--objective
test_hpo_study:synthetic_objective`, with `tests/` on PYTHONPATH); it sleeps `QALLEGRO_TEST_TRIAL_SLEEP`
seconds and logs every attempt to `<trial dir>/attempts.log`, so the tests can see what ran where and how often.
No production code path knows about it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from qallegro.hpo.objective import TrialContext, TrialResult
from qallegro.hpo.study import StudySpec, counts, create_or_resume, run, run_worker

TESTS = Path(__file__).resolve().parent
SYNTHETIC = "test_hpo_study:synthetic_objective"
FAST_HEARTBEAT = {"heartbeat": {"interval": 1, "grace_period": 3, "poll": 0.3}}


def synthetic_objective(overrides: dict, ctx: TrialContext) -> TrialResult:
    """A cheap analytic objective of the Allegro parameters (see the module docstring)."""
    ctx.trial_dir.mkdir(parents=True, exist_ok=True)
    log = ctx.trial_dir / "attempts.log"
    with open(log, "a") as fh:
        fh.write(f"start {os.getpid()}\n")
    if os.environ.get("QALLEGRO_TEST_FAIL"):
        raise ValueError("synthetic failure")
    time.sleep(float(os.environ.get("QALLEGRO_TEST_TRIAL_SLEEP", "0")))
    err = (overrides["r_max"] - 6.0) ** 2 + 0.01 * overrides["num_layers"] + 10 * overrides["learning_rate"]
    cost = overrides["edge_eng_mlp_latent_dimensions"][0] * overrides["batch_size"] / overrides["r_max"]
    with open(log, "a") as fh:
        fh.write(f"done {os.getpid()}\n")
    return TrialResult((err, cost), {"synthetic": True})


def attempts(folder: Path) -> dict[str, list[str]]:
    """Lines of attempts.log per trial folder."""
    return {d.name: (d / "attempts.log").read_text().split("\n")[:-1]
            for d in sorted((folder / "trials").iterdir()) if (d / "attempts.log").exists()}


def spec(**kw) -> StudySpec:
    base = {"dataset": "rmd17-benzene", "variant": "allegro", "sampler": "random", "scale": "smoke",
            "n_trials": 5, "objective": SYNTHETIC, "settings": FAST_HEARTBEAT}
    base.update(kw)
    return StudySpec(**base)


def hpo(args: list[str], results: Path, sleep: float = 0.0, **popen) -> subprocess.Popen:
    env = {**os.environ, "QALLEGRO_RESULTS": str(results), "QALLEGRO_TEST_TRIAL_SLEEP": str(sleep),
           "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    return subprocess.Popen([sys.executable, "-m", "qallegro", "hpo", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, **popen)


def wait_for(cond, timeout: float = 60.0, what: str = "condition") -> None:
    end = time.time() + timeout
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def started_by(folder: Path, name: str, pid: int) -> bool:
    log = folder / "trials" / name / "attempts.log"
    return log.exists() and f"start {pid}" in log.read_text()


def test_run_reaches_target_and_writes_results(results_dir: Path) -> None:
    out = run(spec(n_trials=6, warm_start=True), progress=False)
    op = out["study"]
    assert counts(op.study)["COMPLETE"] == 6 and len(op.study.trials) == 6
    # the paper's benzene Allegro row (Table 1) is the first trial, clipped into the smoke space
    first = op.study.trials[0]
    assert first.user_attrs["warm_start"] == "paper allegro rmd17-benzene"
    assert first.params["r_max"] == 5.5 and first.params["num_layers"] == 3 and first.params["learning_rate"] == 1e-3
    notes = op.study.user_attrs["warm_start_notes"]
    assert any(n.startswith("paper allegro row rmd17-benzene: r_max: 12.0 -> 5.5") for n in notes)
    paths = out["paths"]
    for key in ("trials", "pareto", "hypervolume", "chosen", "pareto_png", "hypervolume_png"):
        assert paths[key].exists() and paths[key].stat().st_size > 0, key
    trials = pd.read_csv(paths["trials"])
    assert (trials["state"] == "COMPLETE").sum() == 6
    chosen = json.loads(paths["chosen"].read_text())
    front = trials[trials["pareto"]]
    assert chosen["chosen"]["lowest_error"]["val_f_mae"] == pytest.approx(front["val_f_mae"].min())
    assert chosen["chosen"]["knee"]["number"] in set(front["number"])
    hv = pd.read_csv(paths["hypervolume"])
    assert len(hv) == 6 and hv["hypervolume"].is_monotonic_increasing
    for t in op.study.trials:  # every trial keeps its folder, config and values
        record = json.loads((Path(t.user_attrs["trial_dir"]) / "trial.json").read_text())
        assert record["values"] == pytest.approx(t.values) and record["config"] == t.user_attrs["config"]
    assert all(lines == [lines[0], lines[1]] and lines[0].startswith("start") and lines[1].startswith("done")
               for lines in attempts(op.folder).values())


def test_rerun_resumes_and_never_recomputes(results_dir: Path) -> None:
    op = run(spec(), progress=False, plots=False)["study"]
    before = attempts(op.folder)
    op = run(spec(), progress=False, plots=False)["study"]  # the same command again: nothing to do
    assert attempts(op.folder) == before and counts(op.study)["COMPLETE"] == 5
    op = run(spec(n_trials=7), progress=False, plots=False)["study"]  # a larger target: only the difference
    after = attempts(op.folder)
    assert counts(op.study)["COMPLETE"] == 7 and len(after) == 7
    assert all(after[k] == v for k, v in before.items())
    with pytest.raises(ValueError, match="exists with dataset"):
        create_or_resume(spec(dataset="rmd17-aspirin", name=op.name))


def test_same_seed_same_study(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    params = []
    for sub in ("a", "b"):
        monkeypatch.setenv("QALLEGRO_RESULTS", str(tmp_path / sub))
        op = run(spec(sampler="tpe", n_trials=6), progress=False, plots=False)["study"]
        params.append([t.params for t in op.study.trials])
    assert params[0] == params[1]


def test_failing_objective_stops_with_a_clear_error(results_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QALLEGRO_TEST_FAIL", "1")
    op = create_or_resume(spec())
    with pytest.raises(RuntimeError, match="2 trials in a row failed"):
        run_worker(op, progress=False)
    failed = [t for t in op.study.trials if t.state.name == "FAIL"]
    assert len(failed) == 2 and all("synthetic failure" in t.user_attrs["error"] for t in failed)


def test_ctrl_c_stops_cleanly_and_the_same_command_resumes(results_dir: Path) -> None:
    args = ["run", "--dataset", "rmd17-benzene", "--variant", "mlp", "--sampler", "tpe", "--scale", "smoke",
            "--trials", "4", "--objective", SYNTHETIC, "--no-plots", "--no-progress"]
    folder = results_dir / "smoke" / "hpo" / "rmd17-benzene-mlp-tpe-s0"
    p = hpo(args, results_dir, sleep=1.0)
    wait_for(lambda: started_by(folder, "00001", p.pid), what="trial 1 to start")
    p.send_signal(signal.SIGINT)
    out, _ = p.communicate(timeout=60)
    assert p.returncode == 130, out
    assert "interrupted" in out
    p = hpo(args, results_dir, sleep=0.0)
    out, _ = p.communicate(timeout=120)
    assert p.returncode == 0, out
    op = create_or_resume(StudySpec(dataset="rmd17-benzene", variant="mlp", sampler="tpe", scale="smoke",
                                    n_trials=4, objective=SYNTHETIC))
    c = counts(op.study)
    assert (c["COMPLETE"], c["FAIL"]) == (4, 1)
    failed = next(t for t in op.study.trials if t.state.name == "FAIL")
    assert failed.number == 1 and failed.user_attrs["interrupted"]
    retry = next(t for t in op.study.trials if t.system_attrs.get("failed_trial") == 1)
    assert retry.state.name == "COMPLETE" and retry.params == failed.params
    log = attempts(folder)
    # trial 2 is the retry of trial 1, in its own folder, which starts from a copy of the first attempt's
    assert sorted(log) == ["00000", "00001", "00001-00002", "00003", "00004"]
    assert [line.split()[0] for line in log["00001"]] == ["start"]
    assert [line.split()[0] for line in log["00001-00002"]] == ["start", "start", "done"]
    assert retry.user_attrs["trial_dir"] == str(folder.resolve() / "trials" / "00001-00002") or \
        Path(retry.user_attrs["trial_dir"]).name == "00001-00002"
    assert sum(line.startswith("done") for v in log.values() for line in v) == 4


def test_sigkill_mid_trial_loses_only_that_trial_file_storage(results_dir: Path) -> None:
    op = create_or_resume(spec(n_trials=4, sampler="samo-cobra"))
    args = ["worker", "--storage", op.storage.url, "--study", op.name, "--no-progress"]
    victim = hpo(args, results_dir, sleep=1.0)
    wait_for(lambda: started_by(op.folder, "00001", victim.pid), what="trial 1 to start")
    victim.kill()  # SIGKILL: no handler runs, the trial stays RUNNING until its heartbeat goes stale
    victim.communicate(timeout=30)
    rescuer = hpo(args, results_dir, sleep=0.2)
    out, _ = rescuer.communicate(timeout=120)
    assert rescuer.returncode == 0, out
    trials = op.study.get_trials()
    c = counts(op.study)
    assert (c["COMPLETE"], c["FAIL"], c["RUNNING"], c["WAITING"]) == (4, 1, 0, 0)
    failed = next(t for t in trials if t.state.name == "FAIL")
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == failed.number)
    assert failed.number == 1 and retry.state.name == "COMPLETE" and retry.params == failed.params
    slots = [tuple(t.system_attrs["samo_cobra:slot"]) for t in trials if "failed_trial" not in t.system_attrs]
    assert len(slots) == len(set(slots)) == 4  # the two workers shared the sampler's generations
    log = attempts(op.folder)
    assert sorted(log) == ["00000", "00001", f"00001-{retry.number:05d}", "00003", "00004"]
    assert log["00001"] == [f"start {victim.pid}"]  # the killed attempt's folder is left as it was
    assert log[f"00001-{retry.number:05d}"][-1] == f"done {rescuer.pid}"
    assert sum(line.startswith("done") for v in log.values() for line in v) == 4


def test_sampler_comparison_machinery(results_dir: Path) -> None:
    from qallegro.hpo.experiment import REFERENCE, compare_samplers

    df = compare_samplers("smoke", samplers=["random", "samo-cobra"], seeds=[0, 1], n_trials=4,
                          objective=SYNTHETIC, progress=False)
    assert len(df) == 2 * 2 * 4
    best = REFERENCE[0] * REFERENCE[1]
    for _, run_df in df.groupby(["sampler", "seed"]):
        hv = run_df.sort_values("n_complete")["hypervolume"].to_numpy()
        assert (hv[1:] >= hv[:-1]).all() and 0 < hv[-1] <= best
    folder = results_dir / "smoke" / "hpo" / "compare-rmd17-benzene-allegro"
    assert (folder / "hypervolume.csv").exists() and (folder / "hypervolume.png").exists()
    again = compare_samplers("smoke", samplers=["random", "samo-cobra"], seeds=[0, 1], n_trials=4,
                             objective=SYNTHETIC, progress=False, plots=False)  # resumes: nothing recomputed
    pd.testing.assert_frame_equal(df, again)


def test_trial_budget_and_logs_per_study(results_dir: Path) -> None:
    from qallegro import scales
    from qallegro.hpo.objective import trial_config
    from qallegro.training import resolve_config

    paper = scales.settings("hpo", "paper")
    cfg = trial_config("qm9", "allegro", "paper", {"r_max": 6.0}, paper, threads=1)
    assert (cfg["max_wall_s"], cfg["r_max"], cfg["threads"]) == (1944.0, 6.0, 1)  # the paper's 32.4 min on QM9
    final = trial_config("qm9", "allegro", "paper", {}, paper, final=True)
    assert final["max_wall_s"] == resolve_config("qm9", "allegro", "paper")["max_wall_s"]
    a = run(spec(name="log-a", n_trials=2), progress=False, plots=False)["study"]
    b = run(spec(name="log-b", n_trials=2), progress=False, plots=False)["study"]
    # each study's log holds its own two trials only (no file handler left behind by the first study)
    assert (a.folder / "hpo.log").read_text().count(" starts: ") == 2
    assert (b.folder / "hpo.log").read_text().count(" starts: ") == 2


def orphan_is_retried_at_once(results: Path, storage: str | None, name: str) -> None:
    """A worker killed between asking for a trial and naming itself leaves a running trial with no worker and no
    heartbeat (PostgreSQL never finds it stale: the fault-injection hang). The next worker fails and retries it at
    once, long before any grace period."""
    slow = {"heartbeat": {"interval": 1, "grace_period": 600, "poll": 0.3}}
    op = create_or_resume(spec(name=name, storage=storage, n_trials=3, settings=slow))
    orphan = op.study.ask()  # asked outside a worker: what a worker killed at that moment leaves behind
    p = hpo(["worker", "--storage", op.storage.url, "--study", name, "--no-progress"], results)
    try:
        out, _ = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, out
    c = counts(op.study)
    assert (c["COMPLETE"], c["FAIL"], c["RUNNING"], c["WAITING"]) == (3, 1, 0, 0), c
    assert op.study.trials[orphan.number].state.name == "FAIL"
    assert any(t.system_attrs.get("failed_trial") == orphan.number for t in op.study.get_trials())


def test_a_trial_orphaned_before_its_worker_named_itself_is_retried(results_dir: Path) -> None:
    orphan_is_retried_at_once(results_dir, None, "orphan")
