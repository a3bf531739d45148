"""The dataset registry: one `DatasetSpec` per dataset, and `load_dataset(name, split, data_dir, **options)`.

Every reader of a dataset's facts (the CLIs' help and `qallegro data info`, the HPO objective's error metric,
the pipeline's and the book's labels) asks `dataset_spec(name)`. A new dataset is one `register_dataset` call
(or one entry in `DATASETS` below); a path to an ASE-readable file (extxyz, ...) works as a dataset without
any registration (`dataset_spec(path)` describes it; the trainer splits it at random).
"""

from __future__ import annotations

import importlib
import inspect
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qallegro.data.errors import DataError, DataOptionError, UnknownDatasetError
from qallegro.data.splits import check_split
from qallegro.utils import FieldView

if TYPE_CHECKING:
    from ase import Atoms

UNITS = {"positions": "Å", "energy": "eV", "forces": "eV/Å"}  # every loader returns these


@dataclass(frozen=True)
class DatasetSpec:
    """What qallegro knows about one dataset.

    `loader` is "module:function" with the signature `function(*args, split, data_dir, **options)`; `args` are
    fixed leading arguments (rMD17's molecule). `options` lists the keyword options it accepts (read from the
    loader's signature when None). `group_key` names the `Atoms.info` key that groups frames (frames of one
    structure's relaxation or MD run), None where frames are independent.
    """

    name: str
    label: str                      # as the paper and the book name it
    description: str
    loader: str | None              # None: a structure file, split at random by the trainer
    has_forces: bool
    periodic: bool
    split_rule: str                 # how train/val/test are drawn, in words
    source_units: str               # the units of the files before conversion to `UNITS`
    args: tuple[Any, ...] = ()
    group_key: str | None = None
    extra_splits: tuple[str, ...] = ()   # splits beyond train/val/test (Cu-Li: "ood", the held-out interface)
    downloadable: bool = True       # False: generated locally (Cu-Li) or a user's file
    in_paper: bool = False          # one of the paper's four datasets
    units: Mapping[str, str] = field(default_factory=lambda: dict(UNITS))

    def function(self) -> Callable[..., list[Atoms]]:
        """The loader function (imported on first use)."""
        if self.loader is None:
            raise DataError(f"dataset {self.name!r} is a structure file; the trainer splits it (n_train, n_val)")
        module, _, name = self.loader.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except ModuleNotFoundError as err:
            if err.name == module:
                raise DataError(f"the {self.label} loader ({module}) is not part of this installation") from err
            raise

    def options(self) -> set[str] | None:
        """The keyword options the loader accepts besides split and data_dir (None: any, it takes **options)."""
        params = list(inspect.signature(self.function()).parameters.values())[len(self.args):]
        if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params):
            return None
        kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        return {p.name for p in params if p.kind in kinds} - {"split", "data_dir"}

    def load(self, split: str, data_dir: str | os.PathLike | None = None, **options: Any) -> list[Atoms]:
        """The structures of `split`, options checked against the loader's signature."""
        if split not in self.extra_splits:
            check_split(split)
        allowed = self.options()
        unknown = sorted(set(options) - allowed) if allowed is not None else []
        if unknown:
            raise DataOptionError(
                f"unknown option(s) {unknown} for dataset {self.name!r}; accepted: {', '.join(sorted(allowed or ()))}"
            )
        return self.function()(*self.args, split=split, data_dir=data_dir, **options)


_RMD17: dict[str, Any] = {
    "loader": "qallegro.data.rmd17:load_rmd17", "has_forces": True, "periodic": False, "in_paper": True,
    "split_rule": "official split file (1000 train / 1000 test frames); 950/50 train/val by a saved seeded draw "
                  "(data/splits)",
    "source_units": "kcal/mol, kcal/mol/Å (converted)",
}

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec("rmd17-aspirin", "rMD17-aspirin", "rMD17 aspirin (C9H8O4, 21 atoms): PBE/def2-SVP energies and "
                    "forces; 950/50/1000 frames", args=("aspirin",), **_RMD17),
        DatasetSpec("rmd17-benzene", "rMD17-benzene", "rMD17 benzene (C6H6, 12 atoms): PBE/def2-SVP energies and "
                    "forces; 950/50/1000 frames", args=("benzene",), **_RMD17),
        DatasetSpec("qm9", "QM9", "QM9: 130,831 small organic molecules, B3LYP/6-31G(2df,p) energies (no forces); "
                    "110k/10k/rest", loader="qallegro.data.qm9:load_qm9", has_forces=False, periodic=False,
                    split_rule="seeded permutation of the molecules: n_train / n_val / rest (saved in the cache)",
                    source_units="Hartree (converted); U0", in_paper=True),
        DatasetSpec("culi", "Cu-Li", "Cu-Li slabs and interfaces, generated by `qallegro culi generate` "
                    "(qallegro.data.culi)", loader="qallegro.data.culi:load_culi", has_forces=True, periodic=True,
                    split_rule="the indices saved in splits.json by the generator: by group (split version 2: whole "
                    "structure groups, MD blocks with buffers, a held-out interface `ood`) or at random (version 1)",
                    source_units="eV, eV/Å (SevenNet-0 stand-in labels)", group_key="group", extra_splits=("ood",),
                    downloadable=False,
                    in_paper=True),
    )
}


