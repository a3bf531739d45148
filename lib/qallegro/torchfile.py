"""Torch files with a checksum, loaded without executing code: model files and training checkpoints.

The file is `torch.save`'s bytes followed by a trailer `\\nqallegro-sha256:<64 hex digits>\\n` (the sha256 of
those bytes). `load` verifies the checksum before it unpickles, and unpickles with `weights_only=True`, so the
objects may only be tensors and plain types (dict, list, tuple, str, int, float, bool, None). A truncated,
flipped or foreign file is refused with an error naming the file.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import torch

from qallegro.errors import QallegroError
from qallegro.utils import atomic_write_bytes

MAGIC = b"\nqallegro-sha256:"
TRAILER = len(MAGIC) + 64 + 1


def save(path: str | Path, obj: Any) -> Path:
    """Write `obj` (tensors and plain types) with its checksum, atomically."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    payload = buf.getvalue()
    return atomic_write_bytes(path, payload + MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n")


def load(path: str | Path, what: str, error: type[QallegroError],
         map_location: str | torch.device = "cpu") -> Any:
    """The object saved by `save` at `path`; `what` ("model file", ...) and `error` (the floor's error class)
    word the error raised for a missing, truncated, altered or unreadable file."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise error(f"{path}: no {what} there") from None
    except OSError as err:
        raise error(f"{path}: cannot read the {what} ({err.strerror})") from err
    payload, trailer = data[:-TRAILER], data[-TRAILER:]
    if len(data) < TRAILER or not trailer.startswith(MAGIC) or not trailer.endswith(b"\n"):
        raise error(f"{path}: not a qallegro {what} (no checksum trailer: truncated, or written by another "
                    "program or an older qallegro)")
    if hashlib.sha256(payload).hexdigest().encode() != trailer[len(MAGIC):-1]:
        raise error(f"{path}: the {what} is corrupt (its sha256 differs from the one stored in it)")
    try:
        return torch.load(io.BytesIO(payload), map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises several types; weights_only refuses anything but plain objects
        first = (str(err).strip().splitlines() or [""])[0]
        raise error(f"{path}: the {what} holds objects other than tensors and plain types "
                    f"({type(err).__name__}: {first[:200]})") from err
