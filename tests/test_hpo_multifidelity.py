"""MO-ASHA (rungs, non-dominated rank + crowding selection) and the learning-curve table replay."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from qallegro.hpo.lctable import (
    REFERENCE,
    Table,
    compare_on_table,
    compute_to_reach,
    front_indices,
    oracle_epochs,
    replay_asha,
    replay_sampler,
    successive_halving,
    summarise,
)
from qallegro.hpo.multifidelity import crowding_distance, promoted, rungs, selection_order


def test_rungs() -> None:
    assert rungs(1, 27, 3) == [1, 3, 9, 27]
    assert rungs(1, 12, 3) == [1, 3, 9, 12]
    assert rungs(2, 2, 2) == [2]
    with pytest.raises(ValueError, match="eta"):
        rungs(1, 10, 1)


def _brute_ranks(v: np.ndarray) -> np.ndarray:
    rank = np.zeros(len(v), int)
    left = set(range(len(v)))
    r = 0
    while left:
        front = {i for i in left if not any(np.all(v[j] <= v[i]) and np.any(v[j] < v[i]) for j in left)}
        for i in front:
            rank[i] = r
        left -= front
        r += 1
    return rank


@pytest.mark.parametrize("seed", range(5))
def test_selection_order_is_rank_then_crowding(seed: int) -> None:
    rng = np.random.default_rng(seed)
    v = rng.integers(0, 8, (25, 2)).astype(float) + rng.random((25, 2)) * 0.01
    order = selection_order(v)
    ranks = _brute_ranks(v)
    assert np.all(np.diff(ranks[order]) >= 0)  # lower rank first
    for r in np.unique(ranks):
        members = np.flatnonzero(ranks == r)
        crowd = crowding_distance(v[members])
        got = [int(np.flatnonzero(members == i)[0]) for i in order if ranks[i] == r]
        c = crowd[got]
        assert np.all(c[:-1] >= c[1:])  # larger crowding distance first within a rank


def test_crowding_distance_by_hand() -> None:
    v = np.array([[0.0, 4.0], [1.0, 2.0], [3.0, 1.0], [4.0, 0.0]])
    d = crowding_distance(v)
    assert np.isinf(d[0]) and np.isinf(d[3])
    assert d[1] == pytest.approx(3 / 4 + 3 / 4) and d[2] == pytest.approx(3 / 4 + 2 / 4)


def test_promotion_keeps_the_top_third() -> None:
    v = np.array([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0], [5.0, 5.0], [6.0, 6.0]])
    assert [promoted(v, i, 3) for i in range(6)] == [True, True, False, False, False, False]
    assert promoted(v[:1], 0, 3)  # the first at a rung goes on (asynchronous: no waiting)
    assert not promoted(v[:2][::-1], 0, 3) and promoted(v[:2][::-1], 1, 3)


def synthetic_table(path: Path, n: int = 60, epochs: int = 9, seed: int = 0) -> Path:
    """Learning curves error(e) = a + b / e of configurations x in [0, 1]^3: the final error a falls and the
    inference time rises with x1 (a trade-off); early epochs rank configurations roughly as the last one does
    (b grows with a, plus noise)."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 3))
    a = 0.1 + 0.5 * (x[:, 0] - 0.3) ** 2 + 0.5 * (1 - x[:, 1]) ** 2 + 0.2 * x[:, 2]
    cost = 0.1 + x[:, 1] + 0.1 * x[:, 2]
    b = 2 * a + 0.2 * rng.random(n)
    rows = [{"config": i, "epoch": e, "error": a[i] + b[i] / e, "inference_s": cost[i], "epoch_s": 1.0,
             "params": json.dumps({"x0": float(x[i, 0]), "x1": float(x[i, 1]), "x2": float(x[i, 2])})}
            for i, e in itertools.product(range(n), range(1, epochs + 1))]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_table_reads_back_and_rejects_other_files(tmp_path: Path) -> None:
    t = Table.read(synthetic_table(tmp_path / "table.csv", n=7, epochs=4))
    assert t.errors.shape == (7, 4) and len(t.params) == 7 and t.epochs == 4
    assert np.all(np.diff(t.errors, axis=1) < 0)
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match=r"bad.csv: not a learning-curve table"):
        Table.read(tmp_path / "bad.csv")


