"""Our results beside the paper's, as the book's tables show them (the paper's values from `qallegro.paper`).

Pure functions of plain numbers and DataFrames: the notebooks call them, the tests check them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

DATASET_LABELS = {"rmd17-aspirin": "rMD17-aspirin", "rmd17-benzene": "rMD17-benzene", "qm9": "QM9",
                  "culi": "Cu-Li"}
VARIANT_LABELS = {"allegro": "Allegro", "mlp": "Allegro+MLP", "qdi": "Allegro+QDI"}
TABLE_OF_VARIANT = {"allegro": "Table 1", "mlp": "Table 2", "qdi": "Table 3"}
FIG2_PANEL = {"rmd17-aspirin": "a", "rmd17-benzene": "b", "qm9": "c", "culi": "d"}


def hyperparameters(ours: Mapping[str, Any], dataset: str, variant: str) -> pd.DataFrame:
    """One row per searched hyperparameter of `variant`: our chosen value and the paper's (Tables 1-3; `None`
    where the paper prints none, e.g. the MLP's input features k)."""
    from qallegro.hpo.space import default_space, paper_values

    paper = paper_values(dataset, variant)
    rows = [{"hyperparameter": p.name, "ours": _round(ours.get(p.name)),
             f"paper ({TABLE_OF_VARIANT[variant]})": paper.get(p.name)} for p in default_space(variant).params]
    return pd.DataFrame(rows, dtype=object).set_index("hyperparameter")


def _round(value: Any, digits: int = 3) -> Any:
    """Floats to `digits` significant digits (for tables); everything else unchanged."""
    return float(f"{value:.{digits}g}") if isinstance(value, float) else value


def hyperparameter_table(chosen: Mapping[tuple[str, str], Mapping[str, Any]], variant: str) -> pd.DataFrame:
    """Table 1, 2 or 3 (by `variant`): one row per dataset with a chosen configuration, each hyperparameter as
    an (ours, paper) column pair."""
    frames = {DATASET_LABELS.get(d, d): hyperparameters(params, d, v)
              for (d, v), params in chosen.items() if v == variant}
    if not frames:
        raise ValueError(f"no chosen {variant} configuration to tabulate")
    table = pd.concat({k: f.T for k, f in frames.items()})  # (dataset, ours|paper) x hyperparameter
    table = table.unstack(level=1)  # dataset x (hyperparameter, ours|paper)
    order = [p for p in frames[next(iter(frames))].index]
    return table.reindex(columns=order, level=0)


def relative_improvement(better: float, worse: float) -> float:
    """(worse - better) / worse: how much lower `better`'s error is, as a fraction (the paper's "13%")."""
    if worse <= 0:
        raise ValueError(f"the reference error must be positive, got {worse}")
    return (worse - better) / worse
