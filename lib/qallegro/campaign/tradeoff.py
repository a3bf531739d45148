"""Fig. 2's claim: every dataset shows a trade-off between accuracy and inference time.

The paper draws a front of several points for every variant of every dataset, so each study (dataset, variant) is
tested on its own front, re-timed by the campaign's retime unit: every member timed once per round, in a new random
order each round, so that members are compared round by round under the same load.

Two front members differ in time when the paired 95% interval of their time difference over the rounds
(`stats.paired_difference`) excludes zero; they differ in error when the error difference exceeds
`1.96·√2·s·ē` (two single runs whose relative seed spread `s` is the standard deviation over mean of the same
head's validation error in the head ablation of that dataset, `ē` their mean error; a trial has one seed, so the
ablation's spread, at its own budget and model size, stands in for the trials'). A study

- `supported`: two members differ in both, the more accurate one being the slower, and neither is behind a third
  member in both;
- `contradicted`: one member is the most accurate and the fastest, ahead of every other member in both;
- `inconclusive` otherwise (one member, or differences within the spread);
- `not testable at this scale`: the front has not been re-timed, or the ablation measured no seed spread.

The claim's verdict combines the studies (`verdicts.combine`): contradicted when one study is.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from scipy import stats as sps

from qallegro import stats
from qallegro.campaign import words
from qallegro.campaign.study_records import StudyRecords

Z95 = float(sps.norm.ppf(0.975))


@dataclass(frozen=True)
class Member:
    """One re-timed front member: its trial number, validation error and time of every round."""

    number: int
    error: float
    times_s: tuple[float, ...]

    @property
    def median_s(self) -> float:
        return float(statistics.median(self.times_s))


def seed_spread(ablation: Iterable[Mapping[str, Any]], dataset: str, variant: str, metric: str) -> float | None:
    """The relative seed spread (sd / mean over untruncated seeds) of `variant`'s validation `metric` in the head
    ablation of `dataset`; None with fewer than two seeds."""
    vals = [float(r["val"][metric]) for r in ablation if r.get("dataset") == dataset and r.get("variant") == variant
            and not r.get("truncated") and (r.get("val") or {}).get(metric) is not None]
    return statistics.stdev(vals) / statistics.fmean(vals) if len(vals) > 1 else None


def error_threshold(a: float, b: float, spread: float) -> float:
    """The error difference two single runs must exceed: 1.96·√2 · spread · their mean error."""
    return Z95 * math.sqrt(2.0) * spread * 0.5 * (a + b)


def members(study: StudyRecords) -> list[Member]:
    """The re-timed front members of `study` with their errors from the study's trials."""
    errors = {int(n): float(e) for n, e in zip(study.trials["number"], study.trials[study.error_name])}
    return [Member(int(k), errors[int(k)], tuple(float(t) for t in m["times_s"]))
            for k, m in (study.retime or {}).get("front", {}).items() if int(k) in errors]


def _pair(accurate: Member, other: Member, spread: float) -> dict[str, Any]:
    """`accurate` (the lower error) against `other`: error difference and threshold, time `accurate - other`
    paired by round, in % of `other`."""
    d = stats.paired_difference(other.times_s, accurate.times_s)
    return {"accurate": accurate.number, "other": other.number,
            "error_percent": 100.0 * (accurate.error - other.error) / other.error,
            "error_threshold_percent": 100.0 * error_threshold(accurate.error, other.error, spread) / other.error,
            "error_resolved": other.error - accurate.error > error_threshold(accurate.error, other.error, spread),
            "time_percent": d.percent, "time_low": d.percent_low, "time_high": d.percent_high, "rounds": d.n}


def front_verdict(front: Sequence[Member], spread: float) -> dict[str, Any]:
    """The verdict of one re-timed front (see the module docstring), with the pair of members that decided it."""
    pairs = [_pair(a, b, spread) for a in front for b in front if a.error < b.error]
    if not pairs:
        return {"verdict": stats.INCONCLUSIVE, "pair": None,
                "reason": f"fewer than two front members of different error ({len(front)} member(s))"}
    best = min(front, key=lambda m: m.error)
    fastest = min(front, key=lambda m: m.median_s)
    ahead = [p for p in pairs if p["accurate"] == best.number]
    if best is fastest and ahead and all(p["error_resolved"] and p["time_high"] < 0 for p in ahead):
        closest = max(ahead, key=lambda p: p["time_high"])
        return {"verdict": stats.CONTRADICTED, "reason": "", "pair": closest}
    dominated = {p["other"] for p in pairs if p["error_resolved"] and p["time_high"] < 0}
    trade = [p for p in pairs if p["error_resolved"] and p["time_low"] > 0
             and not dominated & {p["accurate"], p["other"]}]
    if trade:
        first = max(trade, key=lambda p: (p["accurate"] == best.number) + (p["other"] == fastest.number))
        return {"verdict": stats.SUPPORTED, "reason": "", "pair": first}
    widest = max(pairs, key=lambda p: abs(p["error_percent"]))
    return {"verdict": stats.INCONCLUSIVE, "reason": "no two members differ beyond the spread in both",
            "pair": widest}


def study_row(study: StudyRecords, ablation: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One study's test: its verdict, the front, the seed spread used and the deciding pair."""
    from qallegro.campaign.ablation import error_key

    row: dict[str, Any] = {"test": "trade-off", "study": study.name, "dataset": study.dataset,
                           "variant": study.variant, "n_trials": len(study.trials), "target": study.target}
    spread = seed_spread(ablation, study.dataset, study.variant, error_key(study.dataset))
    if study.retime is None or study.trials.empty:
        why = f"front not re-timed yet (retime/{study.name}; {len(study.trials)} of {study.target} trials)"
        return {**row, "verdict": stats.NOT_TESTABLE, "reason": why}
    if spread is None:
        why = f"no seed spread of {study.variant} on {study.dataset} (its head ablation has < 2 seeds)"
        return {**row, "verdict": stats.NOT_TESTABLE, "reason": why, "missing": "seed spread"}
    front = members(study)
    return {**row, "seed_spread": spread, "n_members": len(front), **front_verdict(front, spread)}


def sentence(row: Mapping[str, Any]) -> str:
    """The evidence of one study's test in one clause."""
    head = words.study(row["dataset"], row["variant"])
    p = row.get("pair")
    if p is None:
        return f"{head}: {row['verdict']} ({row['reason']})"
    return (f"{head}: {row['verdict']}, {row['n_members']} re-timed members; trial {p['accurate']} vs "
            f"{p['other']}: error {p['error_percent']:+.1f}% (beyond ±{p['error_threshold_percent']:.1f}%: "
            f"{'yes' if p['error_resolved'] else 'no'}), time {p['time_percent']:+.1f}% [95% CI "
            f"{p['time_low']:+.1f}, {p['time_high']:+.1f}] over {p['rounds']} rounds")


RULE = ("a study shows a trade-off when two members of its front (the front of the times measured during the study, "
        "all re-timed together after it, so some fall off the re-timed front its page marks) differ beyond the "
        "spread in error "
        "(1.96·√2 × the ablation's seed spread) and in time (paired 95% CI over interleaved rounds), the more "
        "accurate being slower and neither behind a third member in both; contradicted when one member is the most "
        "accurate and the fastest beyond both")
