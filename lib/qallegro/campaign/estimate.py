"""The wall time of a campaign before it runs, from the unit costs a finished (or running) campaign measured.

A reference scale's records give the costs: every training record's `epochs.csv` (seconds per epoch per training
structure, by dataset and head; the unit's `unit_wall_s` minus its training time is the run's fixed cost: data,
model, evaluation), every study trial's `trial.json` (training seconds, epochs, inference seconds per structure;
the study slices' `unit_wall_s` minus the trials' training and timing is the per-trial bookkeeping and evaluation),
and a Cu-Li generation folder's timings (seconds per MD atom-step, per relaxed structure). A final run of a
study's chosen configuration costs at the rate its chosen trial trained at (`chosen.json`, by rule), where the
reference study has one; else at the head's ablation rate. `relative` fills
datasets the reference has not measured yet: one number per dataset, its epoch cost per structure relative to
rMD17 benzene (`probe_relative` measures them in one process); a measured dataset's is the ratio of its Allegro
runs' rate to benzene's.

Each unit of the target scale then costs epochs x training structures x that rate + the fixed cost, and
`schedule` runs the units on `workers` one-thread workers in the plan's order (a unit starts when a worker is free
and the units it waits on are done), as `qallegro.campaign.units.work` does.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from qallegro import scales
from qallegro.campaign.units import Unit
from qallegro.errors import CampaignError
from qallegro.paths import results_root

BASE = "rmd17-benzene"  # the dataset every relative cost refers to
FRONT_SIZE = 5  # members assumed per re-timed front (the overnight fronts held 4-7)


def timed_passes(scale: str, min_repeats: int = 0) -> int:
    """Structure passes of one inference timing at `scale` (`presets/hpo.yaml` timing): structures x (repeats +
    warm-up); a null structure count is taken as the 1,000 test frames of rMD17."""
    from qallegro.hpo.records import hpo_settings

    t = hpo_settings(scales.settings("hpo", scale)).timing
    return int(t.max_structures or 1000) * (max(min_repeats, t.repeats) + t.warmup)


def _median(values: list[float]) -> float:
    return float(statistics.median(values))


def _epoch_rate(csv_path: Path, n_train: int) -> tuple[float, float]:
    """(median seconds per epoch per training structure, training wall seconds) of one run's epochs.csv."""
    with open(csv_path) as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        raise CampaignError(f"{csv_path}: no epochs")
    return _median([float(r["epoch_s"]) for r in rows]) / n_train, float(rows[-1]["wall_s"])


