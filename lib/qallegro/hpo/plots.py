"""Seaborn plots of studies; every function returns a matplotlib Figure (the book calls them).

Colours follow the paper's Fig. 2: Allegro dark red, Allegro+MLP green, Allegro+QDI blue (each variant's spec in
`qallegro.models.variants` holds its label and colour).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from qallegro.hpo.objective import objective_names
from qallegro.models.variants import VARIANT_COLOURS, VARIANT_LABELS

COLOURS = VARIANT_COLOURS  # name -> colour of every registered variant (the variant registry's)
AXIS = {"val_f_mae": "validation force MAE (meV/Å)", "val_e_mae": "validation energy MAE (meV/atom)",
        "inference_total_s": "inference time, timed test set (CPU s)"}


def _setup():
    """pyplot and seaborn with the house style. The backend is left alone: inline in notebooks, and matplotlib
    falls back to Agg by itself where there is no display (CLI, CI)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="notebook")
    return plt, sns


LOG_SUBS = ((1.0,), (1.0, 2.0, 5.0), tuple(float(k) for k in range(1, 10)), tuple(k / 2 for k in range(2, 20)),
            tuple(k / 5 for k in range(5, 50)), tuple(k / 10 for k in range(10, 100)))


def log_axis(ax: Any, which: str = "y", min_labels: int = 4) -> int:
    """Log scale on the `which` axis ("x" or "y") of `ax` with at least `min_labels` labelled ticks inside the
    drawn range where the range allows: labels at the decades, else at 1, 2 and 5, else at every integer
    multiple of each decade, else at steps of a half, a fifth, a tenth of the decade (narrow ranges such as
    860-1,450); plain numbers (powers of ten where the range spans more than four decades), no minor labels.
    Returns how many labels are inside the range."""
    from matplotlib import ticker

    getattr(ax, f"set_{which}scale")("log")
    axis = ax.xaxis if which == "x" else ax.yaxis
    low, high = sorted(getattr(ax, f"get_{which}lim")())
    count = 0
    for subs in LOG_SUBS:
        locator = ticker.LogLocator(base=10.0, subs=subs)
        ticks = np.asarray(locator.tick_values(low, high))
        count = int(((ticks >= low * (1 - 1e-9)) & (ticks <= high * (1 + 1e-9))).sum())
        if count >= min_labels:
            break
    axis.set_major_locator(locator)
    if high > 1e4 * low:  # many decades: every label a power of ten, not "100" beside "1e+10"
        axis.set_major_formatter(ticker.LogFormatterMathtext())
    else:
        axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(ticker.NullFormatter())
    return count


# datasets whose Fig. 2 error axis prints no unit: the paper's points get their own axis (its label)
UNITLESS_PAPER_ERROR = {"qm9": "the paper's validation error (top axis: as printed on Fig. 2c, no unit)"}


