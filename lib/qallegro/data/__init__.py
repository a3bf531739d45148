"""Datasets as lists of `ase.Atoms` with labels in eV and eV/Å, and the batched graph structure.

- `load_dataset(name, split, data_dir, **options)`: rMD17 aspirin/benzene, QM9, Cu-Li; `dataset_spec(name)`:
  what the registry (`datasets.DATASETS`) knows of a dataset or a structure file; `register_dataset(spec)`.
- `registry`: every source file with its public URL and sha256; mirror/cache lookup; `fetch`.
- `graph`, `neighbors`: the one batched graph every model reads.
Errors are `DataError` subclasses (`errors`). Nothing is downloaded at import time.
"""

from qallegro.data.datasets import DATASETS, DatasetSpec, dataset_spec, load_dataset, register_dataset
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
    "DatasetSpec",
    "InvalidDataError",
    "MissingDataError",
    "UnknownDatasetError",
    "dataset_spec",
    "load_dataset",
    "register_dataset",
]
