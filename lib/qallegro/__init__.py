"""qallegro: Allegro, Allegro+MLP and Allegro+QDI interatomic potentials, reproducibly.

Companion to Laskaris et al., "Multi-objective optimization and quantum hybridization of equivariant deep
learning interatomic potentials", Comput. Mater. Sci. 270 (2026) 114742 (arXiv 2602.16908).

The public entry points are imported lazily so that `import qallegro` stays cheap.
"""

from __future__ import annotations

from qallegro.lazy import lazy_attributes

__version__ = "0.3.0"

_LAZY = {
    "build_model": "qallegro.models",
    "load_model": "qallegro.models",
    "Calculator": "qallegro.deploy.calculator",
    "load_dataset": "qallegro.data",
}

__all__ = ["__version__", *_LAZY]

__getattr__ = lazy_attributes(__name__, _LAZY)