@dataclass
class Costs:
    """Measured unit costs of a reference scale (seconds; rates per epoch per training structure)."""

    reference: str
    rate: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    fixed: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    trial_rate: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    trial_fixed: dict[tuple[str, str], float] = field(default_factory=dict)
    inference: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    chosen_rate: dict[tuple[str, str, str], float] = field(default_factory=dict)  # (dataset, variant, rule)
    culi: dict[str, Any] = field(default_factory=dict)
    relative: dict[str, float] = field(default_factory=dict)

    def measured(self) -> set[str]:
        """The datasets with measured training runs (benzene: the reference of every relative cost)."""
        return {d for d, _ in self.rate} | {BASE}

    def run_rate(self, dataset: str, variant: str) -> float:
        """Seconds per epoch per training structure of a campaign run: measured, else the dataset's Allegro rate
        times the benzene head ratio, else benzene's rate times the dataset's `relative` cost."""
        if self.rate.get((dataset, variant)):
            return _median(self.rate[(dataset, variant)])
        head = self._head_ratio(variant)
        if self.rate.get((dataset, "allegro")):
            return _median(self.rate[(dataset, "allegro")]) * head
        return self._base_rate(variant) * self._relative(dataset)

    def run_fixed(self, dataset: str) -> float:
        if self.fixed.get(dataset):
            return _median(self.fixed[dataset])
        return _median(self.fixed[BASE]) * self._relative(dataset)

    def trial_cost(self, dataset: str, variant: str, timed: int) -> tuple[float, float]:
        """(seconds per epoch per training structure, fixed seconds) of a study trial whose inference timing runs
        `timed` structure passes (structures x (repeats + warm-up)); the fixed part without the timing scales
        with the dataset's relative cost."""
        if self.trial_rate.get((dataset, variant)):
            rate, fixed = _median(self.trial_rate[(dataset, variant)]), self.trial_fixed[(dataset, variant)]
        else:
            base = [k for k in self.trial_rate if k[0] == BASE]
            if not base:
                raise CampaignError(f"the {self.reference} records hold no {BASE} study trials to scale from")
            scale = self.run_rate(dataset, variant) / self.run_rate(BASE, variant)
            rate = _median([r for k in base for r in self.trial_rate[k]]) * scale
            fixed = _median([self.trial_fixed[k] for k in base]) * self._relative(dataset)
        return rate, fixed + timed * self.inference_per_structure(dataset)

    def final_rate(self, dataset: str, variant: str, rule: str, transfer: bool = False) -> float:
        """Seconds per epoch per training structure of a final run: its study's chosen trial's rate (a QDI
        transfer: the Allegro study's chosen trial times the benzene QDI/Allegro ratio), else `run_rate`."""
        if transfer and (dataset, "allegro", rule) in self.chosen_rate:
            return self.chosen_rate[(dataset, "allegro", rule)] * self._head_ratio("qdi")
        if not transfer and (dataset, variant, rule) in self.chosen_rate:
            return self.chosen_rate[(dataset, variant, rule)]
        return self.run_rate(dataset, variant)

    def inference_per_structure(self, dataset: str) -> float:
        if self.inference.get(dataset):
            return _median(self.inference[dataset])
        return _median(self.inference[BASE]) * self._relative(dataset)

    def _head_ratio(self, variant: str) -> float:
        base = self.rate.get((BASE, "allegro"))
        own = self.rate.get((BASE, variant))
        return _median(own) / _median(base) if base and own else 1.0

    def _base_rate(self, variant: str) -> float:
        if self.rate.get((BASE, variant)):
            return _median(self.rate[(BASE, variant)])
        if self.rate.get((BASE, "allegro")):
            return _median(self.rate[(BASE, "allegro")]) * self._head_ratio(variant)
        raise CampaignError(f"the {self.reference} records hold no {BASE} training runs to scale from")

    def _relative(self, dataset: str) -> float:
        """The dataset's epoch cost relative to benzene: of the measured Allegro runs, else `relative`."""
        if dataset == BASE:
            return 1.0
        own, base = self.rate.get((dataset, "allegro")), self.rate.get((BASE, "allegro"))
        if own and base:
            return _median(own) / _median(base)
        if dataset not in self.relative:
            raise CampaignError(f"no measured cost for {dataset!r} in the {self.reference} records; give its epoch "
                                f"cost relative to {BASE} (`qallegro campaign estimate --probe` measures it)")
        return float(self.relative[dataset])


def measured_costs(reference: str, relative: Mapping[str, float] | None = None,
                   culi_folder: Path | None = None) -> Costs:
    """The unit costs in `<results>/<reference>/` (campaign records, study trials) and of the Cu-Li generation in
    `culi_folder` (`culi_rates`; None: not needed)."""
    root = results_root() / reference
    costs = Costs(reference, relative=dict(relative or {}))
    for path in sorted((root / "campaign").glob("**/record.json")):
        rec = json.loads(path.read_text())
        epochs = path.parent / "run" / "epochs.csv"
        if rec.get("kind") not in ("train", "final") or not epochs.is_file() or rec.get("truncated"):
            continue
        rate, wall = _epoch_rate(epochs, int(rec["protocol"]["n_train"]))
        costs.rate[(rec["dataset"], rec["variant"])].append(rate)
        if float(rec["unit_wall_s"]) >= wall:  # a run in one go (a resumed unit's wall holds only its last part)
            costs.fixed[rec["dataset"]].append(float(rec["unit_wall_s"]) - wall)
    slices: dict[str, float] = defaultdict(float)
    for path in sorted((root / "campaign" / "study").glob("*/*/record.json")):
        slices[path.parent.parent.name] += float(json.loads(path.read_text())["unit_wall_s"])
    for name, spent in slices.items():
        trials = sorted((root / "hpo" / name / "trials").glob("*/trial.json"))
        train_s, key = 0.0, None
        rates: dict[str, float] = {}  # trial folder -> seconds per epoch per training structure
        for p in trials:
            t = json.loads(p.read_text())
            attrs = t["attrs"]
            cfg = yaml.safe_load((p.parent / "config.yaml").read_text())
            key = (cfg["dataset"], cfg["variant"])
            train_s += float(attrs.get("train_wall_s") or 0.0)  # a truncated trial's time is training, not overhead
            if attrs.get("truncated") or not attrs.get("epochs"):
                continue
            rates[p.parent.name] = float(attrs["train_wall_s"]) / int(attrs["epochs"]) / int(cfg["n_train"])
            costs.trial_rate[key].append(rates[p.parent.name])
            costs.inference[cfg["dataset"]].append(float(attrs["inference_total_s"])
                                                   / int(attrs["inference_n_structures"]))
        chosen = root / "hpo" / name / "chosen.json"
        if key is not None and chosen.is_file():
            for rule, pick in json.loads(chosen.read_text())["chosen"].items():
                trial = Path(pick["trial_dir"]).name if pick.get("trial_dir") else f"{int(pick['number']):05d}"
                if trial in rates:
                    costs.chosen_rate[(*key, rule)] = rates[trial]
        if key is not None:
            per = _median(costs.inference[key[0]]) * timed_passes(reference)
            costs.trial_fixed[key] = max(0.0, (spent - train_s) / len(trials) - per)
    if culi_folder is not None:
        costs.culi = culi_rates(culi_folder)
    return costs


