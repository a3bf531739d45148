"""The paper's printed values (Tables 1-6, Fig. 2 points, Supplementary A), for comparison and warm starts.

Everything here is the paper's, never ours: the book shows these beside our numbers, labelled as the paper's.
Files: `data/paper/paper_values.yaml` (tables) and `data/paper/fig2_pareto_points.csv` (95 digitised points).
"""

from __future__ import annotations

from functools import cache
from typing import Any

import yaml

from qallegro.paths import PAPER_DIR

DATASETS = ("rmd17-aspirin", "rmd17-benzene", "qm9", "culi")
VARIANTS = ("allegro", "mlp", "qdi")
_TABLE_OF_VARIANT = {"allegro": "table1_allegro", "mlp": "table2_mlp", "qdi": "table3_qdi"}
# names used in the digitised Fig. 2 file
FIG2_DATASET = {"rMD17-aspirin": "rmd17-aspirin", "rMD17-benzene": "rmd17-benzene", "QM9": "qm9", "Cu-Li": "culi"}
FIG2_VARIANT = {"Allegro": "allegro", "Allegro+MLP": "mlp", "Allegro+QDI": "qdi"}


@cache
def values() -> dict[str, Any]:
    """All tabulated values of the paper (a dict read from `paper_values.yaml`)."""
    path = PAPER_DIR / "paper_values.yaml"
    if not path.exists():
        raise FileNotFoundError(f"paper values missing: {path}")
    return yaml.safe_load(path.read_text())


def best_hyperparameters(dataset: str, variant: str) -> dict[str, Any]:
    """The paper's best hyperparameters (Tables 1-3) for `dataset` and `variant`, as printed."""
    if variant not in _TABLE_OF_VARIANT:
        raise ValueError(f"unknown variant {variant!r}; choose one of {VARIANTS}")
    table = values()[_TABLE_OF_VARIANT[variant]]
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
    unknown = set(df["dataset"]) - set(FIG2_DATASET) | set(df["variant"]) - set(FIG2_VARIANT)
    if unknown:
        raise ValueError(f"{path}: unexpected dataset/variant names {sorted(unknown)}")
    return df.assign(dataset=df["dataset"].map(FIG2_DATASET), variant=df["variant"].map(FIG2_VARIANT))
