"""The Cu-Li pages' tables and sentences, from a generated set's `provenance.json` (`qallegro.culi.generate`) and
its splits."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

SPLITS = ("train", "val", "test", "ood", "dropped")
SPLIT_LABELS = {"train": "training", "val": "validation", "test": "test", "ood": "held-out interface",
                "dropped": "dropped (buffers)"}
CATEGORY_LABELS = {"slab": "slab", "surface_vacancy": "surface vacancy", "supercell_vacancy": "supercell vacancy",
                   "adatom": "adatom", "md": "melt-quench MD"}


def culi_splits(scale: str) -> dict[str, list[Any]]:
    """The generated set's frames at `scale` by split: train, val, test, and the held-out interface (`ood`) when
    the set has one."""
    from qallegro.data import load_dataset
    from qallegro.data.errors import DataOptionError

    out = {split: load_dataset("culi", split, scale=scale) for split in ("train", "val", "test")}
    try:
        out["ood"] = load_dataset("culi", "ood", scale=scale)
    except DataOptionError:  # a set split without a held-out interface
        pass
    return out


def split_sentence(sizes: Mapping[str, int], prov: Mapping[str, Any]) -> str:
    """The split in one sentence for the dataset page: by group (with a pointer to the split page) or at random."""
    n = " / ".join(f"{sizes[s]:,}" for s in ("train", "val", "test"))
    if int((prov.get("split") or {}).get("split_version", 1)) < 2:
        return (f"The frames are split at random (seeded, saved beside the dataset in `splits.json`) into {n} "
                "training / validation / test frames.")
    held = f", and {sizes['ood']:,} frames of the held-out interface" if sizes.get("ood") else ""
    dropped = int(prov.get("n_frames", 0)) - sum(sizes.values())
    buffer = f" ({dropped:,} frames of the buffers are in no split)" if dropped > 0 else ""
    return (f"The frames are split by group (all frames of one relaxation or parent structure in one split, MD "
            f"trajectories in blocks with a buffer between splits; the next page shows how) into {n} training / "
            f"validation / test frames{held}{buffer}.")


def read_provenance(path: Path) -> dict[str, Any] | None:
    """The provenance record of a generated Cu-Li set, or None when the set was not generated at this scale."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def split_counts(prov: Mapping[str, Any]) -> pd.DataFrame:
    """Frames per category (rows) and split (columns) of a group split; empty for a version-1 (random) split."""
    counts = (prov.get("split") or {}).get("counts")
    if not counts:
        return pd.DataFrame()
    df = pd.DataFrame({s: counts.get(s, {}) for s in SPLITS if s in counts}).fillna(0).astype(int)
    df.loc["all"] = df.sum()
    df = df.rename(index=CATEGORY_LABELS, columns=SPLIT_LABELS)
    df.index.name = "category"
    return df


def decorrelation_table(prov: Mapping[str, Any]) -> pd.DataFrame:
    """Each melt-quench trajectory's force decorrelation time, and whether it is held out."""
    split = prov.get("split") or {}
    held = {g.removeprefix("Li/Cu") for g in split.get("ood_groups", [])}
    times = split.get("force_decorrelation_fs") or {}
    bases = [name.removeprefix("md:").split("#")[0] for name in times]
    rows = []
    for name, t in times.items():
        base, _, k = name.removeprefix("md:").partition("#")
        label = f"{base}, run {int(k or 0) + 1}" if bases.count(base) > 1 else base  # "#1": the second run
        rows.append({"trajectory": label, "force decorrelation time": t,
                     "held out": base.removeprefix("Li/Cu") in held})
    return pd.DataFrame(rows)


def split_summary(prov: Mapping[str, Any]) -> str:
    """One paragraph stating the split of a generated set (its numbers from the provenance record)."""
    split = prov.get("split") or {}
    n = prov.get("n_frames", 0)
    if int(split.get("split_version", 1)) < 2:
        return (f"The set at this scale has {n:,} frames, split as single frames at random (split version 1): "
                "no groups, blocks or buffers, so neighbouring MD frames sit in different splits.")
    decor = list((split.get("force_decorrelation_fs") or {}).values())
    held = ", ".join(split.get("ood_groups", [])) or "no interface"
    return (f"The set at this scale has {n:,} frames, split by group (split version {split['split_version']}; "
            "version 1 was a random split of single frames): "
            f"MD blocks of {split['block_fs']:g} fs; the longest force decorrelation time is {max(decor):.0f} fs, so "
            f"the buffer between blocks of different splits is {split['buffer_fs']:g} fs "
            f"({split.get('n_dropped', 0)} frames dropped). Held out whole: {held} "
            f"({split.get('n_ood', 0)} frames).")
