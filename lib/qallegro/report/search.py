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

# the issue's targets (issue 15): seconds per proposal at 200 finished trials, two workers' throughput ratio, the
# fraction of the best full-fidelity sampler's compute within which MO-ASHA reaches its final hypervolume
OVERHEAD_TARGET_S = {"samo-cobra": 5.0}
OVERHEAD_DEFAULT_TARGET_S = 1.0
WORKERS_TARGET = 1.7
ASHA_COMPUTE_TARGET = 1 / 3
# the order of the samplers' columns: model-free first, then the surrogate methods (others after them)
SAMPLER_ORDER = ("random", "nsga2", "tpe", "gp", "samo-cobra", "samo-cobra-b4")


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
    ordered = sorted(samplers, key=lambda c: (SAMPLER_ORDER.index(c) if c in SAMPLER_ORDER else len(SAMPLER_ORDER), c))
    return frame[["problem", "evaluations", *ordered]] if rows else frame


def small_budget_verdicts(summary: pd.DataFrame, method: str = "samo-cobra", evals: int = 50) -> pd.DataFrame:
    """Does `method` win at `evals` evaluations? Per problem: "wins" when its lower quartile lies above the upper
    quartile of every other method (its own variants, e.g. `samo-cobra-b4`, are not others), "best median" when
    only its median is highest, else "does not win"."""
    rows = []
    for problem, g in summary[summary["evals"] == evals].groupby("problem", sort=False):
        own = g[g["sampler"] == method]
        others = g[~g["sampler"].str.startswith(method)]
        if own.empty or others.empty:
            continue
        own = own.iloc[0]
        best_other = others.loc[others["median"].idxmax()]
        if own["q25"] > others["q75"].max():
            verdict = "wins"
        elif own["median"] >= others["median"].max():
            verdict = "best median"
        else:
            verdict = "does not win"
        rows.append({"problem": problem, "verdict": verdict, method: own["median"],
                     "best other": f"{best_other['sampler']} {best_other['median']:.3f}"})
    return pd.DataFrame(rows)


def table_comparison(folder: str | Path) -> dict[str, Any]:
    """The learning-curve table's comparison (`bench_hpo_table.py compare` in `folder`): its record, the summary
    (median and quartiles per method and epoch budget), the epochs each method consumed in all (`spent`, median
    over seeds: a method that runs out of the table's configurations stops early), and MO-ASHA's compute to reach
    the best full-fidelity sampler's final median hypervolume as a fraction of the budget, with the target's
    outcome."""
    folder = Path(folder)
    record = read_json(folder / "compare.json")
    if not record:
        return {}
    summary = pd.read_csv(folder / "compare-summary.csv")
    budget = int(record["budget_epochs"])
    out: dict[str, Any] = {"record": record, "summary": summary, "budget": budget,
                           "final": dict(sorted(record["final_median"].items(), key=lambda kv: -kv[1]))}
    if (folder / "compare.csv").is_file():  # per seed, the epochs a method consumed in all (median over seeds)
        runs = pd.read_csv(folder / "compare.csv")
        out["spent"] = runs.groupby(["method", "seed"])["epochs"].max().groupby("method").median().to_dict()
    for asha in ("mo-asha", "mo-asha-reached"):
        need = record.get(f"{asha}_epochs_to_reach")
        if f"{asha}_epochs_to_reach" in record:
            out[asha] = {"epochs": need, "fraction": None if need is None else need / budget,
                         "meets_target": need is not None and need / budget <= ASHA_COMPUTE_TARGET + 1e-9}
    return out


def overhead_frame(record: Mapping[str, Any]) -> pd.DataFrame:
    """Seconds per proposal at the record's number of finished trials, per sampler, against the issue's target."""
    rows = []
    results = record.get("results") or {}
    order = sorted(results, key=lambda k: (SAMPLER_ORDER.index(k) if k in SAMPLER_ORDER else len(SAMPLER_ORDER), k))
    for sampler in order:
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
