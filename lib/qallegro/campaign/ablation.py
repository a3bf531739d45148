"""The head ablation: one body and one optimiser shared by Allegro's linear edge readout, the MLP head and the QDI
head, trained with paired seeds on a fixed epoch budget, and the learning-rate / batch-size sweep that fixes the
shared optimiser per dataset.

Settings come from `presets/campaign.yaml` (per scale): `ablation.heads` (each head's options, the same on every
dataset: the paper's Cu-Li values, which is the paper's QDI transfer), `ablation.overrides` (the budget on top of the
training preset: `max_epochs`, early stopping off), `ablation.datasets` (seeds per dataset, extra overrides, how many
held-out-interface frames to score), and `sweep` (the grid, the head and the seed it is run with). A seed sets the
initialisation and the batch order; the data (split and subset) are the same for every seed and head.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

from qallegro import scales
from qallegro.campaign.units import Unit, read_record
from qallegro.errors import CampaignError
from qallegro.utils import config_hash, git_commit

PROTOCOL_VERSION = 1
PAPER_EPOCHS = "paper_final_training_epochs"
TRUNCATING = ("max_wall_s", "non-finite loss")


def settings(scale: str) -> dict[str, Any]:
    """`presets/campaign.yaml` at `scale`."""
    return scales.settings("campaign", scale)


def error_key(dataset: str) -> str:
    """The metric the sweep and the claims compare: force MAE, or energy MAE for energy-only QM9."""
    return "e_mae" if dataset == "qm9" else "f_mae"


def sweep_units(scale: str, dataset: str) -> list[Unit]:
    s = settings(scale)["sweep"]
    out = []
    for lr in s["learning_rate"]:
        for bs in s["batch_size"]:
            spec = {"dataset": dataset, "variant": s["variant"], "seed": int(s["seed"]), "scale": scale,
                    "learning_rate": float(lr), "batch_size": int(bs)}
            out.append(Unit(f"sweep/{dataset}/lr{lr:g}-bs{bs}", "train", spec))
    return out


def ablation_units(scale: str, dataset: str) -> list[Unit]:
    """Seed-major order (every head of seed 0, then of seed 1, ...) so that pairs complete together."""
    s = settings(scale)
    ds = s["ablation"]["datasets"][dataset]
    sweep = tuple(u.id for u in sweep_units(scale, dataset))
    return [Unit(f"ablation/{dataset}/{variant}-s{seed}", "train",
                 {"dataset": dataset, "variant": variant, "seed": int(seed), "scale": scale, "ablation": True},
                 after=sweep)
            for seed in ds["seeds"] for variant in s["ablation"]["variants"]]


def chosen_optimiser(root: Path, scale: str, dataset: str) -> dict[str, Any]:
    """The sweep point with the lowest validation error (all sweep points must be done): learning_rate,
    batch_size, the error of every point, and the rule."""
    key = error_key(dataset)
    rows = []
    for unit in sweep_units(scale, dataset):
        rec = read_record(root, unit.id)
        if rec is None:
            raise CampaignError(f"sweep point {unit.id} has not run yet")
        err = rec["val"].get(key)
        ok = not rec["truncated"] and err is not None and math.isfinite(err)
        rows.append({"unit": unit.id, "learning_rate": unit.spec["learning_rate"],
                     "batch_size": unit.spec["batch_size"], f"val_{key}": err if ok else None})
    usable = [r for r in rows if r[f"val_{key}"] is not None]
    if not usable:
        raise CampaignError(f"every sweep point of {dataset} failed or was truncated")
    best = min(usable, key=lambda r: r[f"val_{key}"])
    return {"learning_rate": best["learning_rate"], "batch_size": best["batch_size"],
            "rule": f"lowest validation {key} at the sweep's budget", "points": rows}


def dataset_overrides(scale: str, dataset: str) -> dict[str, Any]:
    """The head ablation's training overrides of `dataset` at `scale` (the scale's, then the dataset's own), a
    copy."""
    ablation = settings(scale)["ablation"]
    return copy.deepcopy({**ablation["overrides"], **(ablation["datasets"][dataset].get("overrides") or {})})


def run_config(unit: Unit, root: Path) -> dict[str, Any]:
    """The training config of a sweep point or ablation run (`qallegro.training.resolve_config` + overrides)."""
    from qallegro.training import resolve_config

    spec = unit.spec
    s = settings(spec["scale"])
    dataset, variant = spec["dataset"], spec["variant"]
    over = dataset_overrides(spec["scale"], dataset)
    over.update(copy.deepcopy(s["ablation"]["heads"][variant]))
    if spec.get("ablation"):
        opt = chosen_optimiser(root, spec["scale"], dataset)
        over.update(learning_rate=opt["learning_rate"], batch_size=opt["batch_size"])
    else:
        over.update(copy.deepcopy(s["sweep"].get("overrides") or {}))
        over.update(learning_rate=spec["learning_rate"], batch_size=spec["batch_size"])
    over["seed"] = int(spec["seed"])
    if over.get("max_epochs") == PAPER_EPOCHS:
        from qallegro.paper import values

        over["max_epochs"] = int(values()["final_training_epochs"][dataset])
    return resolve_config(dataset, variant, spec["scale"], overrides=over)


def _splits(scale: str) -> dict[str, Any]:
    from qallegro.data.culi import SPLITS_FILE, dataset_folder

    return json.loads((dataset_folder(None, scale) / SPLITS_FILE).read_text())


def data_sha256(scale: str) -> str | None:
    """The sha256 of the Cu-Li frames generated here at `scale` (as its `splits.json` records it)."""
    return _splits(scale).get("dataset_sha256")


def _split(cfg: dict[str, Any]) -> dict[str, Any]:
    """The split version (1 for the registered datasets' fixed splits), and for a generated Cu-Li set its own
    version and the sha256 of its frames: runs on regenerated data compare only when the data are identical."""
    if cfg["dataset"] != "culi":
        return {"split_version": 1}
    splits = _splits((cfg.get("dataset_options") or {}).get("scale", cfg["scale"]))
    return {"split_version": int(splits.get("split_version", 1)), "data_sha256": splits.get("dataset_sha256")}


def score_ood(run_dir: Path, cfg: dict[str, Any], n_frames: int) -> dict[str, Any]:
    """Metrics of a Cu-Li run's best model on the first `n_frames` of the held-out interface (`ood` split)."""
    from qallegro.data import load_dataset
    from qallegro.training import load_run
    from qallegro.training.data import to_graphs
    from qallegro.training.evaluate import evaluate

    options = dict(cfg.get("dataset_options") or {})
    atoms = load_dataset("culi", split="ood", max_frames=n_frames, **options)
    model = load_run(run_dir)
    return evaluate(model, to_graphs(atoms, float(cfg["r_max"])))


def run_outcome(cfg: dict[str, Any], result: Any) -> dict[str, Any]:
    """What every campaign training record keeps of a finished run: metrics, epochs, wall time, why it stopped
    (`truncated` when a safety limit cut it), size, and the config hash and commit that made it."""
    return {"val": result.get("val"), "test": result.get("test"), "epochs": result.get("epochs"),
            "best_epoch": result.get("best_epoch"), "wall_s": result.get("wall_s"),
            "stop_reason": result.get("stop_reason"), "truncated": result.get("stop_reason") in TRUNCATING,
            "n_parameters": result.get("n_parameters"), "config_hash": config_hash(cfg), "git_commit": git_commit()}


def run_training_unit(unit: Unit, folder: Path) -> dict[str, Any]:
    """Train (resuming an interrupted run) with the worker's torch threads, then the record: metrics, budget,
    protocol, truncation."""
    import torch

    from qallegro.training import train

    root = unit.root(folder)
    # the worker set its threads (one by default); a config's `threads: null` would take every CPU, and two
    # workers would then oversubscribe the machine (5-10x slower here)
    cfg = {**run_config(unit, root), "threads": torch.get_num_threads()}
    run_dir = folder / "run"
    result = train(cfg, run_dir=run_dir, resume=True, progress=False)
    record: dict[str, Any] = {
        "dataset": cfg["dataset"], "variant": cfg["variant"], "seed": cfg["seed"], "scale": cfg["scale"],
        "protocol": {"version": PROTOCOL_VERSION, **_split(cfg),
                     "budget": {"kind": "epochs", "max_epochs": int(cfg["max_epochs"])},
                     "learning_rate": cfg["learning_rate"], "batch_size": cfg["batch_size"],
                     "n_train": cfg["n_train"], "n_val": cfg["n_val"], "n_test": cfg["n_test"]},
        "steps": result.get("steps"), **run_outcome(cfg, result),
    }
    ds = settings(cfg["scale"])["ablation"]["datasets"].get(cfg["dataset"], {})
    if unit.spec.get("ablation") and ds.get("ood_frames"):
        record["ood"] = score_ood(run_dir, cfg, int(ds["ood_frames"]))
    return record