def culi_rates(folder: Path) -> dict[str, Any]:
    """Unit costs of a Cu-Li generation folder: seconds per MD atom-step and the mean seconds of one relaxed
    structure per category, from its task timings (`plan.json`, `state.json`) or, where only the committed
    `provenance.json` is there (a fresh clone), from its seconds per category over the tasks of its plan (rebuilt
    from its settings and seed)."""
    from qallegro.culi.generate import make_plan
    from qallegro.culi.generate import schedule as md_schedule
    from qallegro.paths import CULI_PROVENANCE_FILE

    folder = Path(folder)
    try:
        plan = json.loads((folder / "plan.json").read_text())
        done = list(json.loads((folder / "state.json").read_text())["done"].values())
        settings = plan["record"]["settings"]
    except FileNotFoundError as err:
        if not (folder / CULI_PROVENANCE_FILE).is_file():
            raise CampaignError(f"{folder}: not a Cu-Li generation folder with timings ({err.filename} missing); "
                                "give one with --culi-folder (any scale: the costs are per atom-step and per "
                                "structure)") from err
        prov = json.loads((folder / CULI_PROVENANCE_FILE).read_text())
        settings = prov["settings"]
        tasks = make_plan(settings, int(prov["seed"]))
        per_task = {c: float(s) / n for c, s in prov["seconds_per_category"].items()
                    if (n := sum(t.category == c for t in tasks))}
        done = [{"category": t.category, "n_atoms": t.n_atoms, "seconds": per_task[t.category]} for t in tasks
                if t.category in per_task]
    steps = md_schedule(settings).n_steps
    md = [d for d in done if d["category"] == "md"]
    relax: dict[str, list[float]] = defaultdict(list)
    for d in done:
        if d["category"] != "md":
            relax[d["category"]].append(float(d["seconds"]))
    if not md:
        raise CampaignError(f"{folder}: no finished melt-quench run to measure the MD cost from")
    return {"folder": str(folder),
            "md_s_per_atom_step": sum(float(d["seconds"]) for d in md) / sum(int(d["n_atoms"]) * steps for d in md),
            "relax_s": {c: statistics.fmean(v) for c, v in relax.items()}}


def _culi_seconds(costs: Costs, scale: str) -> float:
    """The Cu-Li generation at `scale`: its planned melt-quench runs (atoms x steps) and relaxed structures at the
    measured rates (`culi_rates`)."""
    from qallegro.culi.generate import make_plan
    from qallegro.culi.generate import schedule as md_schedule

    if not costs.culi:
        raise CampaignError("no Cu-Li generation timings to estimate the generation from (--culi-folder)")
    settings = scales.settings("culi", scale)
    steps = md_schedule(settings).n_steps
    total = 0.0
    for task in make_plan(settings, 0):
        if task.category == "md":
            total += task.n_atoms * steps * costs.culi["md_s_per_atom_step"]
        elif task.category in costs.culi["relax_s"]:
            total += costs.culi["relax_s"][task.category]
        else:
            raise CampaignError(f"{costs.culi['folder']}: no measured {task.category} structure")
    return total


