"""Paired comparisons across seeds and the verdict of a claim.

Two variants trained with the same seeds (same initialisation seed and batch order, same data) give paired
errors `reference[i]`, `other[i]`. The paired difference `d = other - reference` has mean `d̄`, standard deviation
`s` and a t-based 95% confidence interval `d̄ ± t(0.975, n-1) s / √n`; as a percentage of the reference mean the same
interval is divided by `mean(reference)` (the reference's own spread is not propagated: a stated simplification).

A claim says in which direction the difference goes ("lower": `other` has the lower error). Its verdict is
`supported` when the interval excludes zero in the claimed direction, `contradicted` when it excludes zero the other
way, and `inconclusive` otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from qallegro.errors import CampaignError

SUPPORTED, CONTRADICTED, INCONCLUSIVE = "supported", "contradicted", "inconclusive"
NOT_TESTABLE = "not testable at this scale"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE, NOT_TESTABLE)
MAX_SEEDS = 1000  # `seeds_needed` searches up to this count and returns one more where none suffices
DIRECTIONS = ("lower", "higher")


class StatisticsError(CampaignError):
    """Input that cannot give an interval (fewer than two pairs, unequal lengths, non-finite values)."""


class RelativeInterval:
    """A difference `mean` with its interval [`low`, `high`], and the same in % of `reference_mean` (what the
    paired difference here and the unpaired one of `final_claims` share)."""

    reference_mean: float
    mean: float
    low: float
    high: float

    @property
    def percent(self) -> float:
        return 100.0 * self.mean / self.reference_mean

    @property
    def percent_low(self) -> float:
        return 100.0 * self.low / self.reference_mean

    @property
    def percent_high(self) -> float:
        return 100.0 * self.high / self.reference_mean


@dataclass(frozen=True)
class PairedDifference(RelativeInterval):
    """`other - reference` over paired seeds: mean, t-based interval, and the same relative to the reference."""

    n: int
    reference_mean: float
    other_mean: float
    mean: float
    sd: float
    low: float
    high: float
    confidence: float


def _values(name: str, values: Sequence[float]) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        raise StatisticsError(f"{name}: expected a flat list of per-seed values, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise StatisticsError(f"{name}: non-finite value in {arr.tolist()} (a failed or truncated run?)")
    return arr


def paired_difference(reference: Sequence[float], other: Sequence[float],
                      confidence: float = 0.95) -> PairedDifference:
    """The paired difference `other - reference` (one value per seed, in the same seed order)."""
    ref, oth = _values("reference", reference), _values("other", other)
    if len(ref) != len(oth):
        raise StatisticsError(f"paired values need equal lengths, got {len(ref)} and {len(oth)}")
    if len(ref) < 2:
        raise StatisticsError(f"a confidence interval needs at least two seeds, got {len(ref)}")
    d = oth - ref
    n = len(d)
    sd = float(np.std(d, ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    mean = float(d.mean())
    return PairedDifference(n=n, reference_mean=float(ref.mean()), other_mean=float(oth.mean()), mean=mean, sd=sd,
                            low=mean - half, high=mean + half, confidence=confidence)


def verdict(diff: RelativeInterval, direction: str = "lower") -> str:
    """`supported`, `contradicted` or `inconclusive` for the claim that `other` is `direction` than `reference`."""
    if direction not in DIRECTIONS:
        raise StatisticsError(f"direction must be one of {DIRECTIONS}, got {direction!r}")
    below, above = diff.high < 0, diff.low > 0
    if (direction == "lower" and below) or (direction == "higher" and above):
        return SUPPORTED
    if below or above:
        return CONTRADICTED
    return INCONCLUSIVE


def seeds_needed(sd_difference: float, effect: float, confidence: float = 0.95, max_seeds: int = MAX_SEEDS) -> int:
    """The fewest paired seeds n for which a true mean difference `effect` gives an interval half-width below
    `effect`, i.e. t(0.5 + confidence/2, n-1) · sd / √n < |effect| (the interval then just excludes zero when the
    observed mean equals the true one; about half of such campaigns would resolve it, so this is a lower bound)."""
    if sd_difference < 0 or effect == 0:
        raise StatisticsError("need sd_difference >= 0 and a non-zero effect")
    for n in range(2, max_seeds + 1):
        if float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd_difference / math.sqrt(n) < abs(effect):
            return n
    return max_seeds + 1


@dataclass(frozen=True)
class MeanInterval:
    """The mean of per-seed values and its t-based interval `mean ± t(0.5 + confidence/2, n-1) s / √n`
    (`low`, `high` are None for a single value: no interval)."""

    n: int
    mean: float
    low: float | None
    high: float | None
    confidence: float


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> MeanInterval:
    """The mean of `values` (one per seed) with its confidence interval (none for one value)."""
    arr = _values("values", values)
    if len(arr) == 0:
        raise StatisticsError("a mean needs at least one value")
    mean = float(arr.mean())
    if len(arr) == 1:
        return MeanInterval(n=1, mean=mean, low=None, high=None, confidence=confidence)
    half = float(stats.t.ppf(0.5 + confidence / 2, len(arr) - 1)) * float(np.std(arr, ddof=1)) / math.sqrt(len(arr))
    return MeanInterval(n=len(arr), mean=mean, low=mean - half, high=mean + half, confidence=confidence)


def percent_clause(row: Mapping[str, Any]) -> str:
    """A comparison row's difference in words: "+x% [95% CI a, b] over n seeds", and the paper's number if known."""
    paper = f"; paper {row['paper_percent']:+.1f}%" if row.get("paper_percent") is not None else ""
    return (f"{row['percent']:+.1f}% [95% CI {row['percent_low']:+.1f}, {row['percent_high']:+.1f}] over "
            f"{row['n']} seeds{paper}")
