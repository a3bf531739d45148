"""Our results beside the paper's, as the book's tables show them (the paper's values from `qallegro.paper`).

Pure functions of plain numbers and DataFrames: the notebooks call them, the tests check them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import pandas as pd

from qallegro.data.datasets import DATASET_LABELS
from qallegro.models.variants import VARIANT_LABELS, VARIANTS, variant_names
from qallegro.pipeline.notebooks import FIG2_PANEL
from qallegro.utils import FieldView

__all__ = ["DATASET_LABELS", "FIG2_PANEL", "TABLE_OF_VARIANT", "VARIANT_LABELS", "derived_comparisons",
           "error_table", "hyperparameter_table", "hyperparameters", "relative_difference", "table6"]

TABLE_OF_VARIANT = FieldView(VARIANTS, "paper_table")  # the paper's table of each variant's best hyperparameters
HYPERPARAMETER_UNITS = {"r_max": "Å"}


def hyperparameters(ours: Mapping[str, Any], dataset: str, variant: str) -> pd.DataFrame:
    """One row per searched hyperparameter of `variant`: our chosen value and the paper's (Tables 1-3; `None`
    where the paper prints none, e.g. the MLP's input features k)."""
    from qallegro.hpo.space import default_space, paper_values

    paper = paper_values(dataset, variant)
    rows = [{"hyperparameter": p.name, "ours": _round(ours.get(p.name)),
             f"paper ({TABLE_OF_VARIANT[variant]})": paper.get(p.name)} for p in default_space(variant).params]
    return pd.DataFrame(rows, dtype=object).set_index("hyperparameter")


def _round(value: Any, digits: int = 3) -> Any:
    """Floats to `digits` significant digits (for tables); everything else unchanged."""
    return float(f"{value:.{digits}g}") if isinstance(value, float) else value


def hyperparameter_table(chosen: Mapping[tuple[str, str], Mapping[str, Any]], variant: str) -> pd.DataFrame:
    """Table 1, 2 or 3 (by `variant`): one row per dataset with a chosen configuration, each hyperparameter as
    an (ours, paper) column pair."""
    frames = {DATASET_LABELS.get(d, d): hyperparameters(params, d, v)
              for (d, v), params in chosen.items() if v == variant}
    if not frames:
        raise ValueError(f"no chosen {variant} configuration to tabulate")
    table = pd.concat({k: f.T for k, f in frames.items()})  # (dataset, ours|paper) x hyperparameter
    table = table.unstack(level=1)  # dataset x (hyperparameter, ours|paper)
    order = list(frames[next(iter(frames))].index)
    return table.reindex(columns=order, level=0)


def relative_difference(error: float, reference: float) -> float:
    """(error - reference) / reference as a fraction: negative where `error` is lower (the paper's "13%" is
    Allegro+QDI's -12.7% against Allegro+MLP), the convention of the claims and ablation pages."""
    if reference <= 0:
        raise ValueError(f"the reference error must be positive, got {reference}")
    return (error - reference) / reference


# Tables 4 and 5: (paper table key, record key, factor to the paper's unit, datasets as the paper's rows)
ERROR_TABLES = {
    "Table 4": ("table4_val_force_mae_meV_per_A", "val_f_mae", 1e3, ("rmd17-aspirin", "rmd17-benzene", "culi")),
    "Table 5": ("table5_val_energy_mae_meV_per_atom", "val_e_mae", 1e3,
                ("rmd17-aspirin", "rmd17-benzene", "culi", "qm9")),
}


def error_table(finals: Mapping[tuple[str, str], Mapping[str, Any]], table: str) -> pd.DataFrame:
    """Table 4 (validation force MAE, meV/Å) or Table 5 (validation energy MAE, meV/atom): one row per dataset,
    our value of each variant beside the paper's (and the paper's "Allegro [12]" column, which we do not rerun).
    `finals` maps (dataset, variant) to a final-model summary (`val_f_mae` in eV/Å, `val_e_mae` in eV/atom)."""
    from qallegro.paper import values

    key, metric, factor, datasets = ERROR_TABLES[table]
    paper = values()[key]
    rows = []
    for ds in datasets:
        row: dict[str, Any] = {"dataset": DATASET_LABELS[ds]}
        for variant in variant_names(paper_only=True):
            rec = finals.get((ds, variant))
            ours = None if rec is None or rec.get(metric) is None else factor * float(rec[metric])
            row[f"{VARIANT_LABELS[variant]} (ours)"] = ours
            row[f"{VARIANT_LABELS[variant]} (paper)"] = paper[ds].get(variant)
            if variant == "allegro":
                row["Allegro [12] (paper)"] = paper[ds].get("allegro_ref")
        rows.append(row)
    return pd.DataFrame(rows).set_index("dataset")


