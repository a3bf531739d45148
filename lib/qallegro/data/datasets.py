"""`load_dataset(name, split, data_dir, **options)`: every dataset as a list of labelled `ase.Atoms`."""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable
from typing import Any

from ase import Atoms

from qallegro.data.errors import DataError, DataOptionError, UnknownDatasetError
from qallegro.data.splits import check_split

DATASETS: dict[str, str] = {
    "rmd17-aspirin": "rMD17 aspirin (C9H8O4, 21 atoms): PBE/def2-SVP energies and forces; 950/50/1000 frames",
    "rmd17-benzene": "rMD17 benzene (C6H6, 12 atoms): PBE/def2-SVP energies and forces; 950/50/1000 frames",
    "qm9": "QM9: 130,831 small organic molecules, B3LYP/6-31G(2df,p) energies (no forces); 110k/10k/rest",
    "culi": "Cu-Li slabs and interfaces (qallegro.data.culi)",
}


def _loader(name: str) -> Callable[..., list[Atoms]]:
    if name.startswith("rmd17-"):
        from qallegro.data.rmd17 import load_rmd17

        molecule = name.removeprefix("rmd17-")
        return lambda split, data_dir, **kw: load_rmd17(molecule, split, data_dir, **kw)
    if name == "qm9":
        from qallegro.data.qm9 import load_qm9

        return load_qm9
    try:
        module = importlib.import_module("qallegro.data.culi")
    except ModuleNotFoundError as err:
        if err.name == "qallegro.data.culi":
            raise DataError("the Cu-Li loader (qallegro.data.culi) is not part of this installation") from err
        raise
    return lambda split, data_dir, **kw: module.load_culi(split=split, data_dir=data_dir, **kw)


def _options(name: str) -> set[str] | None:
    """The keyword options a dataset accepts (None: not known here, the loader checks them)."""
    if name.startswith("rmd17-"):
        from qallegro.data.rmd17 import load_rmd17

        fn: Callable[..., Any] = load_rmd17
    elif name == "qm9":
        from qallegro.data.qm9 import load_qm9

        fn = load_qm9
    else:
        return None
    return {p.name for p in inspect.signature(fn).parameters.values() if p.kind is p.KEYWORD_ONLY}


def load_dataset(
    name: str, split: str = "train", data_dir: str | os.PathLike | None = None, **options: Any
) -> list[Atoms]:
    """The structures of dataset `name` in `split` ("train", "val", "test"), labelled in eV and eV/Å.

    Each `Atoms` carries a `SinglePointCalculator` (`get_potential_energy()`, `get_forces()` where forces
    exist) and `info` keys `dataset`, `split` and `source_index` (rMD17: the MD17 frame index `old_indices`,
    with `source_row`/`source_file`; QM9: the gdb index).

    Options (all datasets): `max_frames` (first frames of the split), `download` (fetch missing files).
    rMD17: `split_index` 1-5, `seed` (950/50 draw), `source` "auto"|"npz"|"archive".
    QM9: `n_train`, `n_val`, `seed`, `energy` ("U0", "U0_atomization", ...), `source`
    "auto"|"npz"|"qm9pack"|"xyz".
    Files are looked for in `data_dir`, then `$QALLEGRO_DATA`, then the download cache
    (`qallegro.data.registry`).
    """
    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    if not (name == "culi" and split == "ood"):  # the held-out interface of a Cu-Li group split
        check_split(split)
    allowed = _options(name)
    if allowed is not None:
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise DataOptionError(
                f"unknown option(s) {unknown} for dataset {name!r}; accepted: {', '.join(sorted(allowed))}"
            )
    return _loader(name)(split, data_dir, **options)
