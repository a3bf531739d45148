"""Bad input never passes silently: each case gives a `DataError` subclass naming the file and the problem."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
import tarfile
import types
from pathlib import Path

import numpy as np
import pytest
from qallegro.data import (
    ChecksumError,
    CorruptFileError,
    DataError,
    DataOptionError,
    InvalidDataError,
    UnknownDatasetError,
    load_dataset,
    qm9,
    registry,
)
from qallegro.data.qm9_readers import (
    read_atomref,
    read_qm9pack_csvs,
    read_table_npz,
    read_uncharacterized,
    read_xyz_files,
)
from qallegro.data.rmd17 import read_index_csv, read_rmd17_npz
from qallegro.data.splits import rmd17_val_positions

FIXTURES = Path(__file__).parent / "fixtures" / "data"
CSV_DIR = FIXTURES / "qm9pack_pkg" / "qm9pack" / "data"


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "cache"
    monkeypatch.setenv("QALLEGRO_CACHE", str(out))
    return out


@pytest.fixture(scope="module")
def benzene(data_mirror: Path) -> dict[str, np.ndarray]:
    with np.load(data_mirror / "rmd17" / "rmd17_benzene_train_01.npz") as d:
        return {k: d[k] for k in d.files}


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)
    return path


def modified(d: dict[str, np.ndarray], **changes: np.ndarray | None) -> dict[str, np.ndarray]:
    out = {k: v.copy() for k, v in d.items()}
    for k, v in changes.items():
        if v is None:
            del out[k]
        else:
            out[k] = v
    return out


# ------------------------------------------------------------------------------------------------ rMD17 files
def test_truncated_npz(tmp_path: Path, data_mirror: Path) -> None:
    f = tmp_path / "t.npz"
    f.write_bytes((data_mirror / "rmd17" / "rmd17_benzene_train_01.npz").read_bytes()[:20000])
    with pytest.raises(CorruptFileError, match="truncated or corrupt") as err:
        read_rmd17_npz(f)
    assert err.value.path == f and str(f) in str(err.value)


def test_not_an_npz(tmp_path: Path) -> None:
    f = tmp_path / "noise.npz"
    f.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(CorruptFileError, match=str(f)):
        read_rmd17_npz(f)


def test_missing_key(tmp_path: Path, benzene: dict[str, np.ndarray]) -> None:
    f = write_npz(tmp_path / "m.npz", modified(benzene, forces=None))
    with pytest.raises(InvalidDataError, match=r"missing key\(s\) \['forces'\]"):
        read_rmd17_npz(f)


@pytest.mark.parametrize("key,value", [("energies", np.nan), ("forces", np.inf), ("coords", -np.inf)])
def test_nan_or_inf(tmp_path: Path, benzene: dict[str, np.ndarray], key: str, value: float) -> None:
    arr = benzene[key].copy()
    arr.reshape(-1)[17] = value
    f = write_npz(tmp_path / "n.npz", modified(benzene, **{key: arr}))
    with pytest.raises(InvalidDataError, match=rf"'{key}' contains 1 NaN/inf"):
        read_rmd17_npz(f)


@pytest.mark.parametrize(
    "key,shape",
    [("forces", (1000, 11, 3)), ("energies", (999,)), ("coords", (1000, 12, 2)), ("old_indices", (1000, 1))],
)
def test_mismatched_shapes(tmp_path: Path, benzene: dict[str, np.ndarray], key: str, shape: tuple) -> None:
    f = write_npz(tmp_path / "s.npz", modified(benzene, **{key: np.zeros(shape, benzene[key].dtype)}))
    with pytest.raises(InvalidDataError, match="shape"):
        read_rmd17_npz(f)


def test_wrong_frame_count_and_atomic_numbers(tmp_path: Path, benzene: dict[str, np.ndarray]) -> None:
    short = {k: (v if k == "nuclear_charges" else v[:999]) for k, v in benzene.items()}
    with pytest.raises(InvalidDataError, match="holds 999 frames, expected 1000"):
        read_rmd17_npz(write_npz(tmp_path / "a.npz", short), n_frames=1000)
    z = benzene["nuclear_charges"].copy()
    z[0] = 0
    with pytest.raises(InvalidDataError, match="invalid atomic number"):
        read_rmd17_npz(write_npz(tmp_path / "b.npz", modified(benzene, nuclear_charges=z)))


def test_bad_input_reaches_the_user_through_load_dataset(
    tmp_path: Path, benzene: dict[str, np.ndarray], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file that passes its (patched) checksum is still checked for its content."""
    arr = benzene["energies"].copy()
    arr[3] = np.nan
    f = write_npz(tmp_path / "rmd17" / "rmd17_benzene_train_01.npz", modified(benzene, energies=arr))
    entry = dataclasses.replace(registry.SOURCES["rmd17/benzene_train_01"], sha256=registry.sha256_file(f))
    monkeypatch.setitem(registry.SOURCES, "rmd17/benzene_train_01", entry)
    with pytest.raises(InvalidDataError, match="NaN/inf") as err:
        load_dataset("rmd17-benzene", data_dir=tmp_path)
    assert err.value.path == f


