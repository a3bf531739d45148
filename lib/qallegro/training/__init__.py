"""Training, evaluation and NVE checks: `resolve_config`, `train`, `evaluate`, `predict`, `nve_drift`.

Heavy modules are imported on first use so that `import qallegro.training` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'qallegro.training' has no attribute {name!r}")
