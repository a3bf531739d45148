"""The readable names the campaign's evidence sentences use: the registries' variant and dataset labels and the
metrics in words."""

from __future__ import annotations

from collections.abc import Mapping

from qallegro.data.datasets import DATASET_LABELS
from qallegro.models.variants import VARIANT_LABELS

METRICS = {"f_mae": "force MAE", "e_mae": "energy MAE", "f_rmse": "force RMSE", "e_rmse": "energy RMSE"}


def variant(name: str) -> str:
    """`qdi` -> `Allegro+QDI` (unknown names unchanged)."""
    return VARIANT_LABELS.get(name, name)


def dataset(name: str) -> str:
    """`culi` -> `Cu-Li` (unknown names unchanged)."""
    return DATASET_LABELS.get(name, name)


def metric(name: str) -> str:
    """`f_mae` -> `force MAE` (unknown names unchanged)."""
    return METRICS.get(name, name)


def study(dataset_name: str, variant_name: str) -> str:
    """A study in words: `Cu-Li Allegro+QDI`."""
    return f"{dataset(dataset_name)} {variant(variant_name)}"


def seed_counts(counts: Mapping[str, int]) -> str:
    """Finished seeds per variant: `Allegro 0, Allegro+MLP 2`."""
    return ", ".join(f"{variant(v)} {n}" for v, n in counts.items())


PARTS = {"studies": "the hyperparameter studies", "finals": "the final runs of the chosen configurations",
         "compare": "the sampler comparison", "labels": "the Cu-Li models against the GPAW subset"}


def part(name: str) -> str:
    """A part of the campaign's `order` (or of its `cut`): `ablation:qm9` -> `the QM9 head ablation`, `finals:culi`
    -> `the Cu-Li final runs`, `compare` -> `the sampler comparison` (unknown names unchanged)."""
    if name.startswith("ablation:"):
        return f"the {dataset(name.removeprefix('ablation:'))} head ablation"
    if name.startswith("finals:"):
        return f"the {dataset(name.removeprefix('finals:'))} final runs"
    return PARTS.get(name, name)


def cut_sentence(cut: Mapping[str, str]) -> str:
    """The parts a scale leaves out (`qallegro.campaign.plan.cuts`) in one sentence; empty when none."""
    if not cut:
        return ""
    return ("Left out at this scale (the cut list of lib/qallegro/presets/campaign.yaml): "
            + "; ".join(f"{part(p)}, {why}" for p, why in cut.items()) + ".")
