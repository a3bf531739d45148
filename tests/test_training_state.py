"""The trainer's state (`qallegro.training.checkpoint.TrainState`) and checkpoints written before it existed.

`fixtures/checkpoint_v2/` holds a run interrupted inside its second epoch and the same run resumed, both written
by the code of commit 4fe5a42 (`make_fixture.py`). Today's code must resume the interrupted run to exactly the
resumed one, and write checkpoints of exactly that layout (keys, their order, the types and tensors).
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml
from qallegro import torchfile
from qallegro.training.checkpoint import Checkpoint, CheckpointError, TrainState, load_checkpoint
from qallegro.training.trainer import WALL_COLUMNS, load_run, train

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "checkpoint_v2"


def assert_same(a: Any, b: Any, where: str = "checkpoint") -> None:
    """`a` and `b` hold the same keys in the same order, the same types, equal tensors and numbers (wall-clock
    times only by type)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            if k in WALL_COLUMNS:
                assert type(a[k]) is type(b[k]), f"{where}.{k}"
            else:
                assert_same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), f"{where}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b), where
    elif isinstance(a, float) and math.isnan(a):
        assert math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def rows_without_wall(path: Path) -> list[list[str]]:
    lines = [line.split(",") for line in path.read_text().splitlines()]
    keep = [i for i, name in enumerate(lines[0]) if name not in WALL_COLUMNS]
    return [[cells[i] for i in keep] for cells in lines]


@pytest.fixture()
def interrupted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the interrupted run; the working directory holds its dataset (the config names it relatively)."""
    shutil.copyfile(FIXTURE / "mols.extxyz", tmp_path / "mols.extxyz")
    run = shutil.copytree(FIXTURE / "interrupted", tmp_path / "run")
    monkeypatch.chdir(tmp_path)
    return run


def test_a_checkpoint_of_the_earlier_code_resumes_bit_for_bit(interrupted: Path) -> None:
    saved = load_checkpoint(interrupted / "checkpoint.pt")["state"]
    assert (saved["epoch"], saved["step_in_epoch"]) == (1, 2) and saved["best_state"] is not None
    cfg = yaml.safe_load((interrupted / "config.yaml").read_text())
    result = train(cfg, run_dir=interrupted, resume=True, progress=False)
    assert (result.epochs, result.steps, result.stop_reason) == (3, 12, "max_epochs")
    expected = FIXTURE / "resumed"
    assert rows_without_wall(interrupted / "epochs.csv") == rows_without_wall(expected / "epochs.csv")
    ours, theirs = load_checkpoint(interrupted / "checkpoint.pt"), load_checkpoint(expected / "checkpoint.pt")
    assert ours.pop("config") == theirs.pop("config")   # in the order of the caller's config: compared as dicts
    theirs["state"]["wall_s"] = ours["state"]["wall_s"]
    assert_same(ours, theirs)


def test_load_run_reads_the_best_weights_of_an_earlier_checkpoint(interrupted: Path) -> None:
    model = load_run(interrupted)
    best = load_checkpoint(interrupted / "checkpoint.pt")["state"]["best_state"]
    assert not model.training
    assert_same(dict(model.state_dict()), dict(best))


def test_train_state_reads_and_writes_the_saved_layout() -> None:
    saved = load_checkpoint(FIXTURE / "interrupted" / "checkpoint.pt")
    state = TrainState.from_checkpoint(saved["state"], "fixture")
    assert (state.epoch, state.steps, state.step_in_epoch, state.best_epoch) == (1, 6, 2, 1)
    assert sorted(state.order) == list(range(16)) and len(state.rows) == 1 and state.stop_reason is None
    assert_same(state.to_checkpoint(), saved["state"])
    fresh = TrainState().to_checkpoint()
    assert list(fresh) == list(saved["state"]) and fresh["best_metric"] == math.inf and fresh["rows"] == []
    ckpt = Checkpoint.read(FIXTURE / "interrupted" / "checkpoint.pt")
    assert ckpt.species == [1, 6, 8] and ckpt.rng is not None
    assert_same(ckpt.state.to_checkpoint(), saved["state"])


@pytest.mark.parametrize("change,message", [
    (lambda c: c["state"].pop("best_state"), r"state: .*missing keys \['best_state'\]"),
    (lambda c: c["state"].update(epoch="1"), r"state: epoch: expected int, got str"),
    (lambda c: c["state"].update(note=1), r"state: .*unknown keys \['note'\]"),
    (lambda c: c.pop("optimizer"), r"checkpoint\.pt: .*missing keys \['optimizer'\]"),
    (lambda c: c.update(species="CHO"), r"checkpoint\.pt: species: expected list\[int\], got str"),
])
def test_a_checkpoint_of_another_layout_is_refused_by_name(interrupted: Path, change, message: str) -> None:
    raw = load_checkpoint(interrupted / "checkpoint.pt")
    change(raw)
    torchfile.save(interrupted / "checkpoint.pt", raw)
    cfg = yaml.safe_load((interrupted / "config.yaml").read_text())
    with pytest.raises(CheckpointError, match=message) as err:
        train(cfg, run_dir=interrupted, resume=True, progress=False)
    assert str(interrupted / "checkpoint.pt") in str(err.value) and "\n" not in str(err.value)
