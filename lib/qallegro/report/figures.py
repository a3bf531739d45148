"""Figures sized for the book's page: one figure per panel, as wide as the content column at the DPI of
`qallegro.pipeline.page.show`, so that they are shown at their natural size and their legends stay legible."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from qallegro.hpo.plots import log_axis

COLUMN_PX = 820  # the content column of a 1,400 px wide window, less a margin
DPI = 110  # `qallegro.pipeline.page.show`'s default


def figsize(aspect: float = 0.62, fraction: float = 1.0) -> tuple[float, float]:
    """(width, height) in inches of a figure `fraction` of the column wide with height/width `aspect`."""
    width = COLUMN_PX * fraction / DPI
    return width, width * aspect


def fig2_panel(trials: Mapping[str, pd.DataFrame], dataset: str, title: str) -> Any:
    """One panel of the paper's Fig. 2: every study of `dataset` (`trials`: variant -> `trials_frame`) with its
    front, and the paper's points of that dataset (QM9's on an axis of their own: they have no unit)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from qallegro.hpo.plots import legend_entries, plot_pareto

    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=figsize())
    variants = list(trials)
    for i, variant in enumerate(variants):
        plot_pareto(trials[variant], dataset, variant, paper=i == len(variants) - 1, ax=ax, title=title)
    # below the axes: the trials of three studies spread over the whole plot
    ax.legend(*legend_entries(fig), fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=3,
              frameon=False)
    fig.tight_layout()
    return fig


def spread_gadgets(graph: Any, factor: float = 2.0) -> Any:
    """A copy of a PyZX graph whose phase gadgets (the vertices drawn above qubit 0, negative qubit index) stand
    `factor` times further apart along the circuit, about their centre, so that their phase labels (such as
    "x1 + w13 + 3/2" in Fig. 3b) do not overlap; the diagram itself is unchanged."""
    out = graph.copy()
    top = [v for v in out.vertices() if out.qubit(v) < 0]
    if not top:
        return out
    rows = [out.row(v) for v in top]
    centre = (min(rows) + max(rows)) / 2
    for v in top:
        out.set_row(v, centre + factor * (out.row(v) - centre))
    return out


def curves_figure(curves: Mapping[str, tuple[pd.DataFrame, str]], title: str, ylabel: str) -> Any:
    """One panel of learning curves over seeds (`curves`: legend label -> (`report.finals.mean_curve` frame,
    colour)): the median per epoch (a diverged seed would carry a mean), a band from the lowest to the highest
    seed, the number of seeds in the legend; log error axis with enough labels from the medians' range (a band
    beyond three times the highest median runs off the top), integer epochs, sized for the page."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.ticker import MaxNLocator

    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=figsize(0.6))
    for label, (df, colour) in curves.items():
        n = int(df["n"].max())
        ax.plot(df["epoch"], df["median"], marker="o", ms=3, color=colour,
                label=f"{label} ({'median of ' if n > 1 else ''}{n} seed{'s' if n > 1 else ''})")
        if n > 1:
            ax.fill_between(df["epoch"], df["low"], df["high"], color=colour, alpha=0.2, lw=0)
    ax.set(title=title, xlabel="epoch", ylabel=ylabel)
    if curves:
        top = 3 * max(float(df["median"].max()) for df, _ in curves.values())
        bottom = min(float(df["low"].min()) for df, _ in curves.values()) / 1.5
        ax.set_ylim(bottom, top)
    log_axis(ax, "y")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.legend(fontsize=9, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    fig.tight_layout()
    return fig
