"""Datasets as lists of `ase.Atoms` with labels in eV and eV/Å, and the batched graph structure."""
