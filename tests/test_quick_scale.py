"""The quick scale under the evidence campaign's protocol: its presets load as typed records, its campaign plans the
units the book's pages read, its search space holds what the preset says, and the campaign estimate computes unit
costs and wall time from measured records."""

from __future__ import annotations

import csv
import json
import re
import shutil
from collections import defaultdict
from pathlib import Path

import pytest
from qallegro import scales
from qallegro.campaign.ablation import run_config, sweep_units
from qallegro.campaign.estimate import culi_rates, estimate, measured_costs, schedule, unit_seconds
from qallegro.campaign.plan import plan
from qallegro.campaign.units import Unit
from qallegro.errors import CampaignError
from qallegro.hpo.objective import trial_config
from qallegro.hpo.records import HpoSettings, hpo_settings
from qallegro.hpo.space import load_space, paper_values
from qallegro.pipeline.notebooks import MOO_RUNS

ROOT = Path(__file__).resolve().parents[1]
QUICK_SAMPLER_INIT = {"nsga2": "population_size", "tpe": "n_startup_trials", "gp": "n_startup_trials",
                      "samo-cobra": "n_init"}


def test_quick_hpo_settings_are_the_new_protocol() -> None:
    """Typed record; epoch budgets with wall clock only a safety limit; process-CPU timing with FLOPs; initial
    designs at most a quarter of the trials (studies and the sampler comparison)."""
    s = hpo_settings(scales.settings("hpo", "quick"), "presets/hpo.yaml[quick]")
    assert isinstance(s, HpoSettings)
    assert (s.timing.clock, s.timing.flops, s.timing.repeats >= 5) == ("process", True, True)
    for dataset in ("rmd17-benzene", "rmd17-aspirin", "qm9", "culi"):
        for final in (False, True):
            budget = s.budget(dataset, final)
            assert budget["max_epochs"] >= 1 and budget["early_stopping_patience"] >= 10 ** 6
            assert budget["max_wall_s"] >= 1800.0
    compare = s.extra["compare"]
    for sampler, key in QUICK_SAMPLER_INIT.items():
        first = s.samplers[sampler][key]
        assert 4 * first <= s.n_trials and 4 * first <= compare["n_trials"], sampler
    assert scales.settings("hpo", "quick")["space"] == scales.settings("hpo", "overnight")["space"]


@pytest.mark.parametrize("dataset", ["rmd17-benzene", "rmd17-aspirin", "qm9", "culi"])
def test_quick_validation_set_is_shared_by_trials_finals_and_ablation(dataset: str) -> None:
    """One validation set per dataset: the trials, the finals and (where the dataset has one) the sweep and
    ablation resolve to the same n_val and dataset options."""
    settings = scales.settings("hpo", "quick")
    trial = trial_config(dataset, "allegro", "quick", {}, settings)
    final = trial_config(dataset, "mlp", "quick", {}, settings, final=True)
    seen = {(c["n_val"], json.dumps(c.get("dataset_options"), sort_keys=True)) for c in (trial, final)}
    if dataset in scales.settings("campaign", "quick")["ablation"]["datasets"]:
        sweep = run_config(sweep_units("quick", dataset)[0], Path("unused"))
        seen.add((sweep["n_val"], json.dumps(sweep.get("dataset_options"), sort_keys=True)))
        # finals and ablation runs compare: the same budget
        assert (final["max_epochs"], final["n_train"]) == (sweep["max_epochs"], sweep["n_train"])
    assert len(seen) == 1, seen


def test_quick_campaign_plans_every_unit_the_pages_read() -> None:
    """run_with_book; the studies are the book's Fig. 2 pairs (as overnight), each sliced and re-timed; the finals
    cover every pair and the QDI transfers over the seeds; every unit's dependencies are in the plan, Cu-Li units
    wait on the generation."""
    campaign = scales.settings("campaign", "quick")
    assert campaign["run_with_book"] is True
    units = plan("quick")
    ids = {u.id for u in units}
    assert len(ids) == len(units)
    assert all(set(u.after) <= ids for u in units)
    pairs = {tuple(p) for p in campaign["studies"]["pairs"]}
    assert pairs == set(MOO_RUNS) == {tuple(p) for p in scales.settings("campaign", "overnight")["studies"]["pairs"]}
    slices = [u for u in units if u.kind == "study"]
    n_trials = campaign["studies"]["n_trials"]
    assert n_trials == scales.settings("hpo", "quick")["n_trials"]
    assert {(u.spec["dataset"], u.spec["variant"]) for u in slices if u.spec["n_trials"] == n_trials} == pairs
    assert len([u for u in units if u.kind == "retime"]) == len(pairs)
    seeds, transfer = campaign["finals"]["seeds"], campaign["finals"]["transfer"]
    finals = [u for u in units if u.kind == "final"]
    assert len(finals) == len(seeds) * (len(pairs) + len(transfer)) and len(seeds) >= 2
    for u in units:
        if u.spec.get("dataset") == "culi" and u.kind in ("train", "study"):
            assert "data/culi" in u.after or any(a.startswith(("sweep/culi", "study/culi")) for a in u.after), u.id
    for dataset, ds in campaign["ablation"]["datasets"].items():
        assert len(ds["seeds"]) >= 3
        runs = [u for u in units if u.id.startswith(f"ablation/{dataset}/")]
        assert len(runs) == len(ds["seeds"]) * len(campaign["ablation"]["variants"])


