"""Reading helpers that turn every kind of bad input into a `DataError` naming the file."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from qallegro.data.errors import CorruptFileError, InvalidDataError


def load_npz(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Read `keys` from an npz: `CorruptFileError` if unreadable, `InvalidDataError` if a key is missing."""
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in keys if k not in data.files]
            if missing:
                raise InvalidDataError(f"missing key(s) {missing}; the file has {sorted(data.files)}", path)
            return {k: data[k] for k in keys}
    except InvalidDataError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, zipfile.LargeZipFile) as err:
        raise CorruptFileError(
            f"cannot read as .npz ({type(err).__name__}: {err}); the file is truncated or corrupt", path
        ) from err


def require_shape(path: Path, name: str, array: np.ndarray, shape: tuple[int | None, ...]) -> None:
    """`InvalidDataError` unless `array` has `shape` (None matches any length)."""
    ok = array.ndim == len(shape) and all(
        s is None or s == a for s, a in zip(shape, array.shape, strict=True)
    )
    if not ok:
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise InvalidDataError(f"{name!r} has shape {array.shape}, expected {want}", path)


def require_finite(path: Path, name: str, array: np.ndarray) -> None:
    """`InvalidDataError` if `array` holds NaN or inf (reports how many and the first position)."""
    bad = ~np.isfinite(array)
    if bad.any():
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InvalidDataError(
            f"{name!r} contains {int(bad.sum())} NaN/inf value(s), first at index {first}", path
        )


def require_numeric(path: Path, name: str, array: np.ndarray) -> np.ndarray:
    """The array as float64; `InvalidDataError` for non-numeric data."""
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InvalidDataError(f"{name!r} has non-numeric dtype {array.dtype}", path)
    return np.asarray(array, dtype=np.float64)


def require_atomic_numbers(
    path: Path, name: str, z: np.ndarray, allowed: tuple[int, ...] | None = None
) -> None:
    """`InvalidDataError` for atomic numbers outside 1..118 (or outside `allowed`)."""
    if not np.issubdtype(z.dtype, np.integer):
        raise InvalidDataError(f"{name!r} must hold integers, got dtype {z.dtype}", path)
    bad = (z < 1) | (z > 118) if allowed is None else ~np.isin(z, allowed)
    if bad.any():
        raise InvalidDataError(
            f"{name!r} holds invalid atomic number(s) {sorted(set(z[bad].tolist()))[:5]}", path
        )
