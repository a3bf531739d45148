"""Allegro and its two variants (Allegro+MLP, Allegro+QDI) as interatomic potentials."""

from qallegro.models.build import build_model, load_model, save_model
from qallegro.models.config import MODEL_DEFAULTS, VARIANTS, resolve_model_config
from qallegro.models.potential import AllegroPotential

__all__ = ["MODEL_DEFAULTS", "VARIANTS", "AllegroPotential", "build_model", "load_model", "resolve_model_config",
           "save_model"]
