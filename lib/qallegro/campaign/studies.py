"""The campaign's hyperparameter studies (Fig. 2, Tables 1-3) as slices of trials, and the final runs of each
study's chosen configuration with several seeds (Tables 4-5 analogues), including the paper's Cu-Li -> other datasets
QDI transfer.

`presets/campaign.yaml` `studies`: the sampler and study seed, `slice` (trials per unit), and the (dataset, variant)
pairs, per-dataset trial counts (`n_trials_by_dataset`) and sampler options (`sampler_options_by_dataset`, e.g. a
smaller initial design for a study with fewer trials); the trial budget and search space are `presets/hpo.yaml` at
the scale. `finals`: the seeds (and `seeds_by_dataset`, e.g. fewer for a costly dataset; none where the scale's
`cut` holds `finals:NAME`), the named rule that picks a configuration from a front (`lowest_error` or `knee`), and
the datasets that get the QDI transfer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qallegro import scales
from qallegro.campaign.units import Unit
from qallegro.errors import CampaignError
from qallegro.paths import local

RULES = ("lowest_error", "knee")


def _settings(scale: str) -> dict[str, Any]:
    return scales.settings("campaign", scale)


def study_name(dataset: str, variant: str, sampler: str, seed: int) -> str:
    return f"{dataset}-{variant}-{sampler}-s{seed}"


def study_units(scale: str) -> list[Unit]:
    """Every study's slices, chained (slice k after k-1); studies interleaved so that two workers run two."""
    s = _settings(scale).get("studies")
    if not s:
        return []
    default = int(s.get("n_trials") or scales.settings("hpo", scale)["n_trials"])
    by_dataset = s.get("n_trials_by_dataset") or {}
    options = s.get("sampler_options_by_dataset") or {}
    size = int(s["slice"])
    targets = {}  # each study's slice targets, e.g. 10, 20, 30 (the last one its trial count)
    for dataset, variant in s["pairs"]:
        n_trials = int(by_dataset.get(dataset, default))
        targets[dataset, variant] = [*range(size, n_trials, size), n_trials]
    out: list[Unit] = []
    for k in range(max(map(len, targets.values()))):
        for (dataset, variant), mine in targets.items():
            if k >= len(mine):
                continue
            target = mine[k]
            name = study_name(dataset, variant, s["sampler"], int(s["seed"]))
            after = (f"study/{name}/{mine[k - 1]:04d}",) if k else ()
            if dataset == "culi":
                after = (*after, "data/culi")
            spec = {"dataset": dataset, "variant": variant, "sampler": s["sampler"], "seed": int(s["seed"]),
                    "scale": scale, "n_trials": target}
            if options.get(dataset):
                spec["sampler_options"] = dict(options[dataset])
            out.append(Unit(f"study/{name}/{target:04d}", "study", spec, after))
    return out


def retime_units(scale: str) -> list[Unit]:
    """After each study's last slice: its front's members re-timed together in interleaved rounds."""
    last: dict[str, Unit] = {}
    for u in study_units(scale):
        last[u.id.rsplit("/", 1)[0]] = u
    return [Unit(f"retime/{sid.removeprefix('study/')}", "retime", dict(u.spec), (u.id,)) for sid, u in last.items()]


def finals_cut(cut: Mapping[str, Any], dataset: str) -> str | None:
    """Why a scale's `cut` (presets/campaign.yaml) leaves out the final runs of `dataset`: the reason of its
    `finals:NAME`, else of `finals` (all of them); None where they run."""
    for key in (f"finals:{dataset}", "finals"):
        if key in cut:
            return str(cut[key])
    return None


def final_units(scale: str) -> list[Unit]:
    """The chosen configuration of every study, and each QDI transfer, trained with the final seeds."""
    s, f = _settings(scale).get("studies"), _settings(scale).get("finals")
    if not s or not f:
        return []
    if f["rule"] not in RULES:
        raise CampaignError(f"presets/campaign.yaml[{scale}].finals.rule: {f['rule']!r} is not one of {RULES}")
    last = {(d, v): u.id for u in study_units(scale) for d, v in [(u.spec["dataset"], u.spec["variant"])]}
    by_dataset = f.get("seeds_by_dataset") or {}
    cut = _settings(scale).get("cut") or {}

    def seeds(dataset: str) -> list[int]:  # none where the scale cuts the finals (`finals`, `finals:NAME`)
        if finals_cut(cut, dataset) is not None:
            return []
        return [int(x) for x in by_dataset.get(dataset, f["seeds"])]

    out: list[Unit] = []
    for seed in dict.fromkeys(int(x) for x in [*f["seeds"], *(x for v in by_dataset.values() for x in v)]):
        for dataset, variant in s["pairs"]:
            if seed not in seeds(dataset):
                continue
            spec = {"scale": scale, "dataset": dataset, "variant": variant, "seed": int(seed), "rule": f["rule"],
                    "study": study_name(dataset, variant, s["sampler"], int(s["seed"]))}
            out.append(Unit(f"final/{dataset}-{variant}/s{seed}", "final", spec, (last[(dataset, variant)],)))
        for dataset in f.get("transfer") or []:
            if seed not in seeds(dataset):
                continue
            spec = {"scale": scale, "dataset": dataset, "variant": "qdi", "seed": int(seed), "rule": f["rule"],
                    "study": study_name(dataset, "allegro", s["sampler"], int(s["seed"])),
                    "qdi_study": study_name("culi", "qdi", s["sampler"], int(s["seed"]))}
            out.append(Unit(f"final/{dataset}-qdi-transfer/s{seed}", "final", spec,
                            (last[(dataset, "allegro")], last[("culi", "qdi")])))
    return out


