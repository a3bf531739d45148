"""Cu-Li splits by group: no group straddles two splits, MD buffers hold, the held-out interface is whole, prefixes are
stratified random draws; the force decorrelation time against an AR(1) process with a known correlation time."""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from qallegro.culi.generate import generate
from qallegro.data.culi import load_culi
from qallegro.data.errors import DataOptionError, InvalidDataError
from qallegro.data.groups import FrameGroup, force_decorrelation_fs, group_split, stratified_order

from tests.test_culi_generate import TINY, PairDriver, _frames

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def _synthetic(n_groups: int = 30, n_traj: int = 3, traj_frames: int = 400, dt: float = 2.0) -> list[FrameGroup]:
    rng = np.random.default_rng(5)
    frames: list[FrameGroup] = []
    for g in range(n_groups):
        category = ["slab", "adatom", "surface_vacancy"][g % 3]
        frames += [FrameGroup(category, f"S{g}")] * int(rng.integers(1, 8))
    for t in range(n_traj):
        frames += [FrameGroup("md", f"I{t % 2}", f"traj{t}", k * dt) for k in range(traj_frames)]
    return frames


def _check(frames: list[FrameGroup], parts: dict[str, list[int]], buffer_fs: float) -> None:
    where: dict[int, str] = {}
    for split, idx in parts.items():
        for i in idx:
            assert i not in where, f"frame {i} in {where[i]} and {split}"
            where[i] = split
    assert sorted(where) == list(range(len(frames)))
    # non-MD groups never straddle two splits
    for group in {f.group for f in frames if not f.trajectory}:
        assert len({where[i] for i, f in enumerate(frames) if f.group == group}) == 1, group
    # within a trajectory no val/test frame is within buffer_fs of a train frame (or of the other fit split)
    for traj in {f.trajectory for f in frames if f.trajectory}:
        kept = [(f.time_fs, where[i]) for i, f in enumerate(frames) if f.trajectory == traj and where[i] != "dropped"]
        for t1, s1 in kept:
            for t2, s2 in kept:
                if s1 != s2 and "ood" not in (s1, s2):
                    assert abs(t1 - t2) > buffer_fs, (traj, t1, s1, t2, s2)


def test_group_split_keeps_groups_whole_and_buffers_between_blocks() -> None:
    frames = _synthetic()
    parts = group_split(frames, FRACTIONS, seed=1, block_fs=100.0, buffer_fs=30.0)
    _check(frames, parts, 30.0)
    md = Counter(s for s, idx in parts.items() for i in idx if frames[i].trajectory and s != "dropped")
    share = md["train"] / sum(md.values())
    assert 0.55 < share < 0.85, md
    assert parts["dropped"], "blocks of different splits meet, so some frames are dropped as buffer"


def test_group_split_holds_out_a_whole_interface() -> None:
    frames = _synthetic()
    parts = group_split(frames, FRACTIONS, seed=2, block_fs=100.0, buffer_fs=20.0, ood_groups=["I1"])
    assert sorted(parts["ood"]) == [i for i, f in enumerate(frames) if f.group == "I1"]
    assert not any(frames[i].group == "I1" for s in ("train", "val", "test") for i in parts[s])
    _check(frames, parts, 20.0)


def test_group_split_is_seeded() -> None:
    frames = _synthetic()
    a = group_split(frames, FRACTIONS, seed=3, block_fs=100.0, buffer_fs=20.0)
    b = group_split(frames, FRACTIONS, seed=3, block_fs=100.0, buffer_fs=20.0)
    c = group_split(frames, FRACTIONS, seed=4, block_fs=100.0, buffer_fs=20.0)
    assert a == b and a != c


def test_group_split_bad_input_is_a_clear_error() -> None:
    frames = _synthetic()
    with pytest.raises(InvalidDataError, match="block_fs"):
        group_split(frames, FRACTIONS, seed=0, block_fs=10.0, buffer_fs=20.0)
    with pytest.raises(InvalidDataError, match=r"held-out group\(s\) \['nope'\]"):
        group_split(frames, FRACTIONS, seed=0, block_fs=100.0, buffer_fs=20.0, ood_groups=["nope"])
    with pytest.raises(InvalidDataError, match=r"leaves '(test|val)' empty"):
        group_split([FrameGroup("slab", "S0")] * 5, FRACTIONS, seed=0, block_fs=100.0, buffer_fs=20.0)
    with pytest.raises(InvalidDataError, match="positive train, val and test"):
        group_split(frames, {"train": 1.0, "val": 0.0, "test": 0.1}, seed=0, block_fs=100.0, buffer_fs=20.0)


