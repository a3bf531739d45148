"""Atomic training checkpoints: everything needed to continue a run bit for bit.

A checkpoint (`Checkpoint`) holds the model, optimizer, scheduler and EMA states, the RNG states of torch, numpy
and Python, and the loop's `TrainState`: the epoch counter and position inside the current epoch with that
epoch's data order and partial training errors, the best (validation) weights, and the rows of `epochs.csv`.
The field names of the two classes are the keys of `checkpoint.pt` (format 2, unchanged since before the
classes existed). It is written to a temporary file and renamed, so a crash or Ctrl-C never leaves a
half-written file. It holds only tensors and plain types, carries its sha256 and is read with
`weights_only=True` (`qallegro.torchfile`): loading one never executes code.
"""

from __future__ import annotations

import math
import random
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qallegro import torchfile
from qallegro.errors import TrainingError

FORMAT_VERSION = 2


class CheckpointError(TrainingError):
    """A checkpoint that is missing, truncated, altered or not a qallegro training checkpoint."""


def rng_states() -> dict[str, Any]:
    """The RNG states of torch, numpy and Python as tensors and plain types."""
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    return {"torch": torch.get_rng_state(),
            "numpy": {"kind": str(kind), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                      "pos": int(pos), "has_gauss": int(has_gauss), "gauss": float(gauss)},
            "python": {"version": int(version), "internal": list(internal), "gauss_next": gauss_next}}


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    n = states["numpy"]
    np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = states["python"]
    random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (plus RNG states and a format version) atomically to `path`, with its checksum."""
    torchfile.save(path, {**state, "rng": rng_states(), "format_version": FORMAT_VERSION})


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and verify a checkpoint written by `save_checkpoint` (no code is executed): the plain dict."""
    state = torchfile.load(path, "training checkpoint", CheckpointError)
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a qallegro training checkpoint of format {FORMAT_VERSION}")
    return state


def _admits(hint: Any, value: Any) -> bool:
    """Whether `value` is of the annotated type `hint` (containers by their outer type; float admits int)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_admits(h, value) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if isinstance(value, bool):
        return hint is bool
    if hint is float:
        return isinstance(value, (int, float))
    return isinstance(value, typing.get_origin(hint) or hint)


def _fields_of(cls: type, data: Any, source: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The values of `cls`'s fields in `data` (the checkpoint's keys), checked: every key present, no other
    (but `skip`), each of its field's type; the error names `source` and the key."""
    if not isinstance(data, Mapping):
        raise CheckpointError(f"{source}: expected a mapping, got {type(data).__name__}")
    names = [f.name for f in fields(cls)]
    missing = [n for n in names if n not in data]
    unknown = [k for k in data if k not in names and k not in skip]
    if missing or unknown:
        found = ", ".join([f"missing keys {missing}"] * bool(missing) + [f"unknown keys {unknown}"] * bool(unknown))
        raise CheckpointError(f"{source}: not a qallegro training checkpoint's layout ({found})")
    hints = typing.get_type_hints(cls)
    for name in names:
        hint = hints[name]
        if hint is not TrainState and not _admits(hint, data[name]):
            shown = hint.__name__ if isinstance(hint, type) else str(hint).replace("typing.", "")
            raise CheckpointError(f"{source}: {name}: expected {shown}, got {type(data[name]).__name__}")
    return {n: data[n] for n in names}


@dataclass(eq=False)  # tensors inside: no field-wise ==
class TrainState:
    """Where a run stands: epochs and optimizer steps done, the position inside the current epoch (its data
    `order` and partial training errors `train_acc`, both None between epochs), the training wall time so far,
    the best value of `metrics_key` with its epoch and (EMA) weights, the epochs since then, the rows of
    `epochs.csv`, and why the run stopped (None while it runs). Saved as the checkpoint's `state`."""

    epoch: int = 0
    steps: int = 0
    step_in_epoch: int = 0
    order: list[int] | None = None
    train_acc: dict[str, Any] | None = None
    wall_s: float = 0.0
    best_metric: float = math.inf
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    epochs_since_best: int = 0
    rows: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None

    def to_checkpoint(self) -> dict[str, Any]:
        """The checkpoint's `state` dict (the fields, in their order)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_checkpoint(cls, data: Any, source: str) -> TrainState:
        """The state saved in a checkpoint's `state` dict, checked (`source` names it in errors)."""
        return cls(**_fields_of(cls, data, source))


@dataclass(frozen=True, eq=False)
class Checkpoint:
    """What `checkpoint.pt` holds: the run's identity config (`config.identity`), the species and dataset
    statistics the model was built with, the state dicts of the model, optimizer, scheduler and EMA (None
    without EMA), the loop's `TrainState`, and the RNG states it was saved with (None before it is written)."""

    config: dict[str, Any]
    species: list[int]
    statistics: dict[str, Any]
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    ema: dict[str, Any] | None
    state: TrainState
    rng: dict[str, Any] | None = None

    def write(self, path: str | Path) -> None:
        """Save atomically, with the RNG states of now (`save_checkpoint`)."""
        save_checkpoint(path, {**{f.name: getattr(self, f.name) for f in fields(self) if f.name != "rng"},
                               "state": self.state.to_checkpoint()})

    @classmethod
    def read(cls, path: str | Path) -> Checkpoint:
        """The checkpoint at `path`, verified (`load_checkpoint`) and checked key by key."""
        values = _fields_of(cls, load_checkpoint(path), str(path), skip=("format_version",))
        if values["rng"] is None:
            raise CheckpointError(f"{path}: rng: the RNG states are missing")
        return cls(**{**values, "state": TrainState.from_checkpoint(values["state"], f"{path}: state")})

    def restore_rng(self) -> None:
        """Set the RNG states of torch, numpy and Python to the saved ones."""
        set_rng_states(typing.cast(dict, self.rng))