def retime_final_units(scale: str) -> list[Unit]:
    """Per dataset, after its final runs of the first final seed: those final models re-timed together in
    interleaved rounds, so that the variants' inference times are paired round by round (a seed does not change a
    configuration's cost, so one seed's models stand for all)."""
    finals = final_units(scale)
    if not finals:
        return []
    first = finals[0].spec["seed"]
    by_dataset: dict[str, list[Unit]] = {}
    for u in finals:
        if u.spec["seed"] == first:
            by_dataset.setdefault(u.spec["dataset"], []).append(u)
    return [Unit(f"retime/finals-{dataset}", "retime-finals", {"scale": scale, "dataset": dataset, "seed": first},
                 tuple(u.id for u in units)) for dataset, units in by_dataset.items()]


def run_study_unit(unit: Unit, folder: Path) -> dict[str, Any]:
    """Run the study's trials up to this slice's target (a resumed or extended Optuna study)."""
    from qallegro.hpo.report import trials_frame
    from qallegro.hpo.study import StudySpec, run

    sp = unit.spec
    spec = StudySpec(dataset=sp["dataset"], variant=sp["variant"], sampler=sp["sampler"], scale=sp["scale"],
                     seed=sp["seed"], n_trials=sp["n_trials"], sampler_options=dict(sp.get("sampler_options") or {}))
    out = run(spec, threads=1, progress=False, plots=False)
    op = out["study"]
    df = trials_frame(op.study, op.space, sp["dataset"])
    complete = df[df["state"] == "COMPLETE"]
    return {"study": op.name, "n_trials": len(complete), "target": sp["n_trials"],
            "pareto": int(complete["pareto"].sum()) if "pareto" in complete else None}


def run_final_unit(unit: Unit, folder: Path) -> dict[str, Any]:
    """Train the chosen configuration (or the QDI transfer) with this unit's seed at the final budget."""
    from qallegro.campaign.ablation import PROTOCOL_VERSION, run_outcome
    from qallegro.hpo.final import chosen_config, transfer_config
    from qallegro.hpo.objective import trial_config
    from qallegro.hpo.study import load, study_dir
    from qallegro.training import train
    sp = unit.spec

    def open_study(name: str):
        return load(str(study_dir(sp["scale"], name) / "journal.log"), name)

    op = open_study(sp["study"])
    if "qdi_study" in sp:
        overrides, provenance = transfer_config(open_study(sp["qdi_study"]), op, sp["rule"])
    else:
        entry = chosen_config(op, sp["rule"])
        overrides, provenance = entry["config"], {"study": op.name, "trial": entry["number"],
                                                  "params": entry["params"]}
    cfg = trial_config(sp["dataset"], sp["variant"], sp["scale"], {**overrides, "seed": sp["seed"]}, op.settings,
                       threads=1, final=True)
    result = train(cfg, run_dir=folder / "run", resume=True, progress=False)
    return {"dataset": sp["dataset"], "variant": sp["variant"], "seed": sp["seed"], "rule": sp["rule"],
            "transfer": "qdi_study" in sp, "chosen": provenance,
            "protocol": {"version": PROTOCOL_VERSION, "budget": {"kind": "epochs", "max_epochs": cfg["max_epochs"]},
                         "n_train": cfg["n_train"], "n_val": cfg["n_val"], "n_test": cfg["n_test"]},
            **run_outcome(cfg, result)}


def _with_model(trial_dir: Path, spare: Path) -> Path:
    """The trial's run folder when it still holds its model; otherwise the trial retrained from its committed
    `config.yaml` into `spare` (model files are never committed, so a study finished in another session or on
    another machine has only its records here)."""
    import yaml

    from qallegro.training import train

    if (trial_dir / "checkpoint.pt").is_file():
        return trial_dir
    cfg = yaml.safe_load((trial_dir / "config.yaml").read_text())
    train(cfg, run_dir=spare, resume=True, progress=False)
    return spare


