"""The numbers of the search page (`book/hpo_search.ipynb`), read from the benchmark records in
`benchmarks/results/`: samplers on the test problems, the learning-curve table comparison, the samplers' overhead
and the throughput of two workers. Every statement the page makes about them is computed here."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qallegro.hpo.pareto import hypervolume_2d
from qallegro.hpo.problems import PROBLEMS, optimal_hv

# the targets we set: seconds per proposal at 200 finished trials, two workers' throughput ratio, the fraction of
# the best full-fidelity sampler's compute within which MO-ASHA reaches its final hypervolume
OVERHEAD_TARGET_S = {"samo-cobra": 5.0}
OVERHEAD_DEFAULT_TARGET_S = 1.0
WORKERS_TARGET = 1.7
ASHA_COMPUTE_TARGET = 1 / 3
# the order of the samplers' columns: model-free first, then the surrogate methods (others after them)
SAMPLER_ORDER = ("random", "nsga2", "tpe", "gp", "samo-cobra", "samo-cobra-b4")


def ordered(samplers: Sequence[str]) -> list[str]:
    """`samplers` in the order of `SAMPLER_ORDER`, others after them by name."""
    return sorted(samplers, key=lambda c: (SAMPLER_ORDER.index(c) if c in SAMPLER_ORDER else len(SAMPLER_ORDER), c))


def read_json(path: str | Path) -> dict[str, Any]:
    """A benchmark record; a missing file is an empty record (the page says it is not measured)."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else {}


def problems_summary(record: Mapping[str, Any], checkpoints: Sequence[int] = (50, 100)) -> pd.DataFrame:
    """Per problem, number of evaluations and sampler: median and quartiles over seeds of the hypervolume of the
    first `evals` evaluations as a fraction of the true front's (`bench_hpo_problems.py` record), and n seeds."""
    ref = tuple(record.get("reference", (1.1, 1.1)))
    rows = []
    for run in record.get("runs", {}).values():
        values = np.asarray(run["values"], float)
        best = optimal_hv(run["problem"], ref)
        for n in checkpoints:
            if len(values) >= n:
                rows.append({"problem": run["problem"], "evals": n, "sampler": run["label"], "seed": run["seed"],
                             "hv": hypervolume_2d(values[:n], ref) / best})
    if not rows:
        return pd.DataFrame(columns=["problem", "evals", "sampler", "q25", "median", "q75", "n"])
    df = pd.DataFrame(rows)
    df = df.sort_values(["problem", "evals"], key=lambda c: c.map(PROBLEMS.index) if c.name == "problem" else c,
                        kind="stable")
    out = df.groupby(["problem", "evals", "sampler"], sort=False)["hv"].agg(
        q25=lambda s: np.percentile(s, 25), median="median", q75=lambda s: np.percentile(s, 75), n="count")
    return out.reset_index()


def problems_cells(summary: pd.DataFrame) -> pd.DataFrame:
    """One row per (problem, evals), one column per sampler: "median [q25, q75]" (the best median marked *)."""
    rows = []
    for (problem, evals), g in summary.groupby(["problem", "evals"], sort=False):
        top = g["median"].max()
        row = {"problem": problem, "evaluations": int(evals)}
        for r in g.itertuples():
            row[r.sampler] = f"{r.median:.3f} [{r.q25:.3f}, {r.q75:.3f}]" + (" *" if r.median == top else "")
        rows.append(row)
    frame = pd.DataFrame(rows)
    samplers = [c for c in frame.columns if c not in ("problem", "evaluations")]
    return frame[["problem", "evaluations", *ordered(samplers)]] if rows else frame


def variants_of(samplers: Sequence[str], method: str) -> list[str]:
    """The samplers of `samplers` that run `method`: itself and its variants named `method-...` (such as
    `samo-cobra-b4`, the batch variant of `samo-cobra`)."""
    return [s for s in samplers if s == method or s.startswith(f"{method}-")]


def _cell(median: float, q25: float, q75: float) -> str:
    return f"{median:.3f} [{q25:.3f}, {q75:.3f}]"


