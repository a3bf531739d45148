"""The final models of the book (Tables 4-6, Figs. 5-6, MD) over seeds: typed runs, means with 95% intervals,
median learning curves with a band over seeds.

A `FinalRun` is one trained final model of a (dataset, variant): at a scale whose experiments are the evidence
campaign's (`run_with_book`), one final unit's `record.json` (`qallegro.campaign.studies.run_final_unit`) per seed;
otherwise the one model of a `qallegro.hpo.records.FinalRecord`. The pages group them as
`{(dataset, variant): [FinalRun, ...]}` (a transferred Allegro+QDI model under `(dataset, "qdi")`) and call the
functions here; nothing is trained.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qallegro.data.datasets import DATASET_LABELS, DATASETS
from qallegro.errors import CampaignError
from qallegro.hpo.records import FinalRecord
from qallegro.models.variants import VARIANT_LABELS
from qallegro.records import Record
from qallegro.stats import mean_interval

Finals = Mapping[tuple[str, str], Sequence["FinalRun"]]
# Tables 4 and 5: (paper values key, metric of the `val` metrics, factor to meV, datasets as the paper's rows)
TABLES = {
    "Table 4": ("table4_val_force_mae_meV_per_A", "f_mae", ("rmd17-aspirin", "rmd17-benzene", "culi")),
    "Table 5": ("table5_val_energy_mae_meV_per_atom", "e_mae", ("rmd17-aspirin", "rmd17-benzene", "culi", "qm9")),
}
TABLE_UNITS = {"Table 4": "meV/Å", "Table 5": "meV/atom"}
# the datasets with final models (the paper's four), and those of our rows of Table 6 (its molecules)
PAPER_DATASETS = tuple(d for d, spec in DATASETS.items() if spec.in_paper)
TABLE6_DATASETS = ("rmd17-aspirin", "rmd17-benzene", "qm9")


@dataclass(frozen=True)
class FinalRun(Record):
    """One final model: what it is, its seed, its validation and test metrics (eV, eV/Å), epochs, training wall
    time, its run folder (`epochs.csv`, `config.yaml`; the checkpoint only where it was trained), and how its
    configuration was chosen (`chosen`: the study and trial, or the transfer's provenance)."""

    dataset: str
    variant: str
    seed: int
    transfer: bool
    val: Mapping[str, Any]
    test: Mapping[str, Any] | None
    epochs: int | None
    wall_s: float | None
    run_dir: str
    chosen: Mapping[str, Any]

    @property
    def label(self) -> str:
        return VARIANT_LABELS[self.variant] + (" (transferred)" if self.transfer else "")


def from_unit_record(record: Mapping[str, Any], folder: Path) -> FinalRun:
    """The run of a campaign final unit (`record`, read from `folder/record.json`; the model in `folder/run`).
    A truncated run is an error: the campaign re-runs it, the book never averages it."""
    source = str(Path(folder) / "record.json")
    if record.get("truncated"):
        raise CampaignError(f"{source}: truncated run ({record.get('stop_reason')}); delete the folder so that "
                            f"the campaign runs the unit again")
    return FinalRun.from_json({k: record.get(k) for k in ("dataset", "variant", "seed", "transfer", "val", "test",
                                                          "epochs", "wall_s", "chosen")}
                              | {"run_dir": str(Path(folder) / "run")}, source)


def from_final_record(record: FinalRecord, run_dir: Path, seed: int) -> FinalRun:
    """The one run of a final-model summary (`qallegro.hpo.final_train` / `transfer_train`), trained with `seed`."""
    chosen = dict(record.transfer) if record.transfer else {"study": record.study, "trial": record.trial,
                                                            "params": dict(record.params or {})}
    return FinalRun(dataset=record.dataset, variant=record.variant, seed=seed, transfer=record.transfer is not None,
                    val=dict(record.val or {}), test=dict(record.test) if record.test else None,
                    epochs=record.epochs, wall_s=record.wall_s, run_dir=str(run_dir), chosen=chosen)


def _metric(run: FinalRun, split: str, key: str) -> float | None:
    metrics = (run.val if split == "val" else run.test) or {}
    value = metrics.get(key)
    return None if value is None else float(value)


def metric_summary(runs: Sequence[FinalRun], split: str, key: str, factor: float = 1e3) -> dict[str, Any]:
    """Mean, 95% interval (None for one seed) and n of metric `key` on `split` over `runs`, times `factor`
    (1e3: eV to meV); all None (n 0) when no run has the metric (QM9 has no forces)."""
    values = [v for r in runs if (v := _metric(r, split, key)) is not None]
    if not values:
        return {"mean": None, "low": None, "high": None, "n": 0}
    mi = mean_interval([factor * v for v in values])
    return {"mean": mi.mean, "low": mi.low, "high": mi.high, "n": mi.n}


def error_table(finals: Finals, table: str) -> pd.DataFrame:
    """Table 4 (validation force MAE, meV/Å) or Table 5 (validation energy MAE, meV/atom): one row per dataset
    and variant, our mean over seeds with its 95% interval and n, beside the paper's value; the paper's
    "Allegro [12]" retraining (not repeated here) as a row of its own."""
    from qallegro.paper import values

    key, metric, datasets = TABLES[table]
    paper = values()[key]
    rows = []
    for ds in datasets:
        for variant in ("allegro", "mlp", "qdi"):
            runs = finals.get((ds, variant), [])
            s = metric_summary(runs, "val", metric)
            label = runs[0].label if runs else VARIANT_LABELS[variant]
            rows.append({"dataset": DATASET_LABELS[ds], "variant": label, "ours: mean": s["mean"],
                         "ours: 95% CI low": s["low"], "ours: 95% CI high": s["high"], "seeds": s["n"],
                         "paper": paper[ds].get(variant)})
        if paper[ds].get("allegro_ref") is not None:
            rows.append({"dataset": DATASET_LABELS[ds], "variant": "Allegro [12] (the paper's column, as printed)",
                         "ours: mean": None, "ours: 95% CI low": None, "ours: 95% CI high": None, "seeds": None,
                         "paper": paper[ds]["allegro_ref"]})
    return pd.DataFrame(rows).set_index(["dataset", "variant"])


def mean_records(finals: Finals) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (dataset, variant): the mean over seeds of every validation and test metric, in the shape of a final
    summary (`val_f_mae`, `val_e_mae`, `val`, `test`, eV units) plus `n`, for the tables that take one value per
    model (`qallegro.pipeline.compare.derived_comparisons`, `table6_molecule`)."""
    out = {}
    for key, runs in finals.items():
        mean: dict[str, Any] = {"n": len(runs)}
        for split in ("val", "test"):
            names = sorted({k for r in runs for k, v in ((r.val if split == "val" else r.test) or {}).items()
                            if isinstance(v, (int, float)) and not k.startswith("n_")})
            mean[split] = {k: s["mean"] / 1e3 for k in names
                           if (s := metric_summary(runs, split, k))["mean"] is not None}
        mean["val_f_mae"], mean["val_e_mae"] = mean["val"].get("f_mae"), mean["val"].get("e_mae")
        out[key] = mean
    return out


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def overview(finals: Finals) -> pd.DataFrame:
    """One row per final model: seeds, epochs, mean training time, and the mean validation and test errors."""
    rows = []
    for (ds, _), runs in finals.items():
        row: dict[str, Any] = {"dataset": DATASET_LABELS[ds], "variant": runs[0].label,
                               "seeds": ", ".join(str(r.seed) for r in runs),
                               "epochs": max((r.epochs or 0) for r in runs) or None,
                               "training (s, mean)": _mean([r.wall_s for r in runs if r.wall_s is not None])}
        for split in ("val", "test"):
            row[f"{split} F-MAE (mean)"] = metric_summary(runs, split, "f_mae")["mean"]
            row[f"{split} E-MAE (mean)"] = metric_summary(runs, split, "e_mae")["mean"]
        rows.append(row)
    return pd.DataFrame(rows).set_index(["dataset", "variant"])


OVERVIEW_UNITS = {"val F-MAE (mean)": "meV/Å", "test F-MAE (mean)": "meV/Å", "val E-MAE (mean)": "meV/atom",
                  "test E-MAE (mean)": "meV/atom"}


def transfer_table(finals: Finals) -> pd.DataFrame:
    """The transferred Allegro+QDI models: the QDI parameters taken from the Cu-Li study and where the other
    parameters come from (the same for every seed of a model)."""
    rows = []
    for (ds, _), runs in finals.items():
        if not runs or not runs[0].transfer:
            continue
        t = runs[0].chosen
        rows.append({"dataset": DATASET_LABELS[ds], **t["qdi_params"],
                     "QDI parameters from": f"{t['qdi_study']} trial {t['qdi_trial']}",
                     "Allegro parameters from": f"{t['allegro_study']} trial {t['allegro_trial']}"})
    return pd.DataFrame(rows).set_index("dataset") if rows else pd.DataFrame()


def transferred_params(finals: Finals) -> dict[tuple[str, str], dict[str, Any]]:
    """(dataset, "qdi") -> the hyperparameters of each transferred model (its Allegro parameters with the Cu-Li
    QDI parameters), for Table 3."""
    return {key: {**runs[0].chosen["allegro_params"], **runs[0].chosen["qdi_params"]}
            for key, runs in finals.items() if runs and runs[0].transfer}


def read_curves(runs: Sequence[FinalRun]) -> list[pd.DataFrame]:
    """The per-epoch CSV (`epochs.csv`) of each run; a missing file is an error naming it."""
    out = []
    for r in runs:
        path = Path(r.run_dir) / "epochs.csv"
        if not path.is_file():
            raise CampaignError(f"{path}: no learning curve of {r.dataset} {r.variant} seed {r.seed}")
        out.append(pd.read_csv(path))
    return out


def mean_curve(curves: Sequence[pd.DataFrame], column: str, factor: float = 1e3) -> pd.DataFrame:
    """Per epoch: the mean and the median of `column` (times `factor`) over the runs, the band from the lowest to
    the highest run, and how many runs reached that epoch (`n`)."""
    if not curves:
        raise CampaignError(f"no learning curves to average for {column!r}")
    long = pd.concat([c[["epoch", column]].assign(run=i) for i, c in enumerate(curves)], ignore_index=True)
    long[column] = factor * long[column].astype(float)
    g = long.groupby("epoch")[column]
    return pd.DataFrame({"mean": g.mean(), "median": g.median(), "low": g.min(), "high": g.max(),
                         "n": g.count()}).reset_index()


def model_labels(finals: Finals) -> dict[tuple[str, str], str]:
    """(dataset, variant) -> the legend label of its final model ("Allegro+QDI (transferred)" for a transfer)."""
    return {key: runs[0].label for key, runs in finals.items() if runs}


def error_units(table: str) -> dict[str, str]:
    """The units of the columns of `error_table(..., table)` (the paper's as printed: Table 5's Cu-Li values
    look like total-energy errors, see the deviations page)."""
    unit = TABLE_UNITS[table]
    return {"ours: mean": unit, "ours: 95% CI low": unit, "ours: 95% CI high": unit,
            "paper": unit if table == "Table 4" else f"{unit} as printed"}


def final_curves(finals: Finals, dataset: str, column: str) -> dict[str, tuple[pd.DataFrame, str]]:
    """The mean learning curve over seeds (`mean_curve` of column `column` of `epochs.csv`, in meV units) of
    every final model of `dataset`, by legend label, with the variant's colour (for
    `qallegro.report.figures.curves_figure`)."""
    from qallegro.models.variants import VARIANTS

    return {runs[0].label: (mean_curve(read_curves(runs), column), VARIANTS[var].colour)
            for (ds, var), runs in finals.items() if ds == dataset and runs}


def interval_text(summary: Mapping[str, Any]) -> str | None:
    """A `metric_summary` as one cell: "12.3 [10.1, 14.5]" (mean [95% interval]), the mean alone for one seed."""
    from qallegro.report.tables import format_number

    if not summary["n"]:
        return None
    if summary["low"] is None:
        return format_number(summary["mean"])
    return (f"{format_number(summary['mean'])} [{format_number(summary['low'])}, "
            f"{format_number(summary['high'])}]")


def interval_table(finals: Finals, dataset: str, split: str = "test") -> pd.DataFrame:
    """Our final models of `dataset` on `split`: force MAE (where the dataset has forces) and energy MAE per
    atom and per molecule, each as "mean [95% interval]" over seeds (`interval_text`), and the number of seeds."""
    rows = []
    metrics = {"force MAE": "f_mae", "energy MAE per atom": "e_mae", "energy MAE per molecule": "etot_mae"}
    for (ds, _), runs in finals.items():
        if ds != dataset or not runs:
            continue
        row: dict[str, Any] = {"model": f"{runs[0].label} (ours, {split})"}
        for name, key in metrics.items():
            text = interval_text(metric_summary(runs, split, key))
            if text is not None:
                row[f"{name}, mean [95% CI]"] = text
        row["seeds"] = len(runs)
        rows.append(row)
    return pd.DataFrame(rows).set_index("model")


METRIC_NAMES = {"f_mae": "force", "e_mae": "energy per atom", "etot_mae": "energy per molecule"}


def derived_display(derived: pd.DataFrame) -> pd.DataFrame:
    """`qallegro.pipeline.compare.derived_comparisons` for display: signed percentages ("+18.2", "-12.7"; "–"
    where a side is missing) under headers that name what each side compares (validation errors, means)."""
    def signed(v: Any) -> str:
        return "–" if v is None or pd.isna(v) else f"{v:+.1f}"

    return pd.DataFrame({"ours: validation, mean over seeds (%)": derived["ours (%)"].map(signed),
                         "paper: Tables 4-5, one run (%)": derived["paper (%)"].map(signed)}, index=derived.index)


def negative_bound_note(finals: Finals, split: str, metrics: Sequence[str] = tuple(METRIC_NAMES)) -> str:
    """A sentence on the 95% intervals of our errors (`metrics`, keys of `METRIC_NAMES`) on `split` whose lower
    end is below zero (which no error can be): t intervals over few seeds with a large spread; "" when none."""
    found = [f"{DATASET_LABELS[ds]} {runs[0].label} ({METRIC_NAMES[key]})" for (ds, _), runs in finals.items()
             if runs for key in metrics
             if (low := metric_summary(runs, split, key)["low"]) is not None and low < 0]
    if not found:
        return ""
    return (f"{len(found)} of these intervals reach below zero ({', '.join(found)}): an error cannot, so these t "
            "intervals over few seeds with a large spread bound the error from above only.")


INTERVAL_UNITS = {f"{name}, mean [95% CI]": unit
                  for name, unit in (("force MAE", "meV/Å"), ("energy MAE per atom", "meV/atom"),
                                     ("energy MAE per molecule", "meV"))}


BUDGET_WORDS = {"max_epochs": "{} epochs", "n_train": "{:,} training structures", "n_val": "{:,} validation structures",
                "n_test": "{:,} test structures"}


def budget_facts(settings: Mapping[str, Any], finals: Finals, paper_epochs: Mapping[str, int]) -> dict[str, str]:
    """The sentence parts of the final-training page: the final budget of the scale (`final_overrides` of the
    HPO settings `settings`, a preset section or `HpoSettings`, and per dataset with final runs in `finals`), the
    epochs run, the seeds per model, and the paper's epochs."""
    from qallegro.hpo.records import hpo_settings
    from qallegro.report.studies import budget_words

    s = hpo_settings(settings)
    budget, per_ds = dict(s.final_overrides), dict(s.final_overrides_by_dataset)
    epochs = sorted({r.epochs for runs in finals.values() for r in runs if r.epochs is not None})
    seeds = sorted({len(runs) for runs in finals.values()})
    ran = {ds for ds, _ in finals}  # the budgets of datasets whose finals are cut are not the page's
    changes = {d: ", ".join(BUDGET_WORDS[k].format(v) for k, v in o.items() if k in BUDGET_WORDS and v is not None)
               for d, o in per_ds.items() if d in ran}
    return {"budget": budget_words(budget),
            "budget_by_dataset": "; ".join(f"{DATASET_LABELS[d]}: {c}" for d, c in changes.items() if c) or "none",
            "epochs_range": " to ".join(str(e) for e in dict.fromkeys((epochs[0], epochs[-1]))) if epochs else "–",
            "seeds_per_model": " to ".join(dict.fromkeys(str(n) for n in (seeds[0], seeds[-1]))) if seeds else "0",
            "paper_epochs": ", ".join(f"{DATASET_LABELS[d]} {e}" for d, e in paper_epochs.items()),
            "diverged": diverged_text(finals)}