def test_replays_respect_budget_and_use_distinct_configurations(tmp_path: Path) -> None:
    t = Table.read(synthetic_table(tmp_path / "table.csv"))
    curve = replay_sampler(t, "samo-cobra", 0, budget=9 * 12, options={"batch_size": 1, "n_init": 4})
    assert len(curve) == 12 and curve[-1][0] == 108
    assert np.all(np.diff([h for _, h in curve]) >= 0)
    asha = replay_asha(t, 0, budget=100, eta=3)[0]
    assert asha[-1][0] <= 100 and np.all(np.diff([e for e, _ in asha]) > 0)
    # the best hypervolume of the whole table bounds every replay
    best = replay_sampler(t, "random", 0, budget=9 * 60)[-1][1]
    assert max(h for _, h in curve + asha) <= best + 1e-12


def test_mo_asha_trains_better_configurations_to_the_end(tmp_path: Path) -> None:
    """Successive halving sees many configurations at one epoch and trains on those whose early values rank well:
    the ones it trains to the last epoch rank better (non-dominated rank in the whole table) than the table's
    average, which is what random full-fidelity search draws."""
    import moocore

    t = Table.read(synthetic_table(tmp_path / "table.csv", n=300))
    rank = moocore.pareto_rank(t.final())
    chosen = [i for seed in range(10) for i in replay_asha(t, seed, budget=200, eta=3)[1]]
    assert len(chosen) >= 30
    assert np.mean(rank[chosen]) < 0.6 * np.mean(rank)


def test_table_comparison_summary(tmp_path: Path) -> None:
    t = Table.read(synthetic_table(tmp_path / "table.csv", n=80))
    df = compare_on_table(t, methods=["random", "tpe", "mo-asha"], seeds=3, budget=90)
    summary = summarise(df, np.array([9, 45, 90]))
    assert set(summary["method"]) == {"random", "tpe", "mo-asha"} and len(summary) == 9
    assert np.all(summary["q25"] <= summary["median"]) and np.all(summary["median"] <= summary["q75"])
    for _, g in summary.groupby("method"):
        assert np.all(np.diff(g["median"]) >= 0)
    top = float(summary["median"].max())
    assert compute_to_reach(summary, summary.loc[summary["median"].idxmax(), "method"], top) is not None
    assert compute_to_reach(summary, "random", top + 1.0) is None


