"""Allegro and its variants (Allegro+MLP, Allegro+QDI; the registry in `variants`) as interatomic potentials.

The entry points are imported on first use, so that reading the variant registry (CLI choices) does not import
torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "build_model": "qallegro.models.build",
    "load_model": "qallegro.models.build",
    "save_model": "qallegro.models.build",
    "MODEL_DEFAULTS": "qallegro.models.config",
    "resolve_model_config": "qallegro.models.config",
    "AllegroPotential": "qallegro.models.potential",
    "VARIANTS": "qallegro.models.variants",
    "VariantSpec": "qallegro.models.variants",
    "register_variant": "qallegro.models.variants",
    "variant_spec": "qallegro.models.variants",
}

__all__ = list(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'qallegro.models' has no attribute {name!r}")