def test_checksum_mismatch(tmp_path: Path, data_mirror: Path) -> None:
    f = tmp_path / "rmd17" / "rmd17_aspirin_test_01.npz"
    f.parent.mkdir()
    data = bytearray((data_mirror / "rmd17" / f.name).read_bytes())
    data[1000] ^= 1  # one flipped bit
    f.write_bytes(bytes(data))
    with pytest.raises(ChecksumError) as err:
        load_dataset("rmd17-aspirin", "test", data_dir=tmp_path)
    msg = str(err.value)
    assert str(f) in msg and registry.SOURCES["rmd17/aspirin_test_01"].sha256 in msg
    assert "qallegro data fetch rmd17-aspirin" in msg


@pytest.mark.parametrize(
    "content,match",
    [
        ("1\n2\n", "expected 1000 indices"),
        ("\n".join(str(i) for i in range(999)) + "\n1.5\n", "integers"),
        ("\n".join(str(i) for i in range(999)) + "\n0\n", "distinct"),
        ("\n".join(str(i) for i in range(999)) + "\n5000\n", r"in \[0, 2000\)"),
        ("\n".join(str(i) for i in range(999)) + "\nabc\n", "cannot read"),
    ],
)
def test_bad_split_index_csv(tmp_path: Path, content: str, match: str) -> None:
    f = tmp_path / "index_train_01.csv"
    f.write_text(content)
    with pytest.raises(DataError, match=match):
        read_index_csv(f, 2000)


def test_split_record_pointing_at_other_frames(cache: Path, benzene: dict[str, np.ndarray]) -> None:
    rec = cache / "splits" / "rmd17_split01_seed9.json"
    rec.parent.mkdir(parents=True)
    rec.write_text(json.dumps({"val_positions": list(range(50)), "val_old_indices": {"benzene": [1] * 50}}))
    with pytest.raises(InvalidDataError, match="different order"):
        rmd17_val_positions(1, 9, "benzene", benzene["old_indices"])
    rec.write_text("{not json")
    with pytest.raises(CorruptFileError, match="unreadable split record"):
        rmd17_val_positions(1, 9, "benzene", benzene["old_indices"])
    rec.write_text(json.dumps({"val_positions": [1] * 50}))
    with pytest.raises(InvalidDataError, match="distinct rows"):
        rmd17_val_positions(1, 9, "benzene", benzene["old_indices"])


# ------------------------------------------------------------------------------------------------------- QM9
@pytest.fixture(scope="module")
def qm9_small(data_mirror: Path) -> dict[str, np.ndarray]:
    with np.load(data_mirror / "qm9" / "qm9_qm9pack.npz") as d:
        t = {k: d[k] for k in d.files}
    m = 20
    n = int(t["offsets"][m])
    return {
        k: (v[: m + 1] if k == "offsets" else v[:n] if k in ("Z", "R") else v[:m] if len(v) == 130831 else v)
        for k, v in t.items()
    }


@pytest.mark.parametrize(
    "change,match",
    [
        ("drop_U0", r"missing key\(s\) \['U0'\]"),
        ("nan_R", "'R' contains 1 NaN/inf"),
        ("bad_offsets", "'offsets' do not match 'n_atoms'"),
        ("short_Z", "'Z' has shape"),
        ("unsorted", "strictly increasing"),
        ("element", "outside H, C, N, O, F"),
    ],
)
def test_bad_qm9_table(tmp_path: Path, qm9_small: dict[str, np.ndarray], change: str, match: str) -> None:
    t = {k: v.copy() for k, v in qm9_small.items()}
    if change == "drop_U0":
        del t["U0"]
    elif change == "nan_R":
        t["R"][5, 1] = np.nan
    elif change == "bad_offsets":
        t["offsets"][3] += 1
    elif change == "short_Z":
        t["Z"] = t["Z"][:-1]
    elif change == "unsorted":
        t["index"][[0, 1]] = t["index"][[1, 0]]
    elif change == "element":
        t["Z"][0] = 17
    f = write_npz(tmp_path / "qm9.npz", t)
    with pytest.raises(InvalidDataError, match=match):
        read_table_npz(f)


