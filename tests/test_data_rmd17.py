"""rMD17 from the mirror: counts, units (checked with plain numpy), saved splits, and the figshare layout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from qallegro.data import load_dataset
from qallegro.data.rmd17 import read_rmd17_npz
from qallegro.data.splits import COMMITTED_DIR, rmd17_make_record

KCAL = 0.0433641153  # eV per kcal/mol, written out independently of the package
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "cache"
    monkeypatch.setenv("QALLEGRO_CACHE", str(out))
    return out


def raw(data_mirror: Path, mol: str, kind: str, k: int = 1) -> dict[str, np.ndarray]:
    with np.load(data_mirror / "rmd17" / f"rmd17_{mol}_{kind}_{k:02d}.npz") as d:
        return {key: d[key] for key in d.files}


def val_rows(k: int = 1) -> list[int]:
    return json.loads((ROOT / "data" / "splits" / f"rmd17_split{k:02d}_seed0.json").read_text())[
        "val_positions"
    ]


def test_aspirin_default_is_950_frames_in_ev(data_mirror: Path) -> None:
    frames = load_dataset("rmd17-aspirin")
    assert len(frames) == 950
    d = raw(data_mirror, "aspirin", "train")
    rows = np.setdiff1d(np.arange(1000), val_rows())
    e = np.array([a.get_potential_energy() for a in frames])
    f = np.stack([a.get_forces() for a in frames])
    assert np.allclose(e, d["energies"][rows] * KCAL, rtol=0, atol=1e-9)
    assert np.allclose(f, d["forces"][rows] * KCAL, rtol=0, atol=1e-12)
    assert np.array_equal(np.stack([a.positions for a in frames]), d["coords"][rows])
    assert frames[0].get_chemical_formula() == "C9H8O4"
    assert [a.info["source_index"] for a in frames] == d["old_indices"][rows].tolist()
    assert [a.info["source_row"] for a in frames] == rows.tolist()
    assert {a.info["dataset"] for a in frames} == {"rmd17-aspirin"} and frames[0].info["split"] == "train"
    assert not frames[0].pbc.any()


def test_force_rms_of_aspirin_train_01_is_1_2608_ev_per_angstrom() -> None:
    frames = load_dataset("rmd17-aspirin", "train") + load_dataset("rmd17-aspirin", "val")
    forces = np.concatenate([a.get_forces() for a in frames])
    assert len(frames) == 1000
    assert np.sqrt(np.mean(forces**2)) == pytest.approx(1.2608, abs=5e-5)


@pytest.mark.parametrize("mol", ["aspirin", "benzene"])
def test_counts_and_disjoint_splits(mol: str, data_mirror: Path) -> None:
    n_atoms = {"aspirin": 21, "benzene": 12}[mol]
    for k in (1, 5):
        tr, va, te = (load_dataset(f"rmd17-{mol}", s, split_index=k) for s in ("train", "val", "test"))
        assert (len(tr), len(va), len(te)) == (950, 50, 1000)
        assert {len(a) for a in tr + va + te} == {n_atoms}
        ids = [{a.info["source_index"] for a in part} for part in (tr, va, te)]
        assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
        assert ids[0] | ids[1] == set(raw(data_mirror, mol, "train", k)["old_indices"].tolist())
        assert {a.info["split_index"] for a in te} == {k}
        test_e = raw(data_mirror, mol, "test", k)["energies"] * KCAL
        assert np.allclose([a.get_potential_energy() for a in te], test_e, rtol=0, atol=1e-9)
    for k in (2, 3, 4):
        va = load_dataset(f"rmd17-{mol}", "val", split_index=k)
        old = raw(data_mirror, mol, "train", k)["old_indices"]
        assert [a.info["source_index"] for a in va] == old[val_rows(k)].tolist()


def test_committed_validation_records_match_a_fresh_draw(data_mirror: Path) -> None:
    for k in range(1, 6):
        old = {m: raw(data_mirror, m, "train", k)["old_indices"] for m in ("aspirin", "benzene")}
        committed = json.loads((COMMITTED_DIR / f"rmd17_split{k:02d}_seed0.json").read_text())
        assert committed == json.loads(json.dumps(rmd17_make_record(k, 0, old)))
    assert len({tuple(val_rows(k)) for k in range(1, 6)}) == 5, "each split index has its own draw"


def test_other_seeds_are_drawn_deterministically_and_saved(cache: Path) -> None:
    a = [x.info["source_index"] for x in load_dataset("rmd17-benzene", "val", seed=7)]
    saved = cache / "splits" / "rmd17_split01_seed7.json"
    assert saved.is_file()
    b = [x.info["source_index"] for x in load_dataset("rmd17-benzene", "val", seed=7)]
    default = [x.info["source_index"] for x in load_dataset("rmd17-benzene", "val")]
    assert a == b and len(a) == 50 and set(a) != set(default)
    # the saved record is what is used: a new draw never replaces it
    rec = json.loads(saved.read_text())
    assert rec["val_positions"] == sorted(rec["val_positions"]) and rec["seed"] == 7


def test_max_frames_is_the_first_frames_of_the_split() -> None:
    full = load_dataset("rmd17-aspirin", "test")
    few = load_dataset("rmd17-aspirin", "test", max_frames=7)
    assert [a.info["source_index"] for a in few] == [a.info["source_index"] for a in full[:7]]
    assert len(load_dataset("rmd17-aspirin", "val", max_frames=5000)) == 50


@pytest.fixture(scope="module")
def archive_layout(tmp_path_factory: pytest.TempPathFactory, data_mirror: Path) -> Path:
    """The figshare archive layout (`rmd17/npz_data`, `rmd17/splits`) built from split 01 of the mirror.

    The full file holds the 2000 frames of train_01 and test_01 shuffled with 300 extra frames; the csv files
    point at them, so the archive route must give back exactly the split files' frames.
    """
    perm = np.random.default_rng(0).permutation(2300)
    where = np.argsort(perm)  # position of pool row r in the full file
    root = tmp_path_factory.mktemp("figshare")
    (root / "rmd17" / "npz_data").mkdir(parents=True)
    (root / "rmd17" / "splits").mkdir()
    np.savetxt(
        root / "rmd17" / "splits" / "index_train_01.csv", where[:1000], fmt="%d"
    )  # shared by molecules
    np.savetxt(root / "rmd17" / "splits" / "index_test_01.csv", where[1000:2000], fmt="%d")
    for mol in ("aspirin", "benzene"):
        tr, te = raw(data_mirror, mol, "train"), raw(data_mirror, mol, "test")
        pool = {k: np.concatenate([tr[k], te[k], tr[k][:300]]) for k in tr if k != "nuclear_charges"}
        pool["old_indices"][2000:] += 10**6  # the extra frames are distinct frames
        full = {k: v[perm] for k, v in pool.items()}
        np.savez(
            root / "rmd17" / "npz_data" / f"rmd17_{mol}.npz", nuclear_charges=tr["nuclear_charges"], **full
        )
    return root


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_figshare_archive_layout_gives_the_same_frames(archive_layout: Path, split: str) -> None:
    a = load_dataset("rmd17-aspirin", split, data_dir=archive_layout, source="archive")
    b = load_dataset("rmd17-aspirin", split, source="npz")
    assert len(a) == len(b)
    assert [x.info["source_index"] for x in a] == [x.info["source_index"] for x in b]
    assert np.array_equal(np.stack([x.positions for x in a]), np.stack([x.positions for x in b]))
    assert np.array_equal([x.get_potential_energy() for x in a], [x.get_potential_energy() for x in b])
    assert np.array_equal(np.stack([x.get_forces() for x in a]), np.stack([x.get_forces() for x in b]))
    assert a[0].info["source_file"] == "rmd17_aspirin.npz"


def test_auto_route_takes_the_layout_found_first(archive_layout: Path, cache: Path) -> None:
    # the archive layout in data_dir wins over the split files in the mirror (searched later)
    frames = load_dataset("rmd17-benzene", "val", data_dir=archive_layout)
    assert len(frames) == 50 and frames[0].info["source_file"] == "rmd17_benzene.npz"
    assert load_dataset("rmd17-benzene", "val")[0].info["source_file"] == "rmd17_benzene_train_01.npz"


def test_read_rmd17_npz_keeps_kcal_units(data_mirror: Path) -> None:
    d = read_rmd17_npz(data_mirror / "rmd17" / "rmd17_benzene_train_02.npz", n_frames=1000)
    # PROVENANCE: benzene train_02 force RMS 20.891 kcal/mol/Å, mean energy -145431.270 kcal/mol
    assert np.sqrt(np.mean(d["F"] ** 2)) == pytest.approx(20.891, abs=1e-3)
    assert d["E"].mean() == pytest.approx(-145431.270, abs=1e-3)
    assert d["Z"].tolist() == [6] * 6 + [1] * 6
