"""The book's pages at a campaign scale: the studies' source, the final units read over seeds (means, 95%
intervals, learning curves), re-timed fronts, the MD and datasets helpers. Synthetic records in tmp_path; nothing
is trained."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from qallegro.errors import CampaignError, PipelineError
from qallegro.report import finals as rf
from qallegro.stats import mean_interval

T_975_2 = 4.302652729911275  # Student's t, 97.5% quantile, 2 degrees of freedom (tables)


def _run(dataset: str, variant: str, seed: int, f: float, e: float, folder: Path, transfer: bool = False,
         epochs: list[float] | None = None) -> rf.FinalRun:
    folder.mkdir(parents=True, exist_ok=True)
    curve = epochs or [3 * f, 2 * f, f]
    pd.DataFrame({"epoch": range(1, len(curve) + 1), "val_f_mae": curve,
                  "val_e_mae": [c / 10 for c in curve]}).to_csv(folder / "epochs.csv", index=False)
    chosen = ({"qdi_study": "culi-qdi-tpe-s0", "qdi_trial": 4, "qdi_params": {"qdi_depth": 3},
               "allegro_study": f"{dataset}-allegro-tpe-s0", "allegro_trial": 7, "allegro_params": {"r_max": 5.0}}
              if transfer else {"study": f"{dataset}-{variant}-tpe-s0", "trial": 2, "params": {"r_max": 5.0}})
    return rf.FinalRun(dataset=dataset, variant=variant, seed=seed, transfer=transfer,
                       val={"f_mae": f, "e_mae": e, "n_structures": 50},
                       test={"f_mae": f * 1.1, "e_mae": e * 1.1, "etot_mae": e * 12, "n_structures": 1000},
                       epochs=len(curve), wall_s=100.0 + seed, run_dir=str(folder), chosen=chosen)


def test_mean_interval_matches_the_t_formula() -> None:
    vals = [10.0, 12.0, 17.0]
    mi = mean_interval(vals)
    sd = math.sqrt(sum((v - 13.0) ** 2 for v in vals) / 2)
    assert mi.n == 3 and mi.mean == pytest.approx(13.0)
    assert mi.low == pytest.approx(13.0 - T_975_2 * sd / math.sqrt(3))
    assert mi.high == pytest.approx(13.0 + T_975_2 * sd / math.sqrt(3))
    one = mean_interval([4.0])
    assert (one.n, one.mean, one.low, one.high) == (1, 4.0, None, None)
    with pytest.raises(CampaignError, match="non-finite"):
        mean_interval([1.0, float("nan")])


def test_error_table_means_intervals_and_paper(tmp_path: Path) -> None:
    from qallegro.paper import values

    f = [0.040, 0.044, 0.051]
    finals = {("culi", "qdi"): [_run("culi", "qdi", s, v, 0.5, tmp_path / f"q{s}") for s, v in enumerate(f)],
              ("culi", "mlp"): [_run("culi", "mlp", 0, 0.050, 0.6, tmp_path / "m0")]}
    table = rf.error_table(finals, "Table 4")
    row = table.loc[("Cu-Li", "Allegro+QDI")]
    sd = float(np.std(np.array(f) * 1e3, ddof=1))
    assert row["ours: mean"] == pytest.approx(1e3 * sum(f) / 3)
    assert row["ours: 95% CI high"] - row["ours: mean"] == pytest.approx(T_975_2 * sd / math.sqrt(3))
    assert row["seeds"] == 3 and row["paper"] == values()["table4_val_force_mae_meV_per_A"]["culi"]["qdi"]
    mlp = table.loc[("Cu-Li", "Allegro+MLP")]
    assert mlp["ours: mean"] == pytest.approx(50.0) and mlp["seeds"] == 1 and pd.isna(mlp["ours: 95% CI low"])
    assert pd.isna(table.loc[("Cu-Li", "Allegro"), "ours: mean"]) and table.loc[("Cu-Li", "Allegro"), "seeds"] == 0
    # the paper's Allegro [12] retraining appears as its own row where the paper has it
    assert ("rMD17-aspirin", "Allegro [12] (the paper's column, as printed)") in table.index
    shown = rf.error_units("Table 5")
    assert shown["paper"] == "meV/atom as printed" and shown["ours: mean"] == "meV/atom"


def test_mean_records_feed_the_one_value_tables(tmp_path: Path) -> None:
    from qallegro.pipeline.compare import derived_comparisons, table6_molecule

    finals = {("culi", "qdi"): [_run("culi", "qdi", s, v, 0.5, tmp_path / f"q{s}") for s, v in
                                enumerate([0.040, 0.050])],
              ("culi", "mlp"): [_run("culi", "mlp", s, v, 0.6, tmp_path / f"m{s}") for s, v in
                                enumerate([0.050, 0.050])],
              ("rmd17-benzene", "qdi"): [_run("rmd17-benzene", "qdi", s, 0.01, 0.001, tmp_path / f"b{s}",
                                              transfer=True) for s in (0, 1)]}
    means = rf.mean_records(finals)
    assert means["culi", "qdi"]["val_f_mae"] == pytest.approx(0.045) and means["culi", "qdi"]["n"] == 2
    assert "n_structures" not in means["culi", "qdi"]["test"]
    derived = derived_comparisons(means)
    assert derived.iloc[0]["ours (%)"] == pytest.approx(100 * (0.045 - 0.050) / 0.050)  # QDI's error lower
    t6 = table6_molecule(means, "benzene", "test")
    row = t6.loc["Allegro+QDI (ours, test, mean of 2 seeds)"]
    assert row["force MAE"] == pytest.approx(11.0) and row["energy MAE per molecule"] == pytest.approx(12.0)
    wide = rf.interval_table(finals, "rmd17-benzene")
    assert wide.loc["Allegro+QDI (transferred) (ours, test)", "seeds"] == 2
    assert rf.interval_text({"mean": 12.34, "low": 10.1, "high": 14.56, "n": 3}) == "12.3 [10.1, 14.6]"
    assert rf.interval_text({"mean": 12.34, "low": None, "high": None, "n": 1}) == "12.3"
    assert set(rf.INTERVAL_UNITS) >= {c for c in wide.columns if c != "seeds"}


def test_curves_band_over_seeds(tmp_path: Path) -> None:
    runs = [_run("culi", "mlp", 0, 0.05, 0.5, tmp_path / "a", epochs=[0.3, 0.2, 0.1]),
            _run("culi", "mlp", 1, 0.05, 0.5, tmp_path / "b", epochs=[0.5, 0.1])]
    curve = rf.mean_curve(rf.read_curves(runs), "val_f_mae")
    assert curve["epoch"].tolist() == [1, 2, 3] and curve["n"].tolist() == [2, 2, 1]
    assert curve["mean"].tolist() == pytest.approx([400.0, 150.0, 100.0])
    assert curve["low"].tolist() == pytest.approx([300.0, 100.0, 100.0])
    assert curve["high"].tolist() == pytest.approx([500.0, 200.0, 100.0])
    curves = rf.final_curves({("culi", "mlp"): runs}, "culi", "val_f_mae")
    assert list(curves) == ["Allegro+MLP"]
    (tmp_path / "b" / "epochs.csv").unlink()
    with pytest.raises(CampaignError, match=r"epochs\.csv"):
        rf.read_curves(runs)


def test_curves_figure_labels_enough_log_ticks(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from qallegro.hpo.plots import log_axis
    from qallegro.report.figures import curves_figure

    fig, ax = plt.subplots()
    ax.plot([1, 2, 3], [30.0, 45.0, 60.0])
    assert log_axis(ax, "y") >= 4
    labels = [t for t in ax.yaxis.get_majorticklocs() if 30 <= t <= 60]
    assert len(labels) >= 4 and all(float(t).is_integer() for t in labels)
    plt.close(fig)
    fig, ax = plt.subplots()  # a narrow range (an aspirin force curve): 900, 1000, ..., 1400
    ax.plot([1, 2, 3], [1450.0, 1000.0, 860.0])
    assert log_axis(ax, "y") >= 4
    low, high = ax.get_ylim()
    inside = [t for t in ax.yaxis.get_majorticklocs() if low <= t <= high]
    assert 4 <= len(inside) <= 12 and 1000 in inside
    plt.close(fig)
    runs = [_run("culi", "mlp", s, 0.05, 0.5, tmp_path / str(s), epochs=[0.06 + 0.01 * s, 0.05, 0.04])
            for s in (0, 1)]
    fig = curves_figure(rf.final_curves({("culi", "mlp"): runs}, "culi", "val_f_mae"), "(e) Cu-Li", "meV/Å")
    ax = fig.axes[0]
    assert ax.get_legend().get_texts()[0].get_text() == "Allegro+MLP (median of 2 seeds)"
    assert len(ax.collections) == 1  # the band over seeds
    plt.close(fig)
    # a diverged seed: the line is the median, and the axis stays on the medians' range (the band runs off it)
    runs.append(_run("culi", "mlp", 2, 0.05, 0.5, tmp_path / "2", epochs=[0.06, 0.05, 1.3e5]))
    curves = rf.final_curves({("culi", "mlp"): runs}, "culi", "val_f_mae")
    fig = curves_figure(curves, "(e) Cu-Li", "meV/Å")
    line = fig.axes[0].lines[0].get_ydata()
    assert list(line) == pytest.approx([60.0, 50.0, 40.0])  # meV/Å, the median of three
    assert fig.axes[0].get_ylim()[1] == pytest.approx(3 * 60.0)
    assert curves["Allegro+MLP"][0]["high"].max() == pytest.approx(1.3e8)
    plt.close(fig)


def test_transfer_tables(tmp_path: Path) -> None:
    finals = {("qm9", "qdi"): [_run("qm9", "qdi", 0, 0.0, 0.01, tmp_path / "t", transfer=True)],
              ("qm9", "allegro"): [_run("qm9", "allegro", 0, 0.0, 0.01, tmp_path / "a")]}
    table = rf.transfer_table(finals)
    assert table.loc["QM9", "qdi_depth"] == 3 and table.loc["QM9", "QDI parameters from"] == "culi-qdi-tpe-s0 trial 4"
    assert rf.transferred_params(finals) == {("qm9", "qdi"): {"r_max": 5.0, "qdi_depth": 3}}
    assert rf.model_labels(finals)[("qm9", "qdi")] == "Allegro+QDI (transferred)"


def _write_final(root: Path, unit: str, dataset: str, variant: str, seed: int, f: float, **extra: object) -> None:
    folder = root / unit
    (folder / "run").mkdir(parents=True, exist_ok=True)
    record = {"dataset": dataset, "variant": variant, "seed": seed, "rule": "lowest_error", "transfer": False,
              "chosen": {"study": "s", "trial": 1, "params": {}}, "protocol": {"version": 1},
              "val": {"f_mae": f, "e_mae": 0.001}, "test": {"f_mae": f, "e_mae": 0.001}, "epochs": 3,
              "best_epoch": 3, "wall_s": 10.0, "stop_reason": "max_epochs", "truncated": False,
              "n_parameters": 10, "config_hash": "x", "git_commit": "y", "unit": unit, "kind": "final",
              "unit_wall_s": 11.0, **extra}
    (folder / "record.json").write_text(json.dumps(record))


def test_campaign_finals_read_every_seed(results_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qallegro.campaign.studies import final_units
    from qallegro.pipeline import experiments

    root = results_dir / "smoke" / "campaign"
    units = final_units("smoke")
    with pytest.raises(PipelineError, match=f"{len(units)} of {len(units)} final unit"):
        experiments.campaign_finals("smoke")
    for k, u in enumerate(reversed(units)):
        _write_final(root, u.id, u.spec["dataset"], u.spec["variant"], u.spec["seed"], 0.01 * (k + 1))
    finals = experiments.campaign_finals("smoke")
    assert set(finals) == {(u.spec["dataset"], u.spec["variant"]) for u in units}
    for runs in finals.values():
        assert [r.seed for r in runs] == sorted({u.spec["seed"] for u in units})
        assert all(Path(r.run_dir).parent.parent.parent == root / "final" for r in runs)
    monkeypatch.setattr(experiments, "from_campaign", lambda scale: True)
    assert experiments.book_finals("smoke", "random", 0, train=True) == finals  # read, never trained
    u = units[0]
    (root / u.id / "record.json").unlink()
    _write_final(root, u.id, u.spec["dataset"], u.spec["variant"], u.spec["seed"], 0.02, truncated=True,
                 stop_reason="max_wall_s")
    with pytest.raises(CampaignError, match="truncated run"):
        experiments.campaign_finals("smoke")


def test_md_runs_say_why_a_model_did_not_run(tmp_path: Path) -> None:
    from qallegro.pipeline import experiments
    from qallegro.report.md import md_facts, md_table

    finals = {("rmd17-benzene", "mlp"): [_run("rmd17-benzene", "mlp", 5, 0.01, 0.001, tmp_path / "m")],
              ("rmd17-benzene", "allegro"): [_run("rmd17-benzene", "allegro", s, 0.01, 0.001, tmp_path / f"a{s}")
                                             for s in (1, 2)],
              ("qm9", "allegro"): [_run("qm9", "allegro", 0, 0.0, 0.001, tmp_path / "q")]}
    runs, skipped = experiments.md_runs(finals, {"steps": 2, "dt_fs": 0.5, "temperature_K": 300.0}, seed=0)
    assert runs == {} and ("qm9", "allegro") not in skipped  # energy-only data: no MD
    # one model: run whatever its seed; several: the one of the stated seed
    assert skipped[("rmd17-benzene", "mlp")] == "no config.yaml in m/"
    assert skipped[("rmd17-benzene", "allegro")].startswith("no model of seed 0")
    fake = {"etot": np.array([1.0, 1.002, 0.999]), "n_atoms": 12, "max_abs_drift_per_atom_eV": 0.002 / 12,
            "drift_slope_eV_per_ps": 0.0012, "etot_std_eV": 0.001, "ekin_std_eV": 0.01, "temperature_K": 290.0,
            "time_fs": np.array([0.0, 0.5, 1.0]), "model_seed": 5}
    labels = rf.model_labels(finals)
    table = md_table({("rmd17-benzene", "mlp"): fake}, {("rmd17-benzene", "allegro"): "no model"}, labels)
    assert table.loc[("rMD17-benzene", "Allegro+MLP"), "max |drift|"] == pytest.approx(1e3 * 0.002 / 12)
    assert table.loc[("rMD17-benzene", "Allegro+MLP"), "std E_tot / std E_kin"] == pytest.approx(0.1)
    assert table.loc[("rMD17-benzene", "Allegro+MLP"), "model seed"] == "5"
    assert table.loc[("rMD17-benzene", "Allegro"), "status"] == "no model"
    assert table.loc[("rMD17-benzene", "Allegro+MLP"), "model"] == "its training run"
    facts = md_facts(table)
    assert facts == {"n_ran": "1", "n_skipped": "1", "all_finite": "every run stayed finite", "retrained": "",
                     "worst_drift": f"{1e3 * 0.002 / 12:.2g} meV/atom", "ratio_max": "0.1"}
    nan = {**fake, "etot": np.array([1.0, np.nan, np.nan])}
    assert md_facts(md_table({("rmd17-benzene", "mlp"): nan}, {}, labels))["all_finite"] == "1 of 1 runs diverged"


def test_md_runs_retrain_a_model_whose_checkpoint_is_absent(tmp_path: Path) -> None:
    """Models are not committed: the page retrains one from its committed config beside its run, reproducing
    the recorded test error bit for bit (CPU), and says so."""
    from qallegro.pipeline import experiments
    from qallegro.report.md import md_facts, md_table
    from qallegro.training import resolve_config, train

    cfg = resolve_config("rmd17-benzene", scale="smoke", overrides={"n_test": 5, "max_epochs": 2, "threads": 1})
    res = train(cfg, run_dir=tmp_path / "run", progress=False)
    (tmp_path / "run" / "checkpoint.pt").unlink()
    (tmp_path / "run" / "model.pt").unlink(missing_ok=True)
    final = rf.FinalRun(dataset="rmd17-benzene", variant="mlp", seed=0, transfer=False, val=res["val"],
                        test=res["test"], epochs=2, wall_s=1.0, run_dir=str(tmp_path / "run"),
                        chosen={"study": "s", "trial": 0, "params": {}})
    finals = {("rmd17-benzene", "mlp"): [final]}
    runs, skipped = experiments.md_runs(finals, {"steps": 3, "dt_fs": 0.5, "temperature_K": 300.0}, seed=0)
    assert skipped == {} and (tmp_path / "run-retrained" / "checkpoint.pt").is_file()
    run = runs["rmd17-benzene", "mlp"]
    assert run["retrained"] == {"recorded": res["test"]["f_mae"], "here": res["test"]["f_mae"]}
    assert len(run["etot"]) == 4 and np.isfinite(run["etot"]).all()
    table = md_table(runs, skipped, rf.model_labels(finals))
    shown = f"{1e3 * res['test']['f_mae']:.1f}"
    assert table.iloc[0]["model"] == f"retrained here (test F MAE {shown}; recorded {shown} meV/Å)"
    assert "1 of them retrained here" in md_facts(table)["retrained"]


def _trials() -> pd.DataFrame:
    return pd.DataFrame({"number": [0, 1, 2, 3], "state": ["COMPLETE"] * 3 + ["FAIL"],
                         "val_f_mae": [0.05, 0.04, 0.06, np.nan], "total_inference_s": [1.0, 2.0, 0.5, np.nan],
                         "r_max": [5.0, 5.5, 6.0, 5.0], "pareto": [True, True, True, False]})


def test_apply_retime_recomputes_the_front() -> None:
    from qallegro.hpo.objective import objective_names
    from qallegro.report.studies import TIME_SOURCE, apply_retime, during_study

    tim = objective_names("culi")[1]
    trials = _trials().rename(columns={"total_inference_s": tim})
    # re-timed, trial 2 becomes slower than trial 0 while less accurate: it leaves the front
    out = apply_retime(trials, {"front": {"0": {"total_s": 0.9}, "1": {"total_s": 1.8}, "2": {"total_s": 1.2}}},
                       "culi")
    assert out[tim].tolist()[:3] == [0.9, 1.8, 1.2] and out[f"{tim}_during_study"].tolist()[:3] == [1.0, 2.0, 0.5]
    assert out["pareto"].tolist() == [True, True, False, False]
    assert out[TIME_SOURCE].tolist() == ["re-timed"] * 3 + ["during the study"]
    assert during_study(out, "culi")[tim].tolist()[:3] == [1.0, 2.0, 0.5]
    same = apply_retime(trials, {"front": {}}, "culi")
    assert same["pareto"].tolist() == trials["pareto"].tolist()


def test_study_facts_and_trials_table() -> None:
    from qallegro import paper
    from qallegro.hpo.objective import objective_names
    from qallegro.report.studies import apply_retime, complete_counts, ranking, study_facts, trials_table

    tim = objective_names("culi")[1]
    trials = apply_retime(_trials().rename(columns={"total_inference_s": tim}),
                          {"front": {"1": {"total_s": 1.5}}}, "culi")
    facts = study_facts(trials, "culi", "qdi", "tpe", 40, {"max_epochs": 5}, 20, paper.fig2_points())
    assert facts["n_complete"] == 3 and facts["n_front"] == 1 and facts["best_error"] == "40.0 meV/Å"
    assert facts["best_time"] == "1.5 s" and facts["budget"] == "5 epochs" and facts["n_target"] == 40
    assert facts["time_source"].startswith("re-timed") and facts["sampler_name"] == "tpe"
    from qallegro.report.studies import budget_words

    assert budget_words({"n_train": 1000, "n_val": 50, "max_epochs": 12, "early_stopping_patience": 10 ** 6,
                         "max_wall_s": 3600.0}) == ("12 epochs on 1,000 training structures, validated on 50, without "
                                                    "early stopping; a run still training after 60 min is cut and "
                                                    "recorded as truncated")
    assert budget_words({"max_epochs": 1, "early_stopping_patience": 0}) == "1 epoch"
    pts = paper.fig2_points()
    best = pts[(pts["dataset"] == "culi") & (pts["variant"] == "qdi")]["val_mae"].min()
    assert facts["paper_best"] == f"{best * 1e3:.1f} meV/Å"
    assert facts["front_words"] == "1 of them is on the front of the re-timed members"
    assert facts["timing"] == "the first 20 structures of the test split"
    assert study_facts(trials, "culi", "qdi", "tpe", 40, {}, 200, paper.fig2_points(),
                       n_test=150)["timing"] == "all 150 structures of the test split"
    table, units = trials_table(trials, ["r_max"], "culi")
    assert table.loc[1, "validation force MAE"] == pytest.approx(40.0) and units["re-timed"] == "s"
    assert table.loc[3, "validation force MAE"] is None and table.loc[1, "on the re-timed front"]
    # every trial shows the time measured during the study; only the re-timed member its re-timed time
    assert table["inference time during the study"].tolist()[:3] == [1.0, 2.0, 0.5]
    assert table.loc[1, "re-timed"] == 1.5 and table.loc[0, "re-timed"] is None
    plain, _ = trials_table(_trials().rename(columns={"total_inference_s": tim}), ["r_max"], "culi")
    assert "inference time" in plain.columns and "on the front" in plain.columns and "re-timed" not in plain
    assert complete_counts({"a": trials, "b": trials.iloc[:2]}) == "2 to 3"
    assert complete_counts({"a": trials}) == "3"
    best_pts = pd.DataFrame({"dataset": ["Cu-Li"] * 3, "variant": ["Allegro", "Allegro+MLP", "Allegro+QDI"],
                             "ours": [45.2, 41.0, None]})
    assert ranking(best_pts, "Cu-Li", "ours", "meV/Å") == "Allegro+MLP 41 meV/Å, Allegro 45 meV/Å"


def test_study_source_and_page_parameters() -> None:
    from qallegro.pipeline.notebooks import MOO_SAMPLER, NOTEBOOKS, from_campaign, study_source
    from qallegro.scales import settings

    assert study_source("paper") == {"sampler": MOO_SAMPLER, "seed": 0} and not from_campaign("paper")
    by_name = {nb.name: nb for nb in NOTEBOOKS}
    for scale in ("smoke", "quick", "overnight"):  # the book's scales read the campaign's studies
        s = settings("campaign", scale)
        assert from_campaign(scale)
        assert study_source(scale) == {"sampler": s["studies"]["sampler"], "seed": int(s["studies"]["seed"])}
        for name in ("moo-culi-qdi", "moo_summary", "final_training", "table6", "md_stability"):
            assert by_name[name].params(scale)["sampler"] == s["studies"]["sampler"]
            assert by_name[name].params("paper")["sampler"] == MOO_SAMPLER


def test_a_missing_study_of_another_sampler_names_the_command_that_makes_it(results_dir: Path) -> None:
    """The README's papermill example: a study page with another sampler and seed than the campaign's says how to
    make that study (and that the campaign's use other values)."""
    from qallegro.pipeline.experiments import open_study

    with pytest.raises(PipelineError) as err:
        open_study("rmd17-benzene", "mlp", "smoke", "nsga2", 1)
    msg = str(err.value)
    assert "no study 'rmd17-benzene-mlp-nsga2-s1' at scale smoke" in msg and "\n" not in msg
    assert msg.endswith("qallegro hpo run --dataset rmd17-benzene --variant mlp --sampler nsga2 --seed 1 "
                        "--scale smoke")


def test_verdict_of_reads_the_claims_file(results_dir: Path) -> None:
    from qallegro.report.claims import NOT_TESTED, verdict_of, verdicts_path

    assert verdict_of("qdi-13", "smoke")["verdict"] == NOT_TESTED
    path = verdicts_path("smoke")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"scale": "smoke", "verdicts": [{"claim": "qdi-13", "verdict": "contradicted",
                                                                 "evidence": "x", "page": "ablation"}]}))
    assert verdict_of("qdi-13", "smoke") == {"verdict": "contradicted", "evidence": "x", "page": "ablation"}
    with pytest.raises(ValueError, match="unknown claim"):
        verdict_of("nope", "smoke")