def test_prefixes_of_the_stratified_order_keep_the_proportions() -> None:
    rng = np.random.default_rng(0)
    cats = ["md"] * 800 + ["adatom"] * 150 + ["slab"] * 50
    order = stratified_order(list(range(1000)), cats, rng)
    assert sorted(order) == list(range(1000)) and order != sorted(order)
    for n in (20, 100, 400):
        counts = Counter(cats[i] for i in order[:n])
        assert abs(counts["md"] / n - 0.8) <= 1.5 / n + 0.01, (n, counts)
        assert abs(counts["slab"] / n - 0.05) <= 1.5 / n + 0.01, (n, counts)


@pytest.mark.parametrize("tau_frames", [3.0, 8.0])
def test_force_decorrelation_time_of_an_ar1_process(tau_frames: float) -> None:
    """Forces from x(t+1) = phi x(t) + noise have C(k) = phi^k, which falls to 1/e at k = tau = -1/ln(phi)."""
    phi = math.exp(-1.0 / tau_frames)
    rng = np.random.default_rng(11)
    n_t, n_atoms = 6000, 20
    f = np.zeros((n_t, n_atoms, 3))
    f[0] = rng.normal(size=(n_atoms, 3))
    for t in range(1, n_t):
        f[t] = phi * f[t - 1] + math.sqrt(1 - phi**2) * rng.normal(size=(n_atoms, 3))
    dt = 2.0
    measured = force_decorrelation_fs(list(f), dt)
    assert measured == pytest.approx(tau_frames * dt, rel=0.08)
    slow = np.cos(2 * np.pi * np.arange(1000) / 100)[:, None, None] * np.ones((1, 2, 3))
    assert force_decorrelation_fs(list(slow), dt, max_lag=5) == math.inf


GROUPED = copy.deepcopy(TINY)
GROUPED["md_interfaces"] = [{"miller": [1, 0, 0], "replicas": 2}]
GROUPED["md"]["cooling_rate"] = 5000.0   # 60 MD steps of 2 fs per trajectory
GROUPED["frames"]["md"] = 122
GROUPED["splits"] = {"train": 0.6, "val": 0.2, "test": 0.2, "method": "group", "block_fs": 40.0,
                     "min_buffer_fs": 4.0}


@pytest.fixture(scope="module")
def grouped(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("culi-groups") / "set"
    drv = PairDriver()
    generate("smoke", labeler=drv, seed=0, out=out, settings=GROUPED, driver=drv, progress=False)
    return out


def test_generated_set_records_groups_and_is_split_by_group(grouped: Path) -> None:
    frames = _frames(grouped)
    splits = json.loads((grouped / "splits.json").read_text())
    assert splits["split_version"] == 2 and splits["buffer_fs"] >= 4.0
    md = [a for a in frames if a.info["category"] == "md"]
    assert {a.info["trajectory"] for a in md} == {"md:Li/Cu(100)", "md:Li/Cu(100)#1"}
    assert all(a.info["time_fs"] == 2.0 * a.info["step"] for a in md)
    decor = splits["force_decorrelation_fs"]
    assert set(decor) == {"md:Li/Cu(100)", "md:Li/Cu(100)#1"} and all(v > 0 for v in decor.values())
    assert splits["buffer_fs"] >= max(decor.values())
    meta = [FrameGroup(a.info["category"], a.info["group"], a.info.get("trajectory", ""),
                       float(a.info.get("time_fs", math.nan))) for a in frames]
    parts = {k: splits[k] for k in ("train", "val", "test", "ood", "dropped")}
    _check(meta, parts, splits["buffer_fs"])
    # the two replicas are independent runs
    r0 = [a.positions for a in md if a.info["trajectory"] == "md:Li/Cu(100)"]
    r1 = [a.positions for a in md if a.info["trajectory"] == "md:Li/Cu(100)#1"]
    assert not np.allclose(r0[-1], r1[-1])
    prov = json.loads((grouped / "provenance.json").read_text())
    assert prov["split"]["split_version"] == 2 and prov["split"]["n_train"] == len(splits["train"])


def test_loader_reads_group_split_in_its_stratified_order(grouped: Path) -> None:
    splits = json.loads((grouped / "splits.json").read_text())
    train = load_culi("train", data_dir=grouped)
    assert [a.info["source_index"] for a in train] == splits["train"]
    assert [a.info["source_index"] for a in load_culi("train", data_dir=grouped, max_frames=5)] == splits["train"][:5]
    with pytest.raises(DataOptionError, match="no held-out interface"):
        load_culi("ood", data_dir=grouped)
