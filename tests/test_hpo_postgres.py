"""Two workers share one study through a real PostgreSQL server; one is SIGKILLed mid-trial.

The fixture starts a throwaway server (initdb in a temporary folder, a free port, its unix socket in that
folder; as root it runs as the unprivileged `postgres` user) and stops it afterwards. With
`QALLEGRO_TEST_POSTGRES=postgresql://...` it uses that server instead. Missing PostgreSQL binaries FAIL the test
(install them: `bash .ci/install-system.sh`, i.e. Debian's `postgresql` package).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from qallegro.hpo.study import counts, create_or_resume
from test_hpo_study import FAST_HEARTBEAT, attempts, hpo, orphan_is_retried_at_once, spec, wait_for

pytestmark = pytest.mark.postgres
INSTALL_HINT = ("PostgreSQL server binaries (initdb, pg_ctl) not found: install them with "
                "`bash .ci/install-system.sh` (Debian package `postgresql`) or `make sysdeps`, "
                "or point QALLEGRO_TEST_POSTGRES at a server (postgresql://user@host:port/db)")


def _bindir() -> Path:
    """The folder with initdb and pg_ctl: Debian's /usr/lib/postgresql/<newest>/bin, else the PATH."""
    debian = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                    key=lambda p: int(Path(p).parts[-2]) if Path(p).parts[-2].isdigit() else 0)
    folders = [Path(p) for p in reversed(debian)]
    if shutil.which("initdb"):
        folders.append(Path(shutil.which("initdb")).parent)
    for folder in folders:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    pytest.fail(INSTALL_HINT)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL for a fresh database (see the module docstring)."""
    if os.environ.get("QALLEGRO_TEST_POSTGRES"):
        yield os.environ["QALLEGRO_TEST_POSTGRES"]
        return
    bindir = _bindir()
    folder = Path(tempfile.mkdtemp(prefix="qallegro-pg-"))  # short path: the socket name must fit 107 bytes
    as_user: list[str] = []
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            pytest.fail("running as root needs the unprivileged `postgres` user (created by Debian's postgresql "
                        "package): " + INSTALL_HINT)
        os.chown(folder, pw.pw_uid, pw.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()

    def pg(*cmd: str) -> None:
        res = subprocess.run(as_user + list(cmd), capture_output=True, text=True, timeout=120, check=False)
        if res.returncode != 0:
            log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
            pytest.fail(f"{' '.join(cmd)} failed ({res.returncode}): {res.stdout}{res.stderr}{log}")

    pg(str(bindir / "initdb"), "-D", str(data), "-U", "qallegro", "--auth=trust", "-E", "UTF8", "--no-sync")
    pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t", "60", "-o",
       f"-p {port} -k {folder} -c listen_addresses='' -c fsync=off -c max_connections=50", "start")
    try:
        yield f"postgresql+psycopg2://qallegro@/postgres?host={folder}&port={port}"
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                       capture_output=True, timeout=60, check=False)
        shutil.rmtree(folder, ignore_errors=True)


def _running_in(folder: Path, pid: int) -> bool:
    """True when `pid` has finished at least one trial and is inside another one now."""
    logs = attempts(folder) if (folder / "trials").exists() else {}
    done = any(f"done {pid}" in lines for lines in logs.values())
    return done and any(lines and lines[-1] == f"start {pid}" for lines in logs.values())


def test_two_workers_share_a_study_and_survive_a_sigkill(results_dir: Path, postgres_url: str) -> None:
    name = f"pg-{uuid.uuid4().hex[:8]}"
    op = create_or_resume(spec(name=name, storage=postgres_url, n_trials=6, sampler="tpe",
                               settings=FAST_HEARTBEAT))
    args = ["worker", "--storage", postgres_url, "--study", name, "--no-progress"]
    victim = hpo(args, results_dir, sleep=1.0)
    survivor = hpo(args, results_dir, sleep=1.0)
    try:
        wait_for(lambda: _running_in(op.folder, victim.pid), timeout=90, what="the victim inside its 2nd trial")
        victim.kill()
        victim.communicate(timeout=30)
        out, _ = survivor.communicate(timeout=120)
    finally:
        for p in (victim, survivor):
            if p.poll() is None:
                p.kill()
    assert survivor.returncode == 0, out
    trials = op.study.get_trials()
    c = counts(op.study)
    assert (c["COMPLETE"], c["FAIL"], c["RUNNING"], c["WAITING"]) == (6, 1, 0, 0), c
    failed = next(t for t in trials if t.state.name == "FAIL")
    retry = next(t for t in trials if t.system_attrs.get("failed_trial") == failed.number)
    assert retry.state.name == "COMPLETE" and retry.params == failed.params
    assert failed.user_attrs["worker"].endswith(f":{victim.pid}")
    assert retry.user_attrs["worker"].endswith(f":{survivor.pid}")
    workers = {t.user_attrs["worker"] for t in trials if t.state.name == "COMPLETE"}
    assert len(workers) == 2  # both workers completed trials of the one study
    logs = attempts(op.folder)
    assert len(logs) == 7  # six trials, one of them in two attempts (each attempt has its own folder)
    assert sum(line.startswith("done") for v in logs.values() for line in v) == 6  # nothing ran twice
    assert logs[f"{failed.number:05d}"][-1] == f"start {victim.pid}"


def test_password_never_reaches_disk_or_messages(results_dir: Path, postgres_url: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Finding 2: a study opened with a password in its URL writes it into no file and no message."""
    from qallegro.cli import main
    from qallegro.hpo.report import write_results
    from qallegro.hpo.study import run_worker

    secret = f"Pw{uuid.uuid4().hex}"
    url = postgres_url.replace("qallegro@", f"qallegro:{secret}@", 1)
    assert secret in url  # the server trusts local connections and ignores the password
    name = f"pg-{uuid.uuid4().hex[:8]}"
    op = create_or_resume(spec(name=name, storage=url, n_trials=2))
    run_worker(op, progress=False)
    write_results(op, plots=False)
    assert main(["hpo", "worker", "--storage", url, "--study", "no-such-study", "--no-progress"]) == 2
    assert main(["hpo", "report", "--storage", url, "--study", name, "--scale", "smoke"]) == 0
    captured = capsys.readouterr()
    assert "no study 'no-such-study'" in captured.err and secret not in captured.err + captured.out
    files = [p for p in results_dir.rglob("*") if p.is_file()]
    assert len(files) > 5 and (op.folder / "study.json").exists()
    leaked = [str(p) for p in files if secret.encode() in p.read_bytes()]
    assert leaked == []
    assert secret not in str(op.study.user_attrs) and secret not in op.spec.storage