def small_budget_verdicts(summary: pd.DataFrame, method: str = "samo-cobra", evals: int = 50) -> pd.DataFrame:
    """Does `method` win at `evals` evaluations? Per problem and per variant of `method` (`variants_of`), against
    the samplers of the other methods (every sampler that is not a variant of `method`; the variants are not
    compared with each other): "wins" when the variant's lower quartile lies above every other method's upper
    quartile, "best median" when it does not but its median is at least every other method's, else "does not
    win". Columns: the variant's median [q25, q75], the other method with the highest median (and that
    median), the highest upper quartile among the other methods (and whose), the verdict and the samplers
    compared with."""
    rows = []
    for problem, g in summary[summary["evals"] == evals].groupby("problem", sort=False):
        ours = variants_of(ordered(g["sampler"]), method)
        others = g[~g["sampler"].isin(ours)]
        if others.empty:
            continue
        best = others.loc[others["median"].idxmax()]
        top = others.loc[others["q75"].idxmax()]
        for sampler in ours:
            own = g[g["sampler"] == sampler].iloc[0]
            if own["q25"] > top["q75"]:
                verdict = "wins"
            elif own["median"] >= best["median"]:
                verdict = "best median"
            else:
                verdict = "does not win"
            rows.append({"problem": problem, "sampler": sampler,
                         "median [q25, q75]": _cell(own["median"], own["q25"], own["q75"]),
                         "best other median": f"{best['sampler']} {best['median']:.3f}",
                         "highest other q75": f"{top['q75']:.3f} ({top['sampler']})",
                         "verdict": verdict, "compared with": ", ".join(ordered(others["sampler"]))})
    return pd.DataFrame(rows)


def verdict_counts(verdicts: pd.DataFrame, verdict: str = "wins") -> str:
    """ "samo-cobra 4 of 4, samo-cobra-b4 3 of 4": per sampler, the problems with `verdict` of those judged."""
    if verdicts.empty:
        return "none"
    counts = verdicts.groupby("sampler", sort=False)["verdict"].agg(lambda v: f"{(v == verdict).sum()} of {len(v)}")
    return ", ".join(f"{s} {c}" for s, c in counts.items())


def variants_compared(summary: pd.DataFrame, method: str = "samo-cobra", evals: int = 50) -> pd.DataFrame:
    """The variants of `method` against each other at `evals` evaluations, per problem: the variant with the
    highest median, and whether the variants' interquartile ranges overlap (then the data do not separate them)."""
    rows = []
    for problem, g in summary[summary["evals"] == evals].groupby("problem", sort=False):
        ours = g[g["sampler"].isin(variants_of(list(g["sampler"]), method))]
        if len(ours) < 2:
            continue
        lead = ours.loc[ours["median"].idxmax()]
        rows.append({"problem": problem, "higher median": lead["sampler"],
                     "quartiles overlap": bool(ours["q25"].max() <= ours["q75"].min())})
    return pd.DataFrame(rows)


def variants_text(compared: pd.DataFrame) -> str:
    """ "zdt1 samo-cobra, zdt2 samo-cobra-b4 (interquartile ranges overlap), ...": `variants_compared` in words."""
    return ", ".join(f"{problem} {lead}" + (" (interquartile ranges overlap)" if overlap else "")
                     for problem, lead, overlap in compared[["problem", "higher median", "quartiles overlap"]]
                     .itertuples(index=False))


def table_front_hv(path: str | Path) -> float:
    """The hypervolume of a learning-curve table's whole last-epoch front (`table.csv`), on the objectives the
    comparison uses (`qallegro.hpo.lctable.front_hypervolume`)."""
    from qallegro.hpo.lctable import Table, front_hypervolume

    return front_hypervolume(Table.read(path))


