"""Trainer mechanics with a tiny test-only pair potential implementing the model contract.

Covers: config resolution errors, statistics, EMA, epochs.csv, bit-for-bit resume (straight vs 2 + 2 epochs,
and after a mid-epoch interrupt), Ctrl-C in a subprocess, early stopping, energy-only training.
"""

from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from qallegro.data.graph import (
    ATOMIC_NUMBERS,
    BATCH,
    CELL,
    EDGE_CELL_SHIFT,
    EDGE_INDEX,
    POS,
    PTR,
    atoms_to_graph,
)
from qallegro.errors import TrainingError
from qallegro.training import statistics
from qallegro.training.config import TRAIN_DEFAULTS, ConfigError, parse_overrides, validate
from qallegro.training.ema import ExponentialMovingAverage
from qallegro.training.trainer import WALL_COLUMNS, load_run, train

HERE = Path(__file__).resolve().parent


class PairModel(torch.nn.Module):
    """E = sum_i (scale * 1/2 sum_j phi_{Z_i Z_j}(r_ij) + shift_{Z_i}), phi = small MLP of Bessel features
    times a polynomial cutoff. Same call contract as qallegro.models."""

    def __init__(self, config: dict, species: list[int]):
        super().__init__()
        self.config, self.species = dict(config), list(species)
        self.r_max = float(config["r_max"])
        t = len(species)
        self.register_buffer("z_index", torch.full((119,), -1, dtype=torch.long))
        self.z_index[torch.tensor(species)] = torch.arange(t)
        self.freq = torch.nn.Parameter(torch.arange(1, 7, dtype=torch.get_default_dtype()) * math.pi)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(6 + 2 * t, 16), torch.nn.SiLU(), torch.nn.Linear(16, 1))
        shifts = config["per_species_rescale_shifts"]
        self.register_buffer("shift", torch.as_tensor(shifts, dtype=torch.get_default_dtype()).expand(t).clone())
        scale = config["per_species_rescale_scales"]
        self.scale = 1.0 if scale is None else float(scale)
        self.inv_sqrt_n = float(config["avg_num_neighbors"]) ** -0.5

    def forward(self, g: dict, compute_forces: bool = True, compute_stress: bool = False) -> dict:
        pos = g[POS]
        if compute_forces:
            pos = pos.detach().requires_grad_(True)
        i, j = g[EDGE_INDEX]
        vec = pos[j] - pos[i] + torch.einsum("ek,ekl->el", g[EDGE_CELL_SHIFT], g[CELL][g[BATCH][i]])
        r = vec.norm(dim=-1, keepdim=True)
        x = r / self.r_max
        cut = (1 - 28 * x**6 + 48 * x**7 - 21 * x**8) * (x < 1)
        onehot = torch.nn.functional.one_hot(self.z_index[g[ATOMIC_NUMBERS]], len(self.species)).to(pos.dtype)
        feats = torch.cat([torch.sin(self.freq * x) / x, onehot[i], onehot[j]], dim=-1)
        e_edge = (self.mlp(feats) * cut).squeeze(-1)
        n = pos.shape[0]
        atomic = torch.zeros(n, dtype=pos.dtype).index_add(0, i, e_edge) * self.inv_sqrt_n * self.scale
        atomic = atomic + self.shift[self.z_index[g[ATOMIC_NUMBERS]]]
        energy = torch.zeros(g[PTR].numel() - 1, dtype=pos.dtype).index_add(0, g[BATCH], atomic)
        out = {"energy": energy, "atomic_energy": atomic}
        if compute_forces:
            (grad,) = torch.autograd.grad(energy.sum(), pos, create_graph=self.training)
            out["forces"] = -grad
        return out


def build_pair_model(config: dict, species: list[int]) -> PairModel:
    return PairModel(config, species)


def make_dataset(path: Path, n: int = 70, seed: int = 0) -> Path:
    """Rattled CH2O-like molecules labelled with ASE's EMT (C, H, O parameters), as extxyz."""
    rng = np.random.default_rng(seed)
    base = np.array([[0.0, 0.0, 0.0], [1.2, 0.0, 0.0], [-0.6, 0.9, 0.0], [-0.6, -0.9, 0.0]])
    frames = []
    for k in range(n):
        numbers = [6, 8, 1, 1] if k % 3 else [6, 8, 1, 1, 1]
        pos = np.vstack([base, [[0.0, 0.0, 1.1]]])[: len(numbers)] + rng.normal(0, 0.08, (len(numbers), 3))
        atoms = Atoms(numbers=numbers, positions=pos)
        atoms.calc = EMT()
        e, f = atoms.get_potential_energy(), atoms.get_forces()
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f)
        frames.append(atoms)
    write(path, frames, format="extxyz")
    return path


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "mols.extxyz")