def test_truncated_qm9_npz(tmp_path: Path, qm9_small: dict[str, np.ndarray]) -> None:
    f = write_npz(tmp_path / "qm9.npz", qm9_small)
    f.write_bytes(f.read_bytes()[:-300])
    with pytest.raises(CorruptFileError):
        read_table_npz(f)


def _csvs(tmp_path: Path, edit_part1: str | None = None) -> list[tuple[Path, Path]]:
    out = []
    for i in (1, 2, 3):
        f = tmp_path / f"qm9_part{i}.csv"
        shutil.copy(CSV_DIR / f.name, f)
        if i == 1 and edit_part1 is not None:
            f.write_text(edit_part1)
        out.append((f, f))
    return out


def test_bad_qm9pack_csvs(tmp_path: Path) -> None:
    text = (CSV_DIR / "qm9_part1.csv").read_text()
    header, row1, row2 = text.splitlines()[:3]
    cases = {
        "truncated": (text[: len(text) - 200], (CorruptFileError, InvalidDataError), None),
        "missing column": (
            text.replace("InternalEnergy_0K_au", "U0_renamed"),
            InvalidDataError,
            r"missing column\(s\) \['InternalEnergy_0K_au'\]",
        ),
        "empty energy": (
            "\n".join([header, row1.replace(",-40.47893,", ",,"), row2]) + "\n",
            InvalidDataError,
            "'U0' contains 1 NaN/inf",
        ),
        "atom count": (
            "\n".join([header, row1.replace('",5,"[4', '",6,"[4'), row2]) + "\n",
            InvalidDataError,
            "disagree with N_atoms=6",
        ),
        "element": (
            "\n".join([header, row1.replace("['C','H'", "['Xx','H'"), row2]) + "\n",
            InvalidDataError,
            "unknown element",
        ),
        "coordinate": (
            "\n".join([header, row1.replace("-0.0126981359", "-0.01a6981359"), row2]) + "\n",
            InvalidDataError,
            "coordinates",
        ),
    }
    for label, (content, exc, match) in cases.items():
        with pytest.raises(exc, match=match) as err:
            read_qm9pack_csvs(_csvs(tmp_path, content))
        assert "qm9_part1.csv" in str(err.value), label


def test_bad_xyz_inputs(tmp_path: Path) -> None:
    folder = tmp_path / "dsgdb9nsd.xyz"
    shutil.copytree(FIXTURES / "qm9" / "dsgdb9nsd.xyz", folder)
    good = (folder / "dsgdb9nsd_000002.xyz").read_text()
    (folder / "dsgdb9nsd_000002.xyz").write_text(good.replace("gdb 2", "gdb 7"))
    with pytest.raises(InvalidDataError, match=r"dsgdb9nsd_000002\.xyz is not a QM9 xyz file"):
        read_xyz_files(folder, set(), progress=False)
    (folder / "dsgdb9nsd_000002.xyz").write_text(good.replace("N\t", "N\t1.0\t", 1))
    with pytest.raises(InvalidDataError, match="does not have 5 fields"):
        read_xyz_files(folder, set(), progress=False)
    (folder / "dsgdb9nsd_000002.xyz").write_text(good)
    archive = tmp_path / "x.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        tar.add(folder, arcname=".")
    archive.write_bytes(archive.read_bytes()[:-400])
    with pytest.raises(CorruptFileError, match="truncated or corrupt"):
        read_xyz_files(archive, set(), progress=False)