def table_comparison(folder: str | Path, samplers: Sequence[str] = SAMPLER_ORDER) -> dict[str, Any]:
    """The learning-curve table's comparison (`bench_hpo_table.py compare` in `folder`): its record; the summary
    (median and quartiles per method and epoch budget) and the final medians (`final`), both as fractions of the
    hypervolume of the table's whole front (`front_hv`, `table_front_hv`); `absent`: the `samplers` the
    comparison did not run; per method, the epochs consumed by each seed (`spent`: median, `spent_range`: least
    and most; a method that runs out of the table's configurations stops before the budget); and MO-ASHA's
    compute to reach the best full-fidelity sampler's final median hypervolume as a fraction of the budget, with
    the target's outcome."""
    folder = Path(folder)
    record = read_json(folder / "compare.json")
    if not record:
        return {}
    front = table_front_hv(folder / "table.csv")
    summary = pd.read_csv(folder / "compare-summary.csv")
    summary[["q25", "median", "q75"]] = summary[["q25", "median", "q75"]] / front
    budget = int(record["budget_epochs"])
    final = {m: v / front for m, v in sorted(record["final_median"].items(), key=lambda kv: -kv[1])}
    out: dict[str, Any] = {"record": record, "summary": summary, "budget": budget, "front_hv": front,
                           "final": final, "absent": [s for s in samplers if s not in record["final_median"]]}
    if (folder / "compare.csv").is_file():  # per seed, the epochs a method consumed in all
        runs = pd.read_csv(folder / "compare.csv")
        per_seed = runs.groupby(["method", "seed"])["epochs"].max().groupby("method")
        out["spent"] = per_seed.median().to_dict()
        out["spent_range"] = {m: (int(lo), int(hi)) for m, (lo, hi) in per_seed.agg(["min", "max"]).iterrows()}
    for asha in ("mo-asha", "mo-asha-reached"):
        need = record.get(f"{asha}_epochs_to_reach")
        if f"{asha}_epochs_to_reach" in record:
            out[asha] = {"epochs": need, "fraction": None if need is None else need / budget,
                         "meets_target": need is not None and need / budget <= ASHA_COMPUTE_TARGET + 1e-9}
    return out


def table_bounds(folder: str | Path) -> dict[str, Any]:
    """`bench_hpo_table.py bounds` in `folder`: the grid of synchronous successive-halving schedules as a table
    (hypervolumes as fractions of the table's whole front) and a sentence on whether the MO-ASHA target is
    reachable on the table at all (an oracle's epochs) and by successive halving; {} without the record."""
    folder = Path(folder)
    record = read_json(folder / "bounds.json")
    if not record:
        return {}
    front = table_front_hv(folder / "table.csv")
    target, budget, oracle = record["target"], int(record["budget_epochs"]), record["oracle"]
    third = ASHA_COMPUTE_TARGET * budget
    schedules = record["successive_halving"]
    reaches = [s["hypervolume"] >= target - 1e-12 for s in schedules]
    rows = [{"rungs (epochs)": "-".join(map(str, s["rungs"])), "eta": s["eta"], "epochs": s["epochs"],
             "trained to the end": s["trained"], "hypervolume": s["hypervolume"] / front,
             "reaches the target": "yes" if ok else "no"} for s, ok in zip(schedules, reaches)]
    reach = [s for s, ok in zip(schedules, reaches) if ok]
    fast = [s for s in reach if s["epochs"] <= third + 1e-9]
    if oracle["epochs"] is None:
        first = "Even the table's whole front stays below it, so no search on this table can reach it."
    else:
        first = (f"An oracle that knew the table would train {oracle['configs']} configurations to the end "
                 f"({oracle['epochs']:,} epochs, {oracle['epochs'] / budget:.2f} of the budget) to reach it, so the "
                 "table does not rule the target out.")
    if not reach:
        second = f"None of the {len(rows)} schedules reaches it"
    else:
        spent = sorted(s["epochs"] for s in reach)
        second = (f"{len(reach)} of the {len(rows)} schedules reach it, with {spent[0]:,}"
                  + (f" to {spent[-1]:,}" if len(spent) > 1 else "") + " epochs; "
                  + (f"{len(fast)} within" if fast else "none within") + f" a third of the budget ({third:.0f})")
    text = (f"{first} Synchronous successive halving, MO-ASHA's schedule in hindsight (every configuration trains "
            "to the first rung, then the best 1/eta of each rung by non-dominated rank and crowding distance train "
            f"on), was run on the table for first rungs of 1 and 3 epochs and eta 3, 5 and 9: {second}.")
    if reach and not fast:
        kept = sorted(s["trained"] for s in reach)
        text += (" Deciding every rung in hindsight does not meet the target either, so the ranking after the early "
                 "epochs limits successive halving on this table: the schedules that reach it train "
                 f"{kept[0]}" + (f" to {kept[-1]}" if kept[-1] != kept[0] else "")
                 + f" configurations to the end, the oracle {oracle['configs']}.")
    return {"record": record, "table": pd.DataFrame(rows), "text": text, "reachable_fast": bool(fast)}