def _magnitude(x: float) -> str:
    """3 significant digits; MyST math ($1.2 \\times 10^{8}$) from 10^5 up."""
    if not np.isfinite(x) or abs(x) < 1e5:
        return f"{x:.3g}"
    mantissa, exponent = f"{x:.2e}".split("e")
    return f"${float(mantissa):.3g} \\times 10^{{{int(exponent)}}}$"


DIVERGED = 10.0  # a run whose last validation error is this many times its best one diverged


def diverged_text(finals: Finals) -> str:
    """A sentence naming every run whose validation error (forces, else energies) ends `DIVERGED` times above its
    best epoch's or non-finite, with its best and last values; "" when none did."""
    found = []
    for runs in finals.values():
        for run, curve in zip(runs, read_curves(runs)):
            forces = "val_f_mae" in curve and curve["val_f_mae"].notna().any()
            column, unit = ("val_f_mae", "meV/Å") if forces else ("val_e_mae", "meV/atom")
            values = 1e3 * curve[column].astype(float)
            if values.notna().sum() == 0:
                continue
            best = int(values.idxmin())
            last = float(values.iloc[-1])
            if not np.isfinite(last) or last > DIVERGED * values.iloc[best]:
                found.append(f"{run.label} on {DATASET_LABELS[run.dataset]}, seed {run.seed} (validation "
                             f"{'force' if forces else 'energy'} MAE {_magnitude(values.iloc[best])} {unit} at "
                             f"epoch {int(curve['epoch'].iloc[best])}, {_magnitude(last)} at epoch "
                             f"{int(curve['epoch'].iloc[-1])})")
    if not found:
        return ""
    return (f"{len(found)} run{'s' if len(found) > 1 else ''} diverged and did not recover: {'; '.join(found)}. "
            "Like every run, it is kept (no seed is dropped) and evaluated with the weights of its best validation "
            "epoch; the figures draw the median over the seeds, so it widens the band (which runs off the top of "
            "its panel) without carrying the line.")


