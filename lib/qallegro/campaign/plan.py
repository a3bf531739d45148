"""The campaign at a scale: its units in priority order (`presets/campaign.yaml`: `datasets` lists the ablation's
datasets most important first), the runners of each unit kind, and where the records live."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qallegro.campaign import ablation, dft, studies
from qallegro.campaign.units import Runner, Unit, read_record
from qallegro.errors import CampaignError
from qallegro.paths import results_root


def campaign_root(scale: str) -> Path:
    """`<results>/<scale>/campaign` (`qallegro.paths.results_root`)."""
    return results_root() / scale / "campaign"


def run_culi_unit(unit: Unit, folder: Path) -> dict[str, Any]:
    """Generate (or resume) the scale's Cu-Li dataset; the record keeps its counts and split summary."""
    from qallegro.culi.generate import generate

    prov = generate(scale=unit.spec["scale"], progress=False)
    return {"n_frames": prov["n_frames"], "counts": prov["counts"], "split": prov.get("split"),
            "settings_hash": prov["settings_hash"], "labelling_seconds": prov["labelling_seconds"]}


RUNNERS: dict[str, Runner] = {"train": ablation.run_training_unit, "culi": run_culi_unit,
                               "study": studies.run_study_unit, "final": studies.run_final_unit,
                               "retime": studies.run_retime_unit, "retime-finals": studies.run_retime_finals_unit,
                               "compare": studies.run_compare_unit, "dft": dft.run_dft_unit}


def dataset_units(scale: str, dataset: str) -> list[Unit]:
    """The sweep and ablation units of one dataset (Cu-Li: after its generation)."""
    units = ablation.sweep_units(scale, dataset) + ablation.ablation_units(scale, dataset)
    if dataset != "culi":
        return units
    gen = Unit("data/culi", "culi", {"scale": scale})
    return [gen] + [Unit(u.id, u.kind, u.spec, (*u.after, gen.id)) for u in units]


def cuts(scale: str) -> dict[str, str]:
    """The parts of the campaign cut at `scale` for its budget (`presets/campaign.yaml` `cut`: part -> why), which
    the pages name where the evidence would have been."""
    s = ablation.settings(scale)
    cut = {str(k): str(v) for k, v in (s.get("cut") or {}).items()}
    both = sorted(set(cut) & set(s.get("order") or []))
    if both:
        raise CampaignError(f"presets/campaign.yaml[{scale}]: {both} both in `order` and in `cut`")
    return cut


def cut_reason(cut: Mapping[str, str], part: str) -> str | None:
    """What a record shows where `part` (e.g. `ablation:qm9`, `finals:culi`) is in the scale's `cuts`; else None."""
    return f"not run at this scale: {cut[part]}" if part in cut else None


def plan(scale: str, datasets: list[str] | None = None) -> list[Unit]:
    """Every unit of the campaign at `scale`, in the preset's `order` (most important first; `ablation:NAME`,
    `studies`, `finals`, `compare`: the optimiser page's sampler comparison, `labels`: the Cu-Li models against
    the GPAW subset), or only the ablation of the given datasets."""
    known = ablation.settings(scale)["ablation"]["datasets"]
    unknown = sorted(set(datasets or []) - set(known))
    if unknown:
        raise CampaignError(f"no ablation settings for dataset(s) {unknown} at scale {scale!r} "
                         f"(presets/campaign.yaml; known: {', '.join(known)})")
    if datasets:
        parts = [f"ablation:{d}" for d in datasets]
    else:
        cuts(scale)
        parts = ablation.settings(scale).get("order") or [f"ablation:{d}" for d in known]
    units: list[Unit] = []
    for part in parts:
        if part == "studies":
            units += studies.study_units(scale) + studies.retime_units(scale)
        elif part == "finals":
            units += studies.final_units(scale) + studies.retime_final_units(scale)
        elif part == "compare":
            units += studies.compare_units(scale)
        elif part == "labels":
            units += dft.dft_units(scale)
        elif part.startswith("ablation:") and part.removeprefix("ablation:") in known:
            units += dataset_units(scale, part.removeprefix("ablation:"))
        else:
            raise CampaignError(f"presets/campaign.yaml[{scale}].order: unknown entry {part!r}")
    seen: set[str] = set()
    return [u for u in units if not (u.id in seen or seen.add(u.id))]


