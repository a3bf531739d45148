"""Training with the real model (`qallegro.models.build_model`): the CLI at smoke scale, all three variants,
config resolution against the model defaults."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from qallegro.cli import main
from qallegro.training import ConfigError, resolve_config, train
from qallegro.training.checkpoint import load_checkpoint


def rows(run_dir: Path) -> list[dict]:
    with open(run_dir / "epochs.csv") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def aspirin_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """`qallegro train --dataset rmd17-aspirin --scale smoke` from scratch, 4 epochs, lr 0.01."""
    run = tmp_path_factory.mktemp("aspirin") / "run"
    argv = ["train", "--dataset", "rmd17-aspirin", "--scale", "smoke", "--run-dir", str(run), "--no-progress",
            "--set", "max_epochs=4", "--set", "learning_rate=0.01"]
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(argv)
    return run, code, out.getvalue()


def test_cli_trains_aspirin_at_smoke_scale(aspirin_run: tuple[Path, int, str]) -> None:
    run, code, stdout = aspirin_run
    assert code == 0
    summary = json.loads(stdout)
    assert summary["run_dir"] == str(run) and summary["epochs"] == 4
    for name in ("config.yaml", "env.json", "statistics.json", "epochs.csv", "checkpoint.pt", "metrics.json",
                 "model.pt", "train.log"):
        assert (run / name).is_file(), name
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    assert cfg["dataset"] == "rmd17-aspirin" and cfg["learning_rate"] == 0.01 and cfg["l_max"] == 1
    env = json.loads((run / "env.json").read_text())["sessions"][0]
    assert env["versions"]["torch"] and env["hardware"]["cpus_available"] >= 1
    import qallegro

    assert env["versions"]["qallegro"] == qallegro.__version__  # the code's, not a stale editable install's
    stats = json.loads((run / "statistics.json").read_text())
    assert 5 < stats["avg_num_neighbors"] < 20 and stats["species"] == [1, 6, 8]
    assert -840 < stats["per_species_rescale_shifts"] < -838 and 1.0 < stats["per_species_rescale_scales"] < 1.6
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["test"]["n_structures"] == 20 and metrics["test"]["n_atoms"] == 420
    assert metrics["units"]["f_mae"] == "eV/Å"


def test_smoke_training_reduces_the_force_error(aspirin_run: tuple[Path, int, str]) -> None:
    run, _, _ = aspirin_run
    r = rows(run)
    assert float(r[-1]["train_f_rmse"]) < 0.95 * float(r[0]["train_f_rmse"])
    assert float(r[-1]["val_f_mae"]) < float(r[0]["val_f_mae"])
    # the saved model is the best EMA model and reproduces the reported validation error
    from qallegro.data import load_dataset
    from qallegro.models import load_model
    from qallegro.training.data import to_graphs
    from qallegro.training.evaluate import evaluate

    model = load_model(run / "model.pt")
    val = to_graphs(load_dataset("rmd17-aspirin", "val", max_frames=10), model.r_max)
    metrics = json.loads((run / "metrics.json").read_text())
    assert evaluate(model, val)["f_mae"] == pytest.approx(metrics["val_f_mae"], rel=1e-6)


def test_cli_reports_unknown_keys_with_the_file(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: rmd17-aspirin\nlearning_rat: 0.01\n")
    assert main(["train", "--config", str(bad), "--scale", "smoke"]) == 2
    err = capsys.readouterr().err
    assert "learning_rat" in err and str(bad) in err and "learning_rate" in err
    assert main(["train", "--dataset", "rmd17-aspirin", "--set", "num_layer=3"]) == 2
    assert "num_layer" in capsys.readouterr().err
    assert main(["train", "--dataset", "rmd17-aspirin", "--set", "parity=odd"]) == 2   # a bad model value
    assert "parity" in capsys.readouterr().err
    assert main(["train", "--dataset", "no-such-set", "--run-dir", str(tmp_path / "r")]) == 2
    assert "no-such-set" in capsys.readouterr().err


def test_resolution_order(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("dataset: rmd17-benzene\nlearning_rate: 1e-3\nnum_layers: 3\nvariant: mlp\n")
    cfg = resolve_config(config_file=f, scale="smoke", overrides=["num_layers=1", "loss_coeffs.forces=10",
                                                                  "edge_eng_mlp_latent_dimensions=[32]"])
    assert cfg["dataset"] == "rmd17-benzene" and cfg["variant"] == "mlp"
    assert cfg["learning_rate"] == 1e-3                 # file over preset (smoke preset: 0.005)
    assert cfg["num_layers"] == 1                       # override over file
    assert cfg["r_max"] == 4.0                          # preset over model default (6.0)
    assert cfg["loss_coeffs"] == {"forces": 10, "energy_per_atom": 1.0}
    assert cfg["edge_eng_mlp_latent_dimensions"] == [32]
    assert resolve_config("rmd17-aspirin", variant="qdi", config_file=f, scale="smoke")["variant"] == "qdi"
    paper = resolve_config("rmd17-aspirin", scale="paper")
    assert paper["max_epochs"] == 3000 and paper["latent_mlp_latent_dimensions"] == [1024, 1024, 1024]
    assert resolve_config("qm9", scale="quick")["loss_coeffs"] == {"energy_per_atom": 1.0}
    with pytest.raises(ConfigError, match="no dataset"):
        resolve_config(scale="smoke")


@pytest.mark.parametrize("variant,dtype", [("allegro", "float64"), ("mlp", "float32"), ("qdi", "float32")])
def test_every_variant_trains(variant: str, dtype: str, tmp_path: Path) -> None:
    cfg = resolve_config("rmd17-aspirin", variant=variant, scale="smoke",
                         overrides={"n_train": 10, "n_val": 5, "n_test": 5, "max_epochs": 2, "default_dtype": dtype})
    run = tmp_path / variant
    res = train(cfg, run_dir=run, progress=False)
    assert res["epochs"] == 2 and torch.isfinite(torch.tensor(res["test"]["f_mae"]))
    ckpt = load_checkpoint(run / "checkpoint.pt")
    from qallegro.training.trainer import build

    init = build({**cfg, **res["statistics"]}, res["species"]).state_dict()
    changed = [k for k, v in ckpt["model"].items() if v.is_floating_point() and not torch.equal(v, init[k])]
    assert any(k.startswith("head") for k in changed), changed   # the variant's head is trained too
    assert all(v.dtype == getattr(torch, dtype) for k, v in ckpt["model"].items()
               if v.is_floating_point() and k not in ("shifts", "scales"))


def test_qm9_energy_only_smoke(tmp_path: Path) -> None:
    cfg = resolve_config("qm9", scale="smoke", overrides={"max_epochs": 2})
    res = train(cfg, run_dir=tmp_path / "qm9", progress=False)
    assert res["val_f_mae"] is None and res["test"]["f_rmse"] is None
    assert 0 < res["test"]["e_mae"] < 1.0          # eV/atom, after the per-species least-squares shift
    shifts = res["statistics"]["per_species_rescale_shifts"]
    assert res["species"] == [1, 6, 7, 8] or res["species"] == [1, 6, 7, 8, 9]
    assert len(shifts) == len(res["species"]) and -20 < shifts[0] < -10   # H about -13.6 eV


def test_resume_is_bit_for_bit_with_the_real_model(tmp_path: Path) -> None:
    over = {"n_train": 10, "n_val": 4, "n_test": 4, "batch_size": 3}
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(resolve_config("rmd17-aspirin", scale="smoke", overrides={**over, "max_epochs": 4}), run_dir=straight,
          progress=False)
    train(resolve_config("rmd17-aspirin", scale="smoke", overrides={**over, "max_epochs": 2}), run_dir=split,
          progress=False)
    train(resolve_config("rmd17-aspirin", scale="smoke", overrides={**over, "max_epochs": 4}), run_dir=split,
          resume=True, progress=False)
    wall = ("wall_s", "epoch_s")
    assert [{k: v for k, v in r.items() if k not in wall} for r in rows(straight)] == \
        [{k: v for k, v in r.items() if k not in wall} for r in rows(split)]
    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(split / "checkpoint.pt")
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert all(torch.equal(x, y) for x, y in zip(a["ema"]["shadow"], b["ema"]["shadow"]))


def test_compiled_training_follows_the_eager_run(tmp_path: Path) -> None:
    """`compile: true` trains through the compiled energy+forces graph (float64: the same numbers up to rounding)
    and resuming may switch it on, as it changes no result."""
    over = {"n_train": 10, "n_val": 4, "n_test": 4, "batch_size": 3, "max_epochs": 2, "default_dtype": "float64"}
    eager = train(resolve_config("rmd17-aspirin", scale="smoke", overrides=over), run_dir=tmp_path / "eager",
                  progress=False)
    fast = train(resolve_config("rmd17-aspirin", scale="smoke", overrides={**over, "compile": True}),
                 run_dir=tmp_path / "compiled", progress=False)
    for key in ("loss", "f_mae", "e_mae"):
        a = [float(r[f"train_{key}"]) for r in rows(tmp_path / "eager")]
        b = [float(r[f"train_{key}"]) for r in rows(tmp_path / "compiled")]
        assert b == pytest.approx(a, rel=1e-8), key
    assert fast["test"]["f_mae"] == pytest.approx(eager["test"]["f_mae"], rel=1e-8)
    assert "compiled energy+forces (batch)" in (tmp_path / "compiled" / "train.log").read_text()
    with pytest.raises(ConfigError, match="compile must be true or false"):
        train(resolve_config("rmd17-aspirin", scale="smoke", overrides={**over, "compile": "yes"}),
              run_dir=tmp_path / "bad", progress=False)
