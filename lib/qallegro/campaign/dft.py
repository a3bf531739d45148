"""The Cu-Li models against DFT: each head's ablation model (the seeds of `labels` in `presets/campaign.yaml`)
scored on the GPAW-labelled frames of the scale's dataset (`qallegro culi gpaw-subset`, committed under
`data/culi/`), beside the stand-in labeller (SevenNet-0) on the same frames.

A unit scores the model its ablation unit left in `<campaign>/ablation/culi/<head>-s<seed>/run`. Models are not
committed, so on another clone the unit first retrains that run in its own folder, with the ablation's very
config, on the dataset generated there, and records the retrained model's validation and test errors beside the
ablation record's, and both datasets' sha256: a reader sees whether it is the same model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from qallegro.campaign import ablation
from qallegro.campaign.units import Unit, read_record
from qallegro.errors import CampaignError
from qallegro.paths import REPO_ROOT

DATASET = "culi"
# the errors whose recorded and retrained values show that a retrained model is the ablation's
REPRODUCED_KEYS = (("val", "f_mae"), ("val", "e_mae"), ("test", "f_mae"), ("test", "e_mae"))


def subset_table(scale: str) -> Path:
    """The committed comparison table of the scale's GPAW subset (`data/culi/gpaw_subset_<scale>.csv`; its
    provenance is the `.json` beside it)."""
    return REPO_ROOT / "data" / "culi" / f"gpaw_subset_{scale}.csv"


def _shown(path: Path) -> str:
    """`path` relative to the repository when it is inside it (records carry no machine's prefix)."""
    return str(path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path)


def dft_units(scale: str) -> list[Unit]:
    """One unit per head and seed of `labels.seeds`, after that seed's ablation unit."""
    s = ablation.settings(scale)
    seeds = (s.get("labels") or {}).get("seeds") or []
    units = []
    for variant in s["ablation"]["variants"]:
        for seed in seeds:
            after = f"ablation/{DATASET}/{variant}-s{seed}"
            units.append(Unit(f"labels/{DATASET}/{variant}-s{seed}", "dft",
                              {"scale": scale, "dataset": DATASET, "variant": variant, "seed": int(seed)}, (after,)))
    return units


def read_subset(scale: str) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """The GPAW-labelled frames of the scale's subset (in the table's order), the same frames of the dataset
    generated here (their stand-in labels), and the table's provenance. Each labelled frame must be the dataset's
    frame at its index (same atoms and positions), else a one-line error naming its file."""
    import pandas as pd
    from ase.io import read

    from qallegro.culi.validation import same_structure
    from qallegro.data.culi import dataset_folder, read_frames
    from qallegro.paths import CULI_DATASET_FILE

    table = subset_table(scale)
    if not table.is_file():
        raise CampaignError(f"{table}: no GPAW subset at scale {scale!r}; make it with `qallegro culi gpaw-subset "
                            f"--scale {scale} --table {_shown(table)}`")
    info = json.loads(table.with_suffix(".json").read_text())
    dataset = read_frames(dataset_folder(None, scale) / CULI_DATASET_FILE)
    work = REPO_ROOT / info["work"]
    frames, labels = [], []
    for i in pd.read_csv(table)["source_index"].astype(int):
        path = work / f"frame-{i:06d}.extxyz"
        atoms = read(path)
        ours = dataset[i] if i < len(dataset) else None
        if ours is None or not same_structure(ours, atoms):
            raise CampaignError(f"{path}: not frame {i} of <results>/{scale}/culi/{CULI_DATASET_FILE} (made from "
                                "another Cu-Li dataset?)")
        atoms.info["source_index"] = int(i)  # its index in the dataset's culi.extxyz
        frames.append(atoms)
        labels.append(ours)
    return frames, labels, info


def _predict(model: Any, frames: list[Any]) -> list[dict[str, Any]]:
    """The model's energy (eV) and forces (eV/Å) on each frame."""
    from qallegro.data.graph import atoms_to_graph

    out = []
    for atoms in frames:
        pred = model(atoms_to_graph(atoms, model.r_max, labels=False), compute_forces=True)
        out.append({"energy": float(pred["energy"].detach().sum()),
                    "forces": pred["forces"].detach().double().numpy()})
    return out


def score(model: Any, frames: list[Any], info: dict[str, Any], labels: list[Any]) -> dict[str, Any]:
    """The model against the DFT frames (formation energies with the model's own elemental references, from its
    energies of the bulk cells), the labeller against the same frames, and the model against the labeller."""
    from qallegro.culi.validation import bulk_references, by_category, compare, summarize

    predicted = _predict(model, frames)
    refs = [a.copy() for a in bulk_references()]
    mu_model = {a.get_chemical_symbols()[0]: p["energy"] / len(a) for a, p in zip(refs, _predict(model, refs))}
    stand_in = [{"energy": a.get_potential_energy(), "forces": a.get_forces(apply_constraint=False)} for a in labels]
    mu_dft, mu_lab = info["mu_gpaw"], info["mu_labeler"]
    rows = compare(frames, predicted, mu_dft, mu_model)
    lab_rows = compare(frames, stand_in, mu_dft, mu_lab)
    for row, lab_row, atoms in zip(rows, lab_rows, frames):
        row.update(category=atoms.info.get("category"), source_index=atoms.info["source_index"],
                   labeler_force_mae_meV_A=lab_row["force_mae_meV_A"])
        lab_row["category"] = row["category"]
    fit = np.concatenate([p["forces"] - s["forces"] for p, s in zip(predicted, stand_in)])
    return {"model_vs_dft": {"all": summarize(rows, frames, predicted), **by_category(rows, frames, predicted)},
            "labels_vs_dft": {"all": summarize(lab_rows, frames, stand_in),
                              **by_category(lab_rows, frames, stand_in)},
            "model_vs_labels": {"force_mae_meV_A": 1000 * float(np.abs(fit).mean())},
            "mu_model": mu_model, "rows": rows}


def run_dft_unit(unit: Unit, folder: Path) -> dict[str, Any]:
    """Score the ablation model (retrained here when it is not on this machine) on the scale's GPAW subset."""
    import torch

    from qallegro.training import load_run, train

    sp = unit.spec
    root = unit.root(folder)
    source = unit.after[0]
    recorded = read_record(root, source)
    if recorded is None:
        raise CampaignError(f"{unit.id}: {source} has no record; run it first")
    run_dir = root / source / "run"
    retrained = not (run_dir / "checkpoint.pt").is_file()
    reproduced: dict[str, Any] = {}
    if retrained:
        abl = next(u for u in ablation.ablation_units(sp["scale"], DATASET) if u.id == source)
        cfg = {**ablation.run_config(abl, root), "threads": torch.get_num_threads()}
        run_dir = folder / "run"
        result = train(cfg, run_dir=run_dir, resume=True, progress=False)
        for split, key in REPRODUCED_KEYS:
            reproduced[f"{split}_{key}"] = {"recorded": recorded[split][key], "retrained": result[split][key]}
    frames, labels, info = read_subset(sp["scale"])  # after the training: a subset being labelled can wait
    model = load_run(run_dir)
    return {"dataset": DATASET, "variant": sp["variant"], "seed": sp["seed"], "scale": sp["scale"],
            "data_sha256": ablation.data_sha256(sp["scale"]),
            "ablation_data_sha256": recorded.get("protocol", {}).get("data_sha256"),
            "subset": {"table": _shown(subset_table(sp["scale"])),
                       "n_frames": len(frames), "source_index": [a.info["source_index"] for a in frames],
                       "split": info["selection"].get("split"), "gpaw": info["gpaw"]},
            "retrained": retrained, "reproduced": reproduced, **score(model, frames, info, labels)}
