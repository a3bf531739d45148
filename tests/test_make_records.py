"""`make records` (`.ci/records.py`) in a temporary git repository: finished units, the files of the studies they
ran and their finished trials are committed; a trial another worker is still training, checkpoints and logs are
not."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("records", ROOT / ".ci" / "records.py")
records = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(records)


def _write(repo: Path, name: str, text: str = "x") -> None:
    path = repo / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_records_commit_finished_work_only(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text((ROOT / ".gitignore").read_text())
    study = "results/overnight/hpo/culi-qdi-tpe-s0"
    _write(tmp_path, "results/overnight/campaign/study/culi-qdi-tpe-s0/0004/record.json", "{}")
    _write(tmp_path, "results/overnight/campaign/study/culi-qdi-tpe-s0/0008/claim.json")  # a slice still running
    _write(tmp_path, "results/overnight/campaign/ablation/culi/qdi-s0/record.json", "{}")
    _write(tmp_path, "results/overnight/campaign/ablation/culi/qdi-s0/model.pt")  # ignored: a model
    _write(tmp_path, f"{study}/journal.log")
    _write(tmp_path, f"{study}/hpo.log")  # ignored: a log
    _write(tmp_path, f"{study}/trials.csv",
           f"number,state,trial_dir\n3,FAIL,/elsewhere/{study}/trials/00003\n5,RUNNING,/x/trials/00005\n")
    for n in (2, 3, 5):
        _write(tmp_path, f"{study}/trials/0000{n}/epochs.csv")
    _write(tmp_path, f"{study}/trials/00002/trial.json", "{}")
    _write(tmp_path, "results/overnight/hpo/not-a-campaign-study/journal.log")
    _write(tmp_path, "results/overnight/culi/provenance.json", "{}")
    _write(tmp_path, "results/overnight/claims/verdicts.json", "{}")
    _write(tmp_path, "results/quick/hpo/compare-rmd17-benzene-allegro/hypervolume.csv", "trial\n")
    assert records.record_paths(tmp_path) == sorted([
        "results/overnight/campaign/ablation/culi/qdi-s0/record.json",
        "results/overnight/campaign/study/culi-qdi-tpe-s0/0004/record.json",
        "results/overnight/claims/verdicts.json",
        "results/overnight/culi/provenance.json",
        "results/quick/hpo/compare-rmd17-benzene-allegro/hypervolume.csv",
        f"{study}/journal.log", f"{study}/trials.csv",
        f"{study}/trials/00002/epochs.csv", f"{study}/trials/00002/trial.json",
        f"{study}/trials/00003/epochs.csv",
    ])
