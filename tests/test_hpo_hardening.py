"""Issue 19 findings on studies: a stalled worker, dead workers on this host, names, pre-flight checks, secrets.

Real worker processes (`python -m qallegro hpo worker`) on a journal file, with the synthetic objective of
`test_hpo_study` (it logs every attempt to `<attempt folder>/attempts.log`).
"""

from __future__ import annotations

import re
import shlex
import signal
import time
from pathlib import Path

import pytest
from qallegro.cli import build_parser, main
from qallegro.errors import HpoError
from qallegro.hpo.storage import mask_url, normalise_url, open_storage
from qallegro.hpo.study import counts, create_or_resume
from test_hpo_study import FAST_HEARTBEAT, SYNTHETIC, attempts, hpo, spec, started_by, wait_for

ROOT = Path(__file__).resolve().parents[1]


def _files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_stalled_worker_discards_a_trial_finished_by_others(results_dir: Path) -> None:
    """Finding 1: SIGSTOP past the grace period, the study fails and retries the trial, SIGCONT: the stalled
    worker discards its result with a warning and exits 0; each attempt had its own folder."""
    op = create_or_resume(spec(n_trials=2))
    args = ["worker", "--storage", op.storage.url, "--study", op.name, "--no-progress"]
    stalled = hpo(args, results_dir, sleep=2.0)
    try:
        wait_for(lambda: started_by(op.folder, "00000", stalled.pid), what="trial 0 to start")
        stalled.send_signal(signal.SIGSTOP)
        time.sleep(FAST_HEARTBEAT["heartbeat"]["grace_period"] + 1.5)  # its heartbeat goes stale
        rescuer = hpo(args, results_dir, sleep=0.0)
        out, _ = rescuer.communicate(timeout=120)
        assert rescuer.returncode == 0, out
        stalled.send_signal(signal.SIGCONT)
        out, _ = stalled.communicate(timeout=120)
    finally:
        if stalled.poll() is None:
            stalled.send_signal(signal.SIGCONT)
            stalled.kill()
    assert stalled.returncode == 0, out
    assert "was finished by another worker meanwhile" in out and "discarded" in out
    trials = op.study.get_trials()
    c = counts(op.study)
    assert (c["COMPLETE"], c["FAIL"], c["RUNNING"]) == (2, 1, 0)
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == 0)
    log = attempts(op.folder)
    # the stalled attempt finished in its own folder; the retry's folder holds the rescuer's result
    assert log["00000"] == [f"start {stalled.pid}", f"done {stalled.pid}"]
    assert log[f"00000-{retry.number:05d}"][-1] == f"done {rescuer.pid}"
    assert not (op.folder / "trials" / "00000" / "trial.json").exists()
    assert Path(retry.user_attrs["trial_dir"]).name == f"00000-{retry.number:05d}"
    assert (Path(retry.user_attrs["trial_dir"]) / "trial.json").exists()


def test_dead_worker_on_this_host_is_detected_at_once(results_dir: Path) -> None:
    """Finding 11: after a kill -9, a worker on the same host does not wait out the grace period (300 s here)."""
    slow = {"heartbeat": {"interval": 1, "grace_period": 300, "poll": 0.3}}
    op = create_or_resume(spec(n_trials=2, settings=slow))
    args = ["worker", "--storage", op.storage.url, "--study", op.name, "--no-progress"]
    victim = hpo(args, results_dir, sleep=5.0)
    wait_for(lambda: started_by(op.folder, "00000", victim.pid), what="trial 0 to start")
    victim.kill()
    victim.communicate(timeout=30)
    t0 = time.monotonic()
    rescuer = hpo(args, results_dir, sleep=0.0)
    out, _ = rescuer.communicate(timeout=120)
    assert rescuer.returncode == 0, out
    assert time.monotonic() - t0 < 60  # far below the grace period
    c = counts(op.study)
    assert (c["COMPLETE"], c["FAIL"], c["RUNNING"]) == (2, 1, 0)
    assert "is gone; failed and retried" in (op.folder / "hpo.log").read_text()


