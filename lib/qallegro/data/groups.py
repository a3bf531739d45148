"""Splits by group: no structure, relaxation or stretch of an MD trajectory straddles two splits.

A frame is described by its `category`, its `group` (the parent structure: every frame derived from one surface,
relaxation or interface shares it) and, for MD frames, its `trajectory` and `time_fs`. `group_split` then

- puts every frame of a non-MD group into one split (groups drawn at random, each to the split furthest below its
  target share of the non-MD frames);
- holds out every trajectory whose group is in `ood_groups` as the out-of-distribution split `ood`;
- cuts every other MD trajectory into contiguous blocks of `block_fs`, draws a split for each block, and drops the
  frames within `buffer_fs` after a boundary between blocks of different splits, so that no validation or test frame
  lies within `buffer_fs` of a training frame of the same trajectory;
- orders each split's frame list as a seeded random draw stratified by category, so that any prefix of it (the first
  `n_train` frames) is a random subset with the split's category proportions, never a sorted prefix.

`force_decorrelation_fs` measures the time after which the forces of an MD trajectory are decorrelated (the first lag
at which the normalised force autocorrelation falls below 1/e), the lower bound of `buffer_fs`.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from qallegro.data.errors import InvalidDataError

SPLIT_VERSION = 2
FIT_SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class FrameGroup:
    """The split-relevant metadata of one frame (`trajectory` empty and `time_fs` NaN for non-MD frames)."""

    category: str
    group: str
    trajectory: str = ""
    time_fs: float = math.nan


def force_decorrelation_fs(forces: Sequence[np.ndarray], dt_fs: float, max_lag: int | None = None) -> float:
    """First lag (fs) at which the force autocorrelation of one trajectory falls below 1/e.

    forces: [T] arrays of shape [N, 3] (one trajectory, equally spaced by `dt_fs`). The per-atom mean force over the
    trajectory is removed; C(k) = <F(t) . F(t+k)> / <F(t) . F(t)> averaged over t and atoms. Returns the lag in fs,
    linearly interpolated between frames; `inf` when C never falls below 1/e within `max_lag` frames.
    """
    f = np.asarray(forces, dtype=float)
    if f.ndim != 3 or f.shape[0] < 3:
        raise ValueError(f"need at least 3 frames of [N, 3] forces, got shape {f.shape}")
    f = f - f.mean(axis=0, keepdims=True)
    t = f.shape[0]
    max_lag = min(t - 1, max_lag or t // 2)
    c0 = float((f * f).sum(axis=(1, 2)).mean())
    prev = 1.0
    for k in range(1, max_lag + 1):
        ck = float((f[:-k] * f[k:]).sum(axis=(1, 2)).mean()) / c0
        if ck < 1.0 / math.e:
            frac = (prev - 1.0 / math.e) / (prev - ck)
            return (k - 1 + frac) * dt_fs
        prev = ck
    return math.inf


def _shares(fractions: dict[str, float]) -> dict[str, float]:
    missing = [s for s in FIT_SPLITS if s not in fractions]
    if missing or any(fractions[s] <= 0 for s in FIT_SPLITS):
        raise InvalidDataError(f"split fractions need positive train, val and test shares, got {fractions}")
    total = sum(fractions[s] for s in FIT_SPLITS)
    return {s: fractions[s] / total for s in FIT_SPLITS}


def _pick(filled: dict[str, float], shares: dict[str, float], rng: np.random.Generator) -> str:
    """The split furthest below its share (ties broken at random)."""
    total = sum(filled.values()) or 1.0
    deficit = {s: shares[s] - filled[s] / total for s in FIT_SPLITS}
    best = max(deficit.values())
    tied = [s for s in FIT_SPLITS if deficit[s] >= best - 1e-12]
    return tied[int(rng.integers(len(tied)))]


def stratified_order(indices: Sequence[int], categories: Sequence[str], rng: np.random.Generator) -> list[int]:
    """`indices` in a random order whose every prefix has about the categories' overall proportions."""
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, c in zip(indices, categories):
        by_cat[c].append(int(i))
    keys: list[tuple[float, int]] = []
    for members in by_cat.values():
        perm = rng.permutation(len(members))
        offset = rng.random()
        keys += [((r + offset) / len(members), members[p]) for r, p in enumerate(perm)]
    return [i for _, i in sorted(keys)]


def group_split(frames: Sequence[FrameGroup], fractions: dict[str, float], seed: int, *, block_fs: float,
                buffer_fs: float, ood_groups: Sequence[str] = ()) -> dict[str, list[int]]:
    """Frame indices of `train`, `val`, `test`, `ood` and `dropped` (buffer frames), as described above."""
    if block_fs <= buffer_fs:
        raise InvalidDataError(f"block_fs ({block_fs}) must exceed buffer_fs ({buffer_fs})")
    shares = _shares(fractions)
    rng = np.random.default_rng([seed, SPLIT_VERSION])
    out: dict[str, list[int]] = {s: [] for s in (*FIT_SPLITS, "ood", "dropped")}
    ood = set(ood_groups)
    known = {fr.group for fr in frames}
    if ood - known:
        raise InvalidDataError(f"held-out group(s) {sorted(ood - known)} not in the dataset; groups: {sorted(known)}")

    # non-MD groups (a surface with its slab, vacancies and adatoms), whole, in random order
    groups: dict[str, list[int]] = defaultdict(list)
    trajectories: dict[str, list[int]] = defaultdict(list)
    for i, fr in enumerate(frames):
        if fr.trajectory:
            trajectories[fr.trajectory].append(i)
        else:
            groups[fr.group].append(i)
    filled: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(FIT_SPLITS, 0.0))
    names = sorted(groups)
    for k in rng.permutation(len(names)):
        members = groups[names[k]]
        if names[k] in ood:
            out["ood"] += members
            continue
        split = _pick(filled["structures"], shares, rng)
        out[split] += members
        filled["structures"][split] += len(members)

    # MD trajectories: contiguous blocks with buffers at the boundaries between splits
    for name in sorted(trajectories):
        members = sorted(trajectories[name], key=lambda i: frames[i].time_fs)
        times = np.array([frames[i].time_fs for i in members])
        if not np.isfinite(times).all():
            raise InvalidDataError(f"MD trajectory {name!r} has frames without time_fs")
        if frames[members[0]].group in ood:
            out["ood"] += members
            continue
        block = np.floor((times - times[0]) / block_fs).astype(int)
        labels: list[str] = []
        for _ in range(int(block.max()) + 1):
            split = _pick(filled["md"], shares, rng)
            labels.append(split)
            filled["md"][split] += float(np.mean(block == len(labels) - 1)) * len(members)
        start_of = {b: times[block == b].min() for b in np.unique(block)}
        for i, t, b in zip(members, times, block):
            changed = b > 0 and labels[b] != labels[b - 1]
            if changed and t - start_of[b] < buffer_fs:
                out["dropped"].append(i)
            else:
                out[labels[b]].append(i)
    for split in FIT_SPLITS:
        if not out[split]:
            raise InvalidDataError(f"the group split leaves {split!r} empty ({len(frames)} frames, "
                                   f"{len(groups)} structure groups, {len(trajectories)} trajectories)")
    for split in (*FIT_SPLITS, "ood"):
        out[split] = stratified_order(out[split], [frames[i].category for i in out[split]], rng)
    out["dropped"].sort()
    return out
