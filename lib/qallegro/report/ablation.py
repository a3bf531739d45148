"""The head-ablation page's tables and figure, from the campaign's records (`qallegro.campaign`).

Errors are shown in meV/Å (forces) and meV/atom (energies), per seed and as the paired comparisons of the paper's
claims; the figure shows each head's error relative to Allegro's of the same seed, beside the paper's Table 4 ratio.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from qallegro.data.datasets import DATASET_LABELS, DATASETS
from qallegro.models.variants import VARIANT_LABELS
from qallegro.report.figures import figsize
from qallegro.stats import MAX_SEEDS

HEADS = ("allegro", "mlp", "qdi")
UNITS = {"95% CI half-width": "%",
         "val F-MAE": "meV/Å", "test F-MAE": "meV/Å", "held-out interface F-MAE": "meV/Å", "val E-MAE": "meV/atom",
         "test E-MAE": "meV/atom", "wall": "min", "ours": "%", "95% CI": "%", "paper": "%"}


def _mev(metrics: Mapping[str, Any] | None, key: str) -> float | None:
    value = (metrics or {}).get(key)
    return None if value is None else 1000.0 * float(value)


def seed_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per run: dataset, head, seed, validation / test (and held-out interface) errors, epochs, wall."""
    rows = []
    for r in sorted(records, key=lambda r: (r["dataset"], HEADS.index(r["variant"]), r["seed"])):
        row = {"dataset": DATASET_LABELS[r["dataset"]], "head": VARIANT_LABELS[r["variant"]], "seed": r["seed"],
               "val F-MAE": _mev(r.get("val"), "f_mae"), "test F-MAE": _mev(r.get("test"), "f_mae"),
               "val E-MAE": _mev(r.get("val"), "e_mae"), "test E-MAE": _mev(r.get("test"), "e_mae")}
        if r.get("ood"):
            row["held-out interface F-MAE"] = _mev(r["ood"], "f_mae")
        row.update({"epochs": r.get("epochs"), "wall": (r.get("wall_s") or 0.0) / 60.0,
                    "truncated": r.get("truncated")})
        rows.append(row)
    return pd.DataFrame(rows)


SPLIT_LABELS = {"test": "test", "val": "validation", "ood": "held-out interface"}
METRIC_LABELS = {"f_mae": "forces", "e_mae": "energies"}