@pytest.mark.parametrize(("extra", "message"), [
    (["--dataset", "bogus"], "unknown dataset 'bogus'"),
    (["--dataset", "rmd17-benzene", "--threads", "0"], "--threads must be an integer >= 1, got 0"),
    (["--dataset", "rmd17-benzene", "--trials", "-3"], "--trials must be an integer >= 1, got -3"),
    (["--dataset", "rmd17-benzene", "--objective", "nosuch:fn"], "objective 'nosuch:fn' cannot be imported"),
    (["--dataset", "rmd17-benzene", "--study", "../../../../escape"], "study name '../../../../escape'"),
    (["--dataset", "rmd17-benzene", "--storage", "typo/dir/journal.log"], "typo/dir"),
])
def test_hpo_run_checks_before_it_creates_anything(extra: list[str], message: str, results_dir: Path,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """Findings 8 and 9: one line, exit 2, and no study, folder or file created."""
    monkeypatch.chdir(tmp_path)
    before = _files(tmp_path)
    rc = main(["hpo", "run", "--scale", "smoke", "--no-progress", "--objective", SYNTHETIC, *extra])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert _files(tmp_path) == before and not (tmp_path / "typo").exists()


def test_space_outside_the_model_limits_is_refused_first(results_dir: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    space = tmp_path / "space.yaml"
    space.write_text("r_max: {low: -1, high: 5}\n")
    rc = main(["hpo", "run", "--dataset", "rmd17-benzene", "--scale", "smoke", "--space", str(space),
               "--objective", SYNTHETIC, "--no-progress"])
    err = capsys.readouterr().err
    assert rc == 2 and "low corner" in err and "r_max" in err, err
    assert not results_dir.exists()


@pytest.mark.parametrize("command", ["run", "space"])
def test_a_binary_space_file_is_one_line(command: str, results_dir: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """`--space` is read like `--config`: UTF-8 YAML text, else one line naming the file."""
    space = tmp_path / "space.bin"
    space.write_bytes(bytes(range(256)) * 4)
    args = ["--dataset", "rmd17-benzene", "--scale", "smoke", "--space", str(space)]
    extra = ["--objective", SYNTHETIC, "--no-progress"] if command == "run" else []
    rc = main(["hpo", command, *args, *extra])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1, err
    assert f"{space}: not a text file (a YAML search-space file must be UTF-8 text)" in err, err
    assert not results_dir.exists()


def test_worker_with_a_mistyped_journal_creates_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "nope" / "journal.log"
    assert main(["hpo", "worker", "--storage", str(journal), "--study", "s"]) == 2
    assert "no study journal at" in capsys.readouterr().err
    assert not (tmp_path / "nope").exists()


def test_storage_password_is_masked() -> None:
    """Finding 2 (the parts that need no server; tests/test_hpo_postgres.py scans a real study's files)."""
    url = "postgresql+psycopg2://alice:Secret%2Fpw@db.example.org:5433/qallegro?sslmode=require"
    masked = mask_url(url)
    assert "Secret" not in masked and masked.startswith("postgresql+psycopg2://alice:***@db.example.org:5433/")
    with pytest.raises(HpoError) as info:  # nothing listens on port 1
        open_storage("postgresql+psycopg2://alice:Secret@127.0.0.1:1/qallegro")
    assert "Secret" not in str(info.value) and "127.0.0.1" in str(info.value)


@pytest.mark.parametrize("url, expected", [
    ("postgresql://alice:pw@db:5432/q", "postgresql+psycopg2://alice:pw@db:5432/q"),
    ("postgres://alice@db/q?sslmode=require", "postgresql+psycopg2://alice@db/q?sslmode=require"),
    ("postgresql+psycopg2://alice@db/q", "postgresql+psycopg2://alice@db/q"),
    ("sqlite:///x/postgresql://.db", "sqlite:///x/postgresql://.db"),
    ("results/postgres://journal.log", "results/postgres://journal.log"),
])
def test_bare_postgresql_url_uses_psycopg2(url: str, expected: str) -> None:
    assert normalise_url(url) == expected


@pytest.mark.parametrize("scheme", ["postgresql", "postgres"])
def test_bare_postgresql_url_reaches_the_server(scheme: str) -> None:
    """SQLAlchemy 2.1 maps a bare `postgresql://` to psycopg 3 (not installed): the storage must use psycopg2,
    so the error is the refused connection, not a missing driver, and the password stays masked."""
    with pytest.raises(HpoError) as info:  # nothing listens on port 1
        open_storage(f"{scheme}://alice:Secret@127.0.0.1:1/qallegro")
    msg = str(info.value)
    assert "postgresql+psycopg2://alice:***@127.0.0.1:1/qallegro" in msg, msg
    assert "Secret" not in msg and "import" not in msg.lower() and "port 1 failed" in msg, msg


def test_unreachable_server_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["hpo", "worker", "--storage", "postgresql+psycopg2://alice:Secret@127.0.0.1:1/db", "--study", "s"])
    err = capsys.readouterr().err
    assert rc == 2 and len(err.strip().splitlines()) == 1 and "Secret" not in err and "cannot open" in err


def test_readme_hpo_commands_parse() -> None:
    """Finding 10: every `qallegro hpo ...` command printed in the README and the HPO README is accepted."""
    commands = []
    for doc in (ROOT / "README.md", ROOT / "lib" / "qallegro" / "hpo" / "README.md"):
        text = doc.read_text().replace("\\\n", " ")
        commands += [line.strip() for line in text.splitlines()
                     if re.match(r"\s*(exec )?(\.venv/bin/)?qallegro hpo ", line)]
    assert len(commands) >= 3
    parser = build_parser()
    for line in commands:
        line = re.sub(r"\$\{?(\w+)\}?", "4", line)  # shell variables ($URL, $SLURM_CPUS_PER_TASK): any value
        # SystemExit (unrecognized arguments) fails the test
        parser.parse_args(shlex.split(line.removeprefix("exec "), comments=True)[1:])


@pytest.mark.parametrize("dedupe", [True, False])
def test_nsga2_does_not_evaluate_a_configuration_twice(dedupe: bool, results_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 12: NSGA-II at a small population proposes copies of its parents; they are pruned, not trained.
    Without the check (dedupe=False) the same study evaluates duplicates, so the test can tell the two apart."""
    from qallegro.hpo import study as study_mod

    if not dedupe:
        monkeypatch.setattr(study_mod, "MAX_DUPLICATES_IN_ROW", 0)
    op = study_mod.run(spec(sampler="nsga2", n_trials=16, name=f"dedupe-{dedupe}",
                            sampler_options={"population_size": 2}), progress=False, plots=False)["study"]
    complete = [t for t in op.study.get_trials() if t.state.name == "COMPLETE"]
    distinct = {tuple(sorted(t.params.items())) for t in complete}
    assert len(complete) == 16
    if dedupe:
        assert len(distinct) == 16
        pruned = [t for t in op.study.get_trials() if t.state.name == "PRUNED"]
        assert all(op.study.trials[t.user_attrs["duplicate_of"]].params == t.params for t in pruned)
    else:
        assert len(distinct) < 16