def _budget(dataset: str, variant: str, scale: str, overrides: Mapping[str, Any]) -> tuple[int, int]:
    """(epochs, training structures) of a run: the training preset at `scale` <- `overrides`."""
    from qallegro.training import resolve_config

    cfg = resolve_config(dataset, variant, scale, overrides=dict(overrides))
    if cfg["n_train"] is None:
        raise CampaignError(f"{dataset} at scale {scale!r}: n_train is null (the whole split); the estimate needs "
                            "a number")
    return int(cfg["max_epochs"]), int(cfg["n_train"])


def unit_seconds(unit: Unit, costs: Costs) -> float:
    """The estimated wall seconds of one unit of the plan (see the module docstring)."""
    sp = unit.spec
    scale = sp["scale"]
    if unit.kind == "culi":
        return _culi_seconds(costs, scale)
    if unit.kind == "dft":  # at most its ablation run again (retrained where the model is not on this machine)
        return unit_seconds(Unit(unit.id, "train", {**sp, "ablation": True}), costs)
    if unit.kind == "train":  # a sweep point or an ablation run (`qallegro.campaign.ablation.run_config`)
        campaign = scales.settings("campaign", scale)
        s = campaign["ablation"]
        over = {**s["overrides"], **(s["datasets"][sp["dataset"]].get("overrides") or {})}
        if not sp.get("ablation"):
            over.update(campaign["sweep"].get("overrides") or {})
        epochs, n_train = _budget(sp["dataset"], sp["variant"], scale, over)
        return epochs * n_train * costs.run_rate(sp["dataset"], sp["variant"]) + costs.run_fixed(sp["dataset"])
    hpo = scales.settings("hpo", scale)
    if unit.kind == "final":
        from qallegro.hpo.records import hpo_settings

        over = hpo_settings(hpo).budget(sp["dataset"], final=True)
        epochs, n_train = _budget(sp["dataset"], sp["variant"], scale, over)
        rate = costs.final_rate(sp["dataset"], sp["variant"], sp["rule"], transfer="qdi_study" in sp)
        return epochs * n_train * rate + costs.run_fixed(sp["dataset"])
    if unit.kind == "study":
        from qallegro.hpo.records import hpo_settings

        size = int(scales.settings("campaign", scale)["studies"]["slice"])
        n_trials = int(sp["n_trials"]) - (int(sp["n_trials"]) - 1) // size * size
        epochs, n_train = _budget(sp["dataset"], sp["variant"], scale, hpo_settings(hpo).budget(sp["dataset"]))
        rate, fixed = costs.trial_cost(sp["dataset"], sp["variant"], timed_passes(scale))
        return n_trials * (epochs * n_train * rate + fixed)
    if unit.kind == "retime":  # at least 5 interleaved rounds (`run_retime_unit`)
        return FRONT_SIZE * timed_passes(scale, min_repeats=5) * costs.inference_per_structure(sp["dataset"])
    if unit.kind == "compare":  # one study of the sampler comparison at its own per-trial budget
        from qallegro.hpo.records import SamplerComparison, hpo_settings

        settings = hpo_settings(hpo)
        cmp = SamplerComparison.of(settings, scale)
        budget = {**settings.budget(cmp.dataset), **(cmp.trial_overrides or {})}
        epochs, n_train = _budget(cmp.dataset, cmp.variant, scale, budget)
        rate, fixed = costs.trial_cost(cmp.dataset, cmp.variant, timed_passes(scale))
        return int(cmp.n_trials) * (epochs * n_train * rate + fixed)
    if unit.kind == "retime-finals":  # one seed's final models, at least 5 interleaved rounds
        return len(unit.after) * timed_passes(scale, min_repeats=5) * costs.inference_per_structure(sp["dataset"])
    raise CampaignError(f"no cost model for unit kind {unit.kind!r} ({unit.id})")


