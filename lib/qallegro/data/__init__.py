"""Datasets as lists of `ase.Atoms` with labels in eV and eV/Å, and the batched graph structure.

- `load_dataset(name, split, data_dir, **options)`: rMD17 aspirin/benzene, QM9, Cu-Li (`datasets`).
- `registry`: every source file with its public URL and sha256; mirror/cache lookup; `fetch`.
- `graph`, `neighbors`: the one batched graph every model reads.
Errors are `DataError` subclasses (`errors`). Nothing is downloaded at import time.
"""

from qallegro.data.datasets import DATASETS, load_dataset
from qallegro.data.errors import (
    ChecksumError,
    CorruptFileError,
    DataError,
    DataOptionError,
    InvalidDataError,
    MissingDataError,
    UnknownDatasetError,
)

__all__ = [
    "DATASETS",
    "ChecksumError",
    "CorruptFileError",
    "DataError",
    "DataOptionError",
    "InvalidDataError",
    "MissingDataError",
    "UnknownDatasetError",
    "load_dataset",
]