def make_config(dataset: Path, **kw) -> dict:
    cfg = dict(TRAIN_DEFAULTS)
    cfg.update(dataset=str(dataset), scale="smoke", model_builder="test_training_mechanics:build_pair_model",
               r_max=3.0, default_dtype="float64", n_train=40, n_val=10, n_test=15, batch_size=4,
               validation_batch_size=8, learning_rate=0.01, max_epochs=4, ema_decay=0.9, threads=1)
    cfg.update(kw)
    return cfg


def read_rows(path: Path) -> list[dict]:
    with open(path) as fh:
        return list(csv.DictReader(fh))


def strip_wall(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in WALL_COLUMNS} for r in rows]


def final_weights(run_dir: Path) -> dict:
    import qallegro.training.checkpoint as ck

    state = ck.load_checkpoint(run_dir / "checkpoint.pt")
    return {"model": state["model"], "ema": state["ema"]["shadow"], "opt": state["optimizer"]["state"]}


def assert_same_weights(a: dict, b: dict) -> None:
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    for x, y in zip(a["ema"], b["ema"]):
        assert torch.equal(x, y)
    for k in a["opt"]:
        for name in ("exp_avg", "exp_avg_sq"):
            assert torch.equal(a["opt"][k][name], b["opt"][k][name])


# ------------------------------------------------------------------------------------------ unit pieces

def test_overrides_are_yaml_typed() -> None:
    out = parse_overrides(["learning_rate=1e-3", "edge_eng_mlp_latent_dimensions=[32]", "use_ema=false",
                           "loss_coeffs.forces=0", "n_test=null"])
    assert out == {"learning_rate": 1e-3, "edge_eng_mlp_latent_dimensions": [32], "use_ema": False,
                   "loss_coeffs.forces": 0, "n_test": None}
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["learning_rate"])


def test_validate_names_the_bad_key(dataset: Path) -> None:
    with pytest.raises(ConfigError, match="batch_size"):
        validate(make_config(dataset, batch_size=0))
    with pytest.raises(ConfigError, match="loss_coeffs"):
        validate(make_config(dataset, loss_coeffs={"force": 1.0}))


def test_statistics_against_numpy() -> None:
    rng = np.random.default_rng(1)
    mu = {1: -13.6, 6: -1029.0, 8: -2040.0}
    graphs, rows, targets = [], [], []
    for _k in range(30):
        numbers = rng.choice([1, 6, 8], size=rng.integers(3, 7))
        atoms = Atoms(numbers=numbers, positions=rng.uniform(0, 4, (len(numbers), 3)))
        e = sum(mu[z] for z in numbers) + rng.normal(0, 0.01)
        f = rng.normal(0, 0.5, (len(numbers), 3))
        atoms.calc = SinglePointCalculator(atoms, energy=e, forces=f)
        graphs.append(atoms_to_graph(atoms, 2.5))
        rows.append([np.sum(numbers == z) for z in (1, 6, 8)])
        targets.append(e)
    species = [1, 6, 8]
    shifts = statistics.per_species_energy_shifts(graphs, species)
    np.testing.assert_allclose(shifts, [mu[1], mu[6], mu[8]], atol=0.05)
    edges = sum(g[EDGE_INDEX].shape[1] for g in graphs)
    atoms_n = sum(g[POS].shape[0] for g in graphs)
    assert statistics.avg_num_neighbors(graphs) == pytest.approx(edges / atoms_n)
    allf = torch.cat([g["forces"] for g in graphs])
    assert statistics.forces_rms(graphs) == pytest.approx(float(allf.pow(2).mean().sqrt()))
    e_per_atom = np.array(targets) / np.array(rows).sum(1)
    assert statistics.per_atom_energy_mean(graphs) == pytest.approx(e_per_atom.mean())
    stats = statistics.resolve_statistics(
        {"avg_num_neighbors": "auto", "per_species_rescale_shifts": "dataset_per_species_total_energy_mean",
         "per_species_rescale_scales": "dataset_per_atom_energy_residual_std"}, graphs, species)
    assert stats["per_species_rescale_scales"] < 0.01  # residual of an exact per-species fit: tiny
    with pytest.raises(ValueError, match="unknown value"):
        statistics.resolve_statistics({"per_species_rescale_shifts": "dataset_mean"}, graphs, species)


