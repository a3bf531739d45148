"""Generation mechanics on a tiny recipe with a cheap pair-potential driver: determinism, resume after an
interruption (mid melt-quench), failure handling, settings refusal, and the reader's splits and errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.lj import LennardJones
from ase.io import read, write
from qallegro.culi.generate import CATEGORIES, SettingsMismatch, generate
from qallegro.culi.labelers import Labeler, LabelError
from qallegro.data.culi import load_culi
from qallegro.data.errors import ChecksumError, CorruptFileError, InvalidDataError, MissingDataError

TINY: dict[str, Any] = {
    "max_miller": 1,
    "slab": {"thickness": {"Li": 3.0, "Cu": 3.0}, "vacuum": 8.0, "free_layers": 1, "min_layers": 3,
             "min_in_plane": 5.0},
    "adatom_height": 2.0,
    "relax": {"fmax": 0.03, "max_steps": 2},
    "interface": {"thickness": {"Li": 3.0, "Cu": 3.0}, "gap": 3.0, "vacuum": 8.0, "area_tol": 0.09,
                  "max_area": 400.0, "min_layers": 2},
    "md": {"t_high": 600.0, "t_low": 10.0, "cooling_rate": 100000.0, "timestep_fs": 2.0, "heat_ps": 0.004,
           "friction_per_fs": 0.01, "checkpoint_every": 2},
    "frames": {"slab": 2, "surface_vacancy": 1, "supercell_vacancy": 1, "adatom": 2, "md": 6},
    "max_atoms": {"slab": None, "surface_vacancy": None, "supercell_vacancy": 60, "adatom": 60, "md": 40},
    "max_structures": {"slab": None, "surface_vacancy": None, "supercell_vacancy": None, "adatom": None, "md": 1},
    "splits": {"train": 0.6, "val": 0.2, "test": 0.2},
}


class Interrupt(LennardJones):
    """A pair potential that raises KeyboardInterrupt on its `stop_at`-th evaluation of a structure with
    `stop_atoms` atoms (any size when None): a Ctrl-C at a chosen point of the run."""

    def __init__(self, stop_at: int | None = None, stop_atoms: int | None = None,
                 crash_on_atoms: int | None = None) -> None:
        super().__init__(sigma=2.3, epsilon=0.05, rc=5.0, smooth=True)
        self.calls = 0
        self.stop_at = stop_at
        self.stop_atoms = stop_atoms
        self.crash_on_atoms = crash_on_atoms

    def calculate(self, atoms=None, properties=("energy",), system_changes=("positions",)):
        if self.stop_atoms is None or len(atoms) == self.stop_atoms:
            self.calls += 1
        if self.stop_at is not None and self.calls == self.stop_at:
            raise KeyboardInterrupt
        if self.crash_on_atoms is not None and len(atoms) == self.crash_on_atoms:
            raise RuntimeError("driver crashed")
        super().calculate(atoms, properties, system_changes)


class PairDriver(Labeler):
    """Cheap stand-in for SevenNet-0 in mechanics tests (Lennard-Jones for every element)."""

    name = "pair"

    def __init__(self, calc: Interrupt | None = None) -> None:
        self.calculator = calc or Interrupt()

    def settings(self) -> dict[str, Any]:
        return {"labeler": self.name, "sigma": 2.3, "epsilon": 0.05}

    def label(self, atoms: Atoms) -> dict[str, Any]:
        work = atoms.copy()
        work.calc = self.calculator
        return {"energy": work.get_potential_energy(), "forces": work.get_forces()}


class FlakyLabeler(PairDriver):
    """Relabels with the pair potential but fails (once) on the first frame with `bad_atoms` atoms."""

    name = "flaky"

    def __init__(self, bad_atoms: int) -> None:
        super().__init__()
        self.bad_atoms = bad_atoms
        self.failed = 0

    def label(self, atoms: Atoms) -> dict[str, Any]:
        if len(atoms) == self.bad_atoms and self.failed == 0:
            self.failed += 1
            raise LabelError("SCF did not converge (injected)")
        return super().label(atoms)


def _run(out: Path, seed: int = 0, driver: PairDriver | None = None, **kw: Any) -> dict[str, Any]:
    drv = driver or PairDriver()
    return generate("smoke", labeler=kw.pop("labeler", drv), seed=seed, out=out, settings=TINY, driver=drv,
                    progress=False, **kw)


def _frames(out: Path) -> list[Atoms]:
    return read(out / "culi.extxyz", ":")


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("culi") / "ref"
    _run(out)
    return out


def test_every_category_every_info_key_and_provenance(reference: Path) -> None:
    frames = _frames(reference)
    prov = json.loads((reference / "provenance.json").read_text())
    assert prov["n_frames"] == len(frames) == sum(prov["counts"].values())
    assert set(prov["counts"]) == set(CATEGORIES) and all(prov["counts"][c] > 0 for c in CATEGORIES)
    assert prov["counts"]["md"] == 6 and prov["seed"] == 0 and prov["labeler"]["labeler"] == "pair"
    assert prov["failures"] == [] and "versions" in prov["environment"]
    for atoms in frames:
        for key in ("category", "miller", "composition", "temperature", "parent", "step"):
            assert key in atoms.info, key
        assert atoms.info["composition"] == atoms.get_chemical_formula(mode="metal")
        assert atoms.get_forces().shape == (len(atoms), 3)
        assert atoms.constraints == []  # labels are raw forces: no constraint may zero them on reading
    md = [a for a in frames if a.info["category"] == "md"]
    temps = [a.info["temperature"] for a in md]
    assert temps[0] == 600.0 and temps[-1] == 10.0 and temps == sorted(temps, reverse=True)
    assert {a.info["parent"] for a in md} == {"md:Li/Cu(100)"}
    relaxed = [a for a in frames if a.info["category"] == "slab"]
    assert all(a.info["temperature"] == 0.0 for a in relaxed)
    # labels are the driver's: recompute one frame
    check = relaxed[0].copy()
    check.calc = Interrupt()
    assert np.allclose(check.get_forces(), relaxed[0].get_forces(), atol=1e-6)


@pytest.mark.parametrize("threads", [1, 2])
def test_generation_runs_on_its_thread_count_whatever_the_caller_set(tmp_path: Path, threads: int) -> None:
    """SevenNet-0's float32 sums change in the last bits with torch's thread count and melt-quench MD amplifies
    that, so `generate` labels on its own `threads` (default 1), records it, and gives the caller's count back."""
    import torch

    seen: list[int] = []

    class Counting(Interrupt):
        def calculate(self, atoms=None, properties=("energy",), system_changes=("positions",)):
            seen.append(torch.get_num_threads())
            super().calculate(atoms, properties, system_changes)

    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        prov = _run(tmp_path / "out", driver=PairDriver(Counting()), **({"threads": 2} if threads == 2 else {}))
        assert seen and set(seen) == {threads}
        assert torch.get_num_threads() == 3
        assert prov["environment"]["hardware"]["torch_threads"] == threads
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ValueError, match="threads must be >= 1, got 0"):
        _run(tmp_path / "none", threads=0)
    assert not (tmp_path / "none").exists()