@pytest.mark.parametrize("variant", ["allegro", "mlp", "qdi"])
def test_quick_space_contains_what_the_preset_says(variant: str) -> None:
    """The quick space is overnight's: every optimum of the paper's Tables 1-3 inside, except the Cu-Li r_max above
    6 Å (`space_by_dataset.culi`, which the preset names: Allegro's 12 Å); the learning rate reaches 0.04."""
    for dataset in ("rmd17-aspirin", "rmd17-benzene", "qm9", "culi"):
        space = load_space(variant, "quick", dataset=dataset)
        assert (space["learning_rate"].low, space["learning_rate"].high) == (0.0009, 0.04)
        _, notes = space.raw_from_values(paper_values(dataset, variant))
        clipped = [n.split(":")[0] for n in notes]
        expected = ["r_max"] if dataset == "culi" and paper_values(dataset, variant)["r_max"] > 6.0 else []
        assert clipped == expected, (dataset, notes)
        if dataset == "culi":
            assert (space["r_max"].low, space["r_max"].high) == (5.0, 6.0)
            assert space.sources[-1] == "presets/hpo.yaml[quick].space_by_dataset.culi"


def test_quick_culi_preset_is_the_group_protocol() -> None:
    """Several melt-quench runs of both interface orientations, (111) held out whole, a group split; its frame
    target is every frame of the runs."""
    from qallegro.culi.generate import frames_available

    s = scales.settings("culi", "quick")
    runs = {tuple(r["miller"]): r.get("replicas", 1) for r in s["md_interfaces"]}
    assert runs == {(1, 1, 0): 2, (1, 1, 1): 1}
    assert s["splits"]["method"] == "group" and s["splits"]["ood_interfaces"] == [[1, 1, 1]]
    assert s["splits"]["block_fs"] > s["splits"]["min_buffer_fs"]
    assert s["frames"]["md"] == sum(runs.values()) * frames_available("md", s)


# --- the estimate, on a synthetic reference campaign -------------------------------------------------------------

