"""Readers for the three QM9 layouts, each returning one table (the layout of the mirror's `qm9_qm9pack.npz`).

A table is a dict of arrays: `index [M]` (QM9/gdb index, sorted), `n_atoms [M]`, `offsets [M+1]`, `Z [A]`,
`R [A, 3]` (Å), `U0, U, H, G [M]` (Hartree, total energies), `smiles [M]`. Molecule m has atoms
`offsets[m]:offsets[m+1]`. All readers vectorise the parsing (one numpy call over all molecules).
"""

from __future__ import annotations

import io
import json
import re
import tarfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import numpy as np

from qallegro.data.checks import load_npz, require_finite, require_numeric, require_shape
from qallegro.data.errors import CorruptFileError, InvalidDataError

ELEMENTS = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
ENERGY_KEYS = ("U0", "U", "H", "G")
TABLE_KEYS = ("index", "n_atoms", "offsets", "Z", "R", *ENERGY_KEYS, "smiles")
CSV_COLUMNS = {
    "Index": "index",
    "SMILES": "smiles",
    "N_atoms": "n_atoms",
    "Elements": "elements",
    "XYZ_Ang": "xyz",
    "InternalEnergy_0K_au": "U0",
    "InternalEnergy_298K_au": "U",
    "Enthalphy_298K_au": "H",
    "GibbsFreeEnergy_298K_au": "G",
}
_XYZ_NAME = re.compile(r"dsgdb9nsd_(\d+)\.xyz$")