def _listed(names: Sequence[str]) -> str:
    """`a`, `a and b`, `a, b and c`."""
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else list(names))


def cut_notice(scale: str, cut: Mapping[str, str], shown: str = "") -> str:
    """The MyST paragraph a final-model page shows where `scale` cuts final runs (`cut`: dataset -> why, of the
    datasets the page shows, as `qallegro.pipeline.experiments.finals_cuts` gives them; datasets cut for one
    reason are named together; `shown`: what the page still shows of them)."""
    by_reason: dict[str, list[str]] = {}
    for dataset, why in cut.items():
        by_reason.setdefault(why, []).append(DATASET_LABELS[dataset])
    whys = " ".join(f"They are {why}." if len(by_reason) == 1 else f"Those of {_listed(names)} are {why}."
                    for why, names in by_reason.items())
    return (f"**Not run at the `{scale}` scale**: the final runs of the chosen configurations with seeds of "
            f"{_listed([DATASET_LABELS[d] for d in cut])}. {whys} {shown + ' ' if shown else ''}"
            "The variants are compared on one shared body with paired seeds on {doc}`ablation`, and the studies' "
            "chosen configurations are on {doc}`moo_summary`. With more compute, remove `finals:NAME` (or `finals`, "
            "all of them) from `cut` at this scale in `lib/qallegro/presets/campaign.yaml`, with `finals` in its "
            f"`order`, and run `qallegro reproduce --scale {scale}`; the `quick` scale runs every final.")


