"""What a study page (Fig. 2, one dataset and variant) and the Fig. 2 summary state about a study: its front with
the campaign's re-timed inference times, the numbers its text quotes, and its trials as a display table.

Pure functions of a `qallegro.hpo.report.trials_frame` and plain records; the notebooks call them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from qallegro.data.datasets import DATASET_LABELS
from qallegro.hpo.objective import objective_names
from qallegro.hpo.pareto import pareto_mask
from qallegro.models.variants import VARIANT_LABELS

TIME_SOURCE = "time measured"  # column of `apply_retime`: "re-timed" or "during the study"


def apply_retime(trials: pd.DataFrame, record: Mapping[str, Any], dataset: str) -> pd.DataFrame:
    """The trials of a study of `dataset` with the front re-timed: each member of the retime record (`front`:
    trial number -> `total_s`, `qallegro.campaign.studies.run_retime_unit`) gets its re-timed inference time
    (the time measured during the study stays in `<time>_during_study`), and `pareto` is recomputed among the
    re-timed members (times measured at different moments of a loaded machine are not compared with them)."""
    err, time_name = objective_names(dataset)
    front = record.get("front") or {}
    out = trials.copy()
    out[f"{time_name}_during_study"] = out[time_name]
    out[TIME_SOURCE] = "during the study"
    numbers = out["number"].astype(int).astype(str)
    hit = numbers.isin(list(front))
    if not hit.any():
        return out
    out.loc[hit, time_name] = [float(front[n]["total_s"]) for n in numbers[hit]]
    out.loc[hit, TIME_SOURCE] = "re-timed"
    out["pareto"] = False
    out.loc[hit, "pareto"] = pareto_mask(out.loc[hit, [err, time_name]].to_numpy(float))
    return out


def budget_words(budget: Mapping[str, Any]) -> str:
    """A trial budget (`trial_overrides`) in words: "12 epochs on 100 training structures, validated on 50, without
    early stopping; a run still training after 60 min is cut and recorded as truncated"."""
    epochs, patience = budget.get("max_epochs"), budget.get("early_stopping_patience")
    if not any(budget.get(k) for k in ("max_epochs", "n_train", "n_val", "max_wall_s")):
        return "the training preset's full budget"
    head = " ".join(p for p in (f"{epochs} epoch{'s' if epochs != 1 else ''}" if epochs
                                else "the training preset's epochs",
                                f"on {budget['n_train']:,} training structures" if budget.get("n_train") else "")
                    if p)
    parts = [head]
    if budget.get("n_val"):
        parts.append(f"validated on {budget['n_val']:,}")
    if epochs and patience is not None and patience >= epochs:
        parts.append("without early stopping")
    text = ", ".join(parts)
    if budget.get("max_wall_s"):
        text += (f"; a run still training after {budget['max_wall_s'] / 60:.0f} min is cut and recorded as "
                 "truncated")
    return text


def timing_words(max_structures: int | None, n_test: int | None) -> str:
    """The timing set in words: the first `max_structures` of the test split, or all of it when the split
    (`n_test` frames, where known) holds no more."""
    if not max_structures or (n_test is not None and n_test <= max_structures):
        return f"all {n_test:,} structures of the test split" if n_test else "the whole test split"
    return f"the first {max_structures:,} structures of the test split"


