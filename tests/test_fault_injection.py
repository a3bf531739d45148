"""Fault injection (issue 19): kill -9 training, an HPO study (journal and PostgreSQL) and the pipeline at random
points, several times each, then let them finish; assert that no finished result is lost, no file is corrupt and
no trial runs twice. Seeded kill times; each test prints its figures (the README's reliability section quotes
them). Slow (about 4 minutes): not in `make test`, run by `.ci/run`."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest
import yaml
from qallegro.hpo.study import create_or_resume, load
from qallegro.pipeline.notebooks import Notebook
from qallegro.pipeline.reproduce import plan, reproduce
from qallegro.training.checkpoint import load_checkpoint
from test_hpo_postgres import postgres_url  # noqa: F401  (the PostgreSQL server fixture)
from test_hpo_study import TESTS, hpo, spec
from test_pipeline import _git_repo, write_nb
from test_training_mechanics import (
    assert_same_weights,
    final_weights,
    make_config,
    make_dataset,
    read_rows,
    strip_wall,
)

pytestmark = pytest.mark.slow
KILLS = 6
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}


def _run_with_kills(start, rng: random.Random, delays: tuple[float, float], check, kills: int = KILLS,
                    ready=lambda: True) -> int:
    """Start the processes, wait until `ready()`, kill -9 them after a further random delay, `check` the files,
    repeat until they were killed `kills` times (or finished on their own); then let them finish (exit 0).
    Returns the number of kills."""
    done = 0
    while True:
        procs = start()
        if done >= kills:
            for p in procs:
                out, _ = p.communicate(timeout=300)
                assert p.returncode == 0, out
            return done
        end = time.time() + 120
        while not ready() and time.time() < end and any(p.poll() is None for p in procs):
            time.sleep(0.1)
        time.sleep(rng.uniform(*delays))
        if all(p.poll() is not None for p in procs):  # finished before the kill
            for p in procs:
                out, _ = p.communicate()
                assert p.returncode == 0, out
            return done
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.communicate(timeout=60)
        done += 1
        check()


def test_training_survives_random_kills(tmp_path: Path) -> None:
    from qallegro.training import train

    data = make_dataset(tmp_path / "mols.extxyz")
    cfg = make_config(data, max_epochs=100, checkpoint_interval_s=0.5)
    reference = tmp_path / "reference"
    train(cfg, run_dir=reference, progress=False)
    run = tmp_path / "killed"
    (tmp_path / "cfg.yaml").write_text(yaml.safe_dump(cfg))
    script = (f"import yaml; from qallegro.training import train\n"
              f"train(yaml.safe_load(open({str(tmp_path / 'cfg.yaml')!r})), run_dir={str(run)!r}, resume=True, "
              "progress=False)\n")

    def check() -> None:  # whatever the kill interrupted, the files on disk load
        if (run / "checkpoint.pt").exists():
            load_checkpoint(run / "checkpoint.pt")
        if (run / "epochs.csv").exists():
            read_rows(run / "epochs.csv")

    started_at = [0.0]

    def start() -> list[subprocess.Popen]:
        started_at[0] = time.time()
        return [subprocess.Popen([sys.executable, "-c", script], env=ENV, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)]

    def training() -> bool:  # this process has written a checkpoint: it trains (kills are timed from here, so
        ckpt = run / "checkpoint.pt"  # that their number does not depend on the machine's speed)
        return ckpt.exists() and ckpt.stat().st_mtime > started_at[0]

    kills = _run_with_kills(start, random.Random(1), (0.0, 1.0), check, ready=training)
    assert kills >= 4
    assert strip_wall(read_rows(run / "epochs.csv")) == strip_wall(read_rows(reference / "epochs.csv"))
    assert_same_weights(final_weights(reference), final_weights(run))
    print(f"\ntraining: {kills} kills survived, results lost: 0 (bit-for-bit equal to the uninterrupted run)")


def _study_survives_random_kills(results: Path, storage: str | None, name: str) -> None:
    op = create_or_resume(spec(name=name, storage=storage, n_trials=16, sampler="tpe"))
    url = op.storage.url
    args = ["worker", "--storage", url, "--study", name, "--no-progress"]
    completed: dict[int, tuple[float, ...]] = {}
    watcher = load(url, name).study  # one connection for all the polling

    def check() -> None:  # every trial complete before a kill stays complete, with the same values
        study = watcher
        for t in study.get_trials(states=(optuna_complete(),)):
            assert completed.setdefault(t.number, tuple(t.values)) == tuple(t.values)
        for number in completed:
            assert study.trials[number].state == optuna_complete()

    def running() -> bool:
        return any(t.state.name == "RUNNING" for t in watcher.get_trials(deepcopy=False))

    start = lambda: [hpo(args, results, sleep=2.0) for _ in range(2)]  # noqa: E731
    kills = _run_with_kills(start, random.Random(2), (0.0, 3.0), check, ready=running)
    assert kills >= 4
    study = load(url, name).study
    trials = study.get_trials()
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == 16 and not [t for t in trials if t.state.name in ("RUNNING", "WAITING")]
    firsts = [t.system_attrs.get("failed_trial", t.number) for t in complete]
    assert len(firsts) == len(set(firsts))  # no trial completed twice
    for t in complete:  # each complete trial's record is whole and agrees with the study
        record = json.loads((Path(t.user_attrs["trial_dir"]) / "trial.json").read_text())
        assert record["values"] == pytest.approx(t.values)
    retried = sum(t.state.name == "FAIL" for t in trials)
    assert retried >= 1  # some kills hit a running trial
    print(f"\nstudy ({op.storage.kind}): {kills} kills survived, {retried} running trials retried, "
          f"results lost: 0, trials run twice: 0")


def optuna_complete():
    from optuna.trial import TrialState

    return TrialState.COMPLETE


def test_journal_study_survives_random_kills(results_dir: Path) -> None:
    _study_survives_random_kills(results_dir, None, "faults-journal")


@pytest.mark.postgres
def test_postgres_study_survives_random_kills(results_dir: Path, postgres_url: str) -> None:  # noqa: F811
    import uuid

    _study_survives_random_kills(results_dir, postgres_url, f"faults-{uuid.uuid4().hex[:8]}")


def test_pipeline_survives_random_kills(tmp_path: Path) -> None:
    root = _git_repo(tmp_path / "repo")
    names = [f"p{k}" for k in range(5)]
    for k, name in enumerate(names):
        write_nb(root / "book" / "sub" / f"{name}.ipynb", f"import time\ntime.sleep(0.5)\nprint('page {k} done')")
    nbs = [Notebook(n, f"sub/{n}.ipynb", depends=(names[k - 1],) if k else ()) for k, n in enumerate(names)]
    script = textwrap.dedent(f"""
        from pathlib import Path
        from qallegro.pipeline.notebooks import Notebook
        from qallegro.pipeline.reproduce import reproduce
        nbs = {[(n.name, n.page, n.depends) for n in nbs]!r}
        reproduce("smoke", root=Path({str(root)!r}), build=False, progress=False,
                  notebooks=[Notebook(a, b, depends=c) for a, b, c in nbs])
    """)
    started: dict[str, str] = {}

    def check() -> None:  # a finished page is whole and is never computed again
        for step in plan(nbs, "smoke", root / "book"):
            page = root / "book" / step.notebook.page
            if step.cached:
                record = nbformat.read(page, as_version=4).metadata["qallegro"]
                assert started.setdefault(step.notebook.name, record["started"]) == record["started"]

    started_at = [0.0]

    def start() -> list[subprocess.Popen]:
        started_at[0] = time.time()
        return [subprocess.Popen([sys.executable, "-c", script], env=ENV, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)]

    def executing() -> bool:  # this process executes a page (kills are timed from here, whatever the speed)
        return any(p.stat().st_mtime > started_at[0] for p in (root / "book").rglob(".*.running.ipynb"))

    kills = _run_with_kills(start, random.Random(3), (0.5, 4.0), check, ready=executing)
    assert kills >= 4
    check()
    report = reproduce("smoke", root=root, notebooks=nbs, build=False, progress=False)
    assert [s.status for s in report.steps] == ["cached"] * len(names)
    for k, name in enumerate(names):
        assert f"page {k} done" in (root / "book" / "sub" / f"{name}.ipynb").read_text()
    assert not list(root.rglob(".*.running.ipynb"))
    print(f"\npipeline: {kills} kills survived, pages lost: 0, finished pages recomputed: 0 "
          f"({len(started)} of {len(names)} were finished before the last kill)")