def ablation_records(scale: str, dataset: str | None = None) -> list[dict[str, Any]]:
    """The finished ablation records at `scale` (of one dataset, or all)."""
    root = campaign_root(scale)
    names = [dataset] if dataset else list(ablation.settings(scale)["ablation"]["datasets"])
    out = []
    for name in names:
        for unit in ablation.ablation_units(scale, name):
            rec = read_record(root, unit.id)
            if rec is not None:
                out.append(rec)
    return out


def labels_records(scale: str) -> list[dict[str, Any]]:
    """The finished records of the `labels` units at `scale` (the Cu-Li models against DFT), in the plan's order."""
    root = campaign_root(scale)
    return [r for u in dft.dft_units(scale) if (r := read_record(root, u.id)) is not None]


def pilot_record(scale: str) -> dict[str, Any]:
    """The pilot's spread between seeds at `scale` (`qallegro campaign pilot`, `<campaign>/pilot.json`); {} when
    no pilot ran."""
    path = campaign_root(scale) / "pilot.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def sweep_records(scale: str) -> list[dict[str, Any]]:
    """The finished optimiser-sweep records at `scale`, every dataset."""
    root = campaign_root(scale)
    return [rec for name in ablation.settings(scale)["ablation"]["datasets"]
            for unit in ablation.sweep_units(scale, name) if (rec := read_record(root, unit.id)) is not None]


def split_sizes(dataset: str, scale: str) -> dict[str, int]:
    """The frames in each split of a generated dataset (`n_train`, `n_val`, `n_test`), from its committed
    provenance (Cu-Li: `results/<scale>/culi/provenance.json`); {} where the splits are larger than any run takes
    (rMD17, QM9) or no provenance is there."""
    import json

    from qallegro.paths import CULI_PROVENANCE_FILE, culi_dir

    if dataset != "culi":
        return {}
    path = culi_dir(scale) / CULI_PROVENANCE_FILE  # committed; the dataset beside it need not be
    if not path.is_file():
        return {}
    split = json.loads(path.read_text()).get("split") or {}
    return {k: int(split[k]) for k in ("n_train", "n_val", "n_test") if isinstance(split.get(k), int)}


def training_sizes(dataset: str, scale: str) -> dict[str, str]:
    """What the training runs of `scale` take of each split of `dataset` ("train / val / test", "all" for a
    whole split; at most what the split holds), by use: at a scale whose book the campaign computes, its head
    ablation (or why it is cut) and its HPO trials; otherwise the scale's training defaults
    (`qallegro.training.resolve_config`)."""
    from qallegro.hpo.records import hpo_settings
    from qallegro.scales import settings as scale_settings
    from qallegro.training import resolve_config

    available = split_sizes(dataset, scale)

    def sizes(overrides: dict[str, Any], keys: tuple[str, ...] = ("n_train", "n_val", "n_test")) -> str:
        cfg = resolve_config(dataset, scale=scale, overrides=overrides)
        return " / ".join("all" if cfg[k] is None else f"{min(cfg[k], available.get(k, cfg[k])):,}" for k in keys)

    campaign = ablation.settings(scale)
    if not campaign.get("run_with_book"):
        return {f"used for training at {scale} (train / val / test)": sizes({})}
    cut = cut_reason(cuts(scale), f"ablation:{dataset}")
    head = (("cut" if cut else sizes(ablation.dataset_overrides(scale, dataset)))
            if dataset in campaign["ablation"]["datasets"] else "–")
    trials = sizes(hpo_settings(scale_settings("hpo", scale)).budget(dataset, False), ("n_train", "n_val"))
    return {f"head ablation at {scale} (train / val / test)": head, f"HPO trials at {scale} (train / val)": trials}
