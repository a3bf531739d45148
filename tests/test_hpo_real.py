"""The real objective (training + inference timing) at smoke scale: the issue's "done" command, the final
training of a chosen configuration and the Cu-Li -> benzene QDI transfer."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from qallegro.hpo.study import run
from test_hpo_study import SYNTHETIC, spec


def _reads_back(path: Path, transfer: bool) -> None:
    """A final-model summary reads as a typed record and writes back the same JSON object."""
    from qallegro.hpo.records import FinalRecord

    data = json.loads(path.read_text())
    rec = FinalRecord.read(path)
    assert rec.to_json() == data and ("transfer" in rec) == transfer == ("transfer" in data)
    assert ("study" in rec) == ("study" in data)


def test_done_command_writes_front_and_plot(results_dir: Path) -> None:
    cmd = [sys.executable, "-m", "qallegro", "hpo", "run", "--dataset", "rmd17-benzene", "--variant", "mlp",
           "--sampler", "nsga2", "--scale", "smoke", "--no-progress"]
    res = subprocess.run(cmd, env={**os.environ, "QALLEGRO_RESULTS": str(results_dir)}, capture_output=True,
                         text=True, timeout=600, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    folder = results_dir / "smoke" / "hpo" / "rmd17-benzene-mlp-nsga2-s0"
    front = pd.read_csv(folder / "pareto.csv")
    trials = pd.read_csv(folder / "trials.csv")
    assert (trials["state"] == "COMPLETE").sum() == 4 and len(front) >= 1
    assert (front["val_f_mae"] > 0).all() and (front["inference_total_s"] > 0).all()
    assert (folder / "pareto.png").stat().st_size > 10_000
    # every complete trial is a training run that can be inspected (a pruned one repeated another's parameters)
    for run_dir in trials[trials["state"] == "COMPLETE"]["run_dir"]:
        for name in ("config.yaml", "epochs.csv", "metrics.json", "model.pt"):
            assert (Path(run_dir) / name).exists(), (run_dir, name)
        metrics = json.loads((Path(run_dir) / "metrics.json").read_text())
        row = trials[trials["run_dir"] == run_dir].iloc[0]
        assert row["val_f_mae"] == pytest.approx(metrics["val_f_mae"])

    from qallegro.hpo.final import final_train
    from qallegro.hpo.study import load

    op = load(f"journal:{folder / 'journal.log'}", "rmd17-benzene-mlp-nsga2-s0")
    out = final_train(op, "lowest_error", threads=1, progress=False)
    chosen = json.loads((folder / "chosen.json").read_text())["chosen"]["lowest_error"]
    assert out["trial"] == chosen["number"] and out["config"] == chosen["config"]
    assert Path(out["epochs_csv"]).exists() and out["val_f_mae"] > 0 and out["inference_total_s"] > 0
    assert json.loads((folder / "final-lowest_error.json").read_text())["val_e_mae"] == out["val_e_mae"]
    _reads_back(folder / "final-lowest_error.json", transfer=False)
    assert Path(out["run_dir"]).name == f"final-trial-{out['trial']:05d}"
    knee = final_train(op, "knee", threads=1, progress=False)
    if knee["trial"] == out["trial"]:  # the same trial is trained once
        assert knee["run_dir"] == out["run_dir"] and knee["val_f_mae"] == out["val_f_mae"]


def test_transfer_combines_culi_qdi_and_dataset_allegro(results_dir: Path) -> None:
    from qallegro.hpo.final import transfer_config, transfer_train

    qdi = run(spec(dataset="culi", variant="qdi", n_trials=3, objective=SYNTHETIC), progress=False,
              plots=False)["study"]
    allegro = run(spec(n_trials=3, objective=SYNTHETIC), progress=False, plots=False)["study"]
    overrides, prov = transfer_config(qdi, allegro)
    q = qdi.study.trials[prov["qdi_trial"]].user_attrs["config"]
    a = allegro.study.trials[prov["allegro_trial"]].user_attrs["config"]
    assert {k: overrides[k] for k in ("edge_eng_mlp_output_dim", "qdi_depth", "qdi_fc_dim")} == \
        {k: q[k] for k in ("edge_eng_mlp_output_dim", "qdi_depth", "qdi_fc_dim")}
    assert {k: overrides[k] for k in a} == a
    with pytest.raises(ValueError, match="expected allegro"):
        transfer_config(qdi, qdi)
    out = transfer_train(qdi, allegro, threads=1, progress=False)
    assert out["variant"] == "qdi" and out["dataset"] == "rmd17-benzene" and out["val_f_mae"] > 0
    assert Path(out["run_dir"]).name == "transfer-rmd17-benzene-qdi"
    _reads_back(Path(out["run_dir"]).with_suffix(".json"), transfer=True)