def not_run(cut: Mapping[str, str], datasets: Iterable[str]) -> str:
    """The line a page shows in place of the final models of those `datasets` whose finals `cut` leaves out (the
    reasons are in the page's `cut_notice`); "" where there are none."""
    names = [DATASET_LABELS[d] for d in dict.fromkeys(datasets) if d in cut]
    return f"*Not run at this scale for {_listed(names)}: see the note at the top of this page.*" if names else ""


def _every(cut: Mapping[str, str], datasets: Iterable[str]) -> bool:
    """Whether `cut` leaves out the finals of all `datasets` (the page then has no final model to show)."""
    return set(datasets) <= set(cut)


def final_texts(scale: str, cut: Mapping[str, str], facts: Mapping[str, str], derived: pd.DataFrame,
                verdict: str) -> dict[str, str]:
    """MyST paragraphs of the final-training page: `budget` (the final budget, epochs and seeds of the runs, from
    `budget_facts`, after why the datasets in `cut` (dataset -> why) have none; only the latter where it cuts
    every dataset) and `claim` (the "almost 13%" arithmetic on our means beside the paper's, `derived` from
    `derived_comparisons`, and the head ablation's `verdict` on the claim)."""
    first = derived.iloc[0]
    paper, ours = first["paper (%)"], first["ours (%)"]
    notice = cut_notice(scale, cut, "The paper's values are shown for them; our columns are empty there.")
    budget = (notice + f" The paper trained its final models for {facts['paper_epochs']} epochs."
              if _every(cut, PAPER_DATASETS) else
              (f"{notice}\n\n" if cut else "")
              + f"At this scale each final model trains for {facts['budget']} (per dataset: "
              f"{facts['budget_by_dataset']}); the runs took {facts['epochs_range']} epochs (the paper: "
              f"{facts['paper_epochs']}), with {facts['seeds_per_model']} seed(s) per model. Validation and test "
              "errors use the EMA weights of the best validation epoch; the errors below are means over the seeds."
              + (f" {facts['diverged']}" if facts.get("diverged") else ""))
    ours_words = ("the final models are not run at this scale, so the same arithmetic has no value of ours"
                  if ours is None or pd.isna(ours) else
                  f"the same arithmetic on the mean validation force errors of our Allegro+QDI and Allegro+MLP "
                  f"final models at the **{scale}** scale gives {ours:+.1f}% (negative: Allegro+QDI's error is "
                  "lower). The two final models come from different searches with different configurations, so "
                  "this difference is not the test of the claim")
    claim = (f"The paper: {paper:+.1f}%. On our Cu-Li stand-in, {ours_words}. The test of the claim is the head "
             "ablation with paired seeds ({doc}`ablation`), whose verdict on it at this scale is "
             f"**{verdict}** ({{doc}}`claims`).")
    return {"budget": budget, "claim": claim}


