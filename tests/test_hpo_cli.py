"""The `qallegro hpo` command line: space listing, errors, create-only, report (in-process, synthetic objective)."""

from __future__ import annotations

from pathlib import Path

import pytest
from qallegro.cli import main
from test_hpo_study import SYNTHETIC


def test_space_listing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["hpo", "space", "--variant", "qdi", "--scale", "smoke"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 9
    assert any(line.split()[:2] == ["qdi_fc_dim", "qdi_fc_dim"] and line.endswith("[4, 16]") for line in out)


def test_bad_space_file_is_a_clear_error(tmp_path: Path, results_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "space.yaml"
    bad.write_text("r_max: {low: 20, high: 10}\n")
    rc = main(["hpo", "run", "--dataset", "rmd17-benzene", "--scale", "smoke", "--space", str(bad),
               "--objective", SYNTHETIC])
    err = capsys.readouterr().err
    assert rc == 2 and str(bad) in err and "low 20 > high 10" in err


def test_create_only_then_worker_then_report(results_dir: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    journal = tmp_path / "db" / "study.log"
    journal.parent.mkdir()  # an explicit journal goes into an existing folder (a typo creates nothing)
    common = ["--storage", str(journal), "--study", "cli"]
    assert main(["hpo", "run", "--dataset", "rmd17-benzene", "--scale", "smoke", "--trials", "3",
                 "--objective", SYNTHETIC, "--max-trials", "0", "--no-progress", *common]) == 0
    assert "completed 0" in capsys.readouterr().out
    assert main(["hpo", "worker", *common, "--max-trials", "2", "--no-progress"]) == 0
    assert "completed 2" in capsys.readouterr().out
    assert main(["hpo", "worker", *common, "--no-progress"]) == 0
    assert "completed 1" in capsys.readouterr().out
    assert main(["hpo", "report", "--scale", "smoke", *common]) == 0
    out = capsys.readouterr().out
    assert "pareto_png:" in out and (results_dir / "smoke" / "hpo" / "cli" / "chosen.json").exists()
    assert main(["hpo", "worker", "--storage", str(journal), "--study", "nope"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
