"""Atomic training checkpoints: everything needed to continue a run bit for bit.

A checkpoint holds the model, optimizer, scheduler and EMA states, the best (validation) weights, the RNG
states of torch, numpy and Python, the epoch counter and position inside the current epoch with that epoch's
data order and partial training errors, and the rows of `epochs.csv`. It is written to a temporary file and
renamed, so a crash or Ctrl-C never leaves a half-written file. It holds only tensors and plain types, carries
its sha256 and is read with `weights_only=True` (`qallegro.torchfile`): loading one never executes code.
"""

from __future__ import annotations

import random
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
    """Read and verify a checkpoint written by `save_checkpoint` (no code is executed)."""
    state = torchfile.load(path, "training checkpoint", CheckpointError)
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: not a qallegro training checkpoint of format {FORMAT_VERSION}")
    return state
