"""QM9 from the mirror (counts, units, splits) and the other layouts (qm9pack CSVs, xyz) on fixtures."""

from __future__ import annotations

import dataclasses
import json
import shutil
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from qallegro.data import load_dataset, qm9, registry
from qallegro.data.qm9 import energies_ev, qm9_table
from qallegro.data.splits import qm9_split

HARTREE = 27.211386245988  # eV, written out independently of the package
FIXTURES = Path(__file__).parent / "fixtures" / "data"


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "cache"
    monkeypatch.setenv("QALLEGRO_CACHE", str(out))
    return out


@pytest.fixture(scope="module")
def mirror(data_mirror: Path) -> dict[str, np.ndarray]:
    """The mirror npz read with plain numpy (the independent reference)."""
    with np.load(data_mirror / "qm9" / "qm9_qm9pack.npz") as d:
        return {k: d[k] for k in d.files}


@pytest.fixture(scope="module")
def table() -> dict[str, np.ndarray]:
    return qm9_table()


def register_fixture(monkeypatch: pytest.MonkeyPatch, name: str, path: Path) -> None:
    """Point registry entry `name` at the sha256 of a fixture file (the real sha256 stays in the table)."""
    src = dataclasses.replace(registry.SOURCES[name], sha256=registry.sha256_file(path), size=None)
    monkeypatch.setitem(registry.SOURCES, name, src)


def rows_of(mirror: dict[str, np.ndarray], gdb: int) -> tuple[np.ndarray, np.ndarray, float]:
    m = int(np.flatnonzero(mirror["index"] == gdb)[0])
    o = mirror["offsets"]
    return mirror["Z"][o[m] : o[m + 1]], mirror["R"][o[m] : o[m + 1]], float(mirror["U0"][m])


def test_mirror_has_130831_characterized_molecules(table: dict[str, np.ndarray]) -> None:
    assert len(table["index"]) == 130831 == 133885 - 3054
    assert int(table["offsets"][-1]) == 2359210
    assert table["index"][:5].tolist() == [1, 2, 3, 4, 5]
    # the head of QM9's uncharacterized list is absent (PROVENANCE.md)
    assert not np.isin([58, 61, 80, 185, 186, 245, 267, 280, 286, 752], table["index"]).any()
    counts = np.bincount(table["Z"], minlength=10)
    assert counts[[1, 6, 7, 8, 9]].tolist() == [1208486, 831925, 132498, 183265, 3036]


def test_energies_in_ev_and_atomization_energies(table: dict[str, np.ndarray], data_mirror: Path) -> None:
    u0 = energies_ev(table, "U0")
    assert u0[0] == pytest.approx(-40.47893 * HARTREE, abs=1e-9)  # methane, gdb 1
    ref = json.loads((data_mirror / "qm9" / "atomref_b3lyp_631G2dfp.json").read_text())
    at = energies_ev(table, "U0_atomization")
    assert at[0] == pytest.approx((-40.47893 - ref["C"][0] - 4 * ref["H"][0]) * HARTREE, abs=1e-9)
    # statistics in PROVENANCE.md: mean -76.116 eV, per atom -4.2433 eV/atom
    assert at.mean() == pytest.approx(-76.116, abs=5e-4)
    assert (at / table["n_atoms"]).mean() == pytest.approx(-4.2433, abs=5e-5)
    h_at = energies_ev(table, "H_atomization")
    assert h_at[0] == pytest.approx((-40.475117 - ref["C"][2] - 4 * ref["H"][2]) * HARTREE, abs=1e-9)


def test_default_splits_are_110k_10k_rest_disjoint_and_deterministic(
    table: dict[str, np.ndarray], cache: Path
) -> None:
    first = qm9_split(table["index"], 110000, 10000, 0)
    assert [len(first[s]) for s in ("train", "val", "test")] == [110000, 10000, 10831]
    together = np.concatenate(list(first.values()))
    assert np.array_equal(np.sort(together), table["index"])  # disjoint and complete
    saved = list((cache / "splits").glob("qm9_train110000_val10000_seed0_*.npz"))
    assert len(saved) == 1
    again = qm9_split(table["index"], 110000, 10000, 0)  # read back from the saved file
    assert all(np.array_equal(first[s], again[s]) for s in first)
    saved[0].unlink()
    redrawn = qm9_split(table["index"], 110000, 10000, 0)  # drawn again from the seed
    assert all(np.array_equal(first[s], redrawn[s]) for s in first)
    other = qm9_split(table["index"], 110000, 10000, 1)
    assert not np.array_equal(first["val"], other["val"])
    custom = qm9_split(table["index"], 1000, 500, 3)
    assert [len(custom[s]) for s in ("train", "val", "test")] == [1000, 500, 129331]


def test_load_dataset_qm9_counts_units_and_info(mirror: dict[str, np.ndarray]) -> None:
    val = load_dataset("qm9", "val")
    test = load_dataset("qm9", "test")
    assert (len(val), len(test)) == (10000, 10831)
    train_head = load_dataset("qm9", "train", max_frames=300)
    assert len(train_head) == 300
    seen = [a.info["source_index"] for a in val + test + train_head]
    assert len(set(seen)) == len(seen)
    for a in val[:50] + test[:50] + train_head[:50]:
        z, r, u0 = rows_of(mirror, a.info["source_index"])
        assert np.array_equal(a.numbers, z) and np.array_equal(a.positions, r)
        assert a.get_potential_energy() == pytest.approx(u0 * HARTREE, abs=1e-9)
        assert a.info["dataset"] == "qm9" and a.info["energy_target"] == "U0"
    from ase.calculators.calculator import PropertyNotImplementedError

    with pytest.raises(PropertyNotImplementedError):
        val[0].get_forces()  # QM9 has no forces