def plot_table(table: Mapping[str, Any], title: str | None = None) -> Any:
    """`table_comparison` as a figure: per method, the median (line) and interquartile range (band) over seeds of
    the hypervolume as a fraction of the table's whole front against the epochs consumed. A method whose seeds
    stop before the budget (MO-ASHA, once every configuration has been tried) is drawn up to the budget by which
    all its seeds have stopped (later, nothing changes), with a dot where its median seed stopped."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D

    from qallegro.report.figures import figsize

    sns.set_theme(style="whitegrid", context="notebook")
    fig, ax = plt.subplots(figsize=figsize(0.62))
    budget, spent, ranges = table["budget"], table.get("spent", {}), table.get("spent_range", {})
    stopped = False
    for method, g in table["summary"].groupby("method", sort=False):
        last = ranges.get(method, (budget, budget))[1]
        if last < budget:  # up to the first budget of the grid by which every seed had stopped
            g = g[g["epochs"] <= g.loc[g["epochs"] >= last, "epochs"].min()]
        line, = ax.plot(g["epochs"], g["median"], label=method, lw=2 if method.startswith("mo-asha") else 1.5)
        ax.fill_between(g["epochs"], g["q25"], g["q75"], color=line.get_color(), alpha=0.15, lw=0)
        if method in spent and spent[method] < budget:
            x = spent[method]
            y = g.loc[g["epochs"] <= x, "median"].iloc[-1] if (g["epochs"] <= x).any() else 0.0
            ax.plot([x], [y], "o", color=line.get_color(), ms=7, mec="black", mew=0.8)
            stopped = True
    ax.set(xlabel="epochs consumed (compute)", ylabel="hypervolume / table's whole front",
           title=title or "learning-curve table", xlim=(0, budget * 1.02))
    ax.set_ylim(top=1.0 + 0.02)
    handles, labels = ax.get_legend_handles_labels()
    if stopped:
        handles.append(Line2D([], [], ls="", marker="o", ms=7, color="white", mec="black", mew=0.8))
        labels.append("where the median seed stopped")
    ax.legend(handles, labels, frameon=False, fontsize="small", loc="lower right")
    fig.tight_layout()
    return fig


def overhead_frame(record: Mapping[str, Any]) -> pd.DataFrame:
    """Seconds per proposal at the record's number of finished trials, per sampler, against its target."""
    rows = []
    results = record.get("results") or {}
    for sampler in ordered(results):
        r = results[sampler]
        target = OVERHEAD_TARGET_S.get(sampler, OVERHEAD_DEFAULT_TARGET_S)
        rows.append({"sampler": sampler, "mean (s)": r["mean_s"], "worst (s)": r["max_s"], "target (s)": target,
                     "within target": "yes" if r["max_s"] < target else "no"})
    return pd.DataFrame(rows)


def workers_summary(record: Mapping[str, Any]) -> dict[str, Any]:
    """Two workers' trials per hour over one worker's (median over rounds) per kind of trial, and whether the
    real trials meet the target."""
    ratios = dict(record.get("median_ratio") or {})
    real = ratios.get("real")
    return {"ratios": ratios, "real": real, "meets_target": real is not None and real >= WORKERS_TARGET,
            "commit": (record.get("env") or {}).get("git_commit")}