def claims_table(rows: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The paired comparisons (`qallegro.campaign.claims.verdict_table`): n, the paper's %, ours with its interval."""
    out = []
    for r in rows:
        ci = (f"{r['percent_low']:+.1f} to {r['percent_high']:+.1f}" if "percent" in r else None)
        signed = [None if r.get(k) is None else f"{r[k]:+.1f}" for k in ("paper_percent", "percent")]
        out.append({"claim": r["text"], "split": SPLIT_LABELS.get(r["split"], r["split"]), "n": r["n"],
                    "paper": signed[0], "ours": signed[1], "95% CI": ci, "verdict": r["verdict"]})
    return pd.DataFrame(out)


def resolution_table(rows: Sequence[Mapping[str, Any]], split: str = "test") -> pd.DataFrame:
    """How small a difference between two heads the seeds resolve, per dataset and error (forces, energies): the
    paired comparisons of that error on `split`, their seeds, the largest 95% interval half-width in percent of the
    reference, the most seeds any of them needs to resolve a 10% difference (`seeds_for_10_percent`: the interval
    half-width below 10% at the observed spread), and whether the seeds run reach that."""
    out = []
    for dataset in dict.fromkeys(r["dataset"] for r in rows):
        for metric, label in METRIC_LABELS.items():
            sel = [r for r in rows if r["dataset"] == dataset and r["split"] == split and r["metric"] == metric
                   and "percent" in r]
            if not sel:
                continue
            n = min(int(r["n"]) for r in sel)
            need = max(int(r["seeds_for_10_percent"]) for r in sel)
            out.append({"dataset": DATASET_LABELS[dataset], "error": label, "seeds": n,
                        "95% CI half-width": max((r["percent_high"] - r["percent_low"]) / 2 for r in sel),
                        "seeds for 10%": need if need <= MAX_SEEDS else f"> {MAX_SEEDS:,}", "10% resolved": n >= need})
    return pd.DataFrame(out)


OUTLIER_FACTOR = 3.0


def interval_note(rows: Sequence[Mapping[str, Any]]) -> str:
    """A sentence on the comparisons whose 95% interval reaches below -100% (an error cannot fall by more than
    all of it): the t interval over few seeds with a large spread; empty when there are none."""
    low = [r for r in rows if "percent" in r and r["percent_low"] < -100.0]
    if not low:
        return ""
    names = sorted({f"{DATASET_LABELS[r['dataset']]} {METRIC_LABELS[r['metric']]}" for r in low})
    return (f"{len(low)} interval(s) reach below -100% ({', '.join(names)}): an error cannot fall by more than all "
            "of it, so these t intervals over few seeds with a large spread say only that the difference is not "
            "resolved.")


def outlier_sentence(records: Sequence[Mapping[str, Any]], split: str = "test",
                     factor: float = OUTLIER_FACTOR) -> str:
    """The runs whose error on `split` is more than `factor` times the median of the other seeds of the same
    dataset and head (forces and energies), which widen the intervals of the comparisons they are in; every run
    stays in the verdicts (no seed is dropped)."""
    found = []
    for r in records:
        for metric, label in METRIC_LABELS.items():
            value = (r.get(split) or {}).get(metric)
            others = [float(o[split][metric]) for o in records if o is not r and o["dataset"] == r["dataset"]
                      and o["variant"] == r["variant"] and (o.get(split) or {}).get(metric) is not None]
            if value is None or len(others) < 2 or float(value) <= factor * float(np.median(others)):
                continue
            unit = "meV/Å" if metric == "f_mae" else "meV/atom"
            found.append(f"{VARIANT_LABELS[r['variant']]} seed {r['seed']} on {DATASET_LABELS[r['dataset']]} "
                         f"({label}: {1000 * float(value):.2f} {unit}, against a median of "
                         f"{1000 * float(np.median(others)):.2f} over the head's {len(others)} other seeds)")
    if not found:
        return (f"No run's {SPLIT_LABELS[split]} error is more than {factor:g} times the median of the other seeds "
                "of its head.")
    return (f"Runs whose {SPLIT_LABELS[split]} error is more than {factor:g} times the median of the other seeds of "
            f"their head: {'; '.join(found)}. They stay in the verdicts (no seed is dropped after the fact) and "
            "widen the intervals of the comparisons they are in.")


def sweep_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The optimiser sweep of each dataset: learning rate, batch size, validation error, the chosen point, and
    whether the chosen learning rate is the largest or smallest the sweep tried (the optimum may lie beyond)."""
    rows = [{"dataset": DATASET_LABELS[r["dataset"]], "learning rate": r["protocol"]["learning_rate"],
             "batch size": r["protocol"]["batch_size"],
             "val F-MAE": _mev(r.get("val"), "f_mae"), "val E-MAE": _mev(r.get("val"), "e_mae")}
            for r in records]
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    has_forces = df.groupby("dataset")["val F-MAE"].transform(lambda v: v.notna().any())
    error = df["val F-MAE"].where(has_forces, df["val E-MAE"])  # each dataset's own objective (QM9: energy)
    df["chosen"] = error.groupby(df["dataset"]).transform("min") == error
    rates = df.groupby("dataset")["learning rate"]
    edge = np.where(df["learning rate"] == rates.transform("max"), "largest tried",
                    np.where(df["learning rate"] == rates.transform("min"), "smallest tried", ""))
    df["learning rate at the edge"] = np.where(df["chosen"] & (rates.transform("nunique") > 1), edge, "")
    return df.sort_values(["dataset", "learning rate", "batch size"]).reset_index(drop=True)


def relative_figure(records: Sequence[Mapping[str, Any]], split: str = "test", energy: bool = False) -> Any:
    """Per dataset, each head's force (energy for QM9; with `energy`, the energy of every dataset with forces)
    error divided by Allegro's of the same seed, one line per seed (a log axis where the ratios span more than
    3x), with the paper's Table 4 (Table 5 for energies) ratio as a diamond."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    from qallegro.paper import values

    datasets = sorted({r["dataset"] for r in records  # QM9's energies are in the forces block
                       if DATASETS[r["dataset"]].has_forces or not energy})
    ncols = min(max(len(datasets), 1), 2)  # two panels per row, so that each stays legible
    nrows = -(-max(len(datasets), 1) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=figsize(0.45 * nrows), sharey=False, squeeze=False)
    for ax in axes.flat[len(datasets):]:
        ax.set_visible(False)
    for ax, dataset in zip(axes.flat, datasets):
        metric = "e_mae" if energy or dataset == "qm9" else "f_mae"
        table = values()["table5_val_energy_mae_meV_per_atom" if metric == "e_mae"
                         else "table4_val_force_mae_meV_per_A"].get(dataset, {})
        by = {(r["variant"], r["seed"]): (r.get(split) or {}).get(metric) for r in records
              if r["dataset"] == dataset and not r.get("truncated")}
        for n, seed in enumerate(sorted({s for _, s in by})):
            base = by.get(("allegro", seed))
            pts = [(k, by[(h, seed)] / base) for k, h in enumerate(HEADS) if base and by.get((h, seed))]
            if pts:
                ax.plot(*zip(*pts), marker="o", color="0.45", alpha=0.7, lw=1,
                        label="ours, one line per seed" if n == 0 else None)
        paper = [(k, table[h] / table["allegro"]) for k, h in enumerate(HEADS) if table.get(h) and
                 table.get("allegro")]
        if paper:
            ax.plot(*zip(*paper), marker="D", ls="--", color="C3", label="paper (one run each)")
        ratios = [y for line in ax.get_lines() for y in line.get_ydata()]
        if ratios and max(ratios) / min(ratios) > 3:  # an outlying seed would flatten the others on a linear axis
            ax.set_yscale("log")
            ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.yaxis.set_minor_formatter(NullFormatter())
        ax.axhline(1.0, color="0.7", lw=0.8)
        ax.set_xticks(range(len(HEADS)), ["Allegro", "+MLP", "+QDI"])
        ax.set_title(DATASET_LABELS[dataset], fontsize=10)
        ax.set_ylabel(f"{'energy' if metric == 'e_mae' else 'force'} error / Allegro's ({split})")
    entries = {label: h for ax in axes.flat for h, label in zip(*ax.get_legend_handles_labels())}
    fig.suptitle("energies (datasets with forces)" if energy else "forces (QM9: energies)", fontsize=11)
    if entries:  # one legend below the panels: inside them it covered seeds' points
        fig.legend(list(entries.values()), list(entries), fontsize=8, loc="lower center", ncols=len(entries),
                   frameon=False)
    fig.tight_layout(rect=(0, 0.04 if entries else 0, 1, 1))
    return fig


