"""The search page's numbers (`qallegro.report.search`) against hand computations on synthetic records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from qallegro.hpo.problems import optimal_hv
from qallegro.report.search import (
    overhead_frame,
    problems_cells,
    problems_summary,
    small_budget_verdicts,
    table_comparison,
    workers_summary,
)


def _run(problem: str, label: str, seed: int, values: list[list[float]]) -> dict:
    return {"problem": problem, "label": label, "seed": seed, "values": values}


def test_problems_summary_fractions_and_quartiles() -> None:
    # one point (a, a) against the reference (1.1, 1.1) dominates a square of side 1.1 - a
    sides = [0.1, 0.3, 0.5, 0.7]
    runs = {f"zdt1/random/{k}": _run("zdt1", "random", k, [[1.1 - s, 1.1 - s]] * 50) for k, s in enumerate(sides)}
    runs["zdt1/tpe/0"] = _run("zdt1", "tpe", 0, [[2.0, 2.0]] * 30)  # fewer than 50 evaluations: not counted
    summary = problems_summary({"reference": [1.1, 1.1], "runs": runs}, checkpoints=(50,))
    assert list(summary["sampler"]) == ["random"]
    fractions = np.array(sides) ** 2 / optimal_hv("zdt1", (1.1, 1.1))
    row = summary.iloc[0]
    assert row["n"] == 4
    assert row["median"] == pytest.approx(np.median(fractions))
    assert (row["q25"], row["q75"]) == pytest.approx((np.percentile(fractions, 25), np.percentile(fractions, 75)))
    cells = problems_cells(summary)
    assert cells.iloc[0]["random"].endswith(" *") and cells.iloc[0]["evaluations"] == 50
    runs["zdt1/gp/0"] = _run("zdt1", "gp", 0, [[0.5, 0.5]] * 50)
    runs["zdt1/mine/0"] = _run("zdt1", "mine", 0, [[0.5, 0.5]] * 50)
    columns = problems_cells(problems_summary({"runs": runs}, (50,))).columns
    assert list(columns) == ["problem", "evaluations", "random", "gp", "mine"]


def test_problems_summary_orders_problems_as_defined() -> None:
    runs = {f"{p}/random/0": _run(p, "random", 0, [[0.5, 0.5]] * 50) for p in ("dtlz2", "zdt3", "zdt1")}
    assert list(problems_summary({"runs": runs}, (50,))["problem"]) == ["zdt1", "zdt3", "dtlz2"]


def _summary(rows: list[tuple[str, str, float, float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"problem": p, "evals": 50, "sampler": s, "q25": a, "median": m, "q75": b, "n": 10}
                         for p, s, a, m, b in rows])


def test_small_budget_verdicts() -> None:
    summary = _summary([
        ("zdt1", "samo-cobra", 0.9, 0.95, 0.97), ("zdt1", "tpe", 0.1, 0.2, 0.3),      # quartiles apart
        ("zdt2", "samo-cobra", 0.5, 0.8, 0.9), ("zdt2", "tpe", 0.6, 0.7, 0.85),       # overlap, best median
        ("zdt3", "samo-cobra", 0.5, 0.6, 0.7), ("zdt3", "gp", 0.6, 0.65, 0.7),        # another sampler's median
        ("zdt1", "samo-cobra-b4", 0.95, 0.99, 1.0),                                  # its own variant: no rival
    ])
    got = small_budget_verdicts(summary).set_index("problem")["verdict"].to_dict()
    assert got == {"zdt1": "wins", "zdt2": "best median", "zdt3": "does not win"}
    assert small_budget_verdicts(summary, evals=100).empty


@pytest.mark.parametrize(("need", "fraction", "meets"), [(27, 0.3, True), (30, 1 / 3, True), (45, 0.5, False),
                                                         (None, None, False)])
def test_table_comparison_compute_fraction(tmp_path: Path, need: int | None, fraction: float | None,
                                           meets: bool) -> None:
    record = {"budget_epochs": 90, "final_median": {"random": 1.0, "tpe": 1.1}, "mo-asha_epochs_to_reach": need}
    (tmp_path / "compare.json").write_text(json.dumps(record))
    pd.DataFrame([{"method": "tpe", "epochs": 9, "q25": 0.1, "median": 0.2, "q75": 0.3}]).to_csv(
        tmp_path / "compare-summary.csv", index=False)
    pd.DataFrame([{"method": m, "seed": seed, "epochs": e, "hypervolume": 0.5} for m, seed, e in
                  [("tpe", 0, 9), ("tpe", 0, 90), ("tpe", 1, 90), ("mo-asha", 0, 27), ("mo-asha", 1, 30),
                   ("mo-asha", 2, 40)]]).to_csv(tmp_path / "compare.csv", index=False)
    out = table_comparison(tmp_path)
    assert list(out["final"]) == ["tpe", "random"]
    assert out["spent"] == {"mo-asha": 30, "tpe": 90}
    assert out["mo-asha"]["meets_target"] is meets
    assert out["mo-asha"]["fraction"] == (None if fraction is None else pytest.approx(fraction))
    assert "mo-asha-reached" not in out
    assert table_comparison(tmp_path / "absent") == {}


def test_overhead_and_workers_targets() -> None:
    frame = overhead_frame({"results": {"tpe": {"mean_s": 0.01, "max_s": 0.02},
                                        "gp": {"mean_s": 0.6, "max_s": 1.7},
                                        "samo-cobra": {"mean_s": 1.0, "max_s": 3.0}}}).set_index("sampler")
    assert frame["within target"].to_dict() == {"tpe": "yes", "gp": "no", "samo-cobra": "yes"}
    assert list(frame.index) == ["tpe", "gp", "samo-cobra"]
    assert frame.loc["samo-cobra", "target (s)"] == 5.0
    assert workers_summary({"median_ratio": {"real": 1.87}})["meets_target"] is True
    assert workers_summary({"median_ratio": {"real": 1.5}})["meets_target"] is False
    assert workers_summary({})["meets_target"] is False