@pytest.mark.slow
def test_mo_asha_study_resumes_after_sigkill(tmp_path: Path) -> None:
    """`qallegro hpo run --pruner mo-asha` at smoke scale (real training, rungs 1, 2, 4 epochs), killed with
    SIGKILL once its first trial has passed rung 2 (it trains on to 4 epochs); the same command then fails the
    stale trial, retries it in its folder from the checkpoint with the rung values and promotions it had
    recorded, and finishes the study."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import optuna
    from qallegro.hpo.study import attempt_dir

    env = {**os.environ, "QALLEGRO_RESULTS": str(tmp_path)}
    cmd = [sys.executable, "-m", "qallegro", "hpo", "run", "--dataset", "rmd17-benzene", "--sampler", "random",
           "--scale", "smoke", "--pruner", "mo-asha", "--trials", "4", "--heartbeat-interval", "1",
           "--grace-period", "4", "--no-plots", "--no-progress"]
    folder = tmp_path / "smoke" / "hpo" / "rmd17-benzene-allegro-random-s0"
    victim = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = folder / "journal.log"
    end = time.time() + 300
    while not (journal.exists() and "mf:passed:2" in journal.read_text()):  # trial 0 passed rung 2
        assert time.time() < end and victim.poll() is None, "trial 0 never passed rung 2"
        time.sleep(0.02)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    study = optuna.load_study(study_name=folder.name, storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / "journal.log"))))
    states = [t.state.name for t in study.trials]
    assert states.count("FAIL") == 1 and states.count("COMPLETE") + states.count("PRUNED") == 4
    retry = next(t for t in study.trials if t.system_attrs.get("failed_trial") == 0)
    # the first attempt was first at rungs 1 and 2 (promoted); the retry does not decide them again, against the
    # trials the rescuer ran meanwhile, and the last rung has no decision
    assert retry.user_attrs["mf:passed:1"] and retry.user_attrs["mf:passed:2"]
    assert retry.state.name == "COMPLETE"
    assert {"mf:rung:1", "mf:rung:2", "mf:rung:4"} <= set(retry.user_attrs)
    # the retry runs in its own folder, seeded with a copy of the killed attempt's (`hpo.study.attempt_dir`)
    epochs = pd.read_csv(attempt_dir(folder, 0, retry.number) / "epochs.csv")["epoch"].tolist()
    assert epochs == [1, 2, 3, 4]  # resumed from the checkpoint, every epoch once
    assert sorted(p.name for p in (folder / "trials").iterdir())[:2] == ["00000", f"00000-{retry.number:05d}"]
    assert len(list((folder / "trials").iterdir())) == 5  # 4 trials and the killed attempt


def test_asha_reached_front_counts_every_configuration(tmp_path: Path) -> None:
    t = Table.read(synthetic_table(tmp_path / "table.csv", n=50))
    full, chosen = replay_asha(t, 1, budget=60, eta=3, front="full")
    reached, same = replay_asha(t, 1, budget=60, eta=3, front="reached")
    assert chosen == same and [e for e, _ in full] == [e for e, _ in reached]
    # every configuration trained to the end is in the reached set at its last-epoch values, so that front's
    # hypervolume is at least the full-fidelity one, at every step
    assert all(r >= f - 1e-12 for (_, f), (_, r) in zip(full, reached, strict=True))
    assert reached[-1][1] > full[-1][1]
    with pytest.raises(ValueError, match="front must be"):
        replay_asha(t, 0, budget=10, front="all")


def synthetic_mf_objective(overrides: dict, ctx):
    """An analytic multi-fidelity objective (test hook, selected with --objective): rungs 1, 3, 9 "epochs",
    error a + b / epochs from the parameters, a short sleep per rung so that two workers overlap."""
    import os
    import time

    import optuna
    from qallegro.hpo.multifidelity import should_continue
    from qallegro.hpo.objective import TrialResult

    a = (overrides["r_max"] - 6.0) ** 2 + 10 * overrides["learning_rate"]
    cost = overrides["edge_eng_mlp_latent_dimensions"][0] * overrides["batch_size"] / overrides["r_max"]
    for r in (1, 3, 9):
        time.sleep(float(os.environ.get("QALLEGRO_TEST_TRIAL_SLEEP", "0.2")))
        values = (a + 1.0 / r, cost)
        if r < 9 and not should_continue(ctx.trial.study, ctx.trial, r, values, 3):
            raise optuna.TrialPruned(f"stopped at rung {r}")
    ctx.trial.set_user_attr("mf:rung:9", list(values))
    return TrialResult(values, {})


def test_two_workers_share_mo_asha_rungs(tmp_path: Path) -> None:
    """Two worker processes on one journal-file study with an MO-ASHA objective: the study ends with exactly its
    target of finished (complete or pruned) trials, both workers ran trials, the rung values are in the shared
    study, complete trials passed every rung and pruned ones stopped at one."""
    import os
    import subprocess
    import sys

    import optuna
    from qallegro.hpo.study import StudySpec, counts, create_or_resume

    tests = Path(__file__).resolve().parent
    env = {**os.environ, "QALLEGRO_RESULTS": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(tests), os.environ.get("PYTHONPATH", "")])}
    os.environ["QALLEGRO_RESULTS"] = str(tmp_path)
    try:
        op = create_or_resume(StudySpec(dataset="rmd17-benzene", sampler="random", scale="smoke", n_trials=14,
                                        objective="test_hpo_multifidelity:synthetic_mf_objective",
                                        settings={"heartbeat": {"interval": 1, "grace_period": 5, "poll": 0.3}}))
    finally:
        del os.environ["QALLEGRO_RESULTS"]
    args = [sys.executable, "-m", "qallegro", "hpo", "worker", "--storage", op.storage.url, "--study", op.name,
            "--no-progress"]
    workers = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    outs = [w.communicate(timeout=300)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outs
    study = optuna.load_study(study_name=op.name, storage=op.storage.storage)
    c = counts(study)
    assert c["COMPLETE"] + c["PRUNED"] == 14 and c["RUNNING"] == 0 and c["PRUNED"] > 0
    assert len({t.user_attrs["worker"] for t in study.trials}) == 2
    for t in study.trials:
        rungs_seen = [r for r in (1, 3, 9) if f"mf:rung:{r}" in t.user_attrs]
        if t.state.name == "COMPLETE":
            assert rungs_seen == [1, 3, 9] and t.user_attrs["mf:rung:9"] == pytest.approx(t.values)
        else:
            assert rungs_seen in ([1], [1, 3])
    at_1 = [t for t in study.trials if "mf:rung:1" in t.user_attrs]
    assert len(at_1) == 14 and 1 <= sum("mf:rung:3" in t.user_attrs for t in at_1) < 14


def test_table_configs_and_replay_on_the_allegro_search_space() -> None:
    """A table over the real Allegro search space (integers, a log-scaled learning rate): its configurations lie
    in the space, and every sampler replays its 12 full-fidelity evaluations on them."""
    from qallegro.hpo.lctable import table_configs
    from qallegro.hpo.space import load_space

    space = load_space("allegro", "quick").distributions()
    configs = table_configs("allegro", "quick", 40, seed=1)
    assert len({json.dumps(c, sort_keys=True) for c in configs}) == 40
    for c in configs:
        assert set(c) == set(space) and all(space[k]._contains(space[k].to_internal_repr(v)) for k, v in c.items())
    rng = np.random.default_rng(0)
    lr = np.array([c["learning_rate"] for c in configs])
    width = np.array([2.0 ** c["edge_mlp_width_log2"] for c in configs])
    a = np.abs(np.log(lr / 5e-3)) + 0.1 * rng.random(40)
    table = Table(configs, a[:, None] + 1.0 / np.arange(1, 5)[None, :], width * configs[0]["num_layers"], space)
    for sampler in ("random", "nsga2", "tpe", "samo-cobra"):
        curve = replay_sampler(table, sampler, 0, budget=4 * 12,
                               options={"samo-cobra": {"batch_size": 2, "n_init": 3}, "nsga2": {"population_size": 4},
                                        "tpe": {"n_startup_trials": 3}}.get(sampler))
        assert len(curve) == 12 and curve[-1][1] > 0


def test_build_table_at_smoke_scale_and_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Real training: two smoke configurations x 2 epochs; the table holds their epochs.csv validation errors;
    a second build trains nothing new (every configuration's row is kept) and adds the third."""
    from qallegro.hpo.lctable import build_table

    monkeypatch.setenv("QALLEGRO_RESULTS", str(tmp_path / "results"))
    kw = {"n_configs": 3, "epochs": 2, "scale": "smoke", "progress": False}
    df = build_table("rmd17-benzene", "allegro", tmp_path / "t", limit=2, **kw)
    assert sorted(df["config"].unique()) == [0, 1] and len(df) == 4
    runs = tmp_path / "results" / "smoke" / "lctable" / "rmd17-benzene-allegro-s0-e2"
    curve = pd.read_csv(runs / "0001" / "run" / "epochs.csv")
    assert df[df["config"] == 1]["error"].tolist() == pytest.approx(curve["val_f_mae"].tolist())
    stamp = (runs / "0000" / "row.json").stat().st_mtime_ns
    df = build_table("rmd17-benzene", "allegro", tmp_path / "t", **kw)
    assert sorted(df["config"].unique()) == [0, 1, 2] and (runs / "0000" / "row.json").stat().st_mtime_ns == stamp
    table = Table.read(tmp_path / "t" / "table.csv")
    assert table.errors.shape == (3, 2) and table.space is not None and set(table.space) == set(table.params[0])


