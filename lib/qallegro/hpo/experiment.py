"""Beyond the paper: which optimiser? Hypervolume vs trials for each sampler at an equal trial budget.

Every (sampler, seed) pair is its own resumable study `compare-<dataset>-<variant>-<sampler>-s<seed>`; the
hypervolumes are computed on objectives normalised by the minimum and maximum over all studies together, with the
reference point (1.1, 1.1), so the curves are comparable (the best possible value is about 1.21).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from qallegro import scales
from qallegro.errors import HpoError
from qallegro.hpo.objective import DEFAULT_OBJECTIVE, objective_names
from qallegro.hpo.pareto import hypervolume_history
from qallegro.hpo.records import SamplerComparison, hpo_settings
from qallegro.utils import atomic_write_text

REFERENCE = (1.1, 1.1)


def compare_samplers(scale: str = scales.DEFAULT_SCALE, *, dataset: str | None = None, variant: str | None = None,
                     samplers: list[str] | None = None, seeds: list[int] | None = None,
                     n_trials: int | None = None, objective: str = DEFAULT_OBJECTIVE, threads: int = 1,
                     progress: bool = True, plots: bool = True, write: bool = True) -> pd.DataFrame:
    """Run (or resume) one study per sampler and seed, and return the hypervolume history of each.

    Defaults come from `presets/hpo.yaml[scale].compare` (which may also set the experiment's own
    `trial_overrides` and `timing`). Returns a DataFrame with columns sampler, seed,
    n_complete, hypervolume (normalised objectives); also written to
    `results/<scale>/hpo/compare-<dataset>-<variant>/hypervolume.csv` (+ `hypervolume.png`) unless not `write`
    (a campaign unit runs one sampler and seed: the page writes the whole comparison).
    """
    from qallegro.hpo.study import StudySpec, create_or_resume, done_trials, run_worker, study_dir

    cmp = SamplerComparison.of(hpo_settings(scales.settings("hpo", scale), f"presets/hpo.yaml[{scale}]"), scale)
    dataset = dataset or cmp.dataset
    samplers = samplers or cmp.samplers
    seeds = seeds if seeds is not None else cmp.seeds
    n_trials = n_trials or cmp.n_trials
    for name, value in (("dataset", dataset), ("samplers", samplers), ("seeds", seeds), ("n_trials", n_trials)):
        if value is None:
            raise HpoError(f"presets/hpo.yaml[{scale}].compare: no {name}; give it to compare_samplers")
    variant = variant or cmp.variant
    samplers, seeds, n_trials = list(samplers), list(seeds), int(n_trials)
    names = list(objective_names(dataset))
    # the experiment's own per-trial budget and timing, on top of the scale's
    overrides = {k: cmp[k] for k in ("trial_overrides", "timing") if k in cmp}
    runs: list[tuple[str, int, np.ndarray]] = []
    for sampler in samplers:
        for seed in seeds:
            spec = StudySpec(dataset=dataset, variant=variant, sampler=sampler, scale=scale, seed=seed,
                             n_trials=n_trials, objective=objective, settings=overrides,
                             name=f"compare-{dataset}-{variant}-{sampler}-s{seed}")
            op = create_or_resume(spec)
            if done_trials(op.study) < op.target:  # a finished study is read, not joined by another worker
                run_worker(op, threads=threads, progress=progress)
            done = [t for t in op.study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
            done.sort(key=lambda t: (t.datetime_complete, t.number))
            runs.append((sampler, seed, np.array([t.values for t in done], float).reshape(-1, 2)))
    df = hypervolume_table(runs)
    if not write:
        return df
    folder = study_dir(scale, f"compare-{dataset}-{variant}")
    df.attrs.update({"dataset": dataset, "variant": variant, "objectives": names, "reference": REFERENCE})
    atomic_write_text(folder / "hypervolume.csv", df.to_csv(index=False))
    if plots:
        from qallegro.hpo.plots import plot_sampler_comparison
        from qallegro.hpo.report import save_figure

        save_figure(plot_sampler_comparison(df, title=f"{dataset} {variant}: samplers at {n_trials} trials"),
                    folder / "hypervolume.png")
    return df


def hypervolume_table(runs: list[tuple[str, int, np.ndarray]]) -> pd.DataFrame:
    """Hypervolume histories of `runs` [(sampler, seed, values [n, 2] in completion order)] on objectives
    normalised by the joint minimum and maximum, reference `REFERENCE`."""
    allpts = np.vstack([v for _, _, v in runs if len(v)]) if any(len(v) for _, _, v in runs) else np.zeros((0, 2))
    if len(allpts) == 0:
        return pd.DataFrame(columns=["sampler", "seed", "n_complete", "hypervolume"])
    lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    span = np.where(hi > lo, hi - lo, 1.0)
    rows: list[dict[str, Any]] = []
    for sampler, seed, vals in runs:
        hv = hypervolume_history((vals - lo) / span, REFERENCE) if len(vals) else []
        rows += [{"sampler": sampler, "seed": seed, "n_complete": i + 1, "hypervolume": float(h)}
                 for i, h in enumerate(hv)]
    return pd.DataFrame(rows)