def test_dataset_loader_options_from_the_registry() -> None:
    from qallegro.report.datasets import book_datasets, loader_options

    assert book_datasets() == ["rmd17-aspirin", "rmd17-benzene", "qm9", "culi"]
    assert loader_options("culi", "quick", 3) == {"scale": "quick"}
    assert loader_options("rmd17-benzene", "quick", 3) == {"seed": 3}
    assert loader_options("qm9", "smoke", 1) == {"seed": 1}


def test_dataset_sizes_are_those_the_runs_of_the_scale_take() -> None:
    """Where the campaign computes the book the sizes are its head ablation's (or its cut) and its trials'; the
    sizes a unit's own training config resolves to agree."""
    from qallegro.campaign.ablation import run_config
    from qallegro.campaign.plan import training_sizes
    from qallegro.campaign.units import Unit

    sizes = training_sizes("culi", "overnight")
    spec = {"scale": "overnight", "dataset": "culi", "variant": "allegro", "seed": 0, "learning_rate": 0.02,
            "batch_size": 2}
    cfg = run_config(Unit("sweep/culi/x", "sweep", spec), Path("/nonexistent"))
    # at most what the split holds: the committed provenance of the overnight Cu-Li set has 150 test frames
    from qallegro.paths import REPO_ROOT

    prov = json.loads((REPO_ROOT / "results" / "overnight" / "culi" / "provenance.json").read_text())["split"]
    assert sizes["head ablation at overnight (train / val / test)"] == " / ".join(
        f"{min(cfg[k], prov[k]):,}" for k in ("n_train", "n_val", "n_test"))
    assert cfg["n_test"] > prov["n_test"] and sizes["head ablation at overnight (train / val / test)"].endswith(
        f" / {prov['n_test']}")
    head = "head ablation at overnight (train / val / test)"
    assert training_sizes("qm9", "overnight")[head] == "1,000 / 200 / 1,000"
    from qallegro.campaign import ablation

    real = ablation.settings("overnight")
    with pytest.MonkeyPatch.context() as m:
        m.setattr(ablation, "settings", lambda scale: {**real, "cut": {"ablation:qm9": "for time"},
                                                       "order": [p for p in real["order"] if p != "ablation:qm9"]})
        assert training_sizes("qm9", "overnight")[head] == "cut"
    assert list(training_sizes("rmd17-benzene", "paper")) == ["used for training at paper (train / val / test)"]


