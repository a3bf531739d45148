"""Typed records of the HPO: the settings of a scale (`presets/hpo.yaml`) and the final-training record.

`HpoSettings` holds every default of the HPO presets in one place (a study's overrides are applied before it is
read), `SamplerComparison` those of its `compare` section; `FinalRecord` is what `final_train` /
`transfer_train` write (`final-<choice>.json`, `transfer-<dataset>-qdi.json`) and the book reads back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qallegro.records import Record


@dataclass(frozen=True)
class Timing(Record):
    """How the inference-time objective is measured (`qallegro.timing.inference_time`): the first
    `max_structures` test structures (None: all), in batches, `repeats` timed passes after `warmup` ones, on the
    `clock` ("wall", or "process": the process's CPU time), with the matrix-product FLOPs counted when `flops`."""

    max_structures: int | None = None
    batch_size: int = 1
    repeats: int = 3
    warmup: int = 1
    clock: str = "wall"
    flops: bool = False


@dataclass(frozen=True)
class Heartbeat(Record):
    """Seconds between a running trial's heartbeats, seconds of silence before another worker fails it, how
    often a failed trial is retried, and how often an idle worker polls (None: the interval)."""

    interval: int = 60
    grace_period: int = 180
    max_retry: int = 1
    poll: float | None = None


@dataclass(frozen=True)
class MultiFidelity(Record):
    """The MO-ASHA schedule of `--pruner mo-asha` (`qallegro.hpo.multifidelity`): rungs from `min_epochs`,
    multiplied by `eta`, up to `max_epochs` (None: the per-trial `max_epochs`)."""

    min_epochs: int = 1
    eta: int = 3
    max_epochs: int | None = None


@dataclass(frozen=True)
class HpoSettings(Record):
    """The HPO settings of one scale; `extra` keeps keys meant for other readers (e.g. `compare`)."""

    OPEN = True

    n_trials: int
    trial_overrides: Mapping[str, Any] = field(default_factory=dict)
    trial_overrides_by_dataset: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    final_overrides: Mapping[str, Any] = field(default_factory=dict)
    final_overrides_by_dataset: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    timing: Timing = field(default_factory=Timing)
    samplers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    space: Mapping[str, Any] = field(default_factory=dict)
    space_by_dataset: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    heartbeat: Heartbeat = field(default_factory=Heartbeat)
    multifidelity: MultiFidelity = field(default_factory=MultiFidelity)
    max_consecutive_failures: int = 3
    extra: Mapping[str, Any] = field(default_factory=dict)

    def budget(self, dataset: str, final: bool = False) -> dict[str, Any]:
        """The training-config overrides of a trial (or of a final model, `final`) on `dataset`."""
        if final:
            return {**self.final_overrides, **(self.final_overrides_by_dataset.get(dataset) or {})}
        return {**self.trial_overrides, **(self.trial_overrides_by_dataset.get(dataset) or {})}


def hpo_settings(settings: Mapping[str, Any], source: str = "HPO settings") -> HpoSettings:
    """`settings` (a preset section with a study's overrides, or already a record) as a validated record."""
    return HpoSettings.from_json(settings, source)


@dataclass(frozen=True)
class SamplerComparison(Record):
    """The `compare` section of a scale's HPO settings (`qallegro.hpo.experiment.compare_samplers`): the dataset
    and variant, the samplers and seeds (one study each), the trials per study, and the experiment's own
    per-trial budget and timing (study settings on top of the scale's; left out when None). None: the caller
    must say it."""

    OPTIONAL = ("trial_overrides", "timing")

    dataset: str | None = None
    variant: str = "allegro"
    samplers: list[str] | None = None
    seeds: list[int] | None = None
    n_trials: int | None = None
    trial_overrides: Mapping[str, Any] | None = None
    timing: Mapping[str, Any] | None = None

    @classmethod
    def of(cls, settings: HpoSettings, scale: str) -> SamplerComparison:
        """The `compare` section of `settings` (the HPO settings of `scale`), validated; empty when absent."""
        return cls.from_json(settings.extra.get("compare") or {}, f"presets/hpo.yaml[{scale}].compare")


@dataclass(frozen=True)
class FinalRecord(Record):
    """A final model: what it is (study, choice, trial and parameters, or the transfer's provenance), its
    training run, its validation errors (Tables 4-5), val/test metric dicts (Table 6), epochs, wall time, and the
    inference time of the final model."""

    OPTIONAL = ("study", "trial", "params", "hpo_values", "transfer")

    dataset: str
    variant: str
    scale: str
    choice: str
    config: Mapping[str, Any]
    run_dir: str
    epochs_csv: str
    val_f_mae: float | None
    val_e_mae: float | None
    val: Mapping[str, Any] | None
    test: Mapping[str, Any] | None
    epochs: int | None
    wall_s: float | None
    inference_total_s: float
    inference_n_structures: int
    objectives: list[str]
    study: str | None = None
    trial: int | None = None
    params: Mapping[str, Any] | None = None
    hpo_values: Mapping[str, float] | None = None
    transfer: Mapping[str, Any] | None = None

    @classmethod
    def read(cls, path: str | Path) -> FinalRecord:
        """The record in a summary file, validated."""
        path = Path(path)
        return cls.from_json(json.loads(path.read_text()), str(path))
