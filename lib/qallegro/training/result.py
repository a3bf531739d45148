"""`TrainResult`: what a training run returns and writes to `metrics.json` (a frozen, typed record)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qallegro.records import Record

# units of the metric dicts `val` and `test`
METRIC_UNITS = {"e_mae": "eV/atom", "e_rmse": "eV/atom", "etot_mae": "eV", "etot_rmse": "eV", "f_mae": "eV/Å",
                "f_rmse": "eV/Å"}


@dataclass(frozen=True)
class TrainResult(Record):
    """A finished run: validation errors of the kept weights (`val_f_mae` eV/Å, `val_e_mae` eV/atom; None where
    the data have no forces), the `val` and `test` metric dicts (`METRIC_UNITS`), how training went, and the
    dataset statistics and species the model was built with."""

    run_dir: str
    val_f_mae: float | None
    val_e_mae: float | None
    val: Mapping[str, Any]
    test: Mapping[str, Any]
    epochs: int
    steps: int
    best_epoch: int | None
    wall_s: float
    stop_reason: str | None
    n_parameters: int
    statistics: Mapping[str, Any]
    species: list[int]
    units: Mapping[str, str]
    weights: str
    config_hash: str

    @classmethod
    def read(cls, path: str | Path) -> TrainResult:
        """The result in a run's `metrics.json`, validated."""
        import json

        path = Path(path)
        return cls.from_json(json.loads(path.read_text()), str(path))