def test_book_finals_outside_the_campaign_read_the_final_summaries(results_dir: Path) -> None:
    from qallegro.pipeline import experiments

    for k, (ds, var) in enumerate(experiments.final_models()):
        path = experiments.summary_path(ds, var, "paper", "samo-cobra", 0)
        transfer = (ds, var) not in experiments.MOO_RUNS
        rec = {"dataset": ds, "variant": var, "scale": "paper", "choice": "lowest_error", "config": {},
               "run_dir": "/elsewhere", "epochs_csv": "/elsewhere/epochs.csv", "val_f_mae": 0.01 * (k + 1),
               "val_e_mae": 0.001, "val": {"f_mae": 0.01 * (k + 1), "e_mae": 0.001}, "test": None, "epochs": 3,
               "wall_s": 5.0, "inference_total_s": 1.0, "inference_n_structures": 10, "objectives": ["a", "b"],
               **({"transfer": {"qdi_study": "q", "qdi_trial": 1, "qdi_params": {"qdi_depth": 2},
                                "allegro_study": "a", "allegro_trial": 2, "allegro_params": {"r_max": 4.0}}}
                  if transfer else {"study": path.parent.name, "trial": 3, "params": {"r_max": 5.0}})}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(rec))
        folder = experiments.run_dir(rec, "paper")
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "config.yaml").write_text("seed: 123456\n")
    finals = experiments.book_finals("paper", "samo-cobra", 0)
    assert len(finals) == 12 and all(len(runs) == 1 for runs in finals.values())
    assert list(finals)[:3] == [("rmd17-aspirin", "allegro"), ("rmd17-aspirin", "mlp"), ("rmd17-aspirin", "qdi")]
    run = finals["culi", "qdi"][0]
    assert run.seed == 123456 and not run.transfer and run.chosen["trial"] == 3
    assert run.val["f_mae"] == pytest.approx(0.01 * (experiments.final_models().index(("culi", "qdi")) + 1))
    assert finals["qm9", "qdi"][0].transfer
    assert experiments.transferred_params("paper", "samo-cobra", 0)[("qm9", "qdi")] == {"r_max": 4.0, "qdi_depth": 2}