def schedule(units: list[Unit], seconds: Mapping[str, float], workers: int) -> dict[str, Any]:
    """Simulate `workers` workers taking the first ready unit in list order: the makespan, and each unit's start
    and end (seconds from the start)."""
    if workers < 1:
        raise CampaignError(f"workers must be at least 1, got {workers}")
    free = [0.0] * workers
    end: dict[str, float] = {}
    start: dict[str, float] = {}
    left = list(units)
    while left:
        w = min(range(workers), key=free.__getitem__)
        now = free[w]
        ready = [u for u in left if all(end.get(a, float("inf")) <= now for a in u.after)]
        if not ready:
            pending = [t for t in end.values() if t > now]
            if not pending:
                raise CampaignError(f"{len(left)} unit(s) wait on units outside the plan, e.g. {left[0].id}")
            free[w] = min(pending)
            continue
        unit = ready[0]
        start[unit.id], end[unit.id] = now, now + float(seconds[unit.id])
        free[w] = end[unit.id]
        left.remove(unit)
    return {"makespan_s": max(end.values(), default=0.0), "start": start, "end": end}


def part_of(unit: Unit) -> str:
    """The group a unit is shown in: `data/culi`, `sweep/<dataset>`, `ablation/<dataset>`, `studies/<dataset>`,
    `retime`, `finals/<dataset>`."""
    head = unit.id.split("/")[0]
    if unit.kind == "culi":
        return unit.id
    if unit.kind in ("study", "final"):
        return f"{'studies' if unit.kind == 'study' else 'finals'}/{unit.spec['dataset']}"
    if unit.kind in ("retime", "retime-finals"):
        return "retime"
    if unit.kind == "compare":
        return "compare"
    return f"{head}/{unit.spec['dataset']}"


def estimate(scale: str, reference: str, workers: int = 2, relative: Mapping[str, float] | None = None,
             culi_folder: Path | None = None) -> dict[str, Any]:
    """Per-unit seconds of the campaign at `scale` from the `reference` records, the parts' totals (worker
    seconds, units) and the makespan on `workers` workers."""
    from qallegro.campaign.plan import plan

    costs = measured_costs(reference, relative, culi_folder)
    if not costs.rate.get((BASE, "allegro")) or not costs.fixed.get(BASE):
        raise CampaignError(f"the {reference} records hold no finished {BASE} Allegro run to scale from "
                            f"({results_root() / reference / 'campaign'})")
    units = plan(scale)
    missing = sorted({u.spec["dataset"] for u in units if "dataset" in u.spec} - costs.measured() - set(costs.relative))
    if missing:
        raise CampaignError(f"no measured cost for {', '.join(missing)} in the {reference} records; give the epoch "
                            f"cost relative to {BASE} (`qallegro campaign estimate --probe` measures it)")
    seconds = {u.id: unit_seconds(u, costs) for u in units}
    parts: dict[str, dict[str, float]] = {}
    for u in units:
        row = parts.setdefault(part_of(u), {"units": 0, "worker_s": 0.0})
        row["units"] += 1
        row["worker_s"] += seconds[u.id]
    sched = schedule(units, seconds, workers)
    return {"scale": scale, "reference": reference, "workers": workers, "relative": dict(costs.relative),
            "culi": costs.culi, "units": seconds, "parts": parts, "worker_s": sum(seconds.values()),
            "makespan_s": sched["makespan_s"]}


def probe_relative(datasets: list[str], scale: str, rounds: int = 2, n_train: int = 40) -> dict[str, float]:
    """Each dataset's epoch cost per training structure relative to benzene, measured in this process: Allegro at
    the scale's ablation settings, `n_train` structures, two epochs, benzene and then the datasets, `rounds` times
    (so that a change of load hits both); the median over rounds of the ratio within a round."""
    import tempfile

    from qallegro.training import resolve_config, train

    s = scales.settings("campaign", scale)["ablation"]
    over = {**s["overrides"], "n_train": n_train, "n_val": 10, "n_test": 10, "max_epochs": 2, "max_wall_s": 3600.0}
    ratios: dict[str, list[float]] = defaultdict(list)
    with tempfile.TemporaryDirectory(prefix="qallegro-probe-") as tmp:
        for r in range(rounds):
            rate: list[float] = []
            for k, dataset in enumerate([BASE, *datasets]):
                run = Path(tmp) / f"{r}-{k}-{dataset}"
                train(resolve_config(dataset, "allegro", scale, overrides=over), run_dir=run, progress=False)
                rate.append(_epoch_rate(run / "epochs.csv", n_train)[0])
            for dataset, value in zip(datasets, rate[1:], strict=True):
                ratios[dataset].append(value / rate[0])
    return {d: round(_median(ratios[d]), 3) for d in datasets}

