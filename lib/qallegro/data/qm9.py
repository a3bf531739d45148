"""QM9 (Ramakrishnan et al. 2014): 130,831 molecules (133,885 minus the 3,054 uncharacterized), energies only.

Routes (`source=`), all giving the same table:
- "npz": the mirror's `qm9/qm9_qm9pack.npz` (a conversion of the qm9pack CSVs; fastest),
- "qm9pack": the CSVs of the `qm9pack==1.0.3` PyPI package, installed or as the wheel file
  `qm9/qm9pack-1.0.3-py3-none-any.whl` (`qallegro data fetch qm9pack`),
- "xyz": the original figshare archive `qm9/dsgdb9nsd.xyz.tar.bz2` (or its unpacked folder
  `qm9/dsgdb9nsd.xyz/`) with `qm9/uncharacterized.txt` (`qallegro data fetch qm9`),
- "auto": the first of these that is present.
Parsed CSV/xyz tables are cached under `<cache>/qm9/` (keyed by the inputs' sha256), so they are parsed once.

Labels: `energy="U0"` (default; also "U", "H", "G") is the total energy in eV; `"U0_atomization"` etc.
subtract the free-atom reference energies (`atomref.txt`). Splits: `n_train`/`n_val` molecules drawn with
`seed`, the rest is the test set (default 110,000 / 10,000 / 10,831), saved under `<cache>/splits/`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

import numpy as np
from ase import Atoms

from qallegro.data import registry
from qallegro.data.errors import (
    ChecksumError,
    CorruptFileError,
    DataOptionError,
    InvalidDataError,
    MissingDataError,
)
from qallegro.data.frames import first_frames, labelled_atoms
from qallegro.data.qm9_readers import (
    ENERGY_KEYS,
    read_atomref,
    read_qm9pack_csvs,
    read_table_npz,
    read_uncharacterized,
    read_xyz_files,
    table_to_npz_bytes,
)
from qallegro.data.splits import check_int, check_split, qm9_split
from qallegro.data.units import HARTREE_TO_EV
from qallegro.utils import atomic_write_bytes, atomic_write_text

ROUTES = ("auto", "npz", "qm9pack", "xyz")
TARGETS = (*ENERGY_KEYS, *(f"{k}_atomization" for k in ENERGY_KEYS))
N_QM9_TOTAL = 133885
DEFAULT_N_TRAIN = 110000
DEFAULT_N_VAL = 10000
XYZ_FOLDER = "qm9/dsgdb9nsd.xyz"
_PARSER_VERSION = "1"
Table = dict[str, np.ndarray]


# ----------------------------------------------------------------------------------------------- parsed cache
def _cached(route: str, key: str, build: Callable[[], Table]) -> Table:
    """A parsed table from `<cache>/qm9/`, verified by its recorded sha256, or built and saved there."""
    path = registry.cache_dir() / "qm9" / f"table-{route}-{key[:16]}.npz"
    sidecar = path.with_name(path.name + ".sha256")
    if path.is_file() and sidecar.is_file():
        if registry.file_sha256(path) != sidecar.read_text().strip():
            raise ChecksumError(
                f"cached QM9 table does not match its recorded sha256 ({sidecar}); delete both "
                "files to parse the source again",
                path,
            )
        return read_table_npz(path)
    table = build()
    blob = table_to_npz_bytes(table)
    try:
        atomic_write_bytes(path, blob)
        atomic_write_text(sidecar, hashlib.sha256(blob).hexdigest() + "\n")
    except OSError:
        pass  # read-only cache: parse again next time
    return table


def _key(*parts: str) -> str:
    return hashlib.sha256("|".join((_PARSER_VERSION, *parts)).encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------- qm9pack
def _installed_qm9pack_dir() -> Path | None:
    spec = importlib.util.find_spec("qm9pack")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))) / "data"
    return folder if (folder / "qm9_part1.csv").is_file() else None


def _from_qm9pack(data_dir: str | os.PathLike | None, download: bool) -> Table:
    parts = [f"qm9/qm9pack-part{i}" for i in (1, 2, 3)]
    folder = _installed_qm9pack_dir()
    if folder is not None:
        paths = [registry.verify_file(folder / f"qm9_part{i}.csv", parts[i - 1]) for i in (1, 2, 3)]
        key = _key("qm9pack", *(registry.file_sha256(p) for p in paths))
        return _cached("qm9pack", key, lambda: read_qm9pack_csvs([(p, p) for p in paths]))
    wheel = registry.find("qm9/qm9pack-wheel", data_dir)
    if wheel is None and not download:
        raise MissingDataError(
            registry.missing_message("qm9/qm9pack-wheel", data_dir)
            + "\n  or install the package: pip install qm9pack==1.0.3"
        )
    wheel = registry.locate("qm9/qm9pack-wheel", data_dir, download=download)

    def build() -> Table:
        try:
            with zipfile.ZipFile(wheel) as zf:
                files: list[tuple[Path, IO[bytes] | Path]] = []
                for i in (1, 2, 3):
                    member = registry.get_source(parts[i - 1]).relpath
                    files.append((Path(f"{wheel}!{member}"), zf.open(member)))
                return read_qm9pack_csvs(files)
        except (zipfile.BadZipFile, KeyError, OSError, EOFError) as err:
            raise CorruptFileError(f"cannot read the qm9pack CSVs from the wheel ({err})", wheel) from err

    return _cached("qm9pack", _key("qm9pack-wheel", registry.file_sha256(wheel)), build)


# -------------------------------------------------------------------------------------------------------- xyz
def _xyz_folder(data_dir: str | os.PathLike | None) -> Path | None:
    for _, root in registry.data_roots(data_dir):
        if (root / XYZ_FOLDER).is_dir():
            return root / XYZ_FOLDER
    return None


def _check_xyz_folder(folder: Path) -> str:
    """Structure check of an unpacked archive (a folder has no checksum): every index 1..133,885 once."""
    stats = []
    found = set()
    for f in folder.iterdir():
        m = re.fullmatch(r"dsgdb9nsd_(\d+)\.xyz", f.name)
        if m:
            found.add(int(m.group(1)))
            st = f.stat()
            stats.append(f"{f.name}:{st.st_size}:{st.st_mtime_ns}")
    expected = set(range(1, N_QM9_TOTAL + 1))
    if found != expected:
        lost, extra = sorted(expected - found), sorted(found - expected)
        raise InvalidDataError(
            f"incomplete QM9 xyz folder: {len(found)} files, {len(lost)} missing (first "
            f"{lost[:3]}), {len(extra)} unexpected (first {extra[:3]}); expected "
            f"dsgdb9nsd_000001.xyz .. dsgdb9nsd_{N_QM9_TOTAL:06d}.xyz",
            folder,
        )
    return hashlib.sha256("\n".join(sorted(stats)).encode()).hexdigest()


def _from_xyz(data_dir: str | os.PathLike | None, download: bool, progress: bool) -> Table:
    folder = _xyz_folder(data_dir)
    if folder is not None and registry.find("qm9/xyz-archive", data_dir) is None:
        source, source_key = folder, _check_xyz_folder(folder)
    else:
        source = registry.locate("qm9/xyz-archive", data_dir, download=download)
        source_key = registry.file_sha256(source)
    unchar_path = registry.locate("qm9/uncharacterized", data_dir, download=download)
    excluded = read_uncharacterized(unchar_path)
    key = _key("xyz", source_key, registry.file_sha256(unchar_path))
    return _cached("xyz", key, lambda: read_xyz_files(source, excluded, progress=progress))


# ------------------------------------------------------------------------------------------------------ table
def qm9_table(
    data_dir: str | os.PathLike | None = None,
    source: str = "auto",
    download: bool = False,
    progress: bool = True,
) -> Table:
    """All characterized QM9 molecules as one table (see `qm9_readers`), energies in Hartree."""
    if source not in ROUTES:
        raise DataOptionError(f"option source={source!r} is not one of {', '.join(ROUTES)}")
    if source == "auto":
        rel = {n: registry.get_source(n).relpath for n in ("qm9/npz", "qm9/qm9pack-wheel", "qm9/xyz-archive")}
        candidates = [
            ("npz", rel["qm9/npz"]),
            ("qm9pack", rel["qm9/qm9pack-wheel"]),
            ("xyz", rel["qm9/xyz-archive"]),
            ("xyz", XYZ_FOLDER),
        ]
        present = registry.first_present(candidates, data_dir)
        if present is None and _installed_qm9pack_dir() is not None:
            present = "qm9pack"
        source = present or ("xyz" if download else "none")
    if source == "npz":
        return read_table_npz(registry.locate("qm9/npz", data_dir))
    if source == "qm9pack":
        return _from_qm9pack(data_dir, download)
    if source == "xyz":
        return _from_xyz(data_dir, download, progress)
    raise MissingDataError(
        "QM9 was not found in any layout.\n"
        + registry.missing_message("qm9/npz", data_dir)
        + "\nOther routes: `qallegro data fetch qm9` (original figshare archive), "
        "`qallegro data fetch qm9pack` "
        "(the qm9pack wheel) or `pip install qm9pack==1.0.3`; or load_dataset('qm9', download=True)."
    )


def atom_references(
    data_dir: str | os.PathLike | None = None, download: bool = False
) -> dict[int, np.ndarray]:
    """Free-atom reference energies (Hartree; columns U0, U, H, G) by atomic number."""
    for name in ("qm9/atomref-json", "qm9/atomref-txt"):
        path = registry.find(name, data_dir)
        if path is not None:
            return read_atomref(registry.verify_file(path, name))
    return read_atomref(registry.locate("qm9/atomref-txt", data_dir, download=download))


def energies_ev(
    table: Table, energy: str, data_dir: str | os.PathLike | None = None, download: bool = False
) -> np.ndarray:
    """Per-molecule target energies in eV: total (`"U0"`...) or atomization (`"U0_atomization"`...)."""
    if energy not in TARGETS:
        raise DataOptionError(f"option energy={energy!r} is not one of {', '.join(TARGETS)}")
    base = energy.removesuffix("_atomization")
    values = table[base].copy()
    if energy.endswith("_atomization"):
        refs = atom_references(data_dir, download)
        column = ENERGY_KEYS.index(base)
        per_z = np.zeros(max(refs) + 1)
        for z, row in refs.items():
            per_z[z] = row[column]
        values -= np.add.reduceat(per_z[table["Z"]], table["offsets"][:-1]) if len(values) else 0.0
    return values * HARTREE_TO_EV


def load_qm9(
    split: str = "train",
    data_dir: str | os.PathLike | None = None,
    *,
    n_train: int = DEFAULT_N_TRAIN,
    n_val: int = DEFAULT_N_VAL,
    seed: int = 0,
    energy: str = "U0",
    max_frames: int | None = None,
    source: str = "auto",
    download: bool = False,
    progress: bool = True,
) -> list[Atoms]:
    """QM9 molecules of `split` with `energy` in eV (no forces: QM9 has none).

    `max_frames` keeps the first molecules of the split's (random) order, a deterministic subset.
    """
    check_split(split)
    n_train = check_int("n_train", n_train, 1)
    n_val = check_int("n_val", n_val, 1)
    seed = check_int("seed", seed, 0)
    if max_frames is not None:
        max_frames = check_int("max_frames", max_frames, 1)
    if energy not in TARGETS:
        raise DataOptionError(f"option energy={energy!r} is not one of {', '.join(TARGETS)}")
    table = qm9_table(data_dir, source, download, progress)
    ids = qm9_split(table["index"], n_train, n_val, seed)[split]
    ids = ids[: first_frames(len(ids), max_frames)]
    rows = np.searchsorted(table["index"], ids)
    e = energies_ev(table, energy, data_dir, download)
    o, z, r, smiles, index = table["offsets"], table["Z"], table["R"], table["smiles"], table["index"]
    return [
        labelled_atoms(
            z[o[m] : o[m + 1]],
            r[o[m] : o[m + 1]],
            e[m],
            info={
                "dataset": "qm9",
                "split": split,
                "source_index": int(index[m]),
                "smiles": str(smiles[m]),
                "energy_target": energy,
            },
        )
        for m in rows
    ]
