"""The QDI (quantum depth-infused) layer: PennyLane reference circuit, fast torch state vector, circuit analysis.

`QDILayer` is the torch module; `statevector` is the exact batched simulator; `circuit` the PennyLane definition;
`analysis` the Supplementary A computations (Fisher information, Fourier spectrum, ZX reduction, drawings).
"""

from __future__ import annotations

from .layer import BACKENDS, QDILayer

__all__ = ["BACKENDS", "QDILayer"]