def test_budget_facts_from_a_preset_section(tmp_path: Path) -> None:
    from qallegro.scales import settings

    finals = {("culi", "mlp"): [_run("culi", "mlp", s, 0.05, 0.5, tmp_path / str(s)) for s in (0, 1, 2)],
              ("qm9", "mlp"): [_run("qm9", "mlp", 0, 0.0, 0.5, tmp_path / "q", epochs=[0.3, 0.2])]}
    facts = rf.budget_facts({"n_trials": 4, "final_overrides_by_dataset": {"qm9": {"max_epochs": 2},
                                                                           "rmd17-aspirin": {"n_test": 500}}},
                            finals, {"qm9": 300})  # aspirin has no final run here: its budget is not stated
    assert facts == {"budget": "the training preset's full budget", "budget_by_dataset": "QM9: 2 epochs",
                     "epochs_range": "2 to 3", "seeds_per_model": "1 to 3", "paper_epochs": "QM9 300",
                     "diverged": ""}
    # a run that blows up after its best epoch is named, with its best and last validation errors
    finals["culi", "mlp"][1] = _run("culi", "mlp", 1, 0.05, 0.5, tmp_path / "d", epochs=[0.3, 0.02, 1.3e5])
    text = rf.budget_facts({"n_trials": 4}, finals, {})["diverged"]
    assert text.startswith("1 run diverged and did not recover: Allegro+MLP on Cu-Li, seed 1 (validation force "
                           "MAE 20 meV/Å at epoch 2, $1.3 \\times 10^{8}$ at epoch 3)")
    assert text in rf.final_texts("overnight", {}, rf.budget_facts({"n_trials": 4}, finals, {}),
                                  pd.DataFrame({"paper (%)": [12.7], "ours (%)": [3.0]}), "inconclusive")["budget"]
    for scale in ("smoke", "quick", "overnight"):  # every scale's preset section is read (defaults filled in)
        assert rf.budget_facts(settings("hpo", scale), finals, {})["seeds_per_model"] == "1 to 3"


