"""`qallegro evaluate`: a model's errors on labelled structures, overall, per species and per Cu-Li category.

Energies: MAE/RMSE per structure (eV) and per atom (|ΔE|/n, eV/atom). Forces: MAE/RMSE over Cartesian
components (eV/Å), overall and per species of the atom. Structures whose `info["category"]` is set (Cu-Li)
are also grouped by it. A parity plot (energy per atom, force components) and a JSON record go to a folder.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from ase import Atoms
from tqdm import tqdm

from qallegro.data.graph import atoms_to_graph
from qallegro.utils import atomic_write_bytes, atomic_write_json


def read_structures(data: str, max_frames: int | None = None, options: dict[str, Any] | None = None
                    ) -> tuple[list[Atoms], str]:
    """Structures from a dataset name (`NAME` = its test split, or `NAME:SPLIT`, loaded with `options`, e.g. a
    Cu-Li `scale`) or any ASE-readable file with energies and forces; and a label for them. Errors name the file
    or dataset and the problem."""
    from qallegro.data import DATASETS, load_dataset

    if max_frames is not None and max_frames < 1:
        raise ValueError(f"max_frames {max_frames}: must be at least 1 (leave it out for every structure)")
    name, _, split = data.partition(":")
    if name in DATASETS:
        opts = {**(options or {}), **({"max_frames": max_frames} if max_frames else {})}
        return load_dataset(name, split or "test", **opts), f"{name}:{split or 'test'}"
    path = Path(data)
    if not path.is_file():
        raise FileNotFoundError(f"{data}: neither a dataset ({', '.join(DATASETS)}) nor a structure file")
    import ase.io

    try:
        frames = ase.io.read(path, index=f":{max_frames or ''}")
    except Exception as err:  # ASE raises many types for unreadable files
        raise ValueError(f"{path}: not a structure file ASE can read ({type(err).__name__}: {err})") from err
    frames = frames if isinstance(frames, list) else [frames]
    for k, atoms in enumerate(frames):
        res = getattr(atoms.calc, "results", {}) if atoms.calc is not None else {}
        missing = [key for key in ("energy", "forces") if key not in res]
        if missing:
            raise ValueError(f"{path}: frame {k} has no reference {' or '.join(missing)}")
    return frames, path.name


def predict_structures(model: torch.nn.Module, frames: list[Atoms], progress: bool = True) -> dict[str, Any]:
    """Predicted and reference energies (eV, per structure) and forces (eV/Å, per atom) with atom counts,
    atomic numbers and categories, as numpy arrays."""
    species = set(model.species)
    cols: dict[str, list] = {k: [] for k in ("energy", "energy_ref", "n_atoms", "forces", "forces_ref", "numbers",
                                             "category")}
    for k, atoms in enumerate(tqdm(frames, desc="evaluate", unit="structure", disable=not progress)):
        unknown = sorted(set(atoms.numbers.tolist()) - species)
        if unknown:
            raise ValueError(f"structure {k}: species {unknown} not in the model's species {sorted(species)}")
        g = atoms_to_graph(atoms, model.r_max, labels=True)
        out = model(g, compute_forces=True)
        cols["energy"].append(float(out["energy"].detach().sum()))
        cols["energy_ref"].append(float(g["energy"][0]))
        cols["n_atoms"].append(len(atoms))
        cols["forces"].append(out["forces"].detach().double().numpy())
        cols["forces_ref"].append(g["forces"].double().numpy())
        cols["numbers"].append(atoms.numbers)
        cols["category"].append(str(atoms.info.get("category", "")))
    return {k: np.concatenate(v) if k in ("forces", "forces_ref", "numbers") else np.asarray(v)
            for k, v in cols.items()}


def _stats(err: np.ndarray) -> tuple[float, float]:
    return float(np.abs(err).mean()), float(np.sqrt((err ** 2).mean()))


def error_metrics(pred: dict[str, Any]) -> dict[str, Any]:
    """Errors of `predict_structures` output: overall, `per_species` (forces) and `per_category` (all)."""
    def block(mask_s: np.ndarray, mask_a: np.ndarray) -> dict[str, float]:
        de = pred["energy"][mask_s] - pred["energy_ref"][mask_s]
        df = pred["forces"][mask_a] - pred["forces_ref"][mask_a]
        e_mae, e_rmse = _stats(de)
        ea_mae, ea_rmse = _stats(de / pred["n_atoms"][mask_s])
        f_mae, f_rmse = _stats(df)
        return {"n_structures": int(mask_s.sum()), "n_atoms": int(mask_a.sum()), "energy_mae_eV": e_mae,
                "energy_rmse_eV": e_rmse, "energy_per_atom_mae_eV": ea_mae, "energy_per_atom_rmse_eV": ea_rmse,
                "forces_mae_eV_per_A": f_mae, "forces_rmse_eV_per_A": f_rmse}

    n_s = len(pred["energy"])
    atom_structure = np.repeat(np.arange(n_s), pred["n_atoms"])
    out: dict[str, Any] = block(np.ones(n_s, bool), np.ones(len(atom_structure), bool))
    out["per_species"] = {}
    for z in np.unique(pred["numbers"]):
        f = pred["forces"][pred["numbers"] == z] - pred["forces_ref"][pred["numbers"] == z]
        mae, rmse = _stats(f)
        out["per_species"][str(int(z))] = {"n_atoms": int((pred["numbers"] == z).sum()), "forces_mae_eV_per_A": mae,
                                           "forces_rmse_eV_per_A": rmse}
    cats = sorted(c for c in set(pred["category"].tolist()) if c)
    out["per_category"] = {c: block(pred["category"] == c, (pred["category"] == c)[atom_structure]) for c in cats}
    return out


def parity_plot(pred: dict[str, Any], path: str | Path, title: str) -> Path:
    """Predicted against reference energy per atom and force components, as a PNG (written atomically)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(9, 4.2))
    e_ref, e_est = pred["energy_ref"] / pred["n_atoms"], pred["energy"] / pred["n_atoms"]
    mean = float(e_ref.mean())  # energies per atom about their mean, so the tick labels stay short
    pairs = ((1e3 * (e_ref - mean), 1e3 * (e_est - mean), "meV/atom",
              f"energy per atom, from the reference mean {mean:.4f} eV/atom"),
             (pred["forces_ref"].ravel(), pred["forces"].ravel(), "eV/Å", "force components"))
    for ax, (ref, est, unit, what) in zip(axes, pairs):
        ax.scatter(ref, est, s=4, alpha=0.5)
        lo, hi = float(min(ref.min(), est.min())), float(max(ref.max(), est.max()))
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.set_title(what, fontsize=10)
        ax.set_xlabel(f"reference ({unit})")
        ax.set_ylabel(f"predicted ({unit})")
        for axis in (ax.xaxis, ax.yaxis):  # long energy labels (e.g. -838.95 eV/atom) would overlap
            axis.set_major_locator(MaxNLocator(nbins=4))
    fig.suptitle(title)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def training_dataset_options(model_path: str | Path, model: torch.nn.Module, dataset: str) -> dict[str, Any]:
    """The dataset options (e.g. the Cu-Li `scale`) the model was trained with, where it was trained on
    `dataset` and its training config is at hand (a run folder's `config.yaml`, an export's provenance); else {}."""
    import yaml

    config_file = Path(model_path) / "config.yaml"
    if config_file.is_file():
        config = yaml.safe_load(config_file.read_text()) or {}
    else:
        config = ((getattr(model, "meta", None) or {}).get("provenance") or {}).get("config") or {}
    return dict(config.get("dataset_options") or {}) if config.get("dataset") == dataset else {}


def evaluate_model(model_path: str | Path, data: str, out_dir: str | Path, max_frames: int | None = None,
                   progress: bool = True, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Evaluate the model at `model_path` (export, model.pt or run folder) on `data`; write `metrics.json` and
    `parity.png` to `out_dir` and return the record. A dataset is read with the options the model was trained
    with (`training_dataset_options`), updated by `options`."""
    from qallegro.deploy.export import load_potential

    model = load_potential(model_path)
    trained = training_dataset_options(model_path, model, data.partition(":")[0])
    frames, label = read_structures(data, max_frames, {**trained, **(options or {})})
    pred = predict_structures(model, frames, progress)
    record = {"model": str(model_path), "data": label, **error_metrics(pred)}
    out_dir = Path(out_dir)
    atomic_write_json(out_dir / "metrics.json", record)
    parity_plot(pred, out_dir / "parity.png", f"{Path(model_path).name} on {label}")
    return record
