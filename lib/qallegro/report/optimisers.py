"""The prose of the optimiser page (`book/beyond_optimisers.ipynb`): the benzene sampler comparison of
`qallegro.hpo.experiment.compare_samplers` at a scale, or why the scale does not run it (`campaign.plan.cuts`).
Every number comes from the comparison's records or the presets."""

from __future__ import annotations

import pandas as pd

from qallegro import paper
from qallegro.data.datasets import DATASET_LABELS
from qallegro.models.variants import VARIANT_LABELS
from qallegro.report.studies import budget_words
from qallegro.scales import settings


def sampler_ranking(hv: pd.DataFrame) -> pd.DataFrame:
    """The samplers of a `qallegro.hpo.experiment.compare_samplers` result ranked by their mean hypervolume after
    each run's last trial (best first): mean, worst seed, best seed and number of seeds."""
    last = hv.sort_values("n_complete").groupby(["sampler", "seed"]).tail(1)
    final = last.groupby("sampler")["hypervolume"].agg(["mean", "min", "max", "count"])
    final = final.sort_values("mean", ascending=False)
    final.columns = ["mean", "worst seed", "best seed", "seeds"]
    return final


def separated_pairs(final: pd.DataFrame) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """The pairs of samplers of a `sampler_ranking` (better first) whose means differ by more than the range
    between the seeds of either, and all pairs."""
    spread = final["best seed"] - final["worst seed"]
    names = list(final.index)
    pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]]
    return [(a, b) for a, b in pairs
            if final.at[a, "mean"] - final.at[b, "mean"] > max(spread[a], spread[b])], pairs


def initial_design(scale: str, samplers: list[str]) -> int:
    """The largest initial design (random trials before guided proposals) of `samplers` at `scale`."""
    options = settings("hpo", scale)["samplers"]
    return max((next((int(v) for k, v in (options.get(name) or {}).items()
                      if k in ("population_size", "n_startup_trials", "n_init")), 0) for name in samplers), default=0)


def texts(scale: str, hv: pd.DataFrame | None, cut: str | None = None) -> dict[str, str]:
    """MyST paragraphs for the page: `experiment` (before the figure), `caption` (after it) and `findings` (after
    the ranking table); with `cut` (the reason the scale leaves the comparison out) only `experiment`, saying so."""
    evaluations = paper.values()["hpo"]["evaluations_per_variant_and_dataset"]
    big = settings("hpo", "paper")["compare"]
    paper_scale = (f"The `paper` scale of this experiment ({big['n_trials']} trials, {len(big['seeds'])} seeds, "
                   f"samplers {', '.join(big['samplers'])}) gives the surrogate-based samplers room to differ; its "
                   f"trials are still {big['n_trials'] / evaluations:.0%} of the paper's {evaluations:,} evaluations "
                   "per study.")
    if hv is None:
        return {"experiment": f"**Not run at the {scale} scale**: {cut}. The samplers are compared without "
                              "training cost on {doc}`hpo_search`: on the learning-curve table (configurations "
                              "trained once, every sampler replayed over many seeds) and on standard test problems. "
                              "`qallegro hpo compare --scale SCALE` runs this comparison at any scale. "
                              + paper_scale,
                "caption": "", "findings": ""}
    cfg = settings("hpo", scale)["compare"]
    case = f"{VARIANT_LABELS[hv.attrs['variant']]} on {DATASET_LABELS[hv.attrs['dataset']]}"
    final = sampler_ranking(hv)
    cobra = final.index.get_loc("samo-cobra") + 1 if "samo-cobra" in final.index else None
    rank = "not run" if cobra is None else f"{cobra} of {len(final)}" + (" (last)" if cobra == len(final) else "")
    apart, pairs = separated_pairs(final)
    n_seeds = len(cfg["seeds"])
    separation = (f"{len(apart)} of the {len(pairs)} pairs of samplers differ in mean by more than the range "
                  "between the seeds of either" + (f" ({'; '.join(f'{a} above {b}' for a, b in apart)})" if apart
                                                   else "")
                  + f"; the other pairs are not told apart by {n_seeds} seeds"
                  + ("" if cobra is None or any("samo-cobra" in p for p in apart) else
                     ", so this ranking is no verdict on SAMO-COBRA"))
    return {
        "experiment": (f"The experiment: {case}, {cfg['n_trials']} trials per run, {len(cfg['seeds'])} seeds per "
                       f"sampler ({', '.join(cfg['samplers'])}); each trial trains with "
                       f"{budget_words(cfg.get('trial_overrides', {}))} (shorter than the studies' trials, so that "
                       "the comparison fits the scale's time). The sampler settings of this scale are in the preset "
                       "(`samplers`)."),
        "caption": "The line is the mean over seeds, the band the full range. After the last trial:",
        "findings": (f"With this budget {final.index[0]} ends highest on average, and our SAMO-COBRA-style sampler, "
                     f"the paper's choice, ranks {rank}: {separation}. Each run has {cfg['n_trials']} trials, "
                     "of which each sampler's initial design "
                     f"takes at most the first {initial_design(scale, cfg['samplers'])} (random search has none). "
                     + paper_scale)}