def test_table_reads_the_space_stored_with_it(tmp_path: Path) -> None:
    """A table replays in the space its configurations were drawn from (stored in spec.json by the build), not in
    whatever the scale's preset says today; a spec without it falls back to the preset."""
    from qallegro.hpo.space import load_space

    path = synthetic_table(tmp_path / "table.csv", n=5)
    spec = {"dataset": "rmd17-benzene", "variant": "allegro", "scale": "quick"}
    (tmp_path / "spec.json").write_text(json.dumps({**spec, "space": {"r_max": {"low": 5.0, "high": 5.5}}}))
    stored = Table.read(path).space
    assert (stored["r_max"].low, stored["r_max"].high) == (5.0, 5.5)
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    preset = load_space("allegro", "quick", dataset="rmd17-benzene")["r_max"]
    assert (Table.read(path).space["r_max"].low, Table.read(path).space["r_max"].high) == (preset.low, preset.high)


def _hand_table() -> Table:
    """Six configurations, four epochs: (error at the last epoch, inference) = A (1, 4), B (2, 2), C (4, 1) on the
    front, D (3, 3) and E (5, 5) behind it, F (6, 6) last; at epoch 1, D looks best and C worst."""
    last = np.array([1.0, 2.0, 4.0, 3.0, 5.0, 6.0])
    first = np.array([5.0, 4.0, 9.0, 1.0, 6.0, 7.0])
    errors = np.stack([first, (first + last) / 2, (first + 3 * last) / 4, last], axis=1)
    return Table([{"x": i} for i in range(6)], errors, np.array([4.0, 2.0, 1.0, 3.0, 5.0, 6.0]))