def study_facts(trials: pd.DataFrame, dataset: str, variant: str, sampler: str, target: int,
                budget: Mapping[str, Any], max_structures: int | None, paper_points: pd.DataFrame,
                n_test: int | None = None) -> dict[str, Any]:
    """The numbers a study page quotes: the case, the error measured, trials complete and on the front, the most
    accurate trial's error and time, the trial budget and timing set (`n_test`: the test split's frames, where
    the timing cap may exceed them), and the paper's most accurate Fig. 2 point of the same case
    (`paper_points`: `qallegro.paper.fig2_points()`)."""
    err, tim = objective_names(dataset)
    done = trials[trials["state"] == "COMPLETE"]
    if done.empty:
        raise ValueError(f"study of {dataset} {variant} has no complete trial")
    front = done[done["pareto"]].sort_values(err)
    best = front.iloc[0]
    unit = "meV/atom" if err == "val_e_mae" else "meV/Å"
    mine = paper_points[(paper_points["dataset"] == dataset) & (paper_points["variant"] == variant)]
    if not len(mine):
        paper_best = "none (the paper has no front for this case)"
    elif err == "val_f_mae":
        paper_best = f"{mine['val_mae'].min() * 1e3:.1f} meV/Å"
    else:
        paper_best = f"{mine['val_mae'].min():.3g} (its axis states no unit)"
    retimed = TIME_SOURCE in trials.columns and (front[TIME_SOURCE] == "re-timed").any()
    return {"case": f"{VARIANT_LABELS[variant]} on {DATASET_LABELS[dataset]}",
            "error_name": f"validation {'energy' if err == 'val_e_mae' else 'force'} MAE",
            "n_complete": len(done), "n_front": len(front), "n_target": target,
            "front_words": f"{len(front)} of them {'is' if len(front) == 1 else 'are'} on the front"
                           + (" of the re-timed members" if retimed else ""),
            "best_error": f"{best[err] * 1e3:.1f} {unit}", "best_time": f"{best[tim]:.3g} s",
            "sampler_name": sampler, "paper_best": paper_best, "paper_points": len(mine),
            "budget": budget_words(budget),
            "timing": timing_words(max_structures, n_test),
            "time_source": ("re-timed together after the study (the campaign's retime unit, median of its rounds)"
                            if retimed else "as measured during the study"),
            "table_note": ("Each trial's inference time was measured during the study, while the machine's load "
                           "changed; the members of the study's front were then re-timed together in interleaved "
                           "rounds (\"re-timed\"), and the front is recomputed among them (\"on the re-timed "
                           "front\"). Times measured at different moments are not compared, so a trial off the front "
                           "can show a shorter time during the study than a front member's re-timed one; the figure "
                           "draws the trials at their times during the study and the front at its re-timed times."
                           if retimed else "The front is that of the times measured during the study.")}


def trials_table(trials: pd.DataFrame, params: Sequence[str], dataset: str) -> tuple[pd.DataFrame, dict[str, str]]:
    """Every trial of a study for display: number, state, the error in meV, the inference time measured during
    the study and, for the members re-timed together after it, their re-timed time, the hyperparameters, and
    whether the trial is on the front (of the re-timed members, where the front was re-timed); and the units of
    its columns (for `display_table`)."""
    err, tim = objective_names(dataset)
    err_label = "validation energy MAE" if err == "val_e_mae" else "validation force MAE"
    during = f"{tim}_during_study"
    retimed = during in trials.columns
    out = trials[["number", "state", err, *([during, tim] if retimed else [tim]), *params, "pareto"]].copy()
    out[err] = 1e3 * out[err].astype(float)
    if retimed:
        out[tim] = out[tim].where(trials[TIME_SOURCE] == "re-timed")
    front = "on the re-timed front" if retimed else "on the front"
    names = {"number": "trial", err: err_label, "pareto": front}
    names.update({during: "inference time during the study", tim: "re-timed"} if retimed
                 else {tim: "inference time"})
    out = out.rename(columns=names)
    out[front] = out[front].astype(bool)
    out = out.replace({np.nan: None})
    units = {err_label: "meV/atom" if err == "val_e_mae" else "meV/Å", "inference time": "s",
             "inference time during the study": "s", "re-timed": "s", "r_max": "Å"}
    return out.set_index("trial"), units


