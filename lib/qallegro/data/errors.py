"""Errors of the data layer. Every one names the file (when there is one) and the problem.

All derive from `DataError` (a `qallegro.errors.DataError`, hence a `QallegroError` and a `ValueError`), so
callers can catch the whole family at once.
"""

from __future__ import annotations

from pathlib import Path

from qallegro import errors


class DataError(errors.DataError):
    """Base class: bad, missing or inconsistent input data. `path` is the file concerned (or None)."""

    def __init__(self, message: str, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else None
        super().__init__(f"{path}: {message}" if path is not None else message)


class UnknownDatasetError(DataError):
    """A dataset or registry name that does not exist."""


class DataOptionError(DataError):
    """A bad split name or option value passed to a loader."""


class MissingDataError(DataError):
    """A required file is in none of the places the loader looks."""


class ChecksumError(DataError):
    """A file whose sha256 differs from the registry's."""


class CorruptFileError(DataError):
    """A file that cannot be read at all (truncated, not the expected format)."""


class InvalidDataError(DataError):
    """A readable file whose content is wrong: missing keys, mismatched shapes, NaN or inf, bad values."""