def test_incomplete_xyz_folder(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "data"
    shutil.copytree(FIXTURES / "qm9", root / "qm9")
    (root / "qm9" / "dsgdb9nsd.xyz" / "dsgdb9nsd_000003.xyz").unlink()
    entry = dataclasses.replace(
        registry.SOURCES["qm9/uncharacterized"],
        sha256=registry.sha256_file(root / "qm9" / "uncharacterized.txt"),
    )
    monkeypatch.setitem(registry.SOURCES, "qm9/uncharacterized", entry)
    monkeypatch.setattr(qm9, "N_QM9_TOTAL", 6)
    with pytest.raises(
        InvalidDataError, match=r"incomplete QM9 xyz folder: 5 files, 1 missing \(first \[3\]\)"
    ):
        qm9.qm9_table(root, source="xyz", progress=False)


def test_bad_reference_files(tmp_path: Path) -> None:
    f = tmp_path / "uncharacterized.txt"
    f.write_text("header\n" * 12)
    with pytest.raises(InvalidDataError, match="no molecule indices"):
        read_uncharacterized(f)
    a = tmp_path / "atomref.txt"
    a.write_text(
        "\n".join(
            line
            for line in (FIXTURES / "qm9" / "atomref.txt").read_text().splitlines()
            if not line.strip().startswith("F ")
        )
    )
    with pytest.raises(InvalidDataError, match=r"element\(s\) \['F'\]"):
        read_atomref(a)
    j = tmp_path / "atomref.json"
    j.write_text('{"H": [1, 2')
    with pytest.raises(CorruptFileError):
        read_atomref(j)


def test_tampered_parse_cache(tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(FIXTURES / "qm9pack_pkg"))
    for i in (1, 2, 3):
        entry = dataclasses.replace(
            registry.SOURCES[f"qm9/qm9pack-part{i}"],
            sha256=registry.sha256_file(CSV_DIR / f"qm9_part{i}.csv"),
        )
        monkeypatch.setitem(registry.SOURCES, f"qm9/qm9pack-part{i}", entry)
    qm9.qm9_table(source="qm9pack")
    (cached,) = (cache / "qm9").glob("table-qm9pack-*.npz")
    cached.write_bytes(cached.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(ChecksumError, match="cached QM9 table"):
        qm9.qm9_table(source="qm9pack")


# --------------------------------------------------------------------------------------- names and options
def test_unknown_dataset_and_split() -> None:
    with pytest.raises(UnknownDatasetError, match="available: rmd17-aspirin"):
        load_dataset("aspirin")
    for name in ("rmd17-aspirin", "qm9", "culi"):
        with pytest.raises(DataOptionError, match="unknown split 'validation'"):
            load_dataset(name, "validation")


@pytest.mark.parametrize(
    "name,options,match",
    [
        ("rmd17-aspirin", {"split_index": 0}, r"split_index=0 is out of range \[1, 5\]"),
        ("rmd17-aspirin", {"split_index": 6}, "out of range"),
        ("rmd17-aspirin", {"split_index": "1"}, "must be an integer"),
        ("rmd17-aspirin", {"split_index": True}, "must be an integer"),
        ("rmd17-aspirin", {"seed": -1}, "seed=-1"),
        ("rmd17-benzene", {"max_frames": 0}, "max_frames=0"),
        ("rmd17-benzene", {"source": "zip"}, "source='zip'"),
        ("rmd17-benzene", {"n_train": 5}, r"unknown option\(s\) \['n_train'\]"),
        ("qm9", {"energy": "U1"}, "energy='U1'"),
        ("qm9", {"n_train": 130000}, "exceeds the 130831 molecules"),
        ("qm9", {"n_val": 0}, "n_val=0"),
        ("qm9", {"max_frames": 2.5}, "must be an integer"),
        ("qm9", {"source": "csv"}, "source='csv'"),
        ("qm9", {"split_index": 2}, r"unknown option\(s\) \['split_index'\]"),
    ],
)
def test_bad_options(name: str, options: dict, match: str) -> None:
    with pytest.raises(DataOptionError, match=match):
        load_dataset(name, "train", **options)


def test_culi_dispatch_and_missing_module(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    calls = []
    fake = types.ModuleType("qallegro.data.culi")
    fake.load_culi = lambda **kw: calls.append(kw) or ["frames"]  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "qallegro.data.culi", fake)
    assert load_dataset("culi", "val", data_dir=tmp_path, scale="smoke") == ["frames"]
    assert calls == [{"split": "val", "data_dir": tmp_path, "scale": "smoke"}]
    monkeypatch.setitem(sys.modules, "qallegro.data.culi", None)
    with pytest.raises(DataError, match="Cu-Li loader"):
        load_dataset("culi")
