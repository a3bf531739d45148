"""The Cu-Li models against DFT (`qallegro.campaign.dft`): a smoke-scale ablation model scored on a subset labelled
by a stand-in reference, checked against a direct computation, and the same model retrained on a clone without it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.lj import LennardJones
from ase.io import read, write
from qallegro.culi.labelers import Labeler


class Reference(Labeler):
    """A stand-in for GPAW: Lennard-Jones energies and forces (any structure, in a second)."""

    name = "lj-reference"

    def settings(self) -> dict[str, Any]:
        return {"labeler": self.name}

    def label(self, atoms: Atoms) -> dict[str, Any]:
        work = atoms.copy()
        work.calc = LennardJones(sigma=2.3, epsilon=0.05, rc=6.0)
        return {"energy": work.get_potential_energy(), "forces": work.get_forces()}


@pytest.fixture(scope="module")
def smoke_campaign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results root with the smoke Cu-Li dataset, its learning-rate sweep and its Allegro seed-0 ablation run."""
    from qallegro.campaign.plan import RUNNERS, campaign_root, plan
    from qallegro.campaign.units import UnitQueue, work

    root = tmp_path_factory.mktemp("results")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("QALLEGRO_RESULTS", str(root))
        units = [u for u in plan("smoke")
                 if u.id in ("data/culi", "ablation/culi/allegro-s0") or u.id.startswith("sweep/culi/")]
        assert work(units, UnitQueue(campaign_root("smoke")), RUNNERS, log=lambda m: None) == len(units) == 4
    return root


def test_models_scored_against_the_subset_and_retrained_where_missing(smoke_campaign: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from qallegro.campaign import dft
    from qallegro.campaign.units import Unit, read_record
    from qallegro.culi.validation import gpaw_subset
    from qallegro.data.culi import dataset_folder
    from qallegro.data.graph import atoms_to_graph
    from qallegro.training import load_run

    monkeypatch.setenv("QALLEGRO_RESULTS", str(smoke_campaign))
    root = smoke_campaign / "smoke" / "campaign"
    table = tmp_path / "gpaw_subset_smoke.csv"
    monkeypatch.setattr(dft, "subset_table", lambda scale: table)
    unit = Unit("labels/culi/allegro-s0", "dft", {"scale": "smoke", "dataset": "culi", "variant": "allegro", "seed": 0},
                ("ablation/culi/allegro-s0",))
    with pytest.raises(Exception, match="no GPAW subset"):
        dft.run_dft_unit(unit, root / unit.id)
    gpaw_subset(dataset_folder(None, "smoke"), n=4, max_electrons=10**6, work=tmp_path / "w", table=table,
                labeler=Reference(), progress=False, split="val,test")
    record = dft.run_dft_unit(unit, root / unit.id)
    assert record["retrained"] is False and record["subset"]["n_frames"] == 4
    # the model's force error against the reference, computed directly
    model = load_run(root / "ablation" / "culi" / "allegro-s0" / "run")
    frames, _, _ = dft.read_subset("smoke")
    diffs = []
    for atoms in frames:
        pred = model(atoms_to_graph(atoms, model.r_max, labels=False), compute_forces=True)
        diffs.append(pred["forces"].detach().double().numpy() - Reference().label(atoms)["forces"])
    direct = 1000 * np.abs(np.concatenate(diffs)).mean()
    assert record["model_vs_dft"]["all"]["force_mae_meV_A"] == pytest.approx(direct, abs=1e-4)
    cats = {a.info["category"] for a in frames}
    assert set(record["model_vs_dft"]) == {"all", *cats} == set(record["labels_vs_dft"])
    assert record["model_vs_labels"]["force_mae_meV_A"] > 0
    # the dataset page's tables: the numbers of the records, in the page's words
    from qallegro.report.culi import dft_scores
    from qallegro.report.culi import gpaw_subset as subset_page

    page = subset_page(table)
    assert page["categories"].loc["all", "force MAE"] == pytest.approx(record["labels_vs_dft"]["all"][
        "force_mae_meV_A"])
    assert page["categories"].loc["all", "frames"] == 4 and len(page["frames"]) == 4
    assert "4 frames of the validation and test splits" in page["text"]
    scores = dft_scores([record])
    assert scores["heads"].loc["Allegro", "force MAE vs DFT"] == pytest.approx(direct, abs=1e-4)
    assert scores["heads"].loc["SevenNet-0 (the labels)", "force MAE vs DFT"] == page["categories"].loc[
        "all", "force MAE"]
    assert f"models are {direct:.0f} meV/Å off in the forces" in scores["text"]
    assert dft_scores([]) is None and subset_page(tmp_path / "none.csv") is None
    assert "run the labels units again" in dft_scores([record], 5)["text"]
    assert "units again" not in dft_scores([record], 4)["text"]
    # a clone without the model: the unit retrains the ablation run, the very same model
    run = root / "ablation" / "culi" / "allegro-s0" / "run"
    shutil.move(run / "checkpoint.pt", tmp_path / "checkpoint.pt")
    again = dft.run_dft_unit(unit, root / unit.id)
    assert again["retrained"] is True and again["data_sha256"] == again["ablation_data_sha256"] is not None
    ablation = read_record(root, "ablation/culi/allegro-s0")
    assert {k: v["recorded"] for k, v in again["reproduced"].items()} == {
        f"{s}_{k}": ablation[s][k] for s, k in dft.REPRODUCED_KEYS}
    assert all(v["recorded"] == v["retrained"] for v in again["reproduced"].values()), again["reproduced"]
    assert again["model_vs_dft"] == record["model_vs_dft"]
    assert "equal the ablation records' to the last digit" in dft_scores([again])["text"]
    # a labelled frame that is not the dataset's (another dataset) is refused, naming its file
    moved = read(tmp_path / "w" / f"frame-{frames[0].info['source_index']:06d}.extxyz")
    moved.positions += 0.01
    write(tmp_path / "w" / f"frame-{frames[0].info['source_index']:06d}.extxyz", moved, format="extxyz")
    with pytest.raises(Exception, match=rf"frame-{frames[0].info['source_index']:06d}\.extxyz: not frame"):
        dft.read_subset("smoke")


def test_labels_units_follow_their_ablation_runs() -> None:
    from qallegro.campaign.plan import plan

    units = {u.id: u for u in plan("overnight") if u.kind == "dft"}
    assert sorted(units) == [f"labels/culi/{v}-s0" for v in ("allegro", "mlp", "qdi")]
    assert units["labels/culi/qdi-s0"].after == ("ablation/culi/qdi-s0",)
    assert not [u for u in plan("smoke") if u.kind == "dft"]
