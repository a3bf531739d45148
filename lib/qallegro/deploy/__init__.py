"""From a trained potential to a simulation: portable exported models, evaluation, MD and LAMMPS.

- `export`: `export_model` writes a self-contained `torch.export` archive (`.pt2`) with its metadata;
  `load_potential` reads it (or a `model.pt`, or a training run directory).
- `calculator`: `qallegro.Calculator`, the ASE calculator given a module, a model file or a run directory.
- `evaluate`: error metrics per atom, per structure, per species and per Cu-Li category, a parity plot.
- `md`: ASE molecular dynamics (NVE, Langevin NVT) with a trajectory, a log and the energy-drift figure.
- `lammps`: a qallegro model as LAMMPS's force field through `fix external`.
"""

from qallegro.deploy.export import ExportedPotential, export_model, load_exported, load_potential

__all__ = ["ExportedPotential", "export_model", "load_exported", "load_potential"]