# The paper's derived comparisons (the abstract's "almost 13%" first): (label, dataset, metric, better, worse)
DERIVED = (
    ("Cu-Li forces: Allegro+QDI vs Allegro+MLP (the abstract's 'almost 13%')", "culi", "Table 4", "qdi", "mlp"),
    ("Cu-Li forces: Allegro+QDI vs Allegro", "culi", "Table 4", "qdi", "allegro"),
    ("aspirin forces: Allegro+MLP vs Allegro", "rmd17-aspirin", "Table 4", "mlp", "allegro"),
    ("benzene forces: Allegro+MLP vs Allegro", "rmd17-benzene", "Table 4", "mlp", "allegro"),
    ("Cu-Li energies: Allegro+QDI vs Allegro+MLP", "culi", "Table 5", "qdi", "mlp"),
)


def derived_comparisons(finals: Mapping[tuple[str, str], Mapping[str, Any]]) -> pd.DataFrame:
    """The relative difference of one variant's validation error from another's (`relative_difference`, in %),
    from our final models and from the paper's Tables 4-5; negative = the first variant is more accurate."""
    tables = {name: error_table(finals, name) for name in ERROR_TABLES}
    rows = []
    for label, ds, table, better, worse in DERIVED:
        t = tables[table].loc[DATASET_LABELS[ds]]
        vals = {}
        for who in ("ours", "paper"):
            b, w = t[f"{VARIANT_LABELS[better]} ({who})"], t[f"{VARIANT_LABELS[worse]} ({who})"]
            ok = b is not None and w is not None and pd.notna(b) and pd.notna(w)
            vals[who] = 100 * relative_difference(float(b), float(w)) if ok else None
        rows.append({"comparison": label, "ours (%)": vals["ours"], "paper (%)": vals["paper"]})
    return pd.DataFrame(rows).set_index("comparison")


TABLE6_COLUMNS = ("aspirin_F", "aspirin_E", "benzene_F", "benzene_E", "qm9_E")


def table6(finals: Mapping[tuple[str, str], Mapping[str, Any]], split: str = "test") -> pd.DataFrame:
    """Table 6: the literature rows and the paper's own rows as printed, then ours (force MAE in meV/Å and
    energy MAE in meV/atom on `split`: "test" (the literature's) or "val" (the paper's rows repeat Tables
    4-5)). Our energy errors are per atom; see the deviations page for the paper's units."""
    from qallegro.paper import values

    lit = values()["table6_literature"]
    cols = list(lit["columns"])
    if tuple(cols) != TABLE6_COLUMNS:
        raise ValueError(f"unexpected Table 6 columns in the paper values: {cols}")
    rows = {f"{name} (as printed)": list(vals) for name, vals in lit["rows"].items()}
    where = {"aspirin": "rmd17-aspirin", "benzene": "rmd17-benzene", "qm9": "qm9"}
    for variant in variant_names(paper_only=True):
        row = []
        for col in cols:
            mol, kind = col.split("_")
            rec = finals.get((where[mol], variant))
            metrics = (rec or {}).get(split) or {}
            value = metrics.get("f_mae" if kind == "F" else "e_mae")
            row.append(None if value is None else 1e3 * float(value))
        rows[f"{VARIANT_LABELS[variant]} (ours, {split})"] = row
    return pd.DataFrame.from_dict(rows, orient="index", columns=cols)


def best_points(chosen: Mapping[tuple[str, str], Mapping[str, Any]], points: pd.DataFrame, forces: bool = True
                ) -> pd.DataFrame:
    """The most accurate trial of each study (`chosen`: (dataset, variant) -> `chosen_config` entry) beside the
    paper's most accurate Fig. 2 point of the same case (`points`: `qallegro.paper.fig2_points()`). `forces`:
    the force studies (error in meV/Å, ours and the paper's); else QM9's energy studies (ours in meV/atom, the
    paper's as its axis prints them, with no unit). One row per study; `None` where the paper has no point."""
    from qallegro.hpo.objective import objective_names

    rows = []
    for (ds, var), entry in chosen.items():
        err, tim = objective_names(ds)
        if (err == "val_f_mae") != forces:
            continue
        mine = points[(points["dataset"] == ds) & (points["variant"] == var)]
        best = mine.loc[mine["val_mae"].idxmin()] if len(mine) else None
        rows.append({"dataset": DATASET_LABELS[ds], "variant": VARIANT_LABELS[var],
                     "ours: lowest error": 1e3 * entry[err], "ours: its time (s, CPU)": entry[tim],
                     "paper: lowest error": None if best is None else
                     (1e3 if forces else 1.0) * float(best["val_mae"]),
                     "paper: its time (s, T4)": None if best is None else float(best["inference_time_s"])})
    return pd.DataFrame(rows, columns=["dataset", "variant", "ours: lowest error", "ours: its time (s, CPU)",
                                       "paper: lowest error", "paper: its time (s, T4)"])