def test_ema_matches_torch_ema_formula() -> None:
    p = torch.nn.Parameter(torch.zeros(3))
    ema = ExponentialMovingAverage([p], decay=0.99, use_num_updates=True)
    shadow = torch.zeros(3)
    for n in range(1, 6):
        with torch.no_grad():
            p.add_(1.0)
        ema.update()
        d = min(0.99, (1 + n) / (10 + n))
        shadow = d * shadow + (1 - d) * p.detach()
        assert torch.allclose(ema.shadow[0], shadow)
    with ema.average_parameters():
        assert torch.allclose(p, shadow)
    assert torch.equal(p.detach(), torch.full((3,), 5.0))


# ------------------------------------------------------------------------------------------ training runs

def test_training_reduces_error_and_writes_run_files(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    res = train(make_config(dataset, max_epochs=6), run_dir=run, progress=False)
    for name in ("config.yaml", "env.json", "statistics.json", "epochs.csv", "checkpoint.pt", "metrics.json",
                 "train.log"):
        assert (run / name).is_file(), name
    rows = read_rows(run / "epochs.csv")
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert float(rows[-1]["val_f_mae"]) < 0.7 * float(rows[0]["val_f_mae"])
    assert res["epochs"] == 6 and res["stop_reason"] == "max_epochs"
    assert res["test"]["n_structures"] == 15 and math.isfinite(res["test"]["f_mae"])
    # the reported validation error is the best epoch's EMA weights, which load_run returns
    best = min(rows, key=lambda r: float(r["val_loss"]))
    assert res["best_epoch"] == int(best["epoch"])
    assert res["val_f_mae"] == pytest.approx(float(best["val_f_mae"]), rel=1e-12)
    from qallegro.training.data import load_structures, to_graphs
    from qallegro.training.evaluate import evaluate

    test_graphs = to_graphs(load_structures(make_config(dataset))["test"], 3.0)
    again = evaluate(load_run(run), test_graphs, batch_size=5)
    assert again["f_mae"] == pytest.approx(res["test"]["f_mae"], rel=1e-10)
    # a finished run with the same config is returned, not repeated
    mtime = (run / "epochs.csv").stat().st_mtime_ns
    assert train(make_config(dataset, max_epochs=6), run_dir=run, progress=False)["test"] == res["test"]
    assert (run / "epochs.csv").stat().st_mtime_ns == mtime
    with pytest.raises(ConfigError, match="learning_rate"):
        train(make_config(dataset, max_epochs=6, learning_rate=0.5), run_dir=run, resume=True, progress=False)


def test_resume_is_bit_for_bit(dataset: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    train(make_config(dataset, max_epochs=4), run_dir=straight, progress=False)
    split = tmp_path / "split"
    train(make_config(dataset, max_epochs=2), run_dir=split, progress=False)
    with pytest.raises(TrainingError, match="resume"):
        train(make_config(dataset, max_epochs=4), run_dir=split, progress=False)
    train(make_config(dataset, max_epochs=4), run_dir=split, resume=True, progress=False)
    assert strip_wall(read_rows(straight / "epochs.csv")) == strip_wall(read_rows(split / "epochs.csv"))
    assert len(read_rows(split / "epochs.csv")) == 4
    assert_same_weights(final_weights(straight), final_weights(split))


def test_mid_epoch_interrupt_resumes_bit_for_bit(dataset: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from qallegro.training import trainer as tr

    straight = tmp_path / "straight"
    train(make_config(dataset, max_epochs=3), run_dir=straight, progress=False)
    run = tmp_path / "interrupted"
    calls = {"n": 0}
    real_step = tr.Trainer._step

    def step_then_interrupt(self, batch, acc):  # simulate Ctrl-C arriving during step 14 (epoch 2)
        calls["n"] += 1
        if calls["n"] == 14:
            self.interrupt.requested = True
        return real_step(self, batch, acc)

    monkeypatch.setattr(tr.Trainer, "_step", step_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        train(make_config(dataset, max_epochs=3), run_dir=run, progress=False)
    monkeypatch.setattr(tr.Trainer, "_step", real_step)
    state = tr.load_checkpoint(run / "checkpoint.pt")["state"]
    assert (state["epoch"], state["step_in_epoch"]) == (1, 4)
    train(make_config(dataset, max_epochs=3), run_dir=run, resume=True, progress=False)
    assert strip_wall(read_rows(straight / "epochs.csv")) == strip_wall(read_rows(run / "epochs.csv"))
    assert_same_weights(final_weights(straight), final_weights(run))


def test_sigint_in_subprocess_leaves_usable_checkpoint(dataset: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = make_config(dataset, max_epochs=10000, n_train=40)
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg))
    script = ("import sys, yaml; from qallegro.training import train\n"
              f"train(yaml.safe_load(open({str(cfg_path)!r})), run_dir={str(run)!r}, "
              "resume='--resume' in sys.argv, progress=False)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 120
    while not (run / "epochs.csv").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert proc.poll() is None, proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    # the checkpoint loads and says where the run stopped; its model loads too
    import qallegro.training.checkpoint as ck

    saved = ck.load_checkpoint(run / "checkpoint.pt")["state"]
    epochs_done = saved["epoch"]
    assert epochs_done >= 1 and saved["steps"] == epochs_done * 10 + saved["step_in_epoch"]
    assert isinstance(load_run(run), PairModel)
    # resume with a budget of two more epochs: continues from the saved position
    cfg["max_epochs"] = epochs_done + 2
    cfg_path.write_text(yaml.safe_dump(cfg))
    subprocess.run([sys.executable, "-c", script, "--resume"], env=env, check=True, capture_output=True)
    rows = read_rows(run / "epochs.csv")
    assert [int(r["epoch"]) for r in rows] == list(range(1, epochs_done + 3))


def test_early_stopping_and_wall_clock(dataset: Path, tmp_path: Path) -> None:
    # a factor-0.1 scheduler with patience 0 hits the LR floor after two epochs without improvement
    res = train(make_config(dataset, max_epochs=50, lr_scheduler_patience=0, lr_scheduler_factor=0.1,
                            early_stopping_lr_floor=2e-4, learning_rate=0.01, early_stopping_patience=1000),
                run_dir=tmp_path / "a", progress=False)
    rows = read_rows(tmp_path / "a" / "epochs.csv")
    assert res["stop_reason"] == "early_stopping_lr_floor" and res["epochs"] < 50
    assert float(rows[0]["lr"]) == 0.01 and float(rows[-1]["lr"]) == pytest.approx(1e-3)  # then 1e-4 < floor
    res = train(make_config(dataset, max_epochs=50, early_stopping_patience=2, learning_rate=0.0,
                            early_stopping_lr_floor=0.0),
                run_dir=tmp_path / "b", progress=False)
    assert res["stop_reason"] == "early_stopping_patience" and res["epochs"] == 3  # best at 1, then 2 more
    res = train(make_config(dataset, max_epochs=50, max_wall_s=0.0), run_dir=tmp_path / "c", progress=False)
    assert res["stop_reason"] == "max_wall_s" and res["epochs"] == 0
    res = train(make_config(dataset, max_epochs=50, max_wall_s=1e-6), run_dir=tmp_path / "d", progress=False)
    rows = read_rows(tmp_path / "d" / "epochs.csv")
    assert res["stop_reason"] == "max_wall_s" and res["epochs"] == 1 and int(rows[0]["steps"]) == 1


def test_energy_only_training(dataset: Path, tmp_path: Path) -> None:
    res = train(make_config(dataset, loss_coeffs={"energy_per_atom": 1.0}, max_epochs=3,
                            per_species_rescale_shifts="dataset_per_species_total_energy_mean",
                            per_species_rescale_scales="dataset_per_atom_energy_residual_std",
                            metrics_key="val_e_mae"),
                run_dir=tmp_path / "e", progress=False)
    rows = read_rows(tmp_path / "e" / "epochs.csv")
    assert all(r["val_f_mae"] == "nan" for r in rows)
    assert res["test"]["f_mae"] is None and res["val_f_mae"] is None and math.isfinite(res["test"]["e_mae"])
    assert '"f_mae": null' in (tmp_path / "e" / "metrics.json").read_text()
    assert isinstance(res["statistics"]["per_species_rescale_shifts"], list)