def plot_pareto(df: pd.DataFrame, dataset: str, variant: str, title: str | None = None, paper: bool = True,
                ax=None):
    """Complete trials (light), their Pareto front (line) and, when `paper`, the paper's Fig. 2 points of the
    same dataset (hollow markers; T4 GPU, whole test set: compare shapes, not absolute times). Log axes, errors in
    meV. When the front was re-timed after the study (`qallegro.report.studies.apply_retime`), the trials are
    drawn at the times measured during the study and the front at its re-timed ones, each so labelled.
    Draws into `ax` when given (several studies in one panel: call once per study, `paper` on one of them)."""
    plt, sns = _setup()
    err, tim = objective_names(dataset)
    done = df[df["state"] == "COMPLETE"].copy()
    done[err] = 1e3 * done[err].astype(float)
    during = f"{tim}_during_study"
    retimed = during in done.columns and (done[during] != done[tim]).any()
    own = ax is None
    if own:
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
    fig = ax.figure
    colour = COLOURS.get(variant, "black")
    label = VARIANT_LABELS.get(variant, variant)
    sns.scatterplot(data=done, x=err, y=during if retimed else tim, ax=ax, color=colour, alpha=0.35, s=30,
                    label=f"{label}: trials ({'timed during the study' if retimed else 'this run'})")
    front = done[done["pareto"]].sort_values(err)
    ax.step(front[err], front[tim], where="post", color=colour, lw=1.5)
    sns.scatterplot(data=front, x=err, y=tim, ax=ax, color=colour, s=60, marker="o", edgecolor="black",
                    label=f"{label}: Pareto front ({'re-timed together after the study' if retimed else 'this run'})")
    unitless = paper and dataset in UNITLESS_PAPER_ERROR
    if paper:
        from qallegro.paper import fig2_points

        pts = fig2_points()
        pts = pts[pts["dataset"] == dataset]
        pax = ax
        if unitless:  # the paper's values have no unit: their own error axis, on top
            pax = ax.twiny()
            pax.grid(False)
            pax.set_xlabel(UNITLESS_PAPER_ERROR[dataset])
        for var, grp in pts.groupby("variant"):
            grp = grp.sort_values("val_mae")
            pax.plot(grp["val_mae"] * (1 if unitless else 1e3), grp["inference_time_s"], ls="--", lw=1,
                     color=COLOURS.get(var, "grey"),
                     marker="s", mfc="none", label=f"paper Fig. 2: {VARIANT_LABELS.get(var, var)} (T4)")
        if unitless:
            log_axis(pax, "x")
    log_axis(ax, "x")
    log_axis(ax, "y")
    ax.set_xlabel(AXIS.get(err, err) + (", ours (bottom axis)" if unitless else ""))
    ax.set_ylabel(AXIS.get(tim, tim))
    ax.set_title(title or f"{dataset} Pareto front")
    handles, labels = legend_entries(fig)
    if own:  # below the axes: the trials spread over the whole plot
        ax.legend(handles, labels, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2,
                  frameon=False)
    else:
        ax.legend(handles, labels, fontsize=8, loc="best")
    fig.tight_layout()
    return fig


def legend_entries(fig) -> tuple[list, list[str]]:
    """The legend handles and labels of every axes of `fig` (a twin axis carries the paper's points)."""
    handles, labels = [], []
    for a in fig.axes:
        h, lab = a.get_legend_handles_labels()
        handles += h
        labels += lab
    return handles, labels


def plot_hypervolume(hv: pd.DataFrame, title: str | None = None):
    """Hypervolume of the complete trials against their number."""
    from matplotlib import ticker

    plt, sns = _setup()
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    sns.lineplot(data=hv, x="n_complete", y="hypervolume", ax=ax, drawstyle="steps-post", marker="o")
    ref = hv.attrs.get("reference")
    ax.set_xlabel("complete trials")
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    units = hv.attrs.get("reference_units") or ["", "s"]
    ax.set_ylabel("hypervolume" + (f"\n(reference: error {ref[0]:.3g} {units[0]}, time {ref[1]:.3g} {units[1]})"
                                   if ref is not None else ""))
    ax.set_title(title or "hypervolume history")
    fig.tight_layout()
    return fig


def plot_sampler_comparison(df: pd.DataFrame, title: str | None = None):
    """Normalised hypervolume vs complete trials per sampler (mean and spread over seeds).

    `df` has columns sampler, seed, n_complete, hypervolume (as from `experiment.compare_samplers`)."""
    from matplotlib import ticker

    plt, sns = _setup()
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    sns.lineplot(data=df, x="n_complete", y="hypervolume", hue="sampler", errorbar=("pi", 100), ax=ax,
                 drawstyle="steps-post")
    ax.set_xlabel("complete trials")
    ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    ax.set_ylabel("hypervolume (normalised objectives)")
    ax.set_title(title or "which optimiser?")
    fig.tight_layout()
    return fig