def table6_text(scale: str, cut: Mapping[str, str], finals: Finals) -> dict[str, str]:
    """MyST paragraphs on our rows of Table 6: `ours` (why the Table 6 datasets in `cut` (dataset -> why) have
    none, `cut_notice`, then their test sets, seeds and budget; only the former where it cuts them all) and `ours_val`
    (before our validation rows; empty where there are none)."""
    mine = {d: why for d, why in cut.items() if d in TABLE6_DATASETS}
    notice = cut_notice(scale, mine, "The literature's and the paper's rows are shown for them; ours are absent.")
    if not finals or _every(mine, TABLE6_DATASETS):
        return {"ours": notice if mine else "The literature's and the paper's rows are shown; ours are absent.",
                "ours_val": ""}
    n_test = {ds: f"{runs[0].test['n_structures']:,}" for (ds, _), runs in finals.items() if runs and runs[0].test}
    rmd17 = next((n_test[d] for d in ("rmd17-aspirin", "rmd17-benzene") if d in n_test), None)
    sets = [*([f"{rmd17} rMD17 frames of `test_01`"] if rmd17 else []),
            *([f"{n_test['qm9']} QM9 molecules"] if "qm9" in n_test else [])]
    return {"ours": (f"{notice}\n\n" if mine else "") + (
        "Ours are given both ways, per atom and per molecule (the error of the total energy), so that each can be "
        "read against the column it is comparable with. "
        f"Our rows are errors on the test sets ({', '.join(sets) or '–'}), as for the literature, and where a "
        "model was trained with several seeds (the campaign's final runs) they are the mean over the seeds, with "
        "the 95% intervals in the table after each molecule; Allegro+QDI uses the hyperparameters transferred from "
        "Cu-Li, as the paper's text describes (its Table 3 lists other QDI values for aspirin and benzene; "
        "{doc}`deviations` says why we follow the text). "
        f"Our models were trained at the **{scale}** scale, on a CPU for at most tens of epochs "
        "({doc}`final_training` gives the budget), instead of the paper's thousands of epochs on a GPU."),
        "ours_val": ("The paper's own rows repeat its validation errors (Tables 4 and 5); ours on the validation "
                     "sets, for the same comparison:")}