def check_table(t: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """Consistency checks of a table (shapes, offsets, finite values, elements, unique sorted indices)."""
    m = len(t["index"])
    for key in ("n_atoms", *ENERGY_KEYS, "smiles"):
        require_shape(path, key, t[key], (m,))
    require_shape(path, "offsets", t["offsets"], (m + 1,))
    n_total = int(t["offsets"][-1]) if m else 0
    require_shape(path, "Z", t["Z"], (n_total,))
    require_shape(path, "R", t["R"], (n_total, 3))
    if t["offsets"][0] != 0 or not np.array_equal(np.diff(t["offsets"]), t["n_atoms"]):
        raise InvalidDataError("'offsets' do not match 'n_atoms'", path)
    if m and (t["n_atoms"].min() < 1):
        raise InvalidDataError("a molecule has no atoms", path)
    if m > 1 and not (np.diff(t["index"]) > 0).all():
        raise InvalidDataError("'index' must be strictly increasing (sorted, no duplicates)", path)
    bad = ~np.isin(t["Z"], list(ELEMENTS.values()))
    if bad.any():
        raise InvalidDataError(
            f"atomic numbers outside H, C, N, O, F: {sorted(set(t['Z'][bad].tolist()))[:5]}", path
        )
    for key in ("R", *ENERGY_KEYS):
        require_finite(path, key, t[key])
    return t


def read_table_npz(path: Path) -> dict[str, np.ndarray]:
    """The mirror's `qm9_qm9pack.npz` (or a table this package cached in the same layout)."""
    d = load_npz(path, TABLE_KEYS)
    t = {k: (d[k] if k == "smiles" else require_numeric(path, k, d[k])) for k in TABLE_KEYS}
    for k in ("index", "n_atoms", "offsets", "Z"):
        if not np.issubdtype(d[k].dtype, np.integer):
            raise InvalidDataError(f"{k!r} must hold integers, got dtype {d[k].dtype}", path)
        t[k] = d[k].astype(np.int64)
    return check_table(t, path)


def symbols_to_z(
    symbols: list[str], path: Path | str, where: Callable[[str], str] = lambda s: ""
) -> np.ndarray:
    """Atomic numbers of element symbols; `InvalidDataError` naming the first unknown symbol (and where)."""
    uniq, inverse = np.unique(np.asarray(symbols), return_inverse=True)
    unknown = [s for s in uniq.tolist() if s not in ELEMENTS]
    if unknown:
        raise InvalidDataError(f"unknown element symbol(s) {unknown[:5]}{where(unknown[0])}", path)
    return np.array([ELEMENTS[s] for s in uniq.tolist()], dtype=np.int64)[inverse]


def _assemble(
    index: np.ndarray,
    n_atoms: np.ndarray,
    z: np.ndarray,
    coords: np.ndarray,
    energies: dict[str, np.ndarray],
    smiles: np.ndarray,
    path: Path,
) -> dict[str, np.ndarray]:
    """Sort by index and check the result."""
    n_atoms = np.asarray(n_atoms, dtype=np.int64)
    total = int(n_atoms.sum())
    if len(z) != total or coords.size != 3 * total:
        raise InvalidDataError(
            f"{len(z)} element symbols and {coords.size} coordinates for {total} atoms "
            f"(N_atoms): the per-molecule lists disagree with the atom counts",
            path,
        )
    r = coords.reshape(total, 3)
    index = np.asarray(index, dtype=np.int64)
    order = np.argsort(index, kind="stable")
    if len(index) != len(np.unique(index)):
        raise InvalidDataError("duplicate QM9 indices", path)
    start = np.concatenate([[0], np.cumsum(n_atoms)])[:-1]
    n_sorted = n_atoms[order]
    offsets = np.concatenate([[0], np.cumsum(n_sorted)])
    atom_order = np.repeat(start[order], n_sorted) + np.arange(total) - np.repeat(offsets[:-1], n_sorted)
    table = {
        "index": index[order],
        "n_atoms": n_sorted,
        "offsets": offsets,
        "Z": z[atom_order],
        "R": r[atom_order],
        "smiles": np.asarray(smiles, dtype=str)[order],
        **{k: np.asarray(v, dtype=np.float64)[order] for k, v in energies.items()},
    }
    return check_table(table, path)


# ----------------------------------------------------------------------------------------------- qm9pack CSVs
def _read_csv(name: Path, f: IO[bytes] | Path) -> dict:
    """One qm9pack CSV: columns checked, numbers parsed, per-molecule lists checked against N_atoms."""
    import pandas as pd

    try:
        df = pd.read_csv(
            f, usecols=lambda c: c in CSV_COLUMNS, dtype={"SMILES": str, "Elements": str, "XYZ_Ang": str}
        )
    except (ValueError, OSError, UnicodeDecodeError, pd.errors.ParserError, EOFError) as err:
        raise CorruptFileError(f"cannot read as a qm9pack CSV ({type(err).__name__}: {err})", name) from err
    missing = [c for c in CSV_COLUMNS if c not in df.columns]
    if missing:
        raise InvalidDataError(f"missing column(s) {missing}", name)
    df = df.rename(columns=CSV_COLUMNS)
    empty = df[["index", "elements", "xyz", "smiles"]].isna().any(axis=1).to_numpy()
    if empty.any():
        raise InvalidDataError(
            f"empty field in data row {int(np.flatnonzero(empty)[0]) + 1} (truncated file?)", name
        )
    for col in ("index", "n_atoms", *ENERGY_KEYS):
        values = pd.to_numeric(df[col], errors="coerce").to_numpy(np.float64)
        require_finite(name, col, values)
        df[col] = values
    n = df["n_atoms"].to_numpy()
    wrong = (df["elements"].str.count(",").to_numpy() + 1 != n) | (
        df["xyz"].str.count(",").to_numpy() + 1 != 3 * n
    )
    if wrong.any():
        row = int(np.flatnonzero(wrong)[0])
        raise InvalidDataError(
            f"data row {row + 1} (QM9 index {int(df['index'].iloc[row])}): Elements/XYZ_Ang "
            f"lengths disagree with N_atoms={int(n[row])}",
            name,
        )
    symbols = ",".join(df["elements"].tolist()).translate(str.maketrans("", "", "[]' \"")).split(",")

    def where(sym: str) -> str:
        row = int(np.flatnonzero(df["elements"].str.contains(f"'{sym}'", regex=False).to_numpy())[0])
        return f" in data row {row + 1} (QM9 index {int(df['index'].iloc[row])})"

    z = symbols_to_z(symbols, name, where)
    xyz_text = ",".join(df["xyz"].tolist()).translate(str.maketrans("", "", "[] "))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            coords = np.fromstring(xyz_text, sep=",")
        except (ValueError, DeprecationWarning) as err:
            raise InvalidDataError(f"unparsable coordinates in XYZ_Ang ({err})", name) from err
    if coords.size != 3 * len(z):
        raise InvalidDataError(
            f"unparsable coordinates in XYZ_Ang: read {coords.size} numbers for {len(z)} atoms", name
        )
    return {
        "index": df["index"].to_numpy(np.int64),
        "n_atoms": n.astype(np.int64),
        "z": z,
        "coords": coords,
        "energies": {k: df[k].to_numpy() for k in ENERGY_KEYS},
        "smiles": df["smiles"].to_numpy(str),
    }


def read_qm9pack_csvs(files: list[tuple[Path, IO[bytes] | Path]]) -> dict[str, np.ndarray]:
    """The three `qm9_part{1,2,3}.csv` of qm9pack 1.0.3 (paths or open binary files, each with a name)."""
    parts = [_read_csv(name, f) for name, f in files]
    where = Path(files[0][0]).parent
    return _assemble(
        np.concatenate([p["index"] for p in parts]),
        np.concatenate([p["n_atoms"] for p in parts]),
        np.concatenate([p["z"] for p in parts]),
        np.concatenate([p["coords"] for p in parts]),
        {k: np.concatenate([p["energies"][k] for p in parts]) for k in ENERGY_KEYS},
        np.concatenate([p["smiles"] for p in parts]),
        where,
    )


# ----------------------------------------------------------------------------------------- original xyz files
def read_uncharacterized(path: Path) -> set[int]:
    """QM9 indices listed in `uncharacterized.txt` (9 header lines, then lines starting with the index)."""
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptFileError(f"cannot read ({err})", path) from err
    out = {int(line.split()[0]) for line in lines[9:] if line.split() and line.split()[0].isdigit()}
    if not out:
        raise InvalidDataError(
            "no molecule indices found (expected 9 header lines, then one index per line)", path
        )
    return out


def _xyz_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """(file name, content) of every QM9 xyz file in a folder or a tar archive."""
    if path.is_dir():
        for f in sorted(path.iterdir()):
            if _XYZ_NAME.search(f.name):
                yield f.name, f.read_bytes()
        return
    try:
        with tarfile.open(path) as tar:
            for info in tar:
                if info.isfile() and _XYZ_NAME.search(info.name):
                    fh = tar.extractfile(info)
                    assert fh is not None
                    yield Path(info.name).name, fh.read()
    except (
        tarfile.TarError,
        EOFError,
        OSError,
        ValueError,
    ) as err:  # bz2/gzip errors are OSError or EOFError
        raise CorruptFileError(
            f"cannot read the archive ({type(err).__name__}: {err}); truncated or corrupt", path
        ) from err


def read_xyz_files(path: Path, exclude: set[int], progress: bool = True) -> dict[str, np.ndarray]:
    """QM9's own xyz files (folder or `dsgdb9nsd.xyz.tar.bz2`), minus the molecules in `exclude`.

    Each file: atom count; a property line `gdb <index> A B C mu alpha homo lumo gap r2 zpve U0 U H G Cv`; one
    line per atom `symbol x y z charge` (numbers may use Mathematica's `*^` exponent); frequencies; SMILES;
    InChI.
    """
    from tqdm.auto import tqdm

    index, counts, energies, smiles, atom_lines = [], [], [], [], []
    bar = tqdm(desc=f"reading {path.name}", unit=" files", disable=not progress, mininterval=2)
    for name, raw in _xyz_members(path):
        bar.update()
        file_index = int(_XYZ_NAME.search(name).group(1))  # type: ignore[union-attr]
        if file_index in exclude:
            continue
        try:
            lines = raw.decode("ascii").splitlines()
            n = int(lines[0])
            head = lines[1].split()
            if head[0] != "gdb" or len(head) != 17 or int(head[1]) != file_index or len(lines) < n + 5:
                raise ValueError("unexpected header or too few lines")
            energies.append(head[12:16])
            smiles.append(lines[n + 3].split()[0])
        except (ValueError, IndexError, UnicodeDecodeError) as err:
            raise InvalidDataError(f"{name} is not a QM9 xyz file ({err})", path) from err
        index.append(file_index)
        counts.append(n)
        atom_lines.extend(lines[2 : n + 2])
    bar.close()
    tokens = "\n".join(atom_lines).replace("*^", "e").split()
    if len(tokens) != 5 * len(atom_lines):
        bad = next(k for k, line in enumerate(atom_lines) if len(line.split()) != 5)
        raise InvalidDataError(f"atom line {atom_lines[bad]!r} does not have 5 fields", path)
    try:
        coords = np.array([tokens[1::5], tokens[2::5], tokens[3::5]], dtype=np.float64).T.copy()
        e = np.array([[v.replace("*^", "e") for v in row] for row in energies], dtype=np.float64).reshape(
            -1, 4
        )
    except ValueError as err:
        raise InvalidDataError(f"unparsable number ({err})", path) from err
    return _assemble(
        np.array(index),
        np.array(counts),
        symbols_to_z(tokens[0::5], path),
        coords,
        {k: e[:, i] for i, k in enumerate(ENERGY_KEYS)},
        np.array(smiles),
        path,
    )


# -------------------------------------------------------------------------------------------- atom references
def read_atomref(path: Path) -> dict[int, np.ndarray]:
    """Free-atom energies (Hartree; U0, U, H, G) by atomic number, from `atomref.txt` or the mirror JSON."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as err:
        raise CorruptFileError(f"cannot read ({err})", path) from err
    rows: dict[str, list[float]] = {}
    try:
        if path.suffix == ".json":
            data = json.loads(text)
            rows = {s: [float(v) for v in data[s][:4]] for s in ELEMENTS if s in data}
        else:
            for line in text.splitlines():
                tok = line.split()
                if len(tok) >= 6 and tok[0] in ELEMENTS:
                    rows[tok[0]] = [float(v) for v in tok[2:6]]  # Element ZPVE U0 U H G Cv
    except (ValueError, TypeError, KeyError) as err:
        raise CorruptFileError(f"cannot parse atom reference energies ({err})", path) from err
    missing = [s for s in ELEMENTS if s not in rows]
    if missing:
        raise InvalidDataError(f"no reference energies for element(s) {missing}", path)
    out = {ELEMENTS[s]: np.asarray(v, dtype=np.float64) for s, v in rows.items()}
    require_finite(path, "atomref", np.stack(list(out.values())))
    return out


def table_to_npz_bytes(table: dict[str, np.ndarray]) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **table)
    return buf.getvalue()
