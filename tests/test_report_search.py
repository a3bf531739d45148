"""The search page's numbers (`qallegro.report.search`) against hand computations on synthetic records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from qallegro.hpo.lctable import REFERENCE
from qallegro.hpo.problems import optimal_hv
from qallegro.report.search import (
    overhead_frame,
    plot_table,
    problems_cells,
    problems_summary,
    small_budget_verdicts,
    table_bounds,
    table_comparison,
    table_front_hv,
    variants_compared,
    variants_text,
    verdict_counts,
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
        ("zdt3", "random", 0.0, 0.1, 0.75),                                          # the highest q75 elsewhere
        ("zdt1", "samo-cobra-b4", 0.95, 0.99, 1.0),                                  # its own variant: no rival
        ("zdt2", "samo-cobra-b4", 0.84, 0.86, 0.88),                                 # judged against tpe too
    ])
    verdicts = small_budget_verdicts(summary)
    got = verdicts.set_index(["problem", "sampler"])["verdict"].to_dict()
    assert got == {("zdt1", "samo-cobra"): "wins", ("zdt1", "samo-cobra-b4"): "wins",
                   ("zdt2", "samo-cobra"): "best median", ("zdt2", "samo-cobra-b4"): "best median",
                   ("zdt3", "samo-cobra"): "does not win"}
    # the variants are judged against the other methods only, never against each other
    row = verdicts.set_index(["problem", "sampler"]).loc[("zdt1", "samo-cobra")]
    assert row["compared with"] == "tpe" and row["best other median"] == "tpe 0.200"
    assert row["median [q25, q75]"] == "0.950 [0.900, 0.970]"
    row = verdicts.set_index(["problem", "sampler"]).loc[("zdt3", "samo-cobra")]
    assert row["compared with"] == "random, gp" and row["highest other q75"] == "0.750 (random)"
    assert row["best other median"] == "gp 0.650"
    assert verdict_counts(verdicts) == "samo-cobra 1 of 3, samo-cobra-b4 1 of 2"
    assert verdict_counts(verdicts, "best median") == "samo-cobra 1 of 3, samo-cobra-b4 1 of 2"
    assert small_budget_verdicts(summary, evals=100).empty
    compared = variants_compared(summary)
    assert compared.to_dict("records") == [
        {"problem": "zdt1", "higher median": "samo-cobra-b4", "quartiles overlap": True},
        {"problem": "zdt2", "higher median": "samo-cobra-b4", "quartiles overlap": True}]
    apart = _summary([("dtlz2", "samo-cobra", 0.8, 0.85, 0.9), ("dtlz2", "samo-cobra-b4", 0.5, 0.6, 0.7)])
    assert variants_text(variants_compared(apart)) == "dtlz2 samo-cobra"
    assert variants_text(compared).startswith("zdt1 samo-cobra-b4 (interquartile ranges overlap), zdt2")


def _table_csv(path: Path, final: list[tuple[float, float]]) -> None:
    """A two-epoch table whose last-epoch (error, inference) values are `final` (first epoch: twice the error)."""
    rows = [{"config": c, "epoch": e, "error": err * (2 if e == 1 else 1), "inference_s": t, "epoch_s": 1.0,
             "params": json.dumps({"x": c})} for c, (err, t) in enumerate(final) for e in (1, 2)]
    pd.DataFrame(rows).to_csv(path, index=False)


def test_table_front_hv_by_hand(tmp_path: Path) -> None:
    _table_csv(tmp_path / "table.csv", [(1.0, 3.0), (3.0, 1.0), (2.0, 2.0), (2.5, 2.5)])
    # scaled: (0, 1), (1, 0), (0.5, 0.5), (0.75, 0.75); the front's staircase against (1.1, 1.1)
    r = REFERENCE[0]
    expected = (r - 0) * (r - 1) + (r - 0.5) * (1 - 0.5) + (r - 1) * (0.5 - 0)
    assert table_front_hv(tmp_path / "table.csv") == pytest.approx(expected)


@pytest.mark.parametrize(("need", "fraction", "meets"), [(27, 0.3, True), (30, 1 / 3, True), (45, 0.5, False),
                                                         (None, None, False)])
def test_table_comparison_compute_fraction(tmp_path: Path, need: int | None, fraction: float | None,
                                           meets: bool) -> None:
    record = {"budget_epochs": 90, "final_median": {"random": 1.0, "tpe": 1.1}, "mo-asha_epochs_to_reach": need}
    (tmp_path / "compare.json").write_text(json.dumps(record))
    _table_csv(tmp_path / "table.csv", [(1.0, 3.0), (3.0, 1.0), (2.0, 2.0)])
    front = table_front_hv(tmp_path / "table.csv")
    pd.DataFrame([{"method": "tpe", "epochs": 9, "q25": 0.1, "median": 0.2, "q75": 0.3}]).to_csv(
        tmp_path / "compare-summary.csv", index=False)
    pd.DataFrame([{"method": m, "seed": seed, "epochs": e, "hypervolume": 0.5} for m, seed, e in
                  [("tpe", 0, 9), ("tpe", 0, 90), ("tpe", 1, 90), ("mo-asha", 0, 27), ("mo-asha", 1, 30),
                   ("mo-asha", 2, 40)]]).to_csv(tmp_path / "compare.csv", index=False)
    out = table_comparison(tmp_path)
    assert out["front_hv"] == pytest.approx(front)
    assert out["final"] == {"tpe": pytest.approx(1.1 / front), "random": pytest.approx(1.0 / front)}
    assert list(out["final"]) == ["tpe", "random"]
    assert out["summary"].iloc[0][["q25", "median", "q75"]].tolist() == pytest.approx([0.1 / front, 0.2 / front,
                                                                                       0.3 / front])
    assert out["absent"] == ["nsga2", "gp", "samo-cobra", "samo-cobra-b4"]
    assert out["spent"] == {"mo-asha": 30, "tpe": 90}
    assert out["spent_range"] == {"mo-asha": (27, 40), "tpe": (90, 90)}
    assert out["mo-asha"]["meets_target"] is meets
    assert out["mo-asha"]["fraction"] == (None if fraction is None else pytest.approx(fraction))
    assert "mo-asha-reached" not in out
    assert table_comparison(tmp_path / "absent") == {}


def test_plot_table_ends_a_stopped_method_where_its_last_seed_stopped() -> None:
    import matplotlib

    matplotlib.use("Agg")
    grid = [10, 20, 30, 40, 50]
    summary = pd.DataFrame([{"method": m, "epochs": b, "q25": 0.1, "median": 0.2, "q75": 0.3}
                            for m in ("tpe", "mo-asha") for b in grid])
    table = {"summary": summary, "budget": 50, "spent": {"tpe": 50, "mo-asha": 15},
             "spent_range": {"tpe": (50, 50), "mo-asha": (12, 25)}}
    fig = plot_table(table)
    lines = {line.get_label(): line for line in fig.axes[0].lines}
    assert list(lines["tpe"].get_xdata()) == grid
    assert list(lines["mo-asha"].get_xdata()) == [10, 20, 30]  # the first budget by which every seed had stopped
    dots = [line for line in fig.axes[0].lines if line.get_marker() == "o"]
    assert [list(d.get_xdata()) for d in dots] == [[15]]  # the median seed's stop
    assert "where the median seed stopped" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


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


@pytest.mark.parametrize(("schedules", "says"), [
    ([(300, 1.0, 9), (500, 1.2, 4)], "1 of the 2 schedules reach it, with 500 epochs; none within a third of the "
                                     "budget (300). Deciding every rung in hindsight"),
    ([(280, 1.2, 3), (500, 1.2, 4)], "2 of the 2 schedules reach it, with 280 to 500 epochs; 1 within a third"),
    ([(300, 1.0, 9)], "None of the 1 schedules reaches it."),
])
def test_table_bounds_sentences_follow_the_record(tmp_path: Path, schedules: list, says: str) -> None:
    _table_csv(tmp_path / "table.csv", [(1.0, 3.0), (3.0, 1.0), (2.0, 2.0)])
    record = {"target": 1.1, "budget_epochs": 900, "oracle": {"configs": 2, "epochs": 54, "hypervolume": 1.15},
              "successive_halving": [{"rungs": [1, 3, 9, 27], "eta": 3, "epochs": e, "hypervolume": hv,
                                      "trained": n} for e, hv, n in schedules]}
    (tmp_path / "bounds.json").write_text(json.dumps(record))
    out = table_bounds(tmp_path)
    assert says in out["text"]
    assert "would train 2 configurations to the end (54 epochs, 0.06 of the budget)" in out["text"]
    assert ("Deciding every rung in hindsight" in out["text"]) == ("none within" in says)
    front = table_front_hv(tmp_path / "table.csv")
    assert out["table"]["hypervolume"].tolist() == pytest.approx([hv / front for _, hv, _ in schedules])
    assert table_bounds(tmp_path / "absent") == {}