def per_hyperparameter(table: pd.DataFrame) -> pd.DataFrame:
    """A `hyperparameter_table` turned to one row per hyperparameter and one column per (dataset, ours|paper)
    pair, "<dataset>: <ours|paper ...>" (narrow enough for the page when there are up to four datasets)."""
    long = table.T  # (hyperparameter, ours|paper) x dataset
    out = long.unstack(level=1)  # hyperparameter x (dataset, ours|paper)
    out = out.reindex(index=list(dict.fromkeys(table.columns.get_level_values(0))))
    out.columns = [f"{ds}: {who}" for ds, who in out.columns]
    out.index = [f"{name} [{HYPERPARAMETER_UNITS[name]}]" if name in HYPERPARAMETER_UNITS else name
                 for name in out.index]
    out.index.name = "hyperparameter"
    return out


# Table 6 by molecule: the paper's column names of each molecule; "F" in meV/Å, "E" as the paper prints it
TABLE6_MOLECULES = {"aspirin": ("rmd17-aspirin", "aspirin_F", "aspirin_E"),
                    "benzene": ("rmd17-benzene", "benzene_F", "benzene_E"), "QM9": ("qm9", None, "qm9_E")}
TABLE6_UNITS = {"force MAE": "meV/Å", "energy MAE per molecule": "meV", "energy MAE per atom": "meV/atom",
                "energy MAE as printed": "labelled meV/atom"}


def table6_molecule(finals: Mapping[tuple[str, str], Mapping[str, Any]], molecule: str, split: str = "test"
                    ) -> pd.DataFrame:
    """Table 6 for one molecule ("aspirin", "benzene" or "QM9"), one row per model, with the unit of every
    energy column explicit (`TABLE6_UNITS`): the literature's rows (the MACE paper's energy errors are of the
    total energy, per molecule), the paper's own rows as printed (labelled meV/atom; per atom or per molecule is
    unclear), and ours on `split`, per atom (`e_mae`) and per molecule (`etot_mae`; with `n` > 1 in a record: the
    mean over its `n` seeds, `qallegro.report.finals.mean_records`). On QM9 the literature's
    value is shown as printed too (its source gives no unit to read). Rows and columns with no value are left
    out."""
    from qallegro.paper import values

    dataset, fcol, ecol = TABLE6_MOLECULES[molecule]
    lit = values()["table6_literature"]
    cols = list(lit["columns"])
    rows = []
    for name, vals in lit["rows"].items():
        printed = dict(zip(cols, vals, strict=True))
        own = "(paper)" in name
        per_molecule = not own and fcol is not None  # the MACE paper's rMD17 energy errors: total energy
        # "[n]" is the paper's reference number: "Allegro [12]" -> "Allegro (literature, the paper's ref. 12)"
        ref = re.search(r"\s*\[(\d+)\]", name)
        label = (f"{name[:ref.start()]}{name[ref.end():]} (literature, the paper's ref. {ref.group(1)})" if ref
                 else f"{name} (literature)")
        rows.append({"model": name if own else label,
                     "force MAE": printed.get(fcol) if fcol else None,
                     "energy MAE per molecule": printed[ecol] if per_molecule else None,
                     "energy MAE per atom": None,
                     "energy MAE as printed": None if per_molecule else printed[ecol]})
    for variant in ("allegro", "mlp", "qdi"):
        rec = finals.get((dataset, variant)) or {}
        metrics = rec.get(split) or {}
        seeds = f", mean of {rec['n']} seeds" if int(rec.get("n") or 1) > 1 else ""

        def mev(key: str, m: Mapping[str, Any] = metrics) -> float | None:
            return None if m.get(key) is None else 1e3 * float(m[key])

        rows.append({"model": f"{VARIANT_LABELS[variant]} (ours, {split}{seeds})",
                     "force MAE": mev("f_mae") if fcol else None, "energy MAE per molecule": mev("etot_mae"),
                     "energy MAE per atom": mev("e_mae"), "energy MAE as printed": None})
    table = pd.DataFrame(rows).set_index("model")
    table = table.drop(columns=["force MAE"]) if fcol is None else table
    return table[table.notna().any(axis=1)].dropna(axis=1, how="all")