def _campaign_finals_on_disk(scale: str, rng: np.random.Generator) -> None:
    """A record (and learning curve) for every final unit of `scale`, as `run_final_unit` writes them."""
    from qallegro.campaign.plan import campaign_root
    from qallegro.campaign.studies import final_units

    root = campaign_root(scale)
    for u in final_units(scale):
        sp = u.spec
        f = None if sp["dataset"] == "qm9" else float(rng.uniform(0.02, 0.04))
        e = float(rng.uniform(0.001, 0.003))
        (root / u.id / "run").mkdir(parents=True)
        pd.DataFrame({"epoch": range(1, 11), "val_e_mae": e * np.linspace(10, 1, 10),
                      "val_f_mae": (f or 0.03) * np.linspace(8, 1, 10)}).to_csv(root / u.id / "run" / "epochs.csv",
                                                                                  index=False)
        transfer = "qdi_study" in sp
        chosen = ({"qdi_study": sp["qdi_study"], "qdi_trial": 3, "qdi_params": {"qdi_depth": 3},
                   "allegro_study": sp["study"], "allegro_trial": 5, "allegro_params": {"r_max": 5.5}}
                  if transfer else {"study": sp["study"], "trial": 5, "params": {"r_max": 5.5}})
        val = {"e_mae": e, "etot_mae": 12 * e, "n_structures": 50, **({"f_mae": f} if f else {})}
        _write_final(root, u.id, sp["dataset"], sp["variant"], sp["seed"], 0.0, transfer=transfer, chosen=chosen,
                     val=val, test={**val, "n_structures": 1000}, epochs=10)


