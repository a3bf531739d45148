"""Training, evaluation and NVE checks: `resolve_config`, `train`, `evaluate`, `predict`, `nve_drift`.

Heavy modules are imported on first use so that `import qallegro.training` stays cheap.
"""

from __future__ import annotations

from qallegro.lazy import lazy_attributes

_LAZY = {
    "TRAIN_DEFAULTS": "qallegro.training.config",
    "resolve_config": "qallegro.training.config",
    "ConfigError": "qallegro.training.config",
    "train": "qallegro.training.trainer",
    "load_run": "qallegro.training.trainer",
    "TrainResult": "qallegro.training.result",
    "evaluate": "qallegro.training.evaluate",
    "predict": "qallegro.training.evaluate",
    "nve_drift": "qallegro.training.md",
}

__all__ = list(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
