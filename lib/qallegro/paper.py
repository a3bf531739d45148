"""The paper's printed values (Tables 1-6, Fig. 2 points, Supplementary A), for comparison and warm starts.

Everything here is the paper's, never ours: the book shows these beside our numbers, labelled as the paper's.
Files: `data/paper/paper_values.yaml` (tables) and `data/paper/fig2_pareto_points.csv` (95 digitised points).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from qallegro.data.datasets import dataset_names, dataset_spec
from qallegro.models.variants import variant_names, variant_spec
from qallegro.paths import PAPER_DIR

DATASETS = dataset_names(paper_only=True)  # the paper's four datasets, from the dataset registry


@cache
def values() -> dict[str, Any]:
    """All tabulated values of the paper (a dict read from `paper_values.yaml`)."""
    path = PAPER_DIR / "paper_values.yaml"
    if not path.exists():
        raise FileNotFoundError(f"paper values missing: {path}")
    return yaml.safe_load(path.read_text())


def best_hyperparameters(dataset: str, variant: str) -> dict[str, Any]:
    """The paper's best hyperparameters (Tables 1-3) for `dataset` and `variant`, as printed."""
    key = variant_spec(variant).paper_values_key
    if key is None:
        raise ValueError(f"variant {variant!r} is not one of the paper's; choose one of {variant_names(True)}")
    table = values()[key]
    if dataset not in table:
        raise ValueError(f"the paper has no {variant} row for {dataset!r}; rows: {sorted(table)}")
    return dict(table[dataset])


def fig2_points():
    """The 95 digitised Pareto points of Fig. 2 as a DataFrame (dataset, variant, val_mae, inference_time_s).

    `dataset` and `variant` use qallegro's names; `val_mae` is eV/Å (forces) or the QM9 energy MAE as plotted.
    """
    import pandas as pd

    path = PAPER_DIR / "fig2_pareto_points.csv"
    df = pd.read_csv(path, comment="#")
    # the file names datasets and variants by their labels
    datasets = {dataset_spec(n).label: n for n in DATASETS}
    variants = {variant_spec(n).label: n for n in variant_names(paper_only=True)}
    unknown = set(df["dataset"]) - set(datasets) | set(df["variant"]) - set(variants)
    if unknown:
        raise ValueError(f"{path}: unexpected dataset/variant names {sorted(unknown)}")
    return df.assign(dataset=df["dataset"].map(datasets), variant=df["variant"].map(variants))