def test_final_pages_render_the_campaign_records(results_dir: Path, tmp_path: Path) -> None:
    """final_training, table6 and beyond_md executed (papermill, real kernels) from synthetic campaign records
    alone: nothing is trained, the tables hold the records' means, MD says why no model ran (no checkpoint); at the
    quick scale every final runs, at the overnight scale all but Cu-Li's (`finals:culi` cut): each page shows our
    rMD17 rows and names the datasets it cuts."""
    import papermill as pm
    from qallegro.paths import REPO_ROOT
    from qallegro.pipeline import experiments
    from qallegro.report.tables import format_number
    from qallegro.stats import mean_interval

    for scale, seed in (("quick", 1), ("overnight", 2)):
        _campaign_finals_on_disk(scale, np.random.default_rng(seed))
    finals = experiments.campaign_finals("quick")
    qdi = [1e3 * r.val["f_mae"] for r in finals["culi", "qdi"]]
    overnight = experiments.campaign_finals("overnight")
    aspirin = [1e3 * r.val["f_mae"] for r in overnight["rmd17-aspirin", "mlp"]]
    book = REPO_ROOT / "book"
    out, partial = {}, {}
    for page in ("final_training", "table6", "beyond_md"):
        for scale, into in (("quick", out), ("overnight", partial)):
            into[page] = pm.execute_notebook(str(book / f"{page}.ipynb"), str(tmp_path / f"{scale}-{page}.ipynb"),
                                             parameters={"scale": scale, "sampler": "tpe", "seed": 0}, cwd=str(book),
                                             progress_bar=False, kernel_name="python3")

    def shown(nb) -> str:  # the text outputs (glued MyST, tables), not the figures' image data
        return "".join(str(v) for c in nb["cells"] for o in c.get("outputs", [])
                       for k, v in o.get("data", {}).items() if not k.startswith("image/"))

    def html(nb) -> str:  # the tables
        return "".join(o.get("data", {}).get("text/html", "") for c in nb["cells"] for o in c.get("outputs", []))

    mi = mean_interval(qdi)
    tables = html(out["final_training"])
    assert f">{format_number(mi.mean)}<" in tables and f">{format_number(mi.high)}<" in tables
    assert "NaN" not in tables
    assert html(out["beyond_md"]).count("no config.yaml") == sum(1 for ds, _ in finals if ds != "qm9")
    assert not any(p.name == "checkpoint.pt" for p in results_dir.rglob("*"))  # nothing was trained
    for page, nb in partial.items():  # overnight: the cut's notice (glued MyST) beside our rMD17 and QM9 rows
        text = shown(nb)
        assert "NaN" not in text, page
        # the notice, with the reason in the preset's words (540 worker-minutes), where the page has Cu-Li (Table
        # 6 has not: nothing of it is cut)
        assert ("Not run at the `overnight` scale" in text, "540 worker-minutes" in text) == (page != "table6",) * 2
    assert f">{format_number(mean_interval(aspirin).mean)}<" in html(partial["final_training"])
    assert "Allegro+MLP (ours, test" in html(partial["table6"])
    assert html(partial["beyond_md"]).count("no config.yaml") == sum(1 for ds, _ in overnight if ds != "qm9")