def _write_run(root: Path, unit: str, dataset: str, variant: str, n_train: int, epoch_s: list[float],
               unit_wall_s: float) -> None:
    folder = root / "campaign" / unit
    (folder / "run").mkdir(parents=True)
    walls = [sum(epoch_s[: i + 1]) for i in range(len(epoch_s))]
    with open(folder / "run" / "epochs.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "wall_s", "epoch_s"])
        w.writerows([i + 1, walls[i], e] for i, e in enumerate(epoch_s))
    rec = {"kind": "train", "dataset": dataset, "variant": variant, "unit_wall_s": unit_wall_s,
           "epochs": len(epoch_s), "truncated": False,
           "protocol": {"n_train": n_train, "budget": {"kind": "epochs", "max_epochs": len(epoch_s)}}}
    (folder / "record.json").write_text(json.dumps(rec))


def _write_study(root: Path, name: str, dataset: str, variant: str,
                 trials: list[tuple[float, int, int, float, bool]], slice_walls: list[float]) -> None:
    for k, (train_s, epochs, n_train, inference_s, truncated) in enumerate(trials):
        folder = root / "hpo" / name / "trials" / f"{k:05d}"
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(f"dataset: {dataset}\nvariant: {variant}\nn_train: {n_train}\n")
        attrs = {"train_wall_s": train_s, "epochs": epochs, "inference_total_s": inference_s,
                 "inference_n_structures": 200, "truncated": truncated}
        (folder / "trial.json").write_text(json.dumps({"attrs": attrs}))
    for k, wall in enumerate(slice_walls):
        folder = root / "campaign" / "study" / name / f"{k:04d}"
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(json.dumps({"kind": "study", "unit_wall_s": wall}))


def _write_culi(folder: Path) -> None:
    folder.mkdir(parents=True)
    settings = scales.settings("culi", "quick")
    (folder / "plan.json").write_text(json.dumps({"record": {"settings": settings}}))
    done = {"0": {"category": "md", "n_atoms": 50, "seconds": 316 * 50 * 0.01},
            "1": {"category": "slab", "n_atoms": 20, "seconds": 2.0},
            "2": {"category": "slab", "n_atoms": 20, "seconds": 4.0}}
    for k, category in enumerate(("surface_vacancy", "supercell_vacancy", "adatom")):
        done[str(3 + k)] = {"category": category, "n_atoms": 30, "seconds": 5.0}
    (folder / "state.json").write_text(json.dumps({"done": done}))


def test_estimate_rates_and_unit_costs_against_an_independent_computation(results_dir: Path) -> None:
    ref = results_dir / "overnight"
    _write_run(ref, "sweep/rmd17-benzene/a", "rmd17-benzene", "allegro", 200, [4.0, 2.0, 2.0], 10.0)
    _write_run(ref, "ablation/rmd17-benzene/allegro-s0", "rmd17-benzene", "allegro", 200, [6.0, 6.0, 6.0], 20.0)
    _write_run(ref, "ablation/rmd17-benzene/mlp-s0", "rmd17-benzene", "mlp", 100, [1.0, 1.0, 1.0], 5.0)
    # the overnight timing: 200 structures x (5 repeats + 1 warm-up) = 1200 passes; the third trial was cut by
    # its wall-clock limit after 5 epochs (30 s of training, no rate)
    _write_study(ref, "rmd17-benzene-allegro-tpe-s0", "rmd17-benzene", "allegro",
                 [(12.0, 12, 100, 0.4, False), (24.0, 12, 100, 0.4, False), (30.0, 5, 100, 0.4, True)],
                 [30.0, 70.0])
    # the study's chosen configurations (by rule): a final run trains at its chosen trial's rate
    (ref / "hpo" / "rmd17-benzene-allegro-tpe-s0" / "chosen.json").write_text(json.dumps({"chosen": {
        "lowest_error": {"number": 1, "trial_dir": "/elsewhere/trials/00001"}, "knee": {"number": 0}}}))
    _write_culi(results_dir / "gen")
    costs = measured_costs("overnight", {"qm9": 0.5}, results_dir / "gen")
    assert costs.final_rate("rmd17-benzene", "allegro", "lowest_error") == pytest.approx(24.0 / 12 / 100)
    assert costs.final_rate("rmd17-benzene", "allegro", "knee") == pytest.approx(12.0 / 12 / 100)
    # a QDI transfer: the Allegro study's chosen rate times the QDI/Allegro ratio (1 here: no QDI run measured)
    assert costs.final_rate("rmd17-benzene", "qdi", "knee", transfer=True) == pytest.approx(0.01)
    assert costs.final_rate("qm9", "mlp", "knee") == costs.run_rate("qm9", "mlp")  # no QM9 study: the ablation rate
    # medians of the per-run medians of epoch_s / n_train
    assert costs.run_rate("rmd17-benzene", "allegro") == pytest.approx((2.0 / 200 + 6.0 / 200) / 2)
    assert costs.run_rate("rmd17-benzene", "mlp") == pytest.approx(0.01)
    assert costs.run_fixed("rmd17-benzene") == pytest.approx(((10.0 - 8.0) + (20.0 - 18.0) + (5.0 - 3.0)) / 3)
    assert costs.run_rate("qm9", "mlp") == pytest.approx(0.5 * 0.01)
    # trials: rate = median of train_s / epochs / n_train of the untruncated ones; fixed = slices' wall less every
    # trial's training, per trial, less the timing passes (inference per structure 0.4 / 200 x 1200 passes)
    assert costs.trial_rate[("rmd17-benzene", "allegro")] == pytest.approx([0.01, 0.02])
    per_pass = 0.4 / 200
    assert costs.trial_fixed[("rmd17-benzene", "allegro")] == pytest.approx((100.0 - 66.0) / 3 - per_pass * 1200)
    assert costs.culi["md_s_per_atom_step"] == pytest.approx(0.01)
    assert costs.culi["relax_s"]["slab"] == pytest.approx(3.0)

    ablation = scales.settings("campaign", "quick")["ablation"]
    over = ablation["overrides"]
    unit = Unit("ablation/rmd17-benzene/mlp-s0", "train",
                {"dataset": "rmd17-benzene", "variant": "mlp", "seed": 0, "scale": "quick", "ablation": True})
    expect = over["max_epochs"] * over["n_train"] * 0.01 + costs.run_fixed("rmd17-benzene")
    assert unit_seconds(unit, costs) == pytest.approx(expect)
    size = scales.settings("campaign", "quick")["studies"]["slice"]  # the second slice adds `size` trials
    study = Unit("study/x/2", "study", {"dataset": "rmd17-benzene", "variant": "allegro", "scale": "quick",
                                        "n_trials": 2 * size})
    trial = scales.settings("hpo", "quick")["trial_overrides"]
    timing = scales.settings("hpo", "quick")["timing"]
    passes = timing["max_structures"] * (timing["repeats"] + timing["warmup"])
    per_trial = (trial["max_epochs"] * trial["n_train"] * 0.015 + costs.trial_fixed[("rmd17-benzene", "allegro")]
                 + passes * per_pass)
    assert unit_seconds(study, costs) == pytest.approx(size * per_trial)


def test_culi_rates_from_the_committed_provenance_alone(tmp_path: Path) -> None:
    """A fresh clone has only the Cu-Li set's provenance (no plan.json/state.json): its seconds per category over
    its structures; the three overnight melt-quench runs hold 59, 59 and 117 atoms for 660 steps each."""
    shutil.copy(ROOT / "results" / "overnight" / "culi" / "provenance.json", tmp_path)
    prov = json.loads((tmp_path / "provenance.json").read_text())
    rates = culi_rates(tmp_path)
    assert rates["md_s_per_atom_step"] == pytest.approx(prov["seconds_per_category"]["md"] / ((59 + 59 + 117) * 660))
    for category in ("slab", "surface_vacancy", "supercell_vacancy", "adatom"):
        assert rates["relax_s"][category] == pytest.approx(prov["seconds_per_category"][category]
                                                           / prov["structures"][category])


def test_estimate_names_what_it_cannot_scale_from(results_dir: Path) -> None:
    ref = results_dir / "overnight"
    _write_run(ref, "ablation/rmd17-benzene/allegro-s0", "rmd17-benzene", "allegro", 200, [6.0], 7.0)
    costs = measured_costs("overnight")
    with pytest.raises(CampaignError, match=r"no measured cost for 'rmd17-aspirin'.*--probe"):
        costs.run_rate("rmd17-aspirin", "allegro")
    with pytest.raises(CampaignError, match=re.escape(f"{results_dir / 'missing'}: not a Cu-Li generation folder")):
        culi_rates(results_dir / "missing")
    with pytest.raises(CampaignError, match="workers must be at least 1"):
        schedule([], {}, 0)


def test_schedule_follows_dependencies_and_list_order() -> None:
    """Two workers, five units: c waits on a, d waits on b; worked out by hand: a 0-3 (w1), b 0-1 (w2), e 1-5 (w2,
    the first ready one at t=1: c and d wait), c 3-5 (w1), d 5-7 (w1): makespan 7."""
    units = [Unit("a", "x"), Unit("b", "x"), Unit("c", "x", after=("a",)), Unit("d", "x", after=("b", "c")),
             Unit("e", "x")]
    out = schedule(units, {"a": 3, "b": 1, "c": 2, "d": 2, "e": 4}, 2)
    assert out["start"] == {"a": 0, "b": 0, "e": 1, "c": 3, "d": 5}
    assert out["makespan_s"] == 7
    assert schedule(units, {"a": 3, "b": 1, "c": 2, "d": 2, "e": 4}, 1)["makespan_s"] == 12


def test_estimate_of_the_quick_campaign_covers_every_unit(results_dir: Path) -> None:
    """Every unit of the quick plan gets a positive cost; the wall time lies between the total over the workers
    and the total."""
    ref = results_dir / "overnight"
    for variant, rate in (("allegro", 4.0), ("mlp", 3.0), ("qdi", 3.5)):
        _write_run(ref, f"ablation/rmd17-benzene/{variant}-s0", "rmd17-benzene", variant, 200, [rate] * 3,
                   3 * rate + 5.0)
    _write_run(ref, "sweep/culi/a", "culi", "allegro", 200, [15.0] * 3, 60.0)
    _write_study(ref, "rmd17-benzene-allegro-tpe-s0", "rmd17-benzene", "allegro", [(30.0, 12, 100, 0.5, False)], [40.0])
    _write_culi(results_dir / "gen")
    out = estimate("quick", "overnight", 2, {"rmd17-aspirin": 1.5, "qm9": 0.6}, results_dir / "gen")
    assert set(out["units"]) == {u.id for u in plan("quick")}
    assert all(s > 0 for s in out["units"].values())
    assert out["worker_s"] / 2 <= out["makespan_s"] <= out["worker_s"]
    assert sum(p["units"] for p in out["parts"].values()) == len(out["units"])


def test_quick_culi_plan_splits_by_group_with_a_held_out_interface() -> None:
    """The group split of the quick plan's frames (metadata as the generator writes it; the buffer the overnight
    set measured, 32 fs): the (111) run is the `ood` split whole, no split is empty, the validation split has the
    frames the shared validation set uses, and no trajectory block straddles two splits."""
    from qallegro.culi import structures as st
    from qallegro.culi.generate import group_of, make_plan
    from qallegro.culi.generate import schedule as md_schedule
    from qallegro.culi.md import sample_steps
    from qallegro.data.groups import FrameGroup, group_split

    s = scales.settings("culi", "quick")
    steps = md_schedule(s).n_steps
    meta: list[FrameGroup] = []
    for task in make_plan(s, 0):
        if task.category == "md":
            meta += [FrameGroup("md", group_of(task), task.id, k * s["md"]["timestep_fs"])
                     for k in sample_steps(steps, task.n_frames)]
        else:
            meta += [FrameGroup(task.category, group_of(task))] * task.n_frames
    assert len(meta) == sum(s["frames"].values())
    ood = [f"Li/Cu{st.miller_label(tuple(h))}" for h in s["splits"]["ood_interfaces"]]
    parts = group_split(meta, s["splits"], 0, block_fs=s["splits"]["block_fs"], buffer_fs=32.0, ood_groups=ood)
    assert sorted(parts["ood"]) == [i for i, m in enumerate(meta) if m.group == "Li/Cu(111)"]
    assert len(parts["val"]) >= 50 and len(parts["test"]) >= 50
    where = {i: name for name, idx in parts.items() for i in idx}
    for split in ("train", "val", "test"):
        groups = {meta[i].group for i in parts[split] if not meta[i].trajectory}
        other = {meta[i].group for name in ("train", "val", "test") if name != split for i in parts[name]
                 if not meta[i].trajectory}
        assert not groups & other, split
    blocks: dict[tuple[str, int], set[str]] = defaultdict(set)
    for i, m in enumerate(meta):
        if m.trajectory and where[i] in ("train", "val", "test"):
            blocks[(m.trajectory, int(m.time_fs // s["splits"]["block_fs"]))].add(where[i])
    assert blocks and all(len(v) == 1 for v in blocks.values())


def test_estimate_command_names_the_datasets_it_cannot_cost(results_dir: Path) -> None:
    """`qallegro campaign estimate` in a real process: without measurements or relative costs for aspirin and QM9
    it stops with one line naming both and the option that measures them, and writes nothing."""
    import os
    import subprocess
    import sys

    ref = results_dir / "overnight"
    _write_run(ref, "ablation/rmd17-benzene/allegro-s0", "rmd17-benzene", "allegro", 200, [4.0] * 3, 15.0)
    _write_run(ref, "sweep/culi/a", "culi", "allegro", 200, [15.0] * 3, 60.0)
    _write_culi(results_dir / "gen")
    out = subprocess.run([sys.executable, "-m", "qallegro", "campaign", "estimate", "--scale", "quick",
                          "--culi-folder", str(results_dir / "gen")], capture_output=True, text=True,
                         env={**os.environ, "QALLEGRO_RESULTS": str(results_dir)}, timeout=300)
    assert out.returncode != 0
    assert "no measured cost for qm9, rmd17-aspirin in the overnight records" in out.stderr
    assert "--probe" in out.stderr and "Traceback" not in out.stderr
    assert not (results_dir / "quick" / "campaign" / "estimate.json").exists()


def test_probe_measures_relative_epoch_costs_by_real_training() -> None:
    """`probe_relative` trains benzene and the dataset in this process (smoke ablation settings) and returns the
    ratio of their epoch costs per training structure: positive, and about 1 for benzene against itself."""
    from qallegro.campaign.estimate import probe_relative

    out = probe_relative(["rmd17-aspirin", "rmd17-benzene"], "smoke", rounds=1, n_train=10)
    assert set(out) == {"rmd17-aspirin", "rmd17-benzene"}
    assert out["rmd17-aspirin"] > 0
    assert 0.25 < out["rmd17-benzene"] < 4.0  # the same work twice: equal up to this shared machine's load
