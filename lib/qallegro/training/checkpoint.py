"""Atomic training checkpoints: everything needed to continue a run bit for bit.

A checkpoint holds the model, optimizer, scheduler and EMA states, the best (validation) weights, the RNG
states of torch, numpy and Python, the epoch counter and position inside the current epoch with that epoch's
data order and partial training errors, and the rows of `epochs.csv`. It is written to a temporary file and
renamed, so a crash or Ctrl-C never leaves a half-written file.
"""

from __future__ import annotations

import io
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from qallegro.utils import atomic_write_bytes

FORMAT_VERSION = 1


def rng_states() -> dict[str, Any]:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_states(states: dict[str, Any]) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> None:
    """Write `state` (plus RNG states and a format version) atomically to `path`."""
    buf = io.BytesIO()
    torch.save({**state, "rng": rng_states(), "format_version": FORMAT_VERSION}, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint written by `save_checkpoint` (a trusted file of this run: it holds RNG states)."""
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several types for corrupt files
        raise ValueError(f"{path}: not a readable training checkpoint ({err})") from err
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: not a qallegro training checkpoint (format {FORMAT_VERSION})")
    return state