def test_pages_where_the_scale_cuts_the_final_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where a scale cuts every dataset's finals the final-model pages get no models and say why in the cut's own
    words; the paper's rows stay. Where it cuts some (here Cu-Li's and QM9's), the others' runs are
    read and quoted, and each page names the cut datasets it shows (Table 6 has no Cu-Li, MD no QM9) with their
    reasons."""
    from qallegro.campaign.plan import cuts
    from qallegro.pipeline import experiments
    from qallegro.pipeline.compare import derived_comparisons, table6_molecule
    from qallegro.report.md import md_facts, md_table, md_texts

    monkeypatch.setenv("QALLEGRO_RESULTS", str(tmp_path))  # no records at all
    preset = cuts("overnight")
    assert experiments.finals_cuts("overnight") == {"culi": preset["finals:culi"]} and "finals" not in preset
    cut = {"qm9": "cut by priority in a test", "culi": preset["finals:culi"]}
    assert experiments.finals_cuts("paper") == {}
    with pytest.raises(PipelineError, match="27 of 27 final unit"):  # the rMD17 and QM9 finals: none written
        experiments.book_finals("overnight", "tpe", 0)
    # every dataset cut: nothing is read, the cut's notice alone
    reason = "cut for the budget of a test"
    whole = dict.fromkeys(rf.PAPER_DATASETS, reason)
    with monkeypatch.context() as m:
        m.setattr(experiments, "finals_cuts", lambda scale: whole)
        assert experiments.book_finals("overnight", "tpe", 0) == {}
    facts = rf.budget_facts({"n_trials": 4}, {}, {"culi": 300})
    derived = derived_comparisons(rf.mean_records({}))
    texts = rf.final_texts("overnight", whole, facts, derived, "inconclusive")
    assert texts["budget"].startswith("**Not run at the `overnight` scale**") and reason in texts["budget"]
    assert texts["budget"].count(reason) == 1 and "At this scale each final model" not in texts["budget"]
    assert "no value of ours" in texts["claim"] and "**inconclusive**" in texts["claim"]
    assert f"{derived.iloc[0]['paper (%)']:+.1f}%" in texts["claim"]  # the paper's -12.7%, from its Table 4
    table4 = rf.error_table({}, "Table 4")
    assert table4["paper"].notna().any() and table4["ours: mean"].isna().all()
    assert reason in rf.table6_text("overnight", whole, {})["ours"]
    assert rf.table6_text("overnight", whole, {})["ours_val"] == ""  # no validation rows of ours to introduce
    lit = table6_molecule(rf.mean_records({}), "aspirin", "test")
    assert not lit.index.str.contains("ours").any() and "energy MAE per atom" not in lit  # no empty column
    table = md_table({}, {}, {})
    assert len(table) == 0 and md_facts(table)["n_ran"] == "0"
    forces = {d: why for d, why in whole.items() if d != "qm9"}
    assert md_texts("overnight", whole, {}, 0, md_facts(table)) == {"run": rf.cut_notice("overnight", forces),
                                                                     "summary": ""}
    assert rf.not_run(whole, experiments.TRANSFER_TARGETS) == (
        "*Not run at this scale for rMD17-aspirin, rMD17-benzene and QM9: see the note at the top of this page.*")
    # the overnight cut: the rMD17 models' numbers, the paper's values and the reason for Cu-Li and QM9
    finals = {(ds, v): [_run(ds, v, s, f, 0.5, tmp_path / f"{ds}{v}{s}", transfer=v == "qdi") for s in (0, 1, 2)]
              for ds in ("rmd17-aspirin", "rmd17-benzene") for v, f in (("allegro", 0.03), ("mlp", 0.025),
                                                                        ("qdi", 0.028))}
    derived = derived_comparisons(rf.mean_records(finals))
    texts = rf.final_texts("overnight", cut, rf.budget_facts({"n_trials": 4}, finals, {"culi": 300}), derived,
                           "supported")
    assert texts["budget"].startswith("**Not run at the `overnight` scale**: the final runs of the chosen "
                                      "configurations with seeds of QM9 and Cu-Li.")
    assert preset["finals:culi"] in texts["budget"] and cut["qm9"] in texts["budget"]
    assert "with 3 seed(s) per model" in texts["budget"]
    assert "no value of ours" in texts["claim"]  # Cu-Li's QDI vs MLP
    assert derived.loc["aspirin forces: Allegro+MLP vs Allegro", "ours (%)"] == pytest.approx(100 * (0.025 - 0.03)
                                                                                                / 0.03)
    table4 = rf.error_table(finals, "Table 4")
    ours = table4.loc[("rMD17-aspirin", "Allegro+MLP")]
    assert ours["ours: mean"] == pytest.approx(25.0) and ours["seeds"] == 3
    assert table4.loc["Cu-Li"]["ours: mean"].isna().all() and table4.loc["Cu-Li"]["paper"].notna().all()
    assert table4.loc[("rMD17-benzene", "Allegro+QDI (transferred)"), "seeds"] == 3
    assert rf.error_table(finals, "Table 5").loc["QM9"]["paper"].notna().any()
    six = rf.table6_text("overnight", cut, finals)
    assert cut["qm9"] in six["ours"] and preset["finals:culi"] not in six["ours"]  # no Cu-Li in Table 6
    assert "1,000 rMD17 frames" in six["ours"] and "QM9 molecules" not in six["ours"] and six["ours_val"]
    run = md_texts("overnight", cut, {"steps": 100, "dt_fs": 0.5, "temperature_K": 300.0}, 0, md_facts(table))
    assert preset["finals:culi"] in run["run"] and cut["qm9"] not in run["run"]  # QM9 has no MD
    assert "Each run: 100 velocity-Verlet steps" in run["run"] and run["summary"]
    assert rf.not_run(cut, experiments.TRANSFER_TARGETS) == (
        "*Not run at this scale for QM9: see the note at the top of this page.*")
    assert rf.not_run(cut, ["rmd17-benzene"]) == ""
    # no cut: the same texts quote the runs alone
    texts = rf.final_texts("overnight", {}, rf.budget_facts({"n_trials": 4}, finals, {"culi": 300}), derived,
                           "supported")
    assert texts["budget"].startswith("At this scale each final model") and "Not run" not in texts["budget"]
    assert "Not run" not in rf.table6_text("overnight", {}, finals)["ours"]


def test_random_trials_count_those_started_before_the_start_up_trials_finished() -> None:
    from qallegro.report.studies import random_trials

    t0 = pd.Timestamp("2026-12-07 10:00")
    s = pd.to_timedelta  # two workers: (start, complete) in seconds
    times = [(0, 10), (0, 12), (10, 20), (12, 25), (20, 30), (25, 40)]
    trials = pd.DataFrame({"state": ["COMPLETE"] * 6, "datetime_start": [t0 + s(a, "s") for a, _ in times],
                           "datetime_complete": [t0 + s(b, "s") for _, b in times]})
    assert random_trials(trials, 3) == 4   # the third finished at 20 s; trial 3 started at 12 s
    assert random_trials(trials, 1) == 2
    assert random_trials(trials.iloc[:2], 3) == 2  # fewer finished than the start-up: all random
    from qallegro.report.studies import initial_designs

    text = initial_designs({("rmd17-benzene", "allegro"): trials, ("qm9", "mlp"): trials},
                           {("rmd17-benzene", "allegro"): {"n_startup_trials": 3}, ("qm9", "mlp"): {}})
    assert text == "rMD17-benzene Allegro 4 of 6 started (67%)"  # a sampler without start-up trials is left out
    from qallegro.report.studies import failed_counts

    failed = trials.assign(state=["COMPLETE"] * 4 + ["FAIL"] * 2)
    assert failed_counts({("rmd17-benzene", "allegro"): failed, ("qm9", "mlp"): trials}) == \
        "2 (rMD17-benzene Allegro 2)"
    assert failed_counts({("qm9", "mlp"): trials}) == "none"


def test_sampler_options_merge_defaults_preset_and_study() -> None:
    from qallegro import scales
    from qallegro.hpo.records import hpo_settings
    from qallegro.hpo.study import StudySpec, sampler_options

    settings = hpo_settings({**scales.settings("hpo", "quick"), "samplers": {"tpe": {"n_startup_trials": 2}}})
    spec = StudySpec("rmd17-benzene", "allegro", "tpe", "quick", sampler_options={"n_ei_candidates": 8})
    opts = sampler_options(spec, settings)
    assert opts["n_startup_trials"] == 2 and opts["n_ei_candidates"] == 8 and opts["multivariate"] is True


def test_shared_trials_of_studies_with_one_search_space() -> None:
    from qallegro.report.studies import shared_trials, shared_trials_text

    a = pd.DataFrame({"number": [0, 1, 2, 3], "r_max": [4.0, 5.0, 6.0, 4.5], "num_layers": [1, 2, 3, 1]})
    b = pd.DataFrame({"number": [0, 1, 2, 3], "r_max": [4.0, 5.0, 6.1, 4.5], "num_layers": [1, 2, 3, 1]})
    c = pd.DataFrame({"number": [0, 1], "r_max": [3.0, 5.5], "num_layers": [1, 2]})
    out = shared_trials({("rmd17-benzene", "allegro"): a, ("rmd17-aspirin", "allegro"): b,
                         ("qm9", "allegro"): c}, ["r_max", "num_layers"])
    assert out == [(("rmd17-benzene", "allegro"), ("rmd17-aspirin", "allegro"), [0, 1, 3])]
    mlp = a.assign(final_mlp_h1=[4, 8, 16, 4])  # another search space: not compared
    assert shared_trials({("x", "allegro"): a, ("x", "mlp"): mlp}, ["r_max", "num_layers", "final_mlp_h1"]) == []
    assert shared_trials_text(out) == "rMD17-benzene Allegro and rMD17-aspirin Allegro: trials 0-1, 3"


def test_pilot_sentence_names_what_was_piloted_and_what_was_not() -> None:
    from qallegro.report.ablation import pilot_sentence

    pilot = {"rmd17-benzene": {"heads": {"allegro": {"n": 5}, "mlp": {"n": 5}},
                               "pairs": {"mlp - allegro": {"seeds_for_10_percent": 6},
                                         "qdi - mlp": {"seeds_for_10_percent": 8}}},
             "culi": {"heads": {}, "pairs": {}}}
    text = pilot_sentence(pilot, {"culi": 5, "rmd17-benzene": 5, "rmd17-aspirin": 3})
    assert text == ("The seed counts come from a pilot on rMD17-benzene (5 seeds per head; a 10% difference needed "
                    "6 to 8 seeds at its spread); Cu-Li and rMD17-aspirin had no pilot of their own, so the "
                    "spread shown here is measured after the fact.")
    assert pilot_sentence({}, {"culi": 5}).startswith("No pilot")


def test_negative_interval_bounds_are_explained(tmp_path: Path) -> None:
    spread = {("rmd17-benzene", "qdi"): [_run("rmd17-benzene", "qdi", s, f, 0.001, tmp_path / str(s))
                                          for s, f in ((0, 0.001), (1, 0.001), (2, 0.2))]}
    note = rf.negative_bound_note(spread, "val")
    assert note.startswith("1 of these intervals reach below zero (rMD17-benzene Allegro+QDI (force))")
    tight = {("rmd17-benzene", "qdi"): spread["rmd17-benzene", "qdi"][:2]}
    assert rf.negative_bound_note(tight, "val") == ""


def test_generation_note_gives_the_campaigns_own_time_where_it_differs() -> None:
    from qallegro.report.culi import generation_note

    prov = {"labelling_seconds": 1500.0}
    assert generation_note(prov, {"labelling_seconds": 4560.0}).endswith("took 76 minutes")
    assert generation_note(prov, {"labelling_seconds": 1600.0}) == ""  # within 20%: the same
    assert generation_note(prov, None) == ""


def test_paper_count_note_only_where_the_papers_counts_do_not_add_up() -> None:
    from qallegro.report.culi import paper_count_note

    counts = {"slab": 26, "surface_vacancy": 34, "supercell_vacancy": 34, "adatom": 537, "md": 11_000}
    assert paper_count_note(counts, 11_635) == ("The paper's frames per category add up to 11,631, against its "
                                                "stated total of 11,635; it does not say where the other 4 are.")
    assert paper_count_note(counts, 11_631) == ""


def test_derived_display_signs_every_percentage_and_names_its_split() -> None:
    derived = pd.DataFrame({"ours (%)": [18.24, -3.0, None], "paper (%)": [-12.7, 5.0, -1.0]},
                           index=pd.Index(["a", "b", "c"], name="comparison"))
    shown = rf.derived_display(derived)
    assert shown.to_dict("list") == {"ours: validation, mean over seeds (%)": ["+18.2", "-3.0", "–"],
                                     "paper: Tables 4-5, one run (%)": ["-12.7", "+5.0", "-1.0"]}
    assert shown.index.name == "comparison"
