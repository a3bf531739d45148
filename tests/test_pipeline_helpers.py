"""The book's helpers: paper-vs-ours tables, the provenance line, figures as images, run records."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from qallegro import paper
from qallegro.errors import PipelineError
from qallegro.pipeline import compare, records
from qallegro.pipeline.execute import set_title
from qallegro.pipeline.notebooks import Notebook
from qallegro.pipeline.page import describe_hardware, provenance, show


def test_hyperparameters_beside_the_papers_rows() -> None:
    ours = {"r_max": 5.123456, "num_layers": 2, "qdi_depth": 1}
    table = compare.hyperparameters(ours, "culi", "qdi")
    col = "paper (Table 3)"
    row = paper.best_hyperparameters("culi", "qdi")
    assert table.loc["r_max", col] == row["r_max"] and table.loc["qdi_fc_dim", col] == row["final_mlp"]
    assert table.loc["qdi_depth", col] == row["qdi_depth"] and table.loc["learning_rate", col] == row["lr"]
    assert table.loc["r_max", "ours"] == 5.12 and table.loc["num_layers", "ours"] == 2
    assert table.loc["batch_size", "ours"] is None  # not given: shown empty, not invented
    assert len(table) == 9


def test_hyperparameter_table_has_one_row_per_dataset() -> None:
    chosen = {("culi", "mlp"): {"r_max": 5.5}, ("qm9", "mlp"): {"r_max": 6.5}, ("qm9", "allegro"): {"r_max": 7.0}}
    table = compare.hyperparameter_table(chosen, "mlp")
    assert list(table.index) == ["Cu-Li", "QM9"]
    assert table.loc["QM9", ("r_max", "ours")] == 6.5
    assert table.loc["QM9", ("r_max", "paper (Table 2)")] == paper.best_hyperparameters("qm9", "mlp")["r_max"]
    assert next(iter(table.columns.get_level_values(0).unique())) == "r_max"
    with pytest.raises(ValueError, match="no chosen qdi"):
        compare.hyperparameter_table(chosen, "qdi")


def test_relative_difference_recovers_the_papers_13_percent() -> None:
    t4 = paper.values()["table4_val_force_mae_meV_per_A"]["culi"]
    claim = paper.values()["claim_13_percent"]
    assert compare.relative_difference(t4["qdi"], t4["mlp"]) == pytest.approx(-claim["value"], abs=5e-4)
    with pytest.raises(ValueError):
        compare.relative_difference(1.0, 0.0)


def test_page_helpers() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    img = show(fig)
    assert img.data[:8] == b"\x89PNG\r\n\x1a\n" and not plt.get_fignums()
    line = provenance("smoke", seed=3).data
    assert "**smoke** scale" in line and "seed 3" in line and "GPU" in line
    assert describe_hardware({"cpu": "X", "cpus_available": 2, "memory_gib": 4.0, "gpu": None}) == \
        "X, 2 cores, 4.0 GiB, no GPU"


def test_set_title() -> None:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("text\n# Old title\nmore")])
    set_title(nb, "Fig. 2a: new")
    assert nb.cells[0].source == "text\n# Fig. 2a: new\nmore"
    with pytest.raises(ValueError, match="no '# ' title"):
        set_title(nbformat.v4.new_notebook(), "x")


def test_records_table(tmp_path: Path) -> None:
    hw = {"cpu": "CPU", "cpus_available": 2, "memory_gib": 8.0, "gpu": None}
    for name, scale, day, dur in (("a", "quick", "2026-01-02", 10.0), ("b", "quick", "2026-01-05", 5.5)):
        nb = nbformat.v4.new_notebook()
        nb.metadata["qallegro"] = {"scale": scale, "parameters": {"scale": scale, "x": 1},
                                   "finished": f"{day}T10:00:00+00:00", "duration_s": dur, "hardware": hw,
                                   "versions": {"qallegro": "0.1"}, "git_commit": "abcdef1234567"}
        nbformat.write(nb, tmp_path / f"{name}.ipynb")
    nbs = [Notebook("a", "a.ipynb"), Notebook("b", "b.ipynb"), Notebook("c", "c.ipynb")]  # c never ran
    df = records.collect(tmp_path, nbs)
    assert list(df["notebook"]) == ["a", "b"] and df.loc[0, "parameters"] == "x=1"
    info = records.summary(df)
    assert info == {"scale": "quick", "dates": "2026-01-02 to 2026-01-05", "hardware": "CPU, 2 cores, 8.0 GiB, no GPU",
                    "total_s": 15.5, "n": 2}
    assert records.summary(records.collect(tmp_path, nbs[2:]))["n"] == 0


def _finals() -> dict:
    """Final-model summaries as `qallegro.hpo.final` writes them (eV/Å, eV/atom), with made-up numbers."""
    out = {}
    for i, (ds, var) in enumerate([("rmd17-aspirin", "allegro"), ("rmd17-aspirin", "mlp"), ("rmd17-aspirin", "qdi"),
                                   ("rmd17-benzene", "allegro"), ("qm9", "allegro"), ("qm9", "mlp"),
                                   ("culi", "allegro"), ("culi", "mlp"), ("culi", "qdi")]):
        f = None if ds == "qm9" else 0.01 * (i + 1)
        out[ds, var] = {"val_f_mae": f, "val_e_mae": 0.001 * (i + 1),
                        "test": {"f_mae": None if f is None else 2 * f, "e_mae": 0.002 * (i + 1)},
                        "val": {"f_mae": f, "e_mae": 0.001 * (i + 1)}}
    return out


def test_error_tables_put_ours_in_the_papers_units_beside_the_paper() -> None:
    finals = _finals()
    t4 = compare.error_table(finals, "Table 4")
    assert list(t4.index) == ["rMD17-aspirin", "rMD17-benzene", "Cu-Li"]
    assert t4.loc["Cu-Li", "Allegro+QDI (ours)"] == pytest.approx(90.0)  # 0.09 eV/Å in meV/Å
    assert t4.loc["Cu-Li", "Allegro+QDI (paper)"] == paper.values()["table4_val_force_mae_meV_per_A"]["culi"]["qdi"]
    assert t4.loc["rMD17-aspirin", "Allegro [12] (paper)"] == 9.8
    assert pd.isna(t4.loc["rMD17-benzene", "Allegro+MLP (ours)"])  # no such final model: empty, not invented
    t5 = compare.error_table(finals, "Table 5")
    assert t5.loc["QM9", "Allegro+MLP (ours)"] == pytest.approx(6.0)  # 0.006 eV/atom in meV/atom
    derived = compare.derived_comparisons(finals)
    claim = derived.iloc[0]
    # ours: culi qdi 90 vs mlp 80 meV/Å -> QDI's error is 12.5% higher; the paper's 12.7% lower
    assert claim["ours (%)"] == pytest.approx(100 * (90 - 80) / 80)
    assert claim["paper (%)"] == pytest.approx(-100 * paper.values()["claim_13_percent"]["value"], abs=0.05)
    assert pd.isna(derived.loc["benzene forces: Allegro+MLP vs Allegro", "ours (%)"])


def test_table6_rows_and_units() -> None:
    t6 = compare.table6(_finals(), "test")
    assert list(t6.columns) == list(compare.TABLE6_COLUMNS)
    assert t6.loc["MACE (as printed)", "aspirin_F"] == 6.6
    assert t6.loc["Allegro (ours, test)", "aspirin_F"] == pytest.approx(20.0)  # test f_mae 0.02 eV/Å
    assert t6.loc["Allegro+QDI (ours, test)", "qm9_E"] is None or pd.isna(t6.loc["Allegro+QDI (ours, test)", "qm9_E"])
    assert t6.loc["Allegro+MLP (ours, test)", "qm9_E"] == pytest.approx(12.0)


def test_benchmark_results_are_read_as_they_are(tmp_path: Path) -> None:
    from qallegro.pipeline import benchmarks

    race = {"env": {"hardware": {"cpu": "CPU", "cpus_available": 2, "memory_gib": 8.0, "gpu": None}}, "threads": 1,
            "results": {"quick/aspirin": {"ours eager": {"median_ms": 2.0}, "theirs eager": {"median_ms": 5.0},
                                          "ours compiled": {"median_ms": 1.0, "compile_s": 3.0},
                                          "theirs AOTI": {"median_ms": 4.0}, "ours e3nn-TP eager": {"median_ms": 0.5},
                                          "_info": {"atoms": 21},
                                          "_flops": {"gflop_ours": 0.1, "gflop_theirs": 0.2, "ours_floor_ms": 0.8}}}}
    (tmp_path / "race.json").write_text(json.dumps(race))
    (tmp_path / "accuracy.json").write_text(json.dumps({"test_f_mae_meV_per_A": 27.8, "threads": 1,
                                                        "ratios_vs_anchor": {"nequip": {"test_f_mae": 0.5}}}))
    (tmp_path / "broken.json").write_text("{nope")
    found = {r["file"]: r for r in benchmarks.load_results(tmp_path)}
    kinds = [found[f]["kind"] for f in ("accuracy.json", "broken.json", "race.json")]
    assert kinds == ["accuracy", "unreadable", "race"]
    assert found["race.json"]["hardware"] == "CPU, 2 cores, 8.0 GiB, no GPU"
    assert "not committed" in found["race.json"]["date"]
    table = benchmarks.race_table(race)
    assert table.loc["quick/aspirin", "speed-up, eager (theirs / ours)"] == pytest.approx(2.5)
    assert table.loc["quick/aspirin", "speed-up, best (theirs / ours)"] == pytest.approx(4.0)  # e3nn mode excluded
    assert table.loc["quick/aspirin", "largest speed-up possible"] == pytest.approx(5.0)  # theirs best 4 ms / 0.8
    acc = benchmarks.accuracy_table(found["accuracy.json"]["data"])
    assert list(acc.columns) == ["ours", "theirs: nequip"]
    assert acc.loc["test force MAE (meV/Å)", "ours"] == 27.8
    assert acc.loc["test force MAE (meV/Å)", "theirs: nequip"] == pytest.approx(55.6)  # ours / the recorded ratio
    assert acc.loc["ours / theirs: test force MAE", "theirs: nequip"] == 0.5
    assert acc.loc["ours / theirs: test force MAE", "ours"] is None
    assert benchmarks.describe(found["accuracy.json"])["title"] == "The accuracy race"
    assert benchmarks.load_results(tmp_path / "none") == []


def test_plan_table_matches_pages_by_pattern() -> None:
    df = pd.DataFrame({"notebook": ["moo-a", "moo-b", "final", "extra"], "duration_s": [60.0, 120.0, 30.0, 6.0]})
    plan = [{"pages": "moo-*", "minutes": 4, "what": "studies"}, {"pages": "final", "minutes": 1},
            {"pages": "never", "minutes": 2}]
    table = records.plan_table(df, plan)
    assert table.loc["moo-*", "measured (min)"] == pytest.approx(3.0) and table.loc["moo-*", "notebooks"] == 2
    assert table.loc["never", "measured (min)"] is None or pd.isna(table.loc["never", "measured (min)"])
    assert table.loc["extra", "what"] == "not in the plan"
    assert table.loc["total", "planned (min)"] == 7 and table.loc["total", "measured (min)"] == pytest.approx(3.6)


def test_experiment_paths(results_dir: Path) -> None:
    from qallegro.pipeline import experiments

    assert len(experiments.final_models()) == 12
    path = experiments.summary_path("culi", "qdi", "paper", "samo-cobra", 0)
    assert path == results_dir / "paper" / "hpo" / "culi-qdi-samo-cobra-s0" / "final-lowest_error.json"
    assert experiments.summary_path("qm9", "qdi", "paper", "samo-cobra", 0) == \
        results_dir / "paper" / "hpo" / "transfer-qm9-qdi.json"
    with pytest.raises(PipelineError, match="no final model"):
        experiments.summary_path("culi", "nope", "paper", "samo-cobra", 0)
    rec = {"study": "culi-qdi-samo-cobra-s0", "trial": 7, "run_dir": "/elsewhere/final-trial-00007"}
    assert experiments.run_dir(rec, "paper") == path.parent / "final-trial-00007"
    assert experiments.run_dir({"transfer": {}, "dataset": "qm9"}, "paper") == \
        results_dir / "paper" / "hpo" / "transfer-qm9-qdi"
    with pytest.raises(PipelineError, match="only moo-culi-qdi"):
        experiments.open_study("culi", "qdi", "paper", "samo-cobra", 0)
    # at a campaign scale, another sampler than the campaign's is named with the parameters that open its studies
    with pytest.raises(PipelineError, match="use sampler 'tpe', seed 0 \\(papermill: -p sampler tpe -p seed 0\\)"):
        experiments.open_study("culi", "qdi", "overnight", "samo-cobra", 0)
    with pytest.raises(PipelineError, match="campaign-only"):
        experiments.open_study("culi", "qdi", "overnight", "tpe", 0)
    with pytest.raises(PipelineError, match="only final_training"):
        experiments.load_finals("paper", "samo-cobra", 0)
    assert experiments.transferred_params("paper", "samo-cobra", 0) == {}  # the finals come after Fig. 2
    # without finals, the combination they would train from the studies' chosen trials
    chosen = {("culi", "qdi"): {"params": {"r_max": 6.0, "qdi_depth": 3, "qdi_input_features": 8,
                                           "qdi_fc_dim": 16}},
              ("rmd17-benzene", "allegro"): {"params": {"r_max": 4.5, "num_layers": 2}},
              ("qm9", "allegro"): {"params": {"r_max": 5.0, "num_layers": 1}}}
    assert experiments.transferred_params("paper", "samo-cobra", 0, chosen) == {
        ("rmd17-benzene", "qdi"): {"r_max": 4.5, "num_layers": 2, "qdi_depth": 3, "qdi_input_features": 8,
                                   "qdi_fc_dim": 16},
        ("qm9", "qdi"): {"r_max": 5.0, "num_layers": 1, "qdi_depth": 3, "qdi_input_features": 8, "qdi_fc_dim": 16}}


def test_headline_numbers_of_other_benchmark_files() -> None:
    import math

    from qallegro.pipeline.benchmarks import OTHER_BENCHMARKS, describe, headline_table

    # an unknown file: its headline numbers under readable names
    data = {"env": {"ratio": 9.0}, "speedup": 43.3, "agree": True, "threads": 1, "label": "x",
            "ratios": {"QDI / MLP": 1.01}, "results": {"tpe": {"mean_s": 0.007, "times_s": [0.1]}},
            "deep": {"a": {"b": {"ratio": 2.0}}}}
    table = headline_table(data, "new-bench.json")
    assert table["value"].to_dict() == {"speedup": 43.3, "agree": True, "ratios: QDI / MLP": 1.01,
                                        "results: tpe: mean (s)": 0.007}
    assert headline_table({"n": 3}).empty
    about = describe({"file": "new-bench.json", "kind": "other"})
    assert about["title"] == "new-bench" and "Not described" in about["what"]
    # a known file: its labels in the mapping's order, a transformed value, list items, labels from the record,
    # and a number the mapping does not know still shown, readably
    retest = {"spearman_quick": 0.976, "max_log_ratio_quick": math.log(2.33), "load_average_1_5_15": [3.8, 4.4],
              "spearman_campaign": 1.0, "new_ratio_x": 1.5}
    table = headline_table(retest, "timing-retest.json")["value"]
    assert list(table.index) == ["campaign protocol: rank correlation of the two runs (Spearman)",
                                 "old quick protocol: rank correlation of the two runs (Spearman)",
                                 "old quick protocol: largest ratio of a model's two times (×)",
                                 "load average of the 2 cores at the end (last minute)", "new ratio x"]
    assert table.iloc[2] == pytest.approx(2.33) and table.iloc[3] == 3.8
    qdi = headline_table({"speedup": 43.3, "cases": [{"depth": 1, "n_weights": 24, "speedup": 43.3, "ours_s": 0.03}]},
                         "qdi-layer.json")["value"]
    assert qdi["depth 1 (24 weights): ours (s)"] == 0.03 and qdi["depth 1: speed-up (×)"] == 43.3
    for stem, known in OTHER_BENCHMARKS.items():  # every described benchmark names its script and says what it does
        assert (Path(__file__).resolve().parents[1] / "benchmarks" / known["script"]).exists(), stem
        assert known["title"] and known["what"] == describe({"file": f"{stem}.json", "kind": "other"})["what"]


def test_committed_benchmark_results_are_described() -> None:
    """Every committed "other" benchmark file has a title, a line on what it measures and a label for each of its
    headline numbers; the accuracy record shows theirs beside ours."""
    import re

    from qallegro.pipeline import benchmarks

    results = benchmarks.load_results(Path(__file__).resolve().parents[1] / "benchmarks" / "results")
    for r in (r for r in results if r["kind"] == "other"):
        assert "Not described" not in benchmarks.describe(r)["what"], r["file"]
        labels = benchmarks.OTHER_BENCHMARKS[Path(r["file"]).stem]["rows"].values()
        known = [re.sub(r"\\\{\w+\\\}", ".+", re.escape(spec[0] if isinstance(spec, tuple) else spec))
                 for spec in labels]  # a label's "{field}" matches any text
        shown = benchmarks.headline_table(r["data"], r["file"]).index
        assert len(shown) and all(any(re.fullmatch(k, q) for k in known) for q in shown), (r["file"], list(shown))
    for r in (r for r in results if r["kind"] == "accuracy"):
        acc = benchmarks.accuracy_table(r["data"])
        theirs = [c for c in acc.columns if c.startswith("theirs: ")]
        assert theirs and all(acc.loc["test force MAE (meV/Å)", c] > 0 for c in theirs), r["file"]
