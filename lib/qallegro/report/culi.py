"""The Cu-Li split page's tables, from a generated set's `provenance.json` (`qallegro.culi.generate`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

SPLITS = ("train", "val", "test", "ood", "dropped")


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
    df.index.name = "category"
    df.loc["all"] = df.sum()
    return df


def decorrelation_table(prov: Mapping[str, Any]) -> pd.DataFrame:
    """Each melt-quench trajectory's force decorrelation time, and whether it is held out."""
    split = prov.get("split") or {}
    held = {g.removeprefix("Li/Cu") for g in split.get("ood_groups", [])}
    rows = [{"trajectory": name.removeprefix("md:"), "force decorrelation time": t,
             "held out": name.removeprefix("md:Li/Cu").split("#")[0] in held}
            for name, t in (split.get("force_decorrelation_fs") or {}).items()]
    return pd.DataFrame(rows)


def split_facts(prov: Mapping[str, Any]) -> dict[str, str]:
    """The numbers the page's text states (as text, for glue)."""
    split = prov.get("split") or {}
    decor = list((split.get("force_decorrelation_fs") or {}).values())
    return {"version": str(split.get("split_version", 1)), "block_fs": f"{split.get('block_fs', 0):g}",
            "buffer_fs": f"{split.get('buffer_fs', 0):g}",
            "decorrelation_fs": f"{max(decor):.0f}" if decor else "–",
            "held_out": ", ".join(split.get("ood_groups", [])) or "none",
            "n_dropped": str(split.get("n_dropped", 0)), "n_frames": str(prov.get("n_frames", 0))}