def run_retime_unit(unit: Unit, folder: Path) -> dict[str, Any]:
    """Re-time the front of a finished study (`qallegro.timing.retime_interleaved` with the study's timing
    settings, at least 5 rounds) and record each member's time and matrix-product FLOPs per structure beside the
    time measured during the study."""
    import yaml

    from qallegro.hpo.objective import objective_names, test_structures
    from qallegro.hpo.report import trials_frame
    from qallegro.hpo.study import load, study_dir
    from qallegro.timing import retime_interleaved
    from qallegro.training import load_run

    sp = unit.spec
    name = study_name(sp["dataset"], sp["variant"], sp["sampler"], sp["seed"])
    op = load(str(study_dir(sp["scale"], name) / "journal.log"), name)
    df = trials_frame(op.study, op.space, sp["dataset"])
    front = df[(df["state"] == "COMPLETE") & df["pareto"]]
    time_name = objective_names(sp["dataset"])[1]
    dirs = {str(int(r["number"])): local(r["trial_dir"]) for _, r in front.iterrows()}
    models = {k: load_run(_with_model(d, folder / "models" / k)) for k, d in dirs.items()}
    options = yaml.safe_load((next(iter(dirs.values())) / "config.yaml").read_text()).get("dataset_options")
    timing = dict(op.settings.get("timing") or {})
    atoms = test_structures(sp["dataset"], timing.get("max_structures"), options)
    out = retime_interleaved(models, atoms, batch_size=int(timing.get("batch_size", 1)),
                             rounds=max(5, int(timing.get("repeats", 5))), warmup=int(timing.get("warmup", 1)),
                             clock=str(timing.get("clock", "process")))
    during = {str(int(r["number"])): float(r[time_name]) for _, r in front.iterrows()}
    return {"study": name, "time_objective": time_name,
            "front": {k: {**v, "during_study_s": during[k]} for k, v in out.items()}}


def run_retime_finals_unit(unit: Unit, folder: Path) -> dict[str, Any]:
    """Re-time the final models of one dataset (this unit's `after`: one seed's final runs of every variant and the
    QDI transfer) together in interleaved rounds, on the process CPU clock with the scale's HPO timing settings
    (at least 5 rounds); per model: every round's time, the median and the matrix-product FLOPs per structure."""
    import yaml

    from qallegro.campaign.units import read_record
    from qallegro.hpo.objective import test_structures
    from qallegro.timing import retime_interleaved
    from qallegro.training import load_run

    root = folder.parents[1]  # <campaign>/retime/finals-<dataset>
    runs: dict[str, Path] = {}
    for uid in unit.after:
        record = read_record(root, uid)
        if record is None:
            raise CampaignError(f"{root / uid}: the final run has no record; run it first")
        key = f"{record['variant']}-transfer" if record.get("transfer") else str(record["variant"])
        runs[key] = _with_model(root / uid / "run", folder / "models" / key)
    models = {k: load_run(run) for k, run in runs.items()}
    options = yaml.safe_load((next(iter(runs.values())) / "config.yaml").read_text()).get("dataset_options")
    timing = dict(scales.settings("hpo", unit.spec["scale"]).get("timing") or {})
    atoms = test_structures(unit.spec["dataset"], timing.get("max_structures"), options)
    out = retime_interleaved(models, atoms, batch_size=int(timing.get("batch_size", 1)),
                             rounds=max(5, int(timing.get("repeats", 5))), warmup=int(timing.get("warmup", 1)),
                             clock=str(timing.get("clock", "process")))
    return {"dataset": unit.spec["dataset"], "seed": unit.spec["seed"], "n_structures": len(atoms),
            "finals": {k: {"unit": uid, **out[k]} for uid, k in zip(unit.after, runs, strict=True)}}


def compare_units(scale: str) -> list[Unit]:
    """The optimiser page's sampler comparison (`compare` in presets/hpo.yaml) as one unit per sampler and seed,
    each the study `compare-<dataset>-<variant>-<sampler>-s<seed>` that `hpo.experiment.compare_samplers` resumes
    when the page runs (so the page computes nothing the workers did)."""
    from qallegro.hpo.records import SamplerComparison, hpo_settings

    cmp = SamplerComparison.of(hpo_settings(scales.settings("hpo", scale), f"presets/hpo.yaml[{scale}]"), scale)
    if not (cmp.dataset and cmp.samplers and cmp.seeds):
        return []
    after = ("data/culi",) if cmp.dataset == "culi" else ()
    return [Unit(f"compare/compare-{cmp.dataset}-{cmp.variant}-{sampler}-s{seed}", "compare",
                 {"scale": scale, "sampler": sampler, "seed": int(seed)}, after)
            for seed in cmp.seeds for sampler in cmp.samplers]


def run_compare_unit(unit: Unit, folder: Path) -> dict[str, Any]:
    """Run (or resume) one study of the sampler comparison; its record keeps the final hypervolume."""
    from qallegro.hpo.experiment import compare_samplers

    sp = unit.spec
    hv = compare_samplers(sp["scale"], samplers=[sp["sampler"]], seeds=[sp["seed"]], progress=False, plots=False,
                          write=False)
    last = hv.sort_values("n_complete").iloc[-1]
    return {"study": unit.id.split("/", 1)[1], "sampler": sp["sampler"], "seed": sp["seed"],
            "n_complete": int(last["n_complete"]), "hypervolume": float(last["hypervolume"])}
