"""Dataset statistics and the structures of the paper's Fig. 7 (for the book)."""

from __future__ import annotations

from typing import Any

import numpy as np
from ase import Atoms

from qallegro.culi.generate import CATEGORIES

#: Fig. 7 colours: Li green, Cu blue.
COLORS = {"Li": "#2ca02c", "Cu": "#1f77b4"}


def category_counts(frames: list[Atoms]):
    """DataFrame indexed by category: frames, distinct parent structures, mean and max atoms per frame."""
    import pandas as pd

    rows = []
    for cat in CATEGORIES:
        sel = [a for a in frames if a.info.get("category") == cat]
        rows.append({"category": cat, "frames": len(sel), "structures": len({a.info.get("parent") for a in sel}),
                     "atoms_mean": float(np.mean([len(a) for a in sel])) if sel else 0.0,
                     "atoms_max": max((len(a) for a in sel), default=0)})
    return pd.DataFrame(rows).set_index("category")


def frame_table(frames: list[Atoms]):
    """One row per frame: category, miller, composition, parent, step, temperature, n_atoms, n_li, n_cu,
    energy (eV), energy_per_atom, force_max and force_rms (eV/Å)."""
    import pandas as pd

    rows = []
    for i, a in enumerate(frames):
        forces = a.get_forces(apply_constraint=False)
        norms = np.linalg.norm(forces, axis=1)
        symbols = a.get_chemical_symbols()
        energy = a.get_potential_energy()
        rows.append({"index": i, "category": a.info.get("category"), "miller": a.info.get("miller"),
                     "composition": a.info.get("composition"), "parent": a.info.get("parent"),
                     "step": int(a.info.get("step", -1)), "temperature": float(a.info.get("temperature", np.nan)),
                     "n_atoms": len(a), "n_li": symbols.count("Li"), "n_cu": symbols.count("Cu"),
                     "energy": energy, "energy_per_atom": energy / len(a), "force_max": float(norms.max()),
                     "force_rms": float(np.sqrt((forces**2).mean()))})
    return pd.DataFrame(rows).set_index("index")


def force_components(frames: list[Atoms]):
    """One row per atom: frame index, category, element, fx, fy, fz, |F| (eV/Å); for force distributions."""
    import pandas as pd

    parts = []
    for i, a in enumerate(frames):
        f = a.get_forces(apply_constraint=False)
        parts.append(pd.DataFrame({"frame": i, "category": a.info.get("category"), "element": a.get_chemical_symbols(),
                                   "fx": f[:, 0], "fy": f[:, 1], "fz": f[:, 2], "f_norm": np.linalg.norm(f, axis=1)}))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["frame", "category", "element", "fx", "fy", "fz", "f_norm"])


def fig7_structures(scale: str = "paper") -> dict[str, Atoms]:
    """Li(110) and Cu(110) slabs, Li(110)/Cu(110) and Li(111)/Cu(111) interfaces at `scale`'s thicknesses."""
    from qallegro.culi.generate import Builder
    from qallegro.scales import settings

    builder = Builder(settings("culi", scale))
    out: dict[str, Any] = {"Li(110)": builder.slab("Li", (1, 1, 0)), "Cu(110)": builder.slab("Cu", (1, 1, 0))}
    for hkl, name in (((1, 1, 0), "Li(110)/Cu(110)"), ((1, 1, 1), "Li(111)/Cu(111)")):
        atoms = builder.interface(hkl)
        if atoms is None:
            raise RuntimeError(f"no coherent interface for {name} with the {scale} settings")
        out[name] = atoms
    return out


def draw_structures(structures: dict[str, Atoms], rotation: str = "-90x", axes=None, radii: float = 0.9,
                    bar: float = 10.0):
    """Side views with `ase.visualize.plot.plot_atoms` (Li green, Cu blue), every panel on one length scale with
    a `bar` Å scale bar in the first; returns the matplotlib Figure."""
    import matplotlib.pyplot as plt
    from ase.visualize.plot import plot_atoms

    if axes is None:
        _, axes = plt.subplots(1, len(structures), figsize=(3.2 * len(structures), 5.0))
    axes = np.atleast_1d(axes)
    for ax, (name, atoms) in zip(axes, structures.items()):
        plot_atoms(atoms, ax, rotation=rotation, radii=radii,
                   colors=[COLORS.get(s, "#888888") for s in atoms.get_chemical_symbols()])
        ax.set_title(name)
        ax.set_axis_off()
    used = axes[: len(structures)]
    limits = [(ax.get_xlim(), ax.get_ylim()) for ax in used]
    width = max(x[1] - x[0] for x, _ in limits)
    height = max(y[1] - y[0] for _, y in limits)
    for ax, (x, y) in zip(used, limits):
        ax.set_xlim(sum(x) / 2 - width / 2, sum(x) / 2 + width / 2)
        ax.set_ylim(sum(y) / 2 - height / 2, sum(y) / 2 + height / 2)
        ax.set_aspect("equal")
    if bar and len(used):
        x0, y0 = used[0].get_xlim()[0] + 0.05 * width, used[0].get_ylim()[0] + 0.02 * height
        used[0].plot([x0, x0 + bar], [y0, y0], color="black", linewidth=2)
        used[0].text(x0 + bar / 2, y0 + 0.01 * height, f"{bar:g} Å", ha="center", va="bottom")
    return axes[0].figure