@pytest.mark.slow  # 110,000 ase.Atoms: 6-30 s on a shared 2-core machine; counts are also checked above
def test_full_training_split_loads(table: dict[str, np.ndarray]) -> None:
    train = load_dataset("qm9", "train")
    assert len(train) == 110000
    assert {a.info["split"] for a in train[:10]} == {"train"}


# ----------------------------------------------------------------------------- other layouts (fixtures)
def assert_matches_mirror(t: dict[str, np.ndarray], mirror: dict[str, np.ndarray], ids: list[int]) -> None:
    assert t["index"].tolist() == ids
    for m, gdb in enumerate(ids):
        z, r, u0 = rows_of(mirror, gdb)
        o = t["offsets"]
        assert np.array_equal(t["Z"][o[m] : o[m + 1]], z)
        assert np.array_equal(t["R"][o[m] : o[m + 1]], r)
        assert t["U0"][m] == u0
        k = int(np.flatnonzero(mirror["index"] == gdb)[0])
        assert t["smiles"][m] == mirror["smiles"][k]
        for key in ("U", "H", "G"):
            assert t[key][m] == mirror[key][k]


@pytest.fixture()
def xyz_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache: Path) -> Path:
    """A data folder with the fixture xyz files (gdb 1-6) and uncharacterized.txt (lists gdb 4)."""
    root = tmp_path / "data"
    shutil.copytree(FIXTURES / "qm9", root / "qm9")
    register_fixture(monkeypatch, "qm9/uncharacterized", root / "qm9" / "uncharacterized.txt")
    register_fixture(monkeypatch, "qm9/atomref-txt", root / "qm9" / "atomref.txt")
    monkeypatch.setattr(qm9, "N_QM9_TOTAL", 6)
    return root


def test_xyz_folder_route(xyz_data: Path, mirror: dict[str, np.ndarray]) -> None:
    t = qm9_table(xyz_data, source="xyz", progress=False)
    assert_matches_mirror(t, mirror, [1, 2, 3, 5, 6])  # gdb 4 is excluded; gdb 1 uses `*^` exponents
    # "auto" takes the layout in data_dir before the mirror's npz
    assert qm9_table(xyz_data)["index"].tolist() == [1, 2, 3, 5, 6]


def test_xyz_archive_route_and_parse_cache(
    xyz_data: Path, mirror: dict[str, np.ndarray], cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = xyz_data / "qm9" / "dsgdb9nsd.xyz"
    archive = xyz_data / "qm9" / "dsgdb9nsd.xyz.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        for f in sorted(folder.iterdir()):
            tar.add(f, arcname=f.name)
    shutil.rmtree(folder)
    register_fixture(monkeypatch, "qm9/xyz-archive", archive)
    t = qm9_table(xyz_data, source="xyz", progress=False)
    assert_matches_mirror(t, mirror, [1, 2, 3, 5, 6])
    cached = list((cache / "qm9").glob("table-xyz-*.npz"))
    assert len(cached) == 1
    monkeypatch.setattr(qm9, "read_xyz_files", lambda *a, **k: pytest.fail("parsed again"))
    assert_matches_mirror(qm9_table(xyz_data, source="xyz"), mirror, [1, 2, 3, 5, 6])
    parts = {
        s: load_dataset(
            "qm9", s, data_dir=xyz_data, source="xyz", n_train=3, n_val=1, energy="U0_atomization"
        )
        for s in ("train", "val", "test")
    }
    assert [len(parts[s]) for s in ("train", "val", "test")] == [3, 1, 1]
    by_id = {a.info["source_index"]: a.get_potential_energy() for p in parts.values() for a in p}
    assert sorted(by_id) == [1, 2, 3, 5, 6]
    assert by_id[1] == pytest.approx((-40.47893 + 37.846772 + 4 * 0.500273) * HARTREE, abs=1e-9)


def test_qm9pack_installed_package_route(
    monkeypatch: pytest.MonkeyPatch, mirror: dict[str, np.ndarray], cache: Path
) -> None:
    pkg = FIXTURES / "qm9pack_pkg"
    monkeypatch.syspath_prepend(str(pkg))
    for i in (1, 2, 3):
        register_fixture(monkeypatch, f"qm9/qm9pack-part{i}", pkg / "qm9pack" / "data" / f"qm9_part{i}.csv")
    t = qm9_table(source="qm9pack")
    assert_matches_mirror(t, mirror, [1, 2, 3, 4, 5, 6])


def test_qm9pack_wheel_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mirror: dict[str, np.ndarray], cache: Path
) -> None:
    wheel = tmp_path / "data" / "qm9" / "qm9pack-1.0.3-py3-none-any.whl"
    wheel.parent.mkdir(parents=True)
    with zipfile.ZipFile(wheel, "w") as zf:
        for i in (1, 2, 3):
            zf.write(
                FIXTURES / "qm9pack_pkg" / "qm9pack" / "data" / f"qm9_part{i}.csv",
                f"qm9pack/data/qm9_part{i}.csv",
            )
    register_fixture(monkeypatch, "qm9/qm9pack-wheel", wheel)
    monkeypatch.setattr(qm9, "_installed_qm9pack_dir", lambda: None)
    t = qm9_table(tmp_path / "data", source="qm9pack")
    assert_matches_mirror(t, mirror, [1, 2, 3, 4, 5, 6])