# name -> label of every registered dataset (a read-only view, always current)
DATASET_LABELS: Mapping[str, str] = FieldView(DATASETS, "label")


def register_dataset(spec: DatasetSpec) -> DatasetSpec:
    """Add `spec` to the registry (a new name; `ValueError` when it is taken)."""
    if spec.name in DATASETS:
        raise ValueError(f"dataset {spec.name!r} is already registered")
    DATASETS[spec.name] = spec
    return spec


def is_structure_file(name: str | os.PathLike) -> bool:
    """Whether `name` is a path (to a file ASE reads) rather than a registered name."""
    path = Path(name)
    return str(name) not in DATASETS and (bool(path.suffix) or "/" in str(name) or path.is_file())


@cache
def _file_spec(path: Path, mtime_ns: int) -> DatasetSpec:
    from ase.io import read

    try:
        first = read(path, index=0)
    except Exception as err:  # ASE raises many types for unreadable files
        raise DataError(f"cannot read structures with ASE ({type(err).__name__}: {err})", path) from err
    results = first.calc.results if first.calc is not None else {}
    return DatasetSpec(str(path), path.name, f"structures of {path}", loader=None, has_forces="forces" in results,
                       periodic=bool(first.pbc.any()), split_rule="random (seed dataset_seed): n_train / n_val / rest",
                       source_units="as in the file (eV, eV/Å expected)", downloadable=False)


def dataset_spec(name: str | os.PathLike) -> DatasetSpec:
    """The spec of a registered dataset, or of a structure file (read from its first frame).

    `UnknownDatasetError` lists the known names; `MissingDataError` names a path that does not exist.
    """
    if str(name) in DATASETS:
        return DATASETS[str(name)]
    if is_structure_file(name):
        from qallegro.data.errors import MissingDataError

        path = Path(name).expanduser()
        if not path.is_file():
            raise MissingDataError("dataset file not found", path)
        return _file_spec(path.resolve(), path.stat().st_mtime_ns)
    raise UnknownDatasetError(f"unknown dataset {str(name)!r}; available: {', '.join(DATASETS)} "
                              "(or give a path to a structure file ASE reads, e.g. an .extxyz)")


def dataset_names(paper_only: bool = False) -> tuple[str, ...]:
    """The registered names (those of the paper's datasets only, when `paper_only`)."""
    return tuple(n for n, s in DATASETS.items() if s.in_paper or not paper_only)


def load_dataset(
    name: str, split: str = "train", data_dir: str | os.PathLike | None = None, **options: Any
) -> list[Atoms]:
    """The structures of registered dataset `name` in `split` ("train", "val", "test"), in eV and eV/Å.

    Each `Atoms` carries a `SinglePointCalculator` (`get_potential_energy()`, `get_forces()` where forces
    exist) and `info` keys `dataset`, `split` and `source_index` (rMD17: the MD17 frame index `old_indices`,
    with `source_row`/`source_file`; QM9: the gdb index).

    Options (all datasets): `max_frames` (first frames of the split), `download` (fetch missing files).
    rMD17: `split_index` 1-5, `seed` (950/50 draw), `source` "auto"|"npz"|"archive".
    QM9: `n_train`, `n_val`, `seed`, `energy` ("U0", "U0_atomization", ...), `source`
    "auto"|"npz"|"qm9pack"|"xyz".  Cu-Li: `scale`, `labeler`.
    Files are looked for in `data_dir`, then `$QALLEGRO_DATA`, then the download cache
    (`qallegro.data.registry`). A structure file is not split here: the trainer splits it.
    """
    if str(name) not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {str(name)!r}; available: {', '.join(DATASETS)}")
    return DATASETS[str(name)].load(split, data_dir, **options)
