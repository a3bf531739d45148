"""The book's helpers: paper-vs-ours tables, the provenance line, figures as images, run records."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from qallegro import paper
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
    assert list(table.columns.get_level_values(0).unique())[0] == "r_max"
    with pytest.raises(ValueError, match="no chosen qdi"):
        compare.hyperparameter_table(chosen, "qdi")


def test_relative_improvement_recovers_the_papers_13_percent() -> None:
    t4 = paper.values()["table4_val_force_mae_meV_per_A"]["culi"]
    claim = paper.values()["claim_13_percent"]
    assert compare.relative_improvement(t4["qdi"], t4["mlp"]) == pytest.approx(claim["value"], abs=5e-4)
    with pytest.raises(ValueError):
        compare.relative_improvement(1.0, 0.0)


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
