"""The MD stability page: NVE runs of the final models (`qallegro.training.nve_drift` results) as a table, the
numbers its text quotes, and one energy-conservation figure per dataset."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from qallegro.data.datasets import DATASET_LABELS, DATASETS
from qallegro.models.variants import VARIANTS
from qallegro.report.figures import figsize

DRIFT = "max |drift|"
UNITS = {DRIFT: "meV/atom", "drift slope": "meV/atom/ps", "mean T": "K"}


def md_table(runs: Mapping[tuple[str, str], Mapping[str, Any]], skipped: Mapping[tuple[str, str], str],
             labels: Mapping[tuple[str, str], str]) -> pd.DataFrame:
    """One row per final model: its drift measures (`UNITS`), or why it was not run (`skipped`); `labels`
    names each model's variant (transferred or not)."""
    rows: list[dict[str, Any]] = []
    for key in sorted({*runs, *skipped}, key=lambda k: (list(DATASET_LABELS).index(k[0]), labels[k])):
        row: dict[str, Any] = {"dataset": DATASET_LABELS[key[0]], "variant": labels[key]}
        r = runs.get(key)
        if r is None:
            row["status"] = skipped[key]
        else:
            ratio = r["etot_std_eV"] / r["ekin_std_eV"] if r["ekin_std_eV"] > 0 else None
            row.update({"status": "ran" if np.isfinite(r["etot"]).all() else "diverged",
                        "model seed": str(r.get("model_seed", "–")), "atoms": r["n_atoms"],
                        DRIFT: 1e3 * r["max_abs_drift_per_atom_eV"],
                        "drift slope": 1e3 * r["drift_slope_eV_per_ps"] / r["n_atoms"],
                        "std E_tot / std E_kin": ratio, "mean T": r["temperature_K"],
                        "model": _provenance(r.get("retrained"))})
        rows.append(row)
    return pd.DataFrame(rows, columns=None if rows else ["dataset", "variant", "status"]).set_index(
        ["dataset", "variant"])


def _provenance(retrained: Mapping[str, float | None] | None) -> str:
    """Where the run's model comes from: its training run, or retrained here (test force MAE here and recorded)."""
    if not retrained:
        return "its training run"
    here, recorded = retrained.get("here"), retrained.get("recorded")
    if here is None or recorded is None:
        return "retrained here"
    return f"retrained here (test F MAE {1e3 * here:.1f}; recorded {1e3 * recorded:.1f} meV/Å)"


def md_facts(table: pd.DataFrame) -> dict[str, str]:
    """The sentence parts of the page: how many models ran, stayed finite, the largest excursion and the
    largest total/kinetic fluctuation ratio ("–" where no model ran)."""
    ran = table[table["status"].isin(["ran", "diverged"])]
    n_skipped = len(table) - len(ran)
    finite = "every run stayed finite" if (ran["status"] == "ran").all() else \
        f"{int((ran['status'] == 'diverged').sum())} of {len(ran)} runs diverged"
    n_retrained = int(ran["model"].str.startswith("retrained").sum()) if "model" in ran else 0
    retrained = (f" ({n_retrained} of them retrained here from their committed configurations first: models are "
                 "not committed; the table gives their test force errors beside the recorded ones)"
                 if n_retrained else "")
    return {"n_ran": str(len(ran)), "n_skipped": str(n_skipped), "retrained": retrained,
            "all_finite": finite if len(ran) else "no model was run",
            "worst_drift": f"{ran[DRIFT].max():.2g} meV/atom" if len(ran) else "–",
            "ratio_max": f"{ran['std E_tot / std E_kin'].max():.2g}" if len(ran) else "–"}


def md_figure(runs: Mapping[tuple[str, str], Mapping[str, Any]], dataset: str,
              labels: Mapping[tuple[str, str], str]) -> Any:
    """The total energy per atom relative to its start against time, every model of `dataset`, one figure as
    wide as the page (legible legend)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=figsize(0.55))
    for (ds, var), r in runs.items():
        if ds == dataset:
            ax.plot(r["time_fs"], 1e3 * (r["etot"] - r["etot"][0]) / r["n_atoms"], color=VARIANTS[var].colour,
                    label=labels[ds, var])
    ax.set(title=DATASET_LABELS[dataset], xlabel="time (fs)", ylabel="E_tot − E_tot(0) (meV/atom)")
    ax.legend(fontsize=10)
    fig.tight_layout()
    return fig


def md_texts(scale: str, cut: Mapping[str, str], md: Mapping[str, Any], seed: int, facts: Mapping[str, str]
             ) -> dict[str, str]:
    """MyST paragraphs of the MD page: `run` (why the datasets with forces in `cut` (dataset -> why) have no final
    models, `qallegro.report.finals.cut_notice`, then the runs' settings and counts, before the figures; only the
    former where it cuts them all) and `summary` (after the table)."""
    from qallegro.report.finals import PAPER_DATASETS, cut_notice

    mine = {d: why for d, why in cut.items() if DATASETS[d].has_forces}
    notice = cut_notice(scale, mine) if mine else ""
    if set(mine) >= {d for d in PAPER_DATASETS if DATASETS[d].has_forces}:
        return {"run": notice, "summary": ""}
    return {"run": (f"{notice}\n\n" if notice else "") + (
                    f"Each run: {md['steps']:,} velocity-Verlet steps of {md['dt_fs']:g} fs "
                    f"({md['steps'] * md['dt_fs'] / 1000:g} ps), initial velocities at {md['temperature_K']:g} K "
                    f"drawn with seed {seed} (where a model was trained with several seeds, the model of that seed "
                    f"is run; the table gives each model's seed); {facts['n_ran']} models ran"
                    f"{facts.get('retrained', '')} and {facts['n_skipped']} could not (the table says why). "
                    "The total energy per atom relative to its start (a stable potential and a small enough step "
                    "keep it flat, with fluctuations far below those of the kinetic energy), one figure per "
                    "dataset:"),
            "summary": (f"Over these runs {facts['all_finite']}; the largest excursion of the total energy is "
                        f"{facts['worst_drift']}, and the fluctuation of the total energy is at most "
                        f"{facts['ratio_max']} times that of the kinetic energy. Short runs of small models from a "
                        "single start test energy conservation and short-time stability, not long-time sampling.")}
