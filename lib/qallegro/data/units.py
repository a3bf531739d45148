"""Unit conversions used by the dataset readers (each constant is defined here only)."""

from __future__ import annotations

#: eV per kcal/mol (rMD17 energies and forces are in kcal/mol and kcal/mol/Å).
KCAL_MOL_TO_EV = 0.0433641153

#: eV per Hartree (CODATA 2018; QM9 energies are in Hartree).
HARTREE_TO_EV = 27.211386245988
