"""Allegro and its variants (Allegro+MLP, Allegro+QDI; the registry in `variants`) as interatomic potentials.

The entry points are imported on first use, so that reading the variant registry (CLI choices) does not import
torch.
"""

from __future__ import annotations

from qallegro.lazy import lazy_attributes

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

__getattr__ = lazy_attributes(__name__, _LAZY)