def test_same_seed_same_dataset_other_seed_differs(reference: Path, tmp_path: Path) -> None:
    _run(tmp_path / "again")
    assert (tmp_path / "again" / "culi.extxyz").read_bytes() == (reference / "culi.extxyz").read_bytes()
    _run(tmp_path / "other", seed=1)
    assert (tmp_path / "other" / "culi.extxyz").read_bytes() != (reference / "culi.extxyz").read_bytes()


def test_finished_dataset_keeps_its_provenance_and_a_changed_one_is_merged_again(
        reference: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Re-running a finished generation (the Cu-Li page does) keeps the generation's provenance byte for byte;
    a dataset file changed since is merged again from its parts."""
    out = tmp_path / "done"
    shutil.copytree(reference, out)
    before = (out / "provenance.json").read_bytes()
    monkeypatch.setattr("qallegro.utils.environment_record", lambda: {"git_commit": "a later commit"})
    _run(out)
    assert (out / "provenance.json").read_bytes() == before
    (out / "culi.extxyz").write_text("tampered")
    _run(out)
    assert (out / "culi.extxyz").read_bytes() == (reference / "culi.extxyz").read_bytes()
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["files"]["culi.extxyz"] == json.loads(before)["files"]["culi.extxyz"]
    assert prov["environment"] == {"git_commit": "a later commit"}


@pytest.mark.parametrize("in_md", [False, True])
def test_interrupted_run_resumes_to_the_same_dataset(reference: Path, tmp_path: Path, in_md: bool) -> None:
    """A Ctrl-C during a relaxation (5th call) or mid melt-quench (step 4, after the step-2 checkpoint)."""
    md_atoms = len(next(a for a in _frames(reference) if a.info["category"] == "md"))
    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        _run(out, driver=PairDriver(Interrupt(stop_at=5, stop_atoms=md_atoms if in_md else None)))
    assert not (out / "culi.extxyz").exists()
    state = json.loads((out / "state.json").read_text()) if (out / "state.json").exists() else {"done": {}}
    if in_md:
        assert len(state["done"]) == 6 and (out / "work").exists()  # 6 relaxations done, MD checkpoint left
        assert any((out / "work").iterdir())
    with pytest.raises(MissingDataError, match="unfinished generation"):
        load_culi("train", data_dir=out)
    _run(out)
    assert (out / "culi.extxyz").read_bytes() == (reference / "culi.extxyz").read_bytes()
    assert not any((out / "work").iterdir())


def test_failed_label_is_recorded_and_the_rest_goes_on(reference: Path, tmp_path: Path) -> None:
    ref = _frames(reference)
    md_atoms = len(next(a for a in ref if a.info["category"] == "md"))
    prov = _run(tmp_path / "flaky", labeler=FlakyLabeler(bad_atoms=md_atoms))
    frames = _frames(tmp_path / "flaky")
    assert len(frames) == len(ref) - 1 and prov["n_failures"] == 1
    failure = prov["failures"][0]
    assert failure["task"] == "md:Li/Cu(100)" and failure["stage"] == "label" and "SCF" in failure["error"]
    assert prov["counts"]["md"] == 5 and prov["counts"]["slab"] == 2


def test_crashed_driver_fails_one_structure_only(reference: Path, tmp_path: Path) -> None:
    ref = _frames(reference)
    md_atoms = len(next(a for a in ref if a.info["category"] == "md"))
    prov = _run(tmp_path / "crash", driver=PairDriver(Interrupt(crash_on_atoms=md_atoms)))
    assert prov["counts"]["md"] == 0 and prov["n_failures"] == 1
    assert prov["failures"][0]["stage"] == "driver" and "driver crashed" in prov["failures"][0]["error"]
    assert prov["n_frames"] == len(ref) - 6


def test_other_settings_are_refused_in_an_existing_folder(tmp_path: Path) -> None:
    out = tmp_path / "mixed"
    with pytest.raises(KeyboardInterrupt):
        _run(out, driver=PairDriver(Interrupt(stop_at=3)))

    class OtherCutoff(PairDriver):
        def settings(self) -> dict[str, Any]:
            return {**super().settings(), "epsilon": 0.06}

    with pytest.raises(SettingsMismatch, match="refusing to append") as err:
        _run(out, driver=OtherCutoff())
    assert "epsilon" in str(err.value)
    with pytest.raises(SettingsMismatch, match="seed"):
        _run(out, seed=3)


def test_load_culi_saved_disjoint_splits(reference: Path) -> None:
    splits = json.loads((reference / "splits.json").read_text())
    parts = {s: load_culi(s, data_dir=reference) for s in ("train", "val", "test")}
    idx = {s: [a.info["source_index"] for a in frames] for s, frames in parts.items()}
    n = splits["n_frames"]
    assert sorted(idx["train"] + idx["val"] + idx["test"]) == list(range(n))
    assert idx == {s: splits[s] for s in idx}
    assert len(idx["train"]) == round(0.6 * n) and len(idx["val"]) == round(0.2 * n)
    all_frames = _frames(reference)
    atoms = parts["val"][0]
    assert atoms.info["dataset"] == "culi" and atoms.info["split"] == "val"
    assert np.allclose(atoms.get_forces(), all_frames[atoms.info["source_index"]].get_forces())
    assert len(load_culi("train", data_dir=reference, max_frames=2)) == 2


def test_load_culi_bad_input_names_the_file(reference: Path, tmp_path: Path, results_dir: Path) -> None:
    with pytest.raises(MissingDataError, match="qallegro culi generate --scale quick") as err:
        load_culi("train")
    assert str(results_dir / "quick" / "culi" / "culi.extxyz") in str(err.value)
    bad = tmp_path / "bad"
    bad.mkdir()
    text = (reference / "culi.extxyz").read_text().splitlines(keepends=True)
    (bad / "culi.extxyz").write_text("".join(text[: len(text) // 2]) + "Cu 1.0 2.0\n")
    (bad / "splits.json").write_text((reference / "splits.json").read_text())
    with pytest.raises(ChecksumError, match=str(bad / "culi.extxyz")):
        load_culi("train", data_dir=bad)
    splits = json.loads((bad / "splits.json").read_text())
    splits.pop("dataset_sha256")
    (bad / "splits.json").write_text(json.dumps(splits))
    with pytest.raises(CorruptFileError, match=str(bad / "culi.extxyz")):
        load_culi("train", data_dir=bad)


def test_generated_folder_ignores_itself_in_git(reference: Path) -> None:
    lines = (reference / ".gitignore").read_text().splitlines()
    assert "*" in lines and "!provenance.json" in lines


def test_cli_gpaw_not_installed_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from qallegro.cli import main

    monkeypatch.setenv("QALLEGRO_GPAW_PYTHON", str(tmp_path / "no-python"))
    assert main(["culi", "generate", "--scale", "smoke", "--labeler", "gpaw", "--out", str(tmp_path / "g")]) == 2
    err = capsys.readouterr().err
    assert "apt-get install -y gpaw gpaw-data" in err and not (tmp_path / "g").exists()


@pytest.mark.slow
def test_cli_smoke_killed_with_ctrl_c_resumes(tmp_path: Path) -> None:
    """The real command at smoke scale (SevenNet-0), interrupted by SIGINT once two structures are done, then
    re-run: finished structures are kept byte for byte and the dataset loads."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "smoke"
    cmd = [sys.executable, "-m", "qallegro", "culi", "generate", "--scale", "smoke", "--out", str(out),
           "--no-progress"]
    env = dict(os.environ, QALLEGRO_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline:
        state = out / "state.json"
        if state.exists() and len(json.loads(state.read_text())["done"]) >= 2:
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "resumes it" in err and not (out / "culi.extxyz").exists()
    kept = {p.name: p.read_bytes() for p in (out / "parts").iterdir()}
    assert len(kept) >= 2
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert done.returncode == 0, done.stderr
    assert all((out / "parts" / name).read_bytes() == data for name, data in kept.items())
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["n_frames"] == sum(prov["counts"].values()) >= 45 and prov["n_failures"] == 0
    assert len(load_culi("train", data_dir=out)) == round(0.8 * prov["n_frames"])


def test_cli_plan_only_prints_the_scale_counts(capsys: pytest.CaptureFixture[str], results_dir: Path) -> None:
    from qallegro.cli import main
    from qallegro.scales import settings

    assert main(["culi", "generate", "--scale", "smoke", "--plan-only"]) == 0
    out = capsys.readouterr().out
    frames = settings("culi", "smoke")["frames"]
    assert f"total frames {sum(frames.values())}" in out
    md_line = next(line for line in out.splitlines() if line.startswith("md "))
    assert md_line.split()[1:3] == ["1", str(frames["md"])]
    assert not results_dir.exists()  # nothing written
    assert main(["culi", "generate", "--scale", "smoke", "--threads", "0"]) == 2
    assert capsys.readouterr().err.strip() == "qallegro culi generate: --threads 0: must be at least 1"
    assert not results_dir.exists()


def test_reference_subset_comparison_aligns_frames_and_resumes(reference: Path, tmp_path: Path) -> None:
    """`gpaw_subset` with stand-in labellers: identical labellers give zero error; another one gives the error
    computed directly; frames already labelled are not recomputed."""
    from qallegro.culi.validation import gpaw_subset, pick_subset

    ANY = 10**6  # no electron budget

    frames = _frames(reference)
    same = gpaw_subset(reference, n=4, max_electrons=ANY, work=tmp_path / "w0", labeler=PairDriver(),
                       dataset_labeler=PairDriver(), table=tmp_path / "t.csv", progress=False)
    assert same["summary"]["force_mae_meV_A"] == pytest.approx(0, abs=1e-4)  # extxyz keeps 8 decimals
    assert same["summary"]["e_form_mae_eV_atom"] == pytest.approx(0, abs=1e-7)
    assert (tmp_path / "t.csv").read_text().count("\n") == 5 and (tmp_path / "t.json").exists()
    chosen = pick_subset(frames, 4, ANY)
    assert [frames[i].info["category"] for i in chosen] == list(CATEGORIES[:4])  # one per category, in order
    assert chosen[:2] == pick_subset(frames, 2, ANY)  # a smaller n is a prefix

    class Stiffer(PairDriver):
        def __init__(self) -> None:
            super().__init__()
            self.calculator.parameters.epsilon = 0.06
            self.calls = 0

        def label(self, atoms: Atoms) -> dict[str, Any]:
            self.calls += 1
            return super().label(atoms)

    other = Stiffer()
    result = gpaw_subset(reference, n=2, max_electrons=ANY, work=tmp_path / "w1", labeler=other,
                         dataset_labeler=PairDriver(), progress=False)
    direct = np.concatenate([frames[i].get_forces() - Stiffer().label(frames[i])["forces"] for i in chosen[:2]])
    assert result["summary"]["force_mae_meV_A"] == pytest.approx(1000 * np.abs(direct).mean(), abs=1e-5)
    assert other.calls == 4  # two elemental references + two frames
    by_cat = result["by_category"]
    assert list(by_cat) == [frames[i].info["category"] for i in chosen[:2]]
    for i in chosen[:2]:
        one = np.abs(frames[i].get_forces() - Stiffer().label(frames[i])["forces"]).mean()
        assert by_cat[frames[i].info["category"]]["force_mae_meV_A"] == pytest.approx(1000 * one, abs=1e-5)
    again = Stiffer()
    gpaw_subset(reference, n=2, max_electrons=ANY, work=tmp_path / "w1", labeler=again, dataset_labeler=PairDriver(),
                progress=False)
    assert again.calls == 0
    # a larger selection without labelling: the table holds the two frames already labelled, nothing is computed
    partial = gpaw_subset(reference, n=4, max_electrons=ANY, work=tmp_path / "w1", labeler=again,
                          dataset_labeler=PairDriver(), progress=False, label_missing=False,
                          table=tmp_path / "partial.csv")
    assert again.calls == 0 and len(partial["rows"]) == 2
    assert json.loads((tmp_path / "partial.json").read_text())["selection"]["n_labelled"] == 2
    # a saved result of another structure (a regenerated dataset) is labelled again, not reused
    stale = read(tmp_path / "w1" / f"frame-{chosen[0]:06d}.extxyz")
    stale.positions += 0.1
    write(tmp_path / "w1" / f"frame-{chosen[0]:06d}.extxyz", stale, format="extxyz")
    gpaw_subset(reference, n=2, max_electrons=ANY, work=tmp_path / "w1", labeler=again, dataset_labeler=PairDriver(),
                progress=False)
    assert again.calls == 1


def test_subset_picks_within_the_electron_budget_each_category_on_its_own(reference: Path) -> None:
    """No frame above the valence-electron budget; every category covered in turn; a category's picks do not
    depend on the other categories' frames (a dataset without its MD frames picks the same non-MD frames)."""
    from qallegro.culi.validation import pick_subset, valence_electrons

    frames = _frames(reference)
    electrons = sorted(valence_electrons(a) for a in frames)
    budget = electrons[len(electrons) // 2]
    chosen = pick_subset(frames, 12, budget, seed=3)
    assert chosen and all(valence_electrons(frames[i]) <= budget for i in chosen)
    assert valence_electrons(frames[0]) == sum(11 if s == "Cu" else 1 for s in frames[0].get_chemical_symbols())
    fits = {frames[i].info["category"] for i, a in enumerate(frames) if valence_electrons(a) <= budget}
    assert {frames[i].info["category"] for i in chosen[:len(fits)]} == fits
    without_md = [a for a in frames if a.info["category"] != "md"]
    kept = [i for i, a in enumerate(frames) if a.info["category"] != "md"]
    picked = [kept[j] for j in pick_subset(without_md, 12, budget, seed=3)]
    assert [i for i in chosen if frames[i].info["category"] != "md"] == picked[:len(
        [i for i in chosen if frames[i].info["category"] != "md"])]


def test_subset_of_one_split_labels_only_its_frames(reference: Path, tmp_path: Path) -> None:
    """`split="test"`: every labelled frame is a test frame (held out from training); an unknown split is a
    one-line error naming splits.json."""
    from qallegro.culi.validation import gpaw_subset

    test = set(json.loads((reference / "splits.json").read_text())["test"])
    result = gpaw_subset(reference, n=3, max_electrons=10**6, work=tmp_path / "w", labeler=PairDriver(),
                         dataset_labeler=PairDriver(), progress=False, split="test")
    assert len(result["rows"]) == 3 and {r["source_index"] for r in result["rows"]} <= test
    assert result["selection"]["split"] == "test" and {r["split"] for r in result["rows"]} == {"test"}
    both = gpaw_subset(reference, n=6, max_electrons=10**6, work=tmp_path / "w", labeler=PairDriver(),
                       dataset_labeler=PairDriver(), progress=False, split="val,test")
    val = set(json.loads((reference / "splits.json").read_text())["val"])
    assert all(r["split"] == ("val" if r["source_index"] in val else "test") for r in both["rows"])
    with pytest.raises(InvalidDataError, match=r"splits\.json.*no split 'tset'"):
        gpaw_subset(reference, n=3, work=tmp_path / "w", labeler=PairDriver(), dataset_labeler=PairDriver(),
                    progress=False, split="val,tset")


def test_subset_frames_claimed_by_a_live_process_are_left_to_it(reference: Path, tmp_path: Path) -> None:
    """Several processes may label one subset: a frame claimed by a live process is skipped, a dead process's
    claim is taken over and removed once the frame is labelled."""
    import subprocess
    import sys

    from qallegro.culi.validation import gpaw_subset, pick_subset

    frames = _frames(reference)
    held, stale = pick_subset(frames, 2, 10**6)
    work = tmp_path / "w"
    work.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    try:
        (work / f"frame-{held:06d}.claim").write_text(str(sleeper.pid))
        (work / f"frame-{stale:06d}.claim").write_text(dead)
        result = gpaw_subset(reference, n=2, max_electrons=10**6, work=work, labeler=PairDriver(),
                             dataset_labeler=PairDriver(), progress=False)
    finally:
        sleeper.kill()
    assert [r["source_index"] for r in result["rows"]] == [stale]
    assert (work / f"frame-{held:06d}.claim").exists() and not (work / f"frame-{stale:06d}.claim").exists()
    assert not (work / f"frame-{held:06d}.extxyz").exists()


def test_labelling_order_covers_every_category_first_then_cheapest() -> None:
    from qallegro.culi.validation import labelling_order

    def frame(category: str, n_cu: int, n_li: int) -> Atoms:
        atoms = Atoms("Cu" * n_cu + "Li" * n_li, positions=np.zeros((n_cu + n_li, 3)))
        atoms.info["category"] = category
        return atoms

    frames = [frame("md", 30, 30), frame("slab", 0, 12), frame("md", 20, 40), frame("slab", 10, 0),
              frame("adatom", 0, 49)]
    # electrons: 360, 12, 260, 110, 49 -> one per category by cost (slab 1, adatom 4, md 2), then the rest
    assert labelling_order(frames, [0, 1, 2, 3, 4]) == [1, 4, 2, 3, 0]
