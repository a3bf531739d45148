"""The paper's claims about its final models, tested on the campaign's final runs (each study's chosen
configuration trained with several seeds; QDI transfers are not part of these claims).

Accuracy: the paired difference by seed of the test error (`claims.evaluate_claim` on the final records, the
paper's number from its Tables 4-5). Inference time: a seed does not change a configuration's cost, so the final
models of one seed are re-timed together in interleaved rounds (`retime/finals-<dataset>`, process CPU time of
every round, and the matrix-product FLOPs per structure); the rounds pair, and the interval is the t 95% interval of
the per-round differences, in % of the faster variant's mean. Until that unit has run, each variant's time is its
chosen trial's re-timing in its study's retime record; those were timed in different units, so the interval is
Welch's. `supported` when it excludes zero in the claimed direction, `contradicted` when
it excludes zero the other way, `inconclusive` otherwise, and also when the FLOPs (load-independent) point the
other way from a resolved time difference. A claim whose finals have fewer than two untruncated seeds per variant
is `not testable at this scale`.

Where the scale cuts a dataset's final runs (`cut` in presets/campaign.yaml), the claims are tested on the
studies' most accurate trials (the configurations the finals would train; `study_time_row`, `study_error_row`):
time as above from the studies' re-timings (Welch), error as a single run each against the head ablation's seed
spread, as `tradeoff` compares front members: the difference must exceed `1.96·√2·s·ē` (`s` the larger of the two
heads' relative seed spreads, `ē` the two errors' mean); `not testable` without that spread.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats as sps

from qallegro import stats
from qallegro.campaign import words
from qallegro.campaign.claims import Claim, evaluate_claim
from qallegro.campaign.study_records import StudyRecords
from qallegro.errors import CampaignError


@dataclass(frozen=True)
class Interval(stats.RelativeInterval):
    """`mean(other) - mean(reference)` of two unpaired samples with Welch's 95% interval, and the same in %."""

    n_reference: int
    n_other: int
    reference_mean: float
    mean: float
    low: float
    high: float


def welch(reference: Sequence[float], other: Sequence[float], confidence: float = 0.95) -> Interval:
    """Welch's interval of `mean(other) - mean(reference)` (unequal variances, Satterthwaite's degrees)."""
    a, b = np.asarray(reference, float), np.asarray(other, float)
    if len(a) < 2 or len(b) < 2:
        raise stats.StatisticsError(f"Welch's interval needs two values per side, got {len(a)} and {len(b)}")
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if se > 0 else float("inf")
    half = float(sps.t.ppf(0.5 + confidence / 2, df)) * se
    d = float(b.mean() - a.mean())
    return Interval(len(a), len(b), float(a.mean()), d, d - half, d + half)


def _finals(records: Iterable[Mapping[str, Any]], dataset: str, variant: str) -> list[Mapping[str, Any]]:
    return [r for r in records if r.get("dataset") == dataset and r.get("variant") == variant
            and not r.get("transfer") and not r.get("truncated")]


def chosen_trial(records: Iterable[Mapping[str, Any]], dataset: str, variant: str) -> tuple[str, int] | None:
    """The study and trial every final run of (`dataset`, `variant`) trained, or None without finals."""
    chosen = {(r["chosen"]["study"], int(r["chosen"]["trial"])) for r in _finals(records, dataset, variant)}
    if len(chosen) > 1:
        raise CampaignError(f"the final runs of {dataset} {variant} trained different configurations {sorted(chosen)}")
    return next(iter(chosen), None)


def paired_time_row(row: dict[str, Any], seeds: Mapping[str, int], retime: Mapping[str, Any]) -> dict[str, Any]:
    """The time test from the dataset's final-model re-timing (`retime/finals-<dataset>`): both variants timed in
    the same interleaved rounds, so the rounds pair: the t 95% interval of the per-round differences."""
    faster, slower = row["faster"], row["slower"]
    a, b = retime["finals"][faster], retime["finals"][slower]
    if a.get("clock") != b.get("clock"):
        return {**row, "n_seeds": seeds, "verdict": stats.NOT_TESTABLE,
                "reason": f"the two re-timings used different clocks {a.get('clock')}, {b.get('clock')}"}
    d = stats.paired_difference(a["times_s"], b["times_s"])
    return {**row, "n_seeds": seeds, "paired": True, "n": [d.n, d.n], "clock": a.get("clock"),
            **_time_outcome(d, a, b)}