def test_a_trial_orphaned_before_its_first_heartbeat_is_retried(results_dir: Path, postgres_url: str) -> None:
    orphan_is_retried_at_once(results_dir, postgres_url, f"orphan-{uuid.uuid4().hex[:8]}")


@pytest.mark.parametrize("scheme", ["postgresql://", "postgres://"])
def test_a_bare_postgresql_url_opens_and_runs_a_study(results_dir: Path, postgres_url: str, scheme: str) -> None:
    """The README's `--storage postgresql://user:pass@host/db` (no driver named) creates, runs and reloads a study:
    SQLAlchemy 2.1 would pick psycopg 3, which is not installed; the storage uses psycopg2."""
    from qallegro.hpo.study import load, run_worker

    assert postgres_url.startswith("postgresql+psycopg2://")
    bare = scheme + postgres_url.split("://", 1)[1]
    name = f"bare-{uuid.uuid4().hex[:8]}"
    op = create_or_resume(spec(name=name, storage=bare, n_trials=2))
    assert op.storage.kind == "postgresql" and op.storage.url.startswith("postgresql+psycopg2://")
    run_worker(op, progress=False)
    again = load(bare, name)
    assert counts(again.study)["COMPLETE"] == 2 and again.spec.storage.startswith("postgresql+psycopg2://")