def test_front_and_oracle_by_hand() -> None:
    t = _hand_table()
    assert front_indices(t) == [0, 1, 2]
    # normalised by the last-epoch span (error 1..6, time 1..6): A (0, 0.6), B (0.2, 0.2), C (0.6, 0)
    r = REFERENCE[0]
    hv_b = (r - 0.2) ** 2
    hv_ab = (r - 0.0) * (r - 0.6) + (r - 0.2) * (0.6 - 0.2)
    assert oracle_epochs(t, hv_b) == {"configs": 1, "epochs": 4, "hypervolume": pytest.approx(hv_b)}
    assert oracle_epochs(t, hv_b + 1e-6) == {"configs": 2, "epochs": 8, "hypervolume": pytest.approx(hv_ab)}
    assert oracle_epochs(t, 2.0)["configs"] is None


def test_synchronous_successive_halving_by_hand() -> None:
    """Rungs 1, 2, 4 (eta 2): all six at epoch 1 (6 epochs), the best three by rank then crowding at epoch 1
    train to 2 (3 more), the best one of those to 4 (2 more)."""
    t = _hand_table()
    out = successive_halving(t, 1, 2)
    assert out["rungs"] == [1, 2, 4] and out["epochs"] == 6 + 3 * 1 + 1 * 2 and out["trained"] == 1
    # epoch 1 (error, time): A (5, 4), B (4, 2), C (9, 1), D (1, 3), E (6, 5), F (7, 6): rank 0 is D, B, C, with
    # the extremes C and D first (infinite crowding; ties by position: C). Epoch 2: C (6.5, 1), D (2, 3), B (3, 2),
    # all rank 0; the extremes C and D tie again and C, first in the rung, trains to the end: (0.6, 0) normalised.
    r = REFERENCE[0]
    assert out["hypervolume"] == pytest.approx((r - 0.6) * (r - 0.0))