def _time_outcome(d: stats.RelativeInterval, faster: Mapping[str, Any], slower: Mapping[str, Any]
                  ) -> dict[str, Any]:
    """The time difference `d` (slower - faster) as % and a verdict; inconclusive where the matrix-product FLOPs
    of the two re-timings point the other way from a resolved difference."""
    verdict = stats.verdict(d, "higher")
    flops = [faster.get("matmul_flops_per_structure"), slower.get("matmul_flops_per_structure")]
    ratio = flops[1] / flops[0] if all(flops) else None
    reason = ""
    if ratio is not None and verdict != stats.INCONCLUSIVE and (ratio > 1) != (d.mean > 0) and ratio != 1:
        verdict, reason = stats.INCONCLUSIVE, "CPU time and matrix-product FLOPs point opposite ways"
    return {"faster_mean_s": d.reference_mean, "percent": d.percent, "percent_low": d.percent_low,
            "percent_high": d.percent_high, "flops_ratio": ratio, "verdict": verdict, "reason": reason}


def time_row(records: Sequence[Mapping[str, Any]], studies: Sequence[StudyRecords], dataset: str, faster: str,
             slower: str, retimes: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """The claim "`slower` takes longer than `faster` on `dataset`": from the dataset's final-model re-timing
    (`retimes[dataset]`, rounds paired) when it holds both variants, else from the re-timings of the chosen trials
    in their studies (unpaired)."""
    row: dict[str, Any] = {"test": "time", "dataset": dataset, "faster": faster, "slower": slower}
    seeds = {v: len(_finals(records, dataset, v)) for v in (faster, slower)}
    if min(seeds.values()) < 2:
        return {**row, "n_seeds": seeds, "verdict": stats.NOT_TESTABLE,
                "reason": f"finished final runs per variant: {words.seed_counts(seeds)}; need two each"}
    retime = (retimes or {}).get(dataset)
    if retime is not None and {faster, slower} <= set(retime.get("finals") or {}):
        return paired_time_row(row, seeds, retime)
    return {**_unpaired_time_row(row, studies, {v: chosen_trial(records, dataset, v) for v in (faster, slower)}),
            "n_seeds": seeds}


def _unpaired_time_row(row: dict[str, Any], studies: Sequence[StudyRecords],
                       chosen: Mapping[str, tuple[str, int]]) -> dict[str, Any]:
    """The time test from the re-timings of the `chosen` (study, trial) of each variant in their studies' retime
    units (timed in different units, so unpaired: Welch's interval)."""
    by_name = {s.name: s for s in studies}
    timed = {}
    for v, (name, trial) in chosen.items():
        member = by_name[name].member(trial) if name in by_name else None
        if member is None:
            return {**row, "verdict": stats.NOT_TESTABLE,
                    "reason": f"trial {trial} of {name} has no re-timing (retime/{name}: not done, or not of it)"}
        timed[v] = {"study": name, "trial": trial, **member}
    clocks = {timed[v].get("clock") for v in timed}
    if len(clocks) > 1:
        return {**row, "verdict": stats.NOT_TESTABLE,
                "reason": f"the two re-timings used different clocks {sorted(map(str, clocks))}"}
    faster, slower = row["faster"], row["slower"]
    d = welch(timed[faster]["times_s"], timed[slower]["times_s"])
    return {**row, "chosen": {v: [timed[v]["study"], timed[v]["trial"]] for v in timed},
            "n": [d.n_reference, d.n_other], "clock": clocks.pop(), **_time_outcome(d, timed[faster], timed[slower])}


def most_accurate(studies: Sequence[StudyRecords], dataset: str, variant: str) -> tuple[StudyRecords, int] | None:
    """The study of (`dataset`, `variant`) and its most accurate complete trial (the finals' `lowest_error`
    rule), or None without a study or a complete trial."""
    study = next((s for s in studies if s.dataset == dataset and s.variant == variant), None)
    if study is None or study.trials.empty:
        return None
    return study, int(study.trials.loc[study.trials[study.error_name].idxmin(), "number"])


def study_time_row(studies: Sequence[StudyRecords], dataset: str, faster: str, slower: str) -> dict[str, Any]:
    """Where the finals are cut: "`slower` takes longer than `faster` on `dataset`" from the re-timings of the
    studies' most accurate trials (unpaired: Welch)."""
    row: dict[str, Any] = {"test": "time", "level": "studies", "dataset": dataset, "faster": faster,
                           "slower": slower}
    chosen = {}
    for v in (faster, slower):
        found = most_accurate(studies, dataset, v)
        if found is None:
            return {**row, "verdict": stats.NOT_TESTABLE, "reason": f"no complete trial of {dataset} {v}"}
        chosen[v] = (found[0].name, found[1])
    return _unpaired_time_row(row, studies, chosen)


def study_error_row(studies: Sequence[StudyRecords], ablation: Iterable[Mapping[str, Any]], dataset: str,
                    better: str, worse: str) -> dict[str, Any]:
    """Where the finals are cut: "`better` is more accurate than `worse` on `dataset`" from the validation errors
    of the two studies' most accurate trials (one run each) against the head ablation's seed spread (see the
    module docstring)."""
    from qallegro.campaign.ablation import error_key
    from qallegro.campaign.tradeoff import error_threshold, seed_spread

    metric = error_key(dataset)
    row: dict[str, Any] = {"test": "error", "level": "studies", "dataset": dataset, "other": better,
                           "reference": worse, "metric": metric}
    found = {v: most_accurate(studies, dataset, v) for v in (better, worse)}
    if any(f is None for f in found.values()):
        return {**row, "verdict": stats.NOT_TESTABLE,
                "reason": f"no complete trial of {dataset} {' / '.join(v for v, f in found.items() if f is None)}"}
    errors = {v: float(s.trials.loc[s.trials["number"] == n, s.error_name].iloc[0]) for v, (s, n) in found.items()}
    spreads = [seed_spread(ablation, dataset, v, metric) for v in (better, worse)]
    row.update(chosen={v: [s.name, n] for v, (s, n) in found.items()}, errors=errors)
    if any(x is None for x in spreads):
        return {**row, "verdict": stats.NOT_TESTABLE, "missing": "seed spread",
                "reason": f"the head ablation of {words.dataset(dataset)} measured no seed spread of both heads"}
    spread = max(spreads)
    threshold = error_threshold(errors[better], errors[worse], spread)
    diff = errors[worse] - errors[better]  # > 0: `better` is the more accurate
    verdict = (stats.SUPPORTED if diff > threshold else stats.CONTRADICTED if diff < -threshold
               else stats.INCONCLUSIVE)
    return {**row, "spread": spread, "percent": 100 * diff / errors[worse],
            "threshold_percent": 100 * threshold / errors[worse], "verdict": verdict}


def error_row(records: Sequence[Mapping[str, Any]], dataset: str, better: str, worse: str) -> dict[str, Any]:
    """The claim "`better` has a lower test error than `worse` on `dataset`", paired by seed over the finals."""
    from qallegro.campaign.ablation import error_key

    metric = error_key(dataset)
    claim = Claim(f"final-{dataset}-{better}-{worse}", f"{better} more accurate than {worse} on {dataset}",
                  dataset, metric, worse, better)
    finals = [r for r in records if not r.get("transfer")]
    return {"test": "error", **evaluate_claim(finals, claim, "test")}


def time_sentence(row: Mapping[str, Any]) -> str:
    slower, faster = words.variant(row["slower"]), words.variant(row["faster"])
    head = f"{words.dataset(row['dataset'])}: {slower}'s inference time relative to {faster}'s (claimed longer)"
    if "percent" not in row:
        return f"{head}: {row['reason']}"
    flops = f", FLOPs ×{row['flops_ratio']:.2f}" if row.get("flops_ratio") is not None else ""
    why = f" ({row['reason']})" if row["reason"] else ""
    rounds = (f"{row['n'][0]} paired rounds of the final models" if row.get("paired")
              else f"{row['n'][0]}+{row['n'][1]} rounds"
              + (" of the studies' most accurate trials" if row.get("level") == "studies" else ""))
    return (f"{head}: {row['percent']:+.1f}% [95% CI {row['percent_low']:+.1f}, {row['percent_high']:+.1f}] "
            f"{row['clock']} time over {rounds}{flops}{why}")


def error_sentence(row: Mapping[str, Any]) -> str:
    studies = row.get("level") == "studies"
    split = "the studies' most accurate trials, validation split" if studies else "test split"
    head = (f"{words.dataset(row['dataset'])}: {words.variant(row['other'])} vs {words.variant(row['reference'])} "
            f"({words.metric(row['metric'])}, {split})")
    if "percent" not in row:
        return f"{head}: {row['reason']}"
    if studies:
        lower = "lower" if row["percent"] >= 0 else "higher"
        return (f"{head}: {abs(row['percent']):.1f}% {lower}, against ±{row['threshold_percent']:.1f}% from the "
                f"head ablation's seed spread ({100 * row['spread']:.1f}%)")
    return f"{head}: {stats.percent_clause(row)}"


RULE = ("time: the final models of one seed re-timed together in interleaved rounds (retime/finals-<dataset>; a "
        "seed does not change the cost), paired by round: t 95% CI; before that unit ran, the chosen trials' "
        "re-timings in their studies, unpaired: Welch 95% CI; inconclusive where the matrix-product FLOPs point "
        "the other way")
STUDY_RULE = ("the final runs are cut at this scale, so the studies' most accurate trials (the configurations the "
              "finals would train) are compared")
STUDY_TIME = ("time: their re-timings in their studies, unpaired: Welch 95% CI, inconclusive where the matrix-product "
              "FLOPs point the other way")
STUDY_ERROR = ("error: one validation run each, resolved when the difference exceeds 1.96·√2·s·ē (s: the larger "
               "relative seed spread of the two heads in the head ablation)")