def setting_note(scale: str, cut: Mapping[str, str] | None = None) -> str:
    """How the ablation's setting at `scale` differs from the paper's (from the presets and the paper's values),
    one sentence per difference, for the page's text; `cut` (`qallegro.campaign.plan.cuts`) adds a sentence per
    dataset whose ablation the scale does not run."""
    from qallegro import scales
    from qallegro.paper import values

    camp = scales.settings("campaign", scale)
    over = camp["ablation"]["overrides"]
    body = scales.settings("train", scale).get("all") or {}
    epochs = values()["final_training_epochs"]
    heads = camp["ablation"]["heads"]

    def per_dataset(key: str) -> str:
        """The datasets whose `key` differs from the shared value: "rMD17-aspirin and QM9: 30; "."""
        by_value: dict[Any, list[str]] = {}
        for d, s in camp["ablation"]["datasets"].items():
            if f"ablation:{d}" in (cut or {}):
                continue
            v = (s.get("overrides") or {}).get(key)
            if v is not None and v != over.get(key):
                by_value.setdefault(v, []).append(DATASET_LABELS[d])
        return "".join(f"{' and '.join(ds)}: {v:,}; " for v, ds in by_value.items())

    return (
        f"What differs from the paper's setting: {over.get('n_train', 'all')} training structures per run "
        f"({per_dataset('n_train')}the paper: 950 for rMD17; its Cu-Li split sizes are not stated) and "
        f"{over.get('max_epochs')} epochs ({per_dataset('max_epochs')}the paper: "
        f"{epochs['rmd17-benzene']} for rMD17, {epochs['culi']} for Cu-Li, {epochs['qm9']} for QM9); a small body "
        f"({body.get('num_layers')} layers, latent widths {body.get('latent_mlp_latent_dimensions')}, "
        f"l_max {body.get('l_max')}, r_max {body.get('r_max')} Å) shared by the three heads instead of each "
        "variant's own tuned hyperparameters; one optimiser per dataset, chosen by a sweep with the Allegro head; "
        "the heads' settings fixed at the paper's Cu-Li values "
        f"(MLP: k = {heads['mlp'].get('edge_eng_mlp_output_dim')}, "
        f"final widths {heads['mlp'].get('final_mlp_latent_dimensions')}; QDI: "
        f"{heads['qdi'].get('edge_eng_mlp_output_dim')} input features, depth {heads['qdi'].get('qdi_depth')}, "
        f"FC width {heads['qdi'].get('qdi_fc_dim')}); labels of "
        "the stand-in SevenNet-0 model for Cu-Li, with a split by group instead of one of single frames."
        + "".join(f" The {DATASET_LABELS[part.removeprefix('ablation:')]} head ablation is not run at this scale: "
                  f"{why}." for part, why in (cut or {}).items() if part.startswith("ablation:"))
    )


def pilot_sentence(pilot: Mapping[str, Mapping[str, Any]], seeds: Mapping[str, int]) -> str:
    """Where the seed counts came from, for the page: the datasets the pilot (`qallegro campaign pilot`'s
    `pilot.json`) measured, with the seeds a 10% difference needed at their spread, and the datasets that ran
    (`seeds`: dataset -> seeds run) without one."""
    piloted = {d: p for d, p in pilot.items() if p.get("pairs")}
    if not piloted:
        return "No pilot measured the spread between seeds before the seed counts were chosen."
    parts = []
    for d, p in piloted.items():
        need = sorted(int(q["seeds_for_10_percent"]) for q in p["pairs"].values())
        n = max(int(h["n"]) for h in p["heads"].values())
        parts.append(f"{DATASET_LABELS[d]} ({n} seeds per head; a 10% difference needed "
                     f"{need[0]}{'' if need[0] == need[-1] else f' to {need[-1]}'} seeds at its spread)")
    others = [DATASET_LABELS[d] for d in seeds if d not in piloted]
    rest = (f"; {' and '.join(others)} had no pilot of {'their' if len(others) > 1 else 'its'} own, so the "
            "spread shown here is measured after the fact" if others else "")
    return f"The seed counts come from a pilot on {', '.join(parts)}{rest}."
