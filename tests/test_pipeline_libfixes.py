"""Small fixes the book needed in other topics' code: the Cu-Li scale reaches training and timing, HPO plots
leave the matplotlib backend alone and label log axes readably."""

from __future__ import annotations

import matplotlib
import pandas as pd
import pytest
from qallegro.hpo import objective


@pytest.mark.parametrize("scale", ["smoke", "quick", "paper"])
def test_culi_training_reads_the_dataset_of_its_scale(scale: str) -> None:
    from qallegro.training import resolve_config

    assert resolve_config("culi", scale=scale)["dataset_options"] == {"scale": scale}
    assert "scale" not in resolve_config("rmd17-benzene", scale=scale)["dataset_options"]


def test_timing_structures_come_from_the_training_runs_dataset(monkeypatch: pytest.MonkeyPatch) -> None:
    import qallegro.data

    calls = []

    def fake_load(name, split="train", **options):
        calls.append((name, split, options))
        return [f"{name}-{options.get('scale')}-{i}" for i in range(options.get("max_frames", 5))]

    monkeypatch.setattr(qallegro.data, "load_dataset", fake_load)
    monkeypatch.setattr(objective, "_TEST_CACHE", {})
    smoke = objective.test_structures("culi", 3, {"scale": "smoke"})
    assert smoke == ["culi-smoke-0", "culi-smoke-1", "culi-smoke-2"]
    assert calls == [("culi", "test", {"scale": "smoke", "max_frames": 3})]
    assert objective.test_structures("culi", 3, {"scale": "smoke"}) is smoke  # cached
    assert objective.test_structures("culi", 3, {"scale": "quick"})[0] == "culi-quick-0"  # not the smoke cache
    assert objective.test_structures("culi", None)[0] == "culi-None-0"
    assert len(calls) == 3


def _trials() -> pd.DataFrame:
    return pd.DataFrame({"state": ["COMPLETE"] * 4, "val_f_mae": [0.05, 0.06, 0.07, 0.09],
                         "inference_total_s": [0.5, 0.4, 0.3, 0.35], "pareto": [True, True, True, False]})


def test_plots_leave_the_backend_alone_and_label_log_axes() -> None:
    import matplotlib.pyplot as plt
    from matplotlib import ticker
    from qallegro.hpo.plots import plot_pareto

    before = matplotlib.get_backend()
    matplotlib.use("svg")  # a backend a notebook or a user may have chosen
    try:
        fig = plot_pareto(_trials(), "rmd17-aspirin", "allegro", paper=False)
        assert matplotlib.get_backend() == "svg"
        ax = fig.axes[0]
        fig.canvas.draw()
        for axis in (ax.xaxis, ax.yaxis):
            assert isinstance(axis.get_minor_formatter(), ticker.NullFormatter)
            assert not [t.get_text() for t in axis.get_minorticklabels() if t.get_text()]
        # a span below one decade (errors in meV/Å): plain numbers at every multiple (50, 60, ...), not only 100
        shown = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert "50" in shown and "70" in shown and all("10^" not in s and "$" not in s for s in shown)
        assert "meV/Å" in ax.get_xlabel()
        plt.close(fig)
        # into a given axes (several studies per panel), with the paper's points spanning decades
        fig, ax = plt.subplots()
        assert plot_pareto(_trials(), "rmd17-aspirin", "mlp", ax=ax) is fig
        fig.canvas.draw()
        ys = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
        assert "1" in ys and "10" in ys  # decades only over the paper's 20-60 s and our 0.3-0.5 s
        plt.close(fig)
        # QM9: the paper's unitless errors on an axis of their own (top), ours in meV/atom below, one legend
        qm9 = pd.DataFrame({"state": ["COMPLETE"] * 3, "val_e_mae": [0.02, 0.03, 0.05],
                            "inference_total_s": [0.5, 0.4, 0.3], "pareto": [True, True, True]})
        fig = plot_pareto(qm9, "qm9", "allegro")
        ours, top = fig.axes
        assert "meV/atom" in ours.get_xlabel() and "no unit" in top.get_xlabel()
        assert not ours.get_lines() or all(min(line.get_xdata()) == 20.0 for line in ours.get_lines())  # 0.02 eV
        assert top.get_lines() and min(min(line.get_xdata()) for line in top.get_lines()) > 0.5  # the paper's
        assert any("paper Fig. 2" in t.get_text() for t in ours.get_legend().get_texts())
        plt.close(fig)
    finally:
        matplotlib.use(before)