def during_study(trials: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The trials with the inference times measured during the study (undoing `apply_retime`), for the
    progress of the search (`qallegro.hpo.report.hypervolume_frame`)."""
    time_name = objective_names(dataset)[1]
    if f"{time_name}_during_study" not in trials.columns:
        return trials
    return trials.assign(**{time_name: trials[f"{time_name}_during_study"]})


def complete_counts(trials: Mapping[Any, pd.DataFrame]) -> str:
    """How many complete trials the studies have: "12", or "10 to 12" when they differ."""
    counts = sorted({int((t["state"] == "COMPLETE").sum()) for t in trials.values()})
    return " to ".join(dict.fromkeys(str(n) for n in (counts[0], counts[-1]))) if counts else "0"


def failed_counts(trials: Mapping[tuple[str, str], pd.DataFrame]) -> str:
    """The studies' failed trials in words: "none", or "3 (rMD17-benzene Allegro 2, QM9 Allegro+MLP 1)"."""
    failed = {key: int((t["state"] == "FAIL").sum()) for key, t in trials.items()}
    parts = [f"{DATASET_LABELS[d]} {VARIANT_LABELS[v]} {n}" for (d, v), n in failed.items() if n]
    return f"{sum(failed.values())} ({', '.join(parts)})" if parts else "none"


def ranking(table: pd.DataFrame, dataset_label: str, column: str, unit: str) -> str:
    """The variants of one dataset in a `qallegro.pipeline.compare.best_points` table, lowest `column` first:
    "Allegro+QDI 41 meV/Å, Allegro 45 meV/Å, ..." (rows without a value are left out)."""
    rows = table[(table["dataset"] == dataset_label) & table[column].notna()].sort_values(column)
    return ", ".join(f"{v} {e:.0f} {unit}" for v, e in zip(rows["variant"], rows[column], strict=True))


def random_trials(trials: pd.DataFrame, n_startup: int) -> int:
    """How many of a study's trials its sampler drew at random: Optuna's TPE and GP samplers draw at random
    until `n_startup` trials have finished, so with several workers a trial that started before the
    `n_startup`-th finished is random too (the initial design grows by up to the workers less one)."""
    done = trials[trials["state"].isin(["COMPLETE", "PRUNED"])]
    if len(done) < n_startup:
        return len(trials)
    cutoff = pd.to_datetime(done["datetime_complete"]).sort_values().iloc[n_startup - 1]
    return int((pd.to_datetime(trials["datetime_start"]) < cutoff).sum())


def initial_designs(trials: Mapping[tuple[str, str], pd.DataFrame],
                    options: Mapping[tuple[str, str], Mapping[str, Any]]) -> str:
    """The studies' random trials (`random_trials`) in words: "rMD17-benzene Allegro 12 of 40 started (30%), ...",
    from each study's sampler options (`qallegro.hpo.study.sampler_options`); "" when no sampler has random start-up
    trials (`n_startup_trials`)."""
    out = []
    for (dataset, variant), t in trials.items():
        n = (options.get((dataset, variant)) or {}).get("n_startup_trials")
        if n is None:
            continue
        k = random_trials(t, int(n))
        out.append(f"{DATASET_LABELS[dataset]} {VARIANT_LABELS[variant]} {k} of {len(t)} started "
                   f"({100 * k / len(t):.0f}%)")
    return ", ".join(out)


def shared_trials(trials: Mapping[tuple[str, str], pd.DataFrame], params: Sequence[str]
                  ) -> list[tuple[tuple[str, str], tuple[str, str], list[int]]]:
    """Pairs of studies searching the same hyperparameters (those of `params` in their trials) that evaluated the
    same values as the same trial number, with those numbers: studies of one search space and sampler seed share
    their random start-up trials, and TPE's next proposals too while the same trial leads both (its density model
    splits ten trials into one good and nine)."""
    keys = list(trials)
    out = []
    for i, a in enumerate(keys):
        for b in keys[i + 1:]:
            ta, tb = trials[a].set_index("number"), trials[b].set_index("number")
            cols = [p for p in params if p in ta.columns]
            if cols != [p for p in params if p in tb.columns]:
                continue
            same = [int(n) for n in ta.index.intersection(tb.index)
                    if ta.loc[n, cols].astype(str).tolist() == tb.loc[n, cols].astype(str).tolist()]
            if same:
                out.append((a, b, same))
    return out


def shared_trials_text(pairs: Sequence[tuple[tuple[str, str], tuple[str, str], list[int]]]) -> str:
    """`shared_trials` in words: "rMD17-aspirin Allegro and rMD17-benzene Allegro: trials 0-11; ..."."""
    def label(key: tuple[str, str]) -> str:
        return f"{DATASET_LABELS[key[0]]} {VARIANT_LABELS[key[1]]}"

    def runs(numbers: list[int]) -> str:
        out: list[list[int]] = []
        for n in sorted(numbers):
            if out and n == out[-1][-1] + 1:
                out[-1].append(n)
            else:
                out.append([n])
        return ", ".join(f"{r[0]}-{r[-1]}" if len(r) > 1 else str(r[0]) for r in out)

    return "; ".join(f"{label(a)} and {label(b)}: trial{'s' if len(n) > 1 else ''} {runs(n)}"
                     for a, b, n in pairs) or "none"
