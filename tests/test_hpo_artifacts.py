"""Every HPO trial is a model: Optuna artifacts of a real smoke study (training + timing), `qallegro hpo show`,
`qallegro pick` (re-timed, exported) and optuna-dashboard serving the study over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from ase.build import molecule
from optuna.artifacts import download_artifact
from optuna.trial import TrialState
from qallegro import Calculator
from qallegro.hpo.artifacts import ARTIFACT_FILES, artifact_store
from qallegro.hpo.artifacts_cli import dashboard_command

ROOT = Path(__file__).resolve().parents[1]
NAME = "art-benzene"


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory):
    from qallegro.hpo.study import StudySpec, run

    results = tmp_path_factory.mktemp("results")
    old = os.environ.get("QALLEGRO_RESULTS")
    os.environ["QALLEGRO_RESULTS"] = str(results)
    try:
        spec = StudySpec(dataset="rmd17-benzene", variant="allegro", sampler="random", scale="smoke", n_trials=3,
                         name=NAME)
        yield run(spec, progress=False, plots=False)["study"], results
    finally:
        if old is None:
            os.environ.pop("QALLEGRO_RESULTS")
        else:
            os.environ["QALLEGRO_RESULTS"] = old


def cli(results: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib"), "QALLEGRO_RESULTS": str(results)}
    return subprocess.run([sys.executable, "-m", "qallegro.cli", *args], capture_output=True, text=True, env=env,
                          timeout=600)


def complete(op) -> list:
    return [t for t in op.study.trials if t.state == TrialState.COMPLETE]


def test_each_trial_keeps_config_learning_curve_and_weights_as_artifacts(study, tmp_path: Path):
    op, _ = study
    trials = complete(op)
    assert len(trials) == 3
    for t in trials:
        ids = t.user_attrs["artifacts"]
        assert sorted(ids) == sorted(ARTIFACT_FILES)
        for name, artifact_id in ids.items():
            out = tmp_path / f"{t.number}-{name}"
            download_artifact(artifact_store=artifact_store(op.folder), file_path=str(out), artifact_id=artifact_id)
            assert out.read_bytes() == (Path(t.user_attrs["trial_dir"]) / name).read_bytes()
        from optuna.artifacts import get_all_artifact_meta
        from qallegro.hpo.optuna_api import storage_of

        types = {m.filename: m.mimetype for m in get_all_artifact_meta(t, storage=storage_of(op.study))}
        assert types == {"config.yaml": "application/yaml", "epochs.csv": "text/csv",
                         "metrics.json": "application/json", "model.pt": "application/octet-stream"}
    # the weights pick uses: the artifact, or (studies from before artifacts) the trial folder's model.pt
    from qallegro.hpo.artifacts import _model_file

    row = {"model": trials[0].user_attrs["artifacts"]["model.pt"], "trial_dir": trials[0].user_attrs["trial_dir"]}
    from_store = _model_file(op, row, tmp_path)
    from_folder = _model_file(op, {**row, "model": None}, tmp_path)
    assert from_store.parent == tmp_path and from_folder == Path(row["trial_dir"]) / "model.pt"
    assert from_store.read_bytes() == from_folder.read_bytes()


def test_hpo_show_prints_the_pareto_front(study):
    op, results = study
    proc = cli(results, "hpo", "show", NAME, "--scale", "smoke", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    values = {t.number: t.values for t in complete(op)}
    dominated = {n for n, v in values.items() for w in values.values()
                 if w[0] <= v[0] and w[1] <= v[1] and (w[0] < v[0] or w[1] < v[1])}
    assert {r["number"] for r in rows} == set(values) - dominated
    for r in rows:
        assert r["error"] == values[r["number"]][0] and r["time_s"] == values[r["number"]][1]
        assert r["model"] == op.study.trials[r["number"]].user_attrs["artifacts"]["model.pt"]
        assert r["ms_per_structure"] == pytest.approx(1000 * r["time_s"] / 4)  # smoke timing: 4 structures
        assert r["present"]
    text = cli(results, "hpo", "show", NAME, "--scale", "smoke")
    assert text.returncode == 0 and f"{len(rows)} front point(s)" in text.stdout
    assert "not on this machine" not in text.stdout


def test_pick_exports_the_front_model_within_the_budget(study, tmp_path: Path):
    op, results = study
    front = json.loads(cli(results, "hpo", "show", NAME, "--scale", "smoke", "--json").stdout)
    budget = max(r["error"] for r in front)
    out = tmp_path / "picked.pt2"
    proc = cli(results, "pick", NAME, "--scale", "smoke", "--max-error", str(budget), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    from qallegro.deploy.export import load_exported

    exported = load_exported(out)
    prov = exported.meta["provenance"]
    assert prov["study"] == NAME and prov["error"] <= budget and prov["ms_per_structure_here"] > 0
    assert prov["trial"] in {r["number"] for r in front}
    trial_model = Path(op.study.trials[prov["trial"]].user_attrs["trial_dir"]) / "model.pt"
    benzene = molecule("C6H6")
    assert Calculator(out).get_potential_energy(benzene) == pytest.approx(
        Calculator(trial_model).get_potential_energy(benzene), rel=1e-5)
    # budgets no front model meets: one line naming the study and the closest model
    from qallegro.hpo.artifacts import pick

    with pytest.raises(ValueError, match=f"study {NAME}: no front model runs in <= 1e-09 ms per structure here"):
        pick(op, tmp_path / "x.pt2", max_time_ms=1e-9)
    proc = cli(results, "pick", NAME, "--scale", "smoke", "--max-error", "1e-12", "-o", str(tmp_path / "x.pt2"))
    assert proc.returncode == 2 and "no front model has error <= 1e-12" in proc.stderr
    proc = cli(results, "pick", NAME, "--scale", "smoke", "--max-time-ms", "-5", "-o", str(tmp_path / "x.pt2"))
    assert proc.returncode == 2 and "--max-time-ms -5: must be positive" in proc.stderr
    assert not (tmp_path / "x.pt2").exists()


def test_pick_names_front_trials_whose_models_are_not_present(study, tmp_path: Path):
    """A committed study: its journal without the artifact folder and the trials' weights (both gitignored)."""
    import shutil

    op, _ = study
    clone = tmp_path / "results"
    folder = clone / "smoke" / "hpo" / NAME
    shutil.copytree(op.folder, folder, ignore=shutil.ignore_patterns("artifacts", "*.pt", "*.heartbeats", "*.claim"))
    # the journal names the trial folders where they ran (which still hold the weights): the clone reads its own
    assert str(op.folder) in (folder / "journal.log").read_text()
    front = json.loads(cli(clone, "hpo", "show", NAME, "--scale", "smoke", "--json").stdout)
    assert front and not any(r["present"] for r in front)
    shown = cli(clone, "hpo", "show", NAME, "--scale", "smoke").stdout
    assert shown.count("weights not on this machine") == len(front)
    out = tmp_path / "x.pt2"
    proc = cli(clone, "pick", NAME, "--scale", "smoke", "--max-error", "1e9", "-o", str(out))
    numbers = ", ".join(str(r["number"]) for r in front)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert (f"study {NAME}: the model artifacts of its front trial(s) {numbers} are not present in "
            f"{folder / 'artifacts'} (artifacts are not committed") in proc.stderr
    assert not out.exists() and not (folder / "artifacts").exists()
    # the weights of one front trial back: pick takes it and names the trials it skipped
    kept = front[-1]
    trial_dir = Path(op.study.trials[kept["number"]].user_attrs["trial_dir"])
    shutil.copy(trial_dir / "model.pt", folder / trial_dir.relative_to(op.folder) / "model.pt")
    proc = cli(clone, "pick", NAME, "--scale", "smoke", "--max-error", "1e9", "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"trial {kept['number']}: ") and out.is_file()
    others = [str(r["number"]) for r in front if r is not kept]
    assert (f"skipped front trial(s) {', '.join(others)}" in proc.stderr) == bool(others), proc.stderr


def test_recorded_paths_are_read_below_this_results_root(results_dir: Path, tmp_path: Path):
    from qallegro.paths import local

    trial = results_dir / "overnight" / "hpo" / "s" / "trials" / "00003"
    trial.mkdir(parents=True)
    assert local("/cluster/u/qallegro/results/overnight/hpo/s/trials/00003") == trial
    assert local("/elsewhere/out/overnight/hpo/s/trials/00003") == trial  # another results root's name
    assert local(trial) == trial and local("relative/run") == Path("relative/run")
    elsewhere = tmp_path / "runs" / "r1"
    elsewhere.mkdir(parents=True)
    assert local(elsewhere) == elsewhere and local("/nowhere/at/all") == Path("/nowhere/at/all")


def test_show_pick_and_dashboard_take_every_scale(results_dir: Path, tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]):
    """The scales of `qallegro.scales` (overnight included, the book's), as `hpo report` takes them."""
    import shutil

    from qallegro.cli import build_parser, main
    from qallegro.scales import SCALES

    parser = build_parser()
    for scale in SCALES:
        for args in (["hpo", "show", "s"], ["hpo", "dashboard", "s"], ["pick", "s", "--max-error", "1"]):
            assert parser.parse_args([*args, "--scale", scale]).scale == scale
    journal = sorted(ROOT.glob("results/overnight/hpo/*/journal.log"))[0]  # a committed study, copied
    name = journal.parent.name
    copy = results_dir / "overnight" / "hpo" / name / "journal.log"
    copy.parent.mkdir(parents=True)
    shutil.copy(journal, copy)
    assert main(["hpo", "show", name, "--scale", "overnight", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows and all(r["error"] > 0 and r["time_s"] > 0 for r in rows)
    assert main(["pick", name, "--scale", "overnight", "--max-error", "1e-12", "-o", str(tmp_path / "x.pt2")]) == 2
    err = capsys.readouterr().err
    assert f"study {name}: " in err and len(err.strip().splitlines()) == 1, err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read()


def test_optuna_dashboard_serves_the_study_trials_objectives_and_artifacts(study):
    op, _ = study
    port = free_port()
    cmd = dashboard_command(op.storage.url, str(op.folder), "127.0.0.1", port)
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                studies = json.loads(get(f"{base}/api/studies"))["study_summaries"]
                break
            except OSError:
                assert server.poll() is None, server.stderr.read().decode()[-2000:]
                time.sleep(0.5)
        else:
            pytest.fail("optuna-dashboard did not answer within 60 s")
        summary = next(s for s in studies if s["study_name"] == NAME)
        detail = json.loads(get(f"{base}/api/studies/{summary['study_id']}"))
        assert detail["objective_names"] == ["val_f_mae", "inference_total_s"]  # the study's metric names
        served = {t["number"]: t for t in detail["trials"] if t["state"] == "Complete"}
        assert set(served) == {t.number for t in complete(op)}
        for t in complete(op):
            assert np.allclose(served[t.number]["values"], t.values)
            artifacts = {a["filename"]: a["artifact_id"] for a in served[t.number]["artifacts"]}
            assert set(artifacts) == set(ARTIFACT_FILES)
        t = complete(op)[0]
        body = get(f"{base}/artifacts/{summary['study_id']}/{served[t.number]['trial_id']}/"
                   f"{t.user_attrs['artifacts']['model.pt']}")
        assert body == (Path(t.user_attrs["trial_dir"]) / "model.pt").read_bytes()
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_dashboard_opens_every_study_the_book_shows(tmp_path: Path):
    """Each committed study journal (copied: the journal backend writes lock files) served by optuna-dashboard's
    WSGI app on localhost lists its study with its COMPLETE trials and objective names."""
    import shutil
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna_dashboard import wsgi

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    journals = sorted(ROOT.glob("results/*/hpo/*/journal.log"))
    assert journals, "no committed studies"
    for k, journal in enumerate(journals):
        copy = tmp_path / f"{k}.log"
        shutil.copy(journal, copy)
        storage = JournalStorage(JournalFileBackend(str(copy)))
        expected = {s.study_name: s for s in optuna.get_all_study_summaries(storage, include_best_trial=False)}
        server = make_server("127.0.0.1", 0, wsgi(storage), handler_class=Quiet)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{server.server_port}"
        try:
            listed = {s["study_name"]: s for s in json.loads(get(f"{base}/api/studies"))["study_summaries"]}
            assert set(listed) == set(expected), journal
            for name, summary in listed.items():
                detail = json.loads(get(f"{base}/api/studies/{summary['study_id']}"))
                study = optuna.load_study(study_name=name, storage=storage)
                n_complete = sum(t.state == TrialState.COMPLETE for t in study.trials)
                assert sum(t["state"] == "Complete" for t in detail["trials"]) == n_complete, journal
                assert detail.get("objective_names") == study.metric_names, journal
        finally:
            server.shutdown()
            server.server_close()


def test_dashboard_port_problems_are_named_before_it_starts() -> None:
    import socket

    from qallegro.hpo.artifacts_cli import port_problem

    assert port_problem("127.0.0.1", 99999) == "not a TCP port (1-65535)"
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        assert port_problem("127.0.0.1", busy.getsockname()[1]).startswith("cannot listen on 127.0.0.1")
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    assert port_problem("127.0.0.1", port) is None


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_dashboard_stops_on_ctrl_c_or_sigterm_without_a_traceback(results_dir: Path, sig: str) -> None:
    """`qallegro hpo dashboard` serves a committed study until Ctrl-C (SIGINT) or SIGTERM, then stops its server
    (the port is free again) with one line and exit status 0."""
    import shutil
    import signal

    from qallegro.hpo.artifacts_cli import port_problem

    journal = sorted(ROOT.glob("results/overnight/hpo/*/journal.log"))[0]
    copy = results_dir / "overnight" / "hpo" / journal.parent.name / "journal.log"
    copy.parent.mkdir(parents=True)
    shutil.copy(journal, copy)
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib"), "QALLEGRO_RESULTS": str(results_dir)}
    proc = subprocess.Popen([sys.executable, "-m", "qallegro.cli", "hpo", "dashboard", journal.parent.name,
                             "--scale", "overnight", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard/", timeout=2) as r:
                    assert r.status == 200
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("the dashboard did not answer within 60 s")
        proc.send_signal(getattr(signal, sig))
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and err.strip().endswith("qallegro hpo dashboard: stopped"), err
    assert port_problem("127.0.0.1", port) is None  # the server went with it
