"""The measured time of a scale's campaign, from its finished units' records, and of the whole book against the
scale's `target_hours` (the reproducibility page)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from qallegro import scales
from qallegro.campaign.estimate import part_of, schedule
from qallegro.campaign.units import Unit


def recorded_seconds(record: Mapping[str, Any]) -> float:
    """A finished unit's measured seconds on a core of its own: its CPU time over all attempts (`unit_cpu_s`, one
    thread). Units finished before the CPU time was recorded give their wall time, an upper bound (a shared core or
    a stopped worker inflates it): `unit_wall_s` over all attempts since attempts are counted, and at least the
    training's cumulative `wall_s` or the Cu-Li generation's `labelling_seconds` (for units finished in an attempt
    that followed an interrupted one before that, and for a dataset generated before its unit ran)."""
    if record.get("unit_cpu_s") is not None:
        return float(record["unit_cpu_s"])
    return max(float(record.get(k) or 0.0) for k in ("unit_wall_s", "wall_s", "labelling_seconds"))


def _records(scale: str) -> tuple[list[Unit], dict[str, dict[str, Any]]]:
    """The plan's units at `scale` and the records of those that finished (unit id -> record)."""
    from qallegro.campaign.plan import campaign_root, plan
    from qallegro.campaign.units import read_record

    root = campaign_root(scale)
    units = plan(scale)
    return units, {u.id: r for u in units if (r := read_record(root, u.id)) is not None}


def measured(scale: str, workers: int = 2) -> dict[str, Any]:
    """The campaign's measured time at `scale` from its finished units' records: each unit's seconds
    (`recorded_seconds`), the parts' totals, the attempts, and the wall time of those seconds on `workers` one-thread
    workers in the plan's order (`schedule`; the units ran in several sessions, so their own start times say
    nothing). Units without a record are counted in `missing` and left out of the schedule."""
    units, records = _records(scale)
    done = [Unit(u.id, u.kind, u.spec, tuple(a for a in u.after if a in records)) for u in units if u.id in records]
    seconds = {u.id: recorded_seconds(records[u.id]) for u in done}
    parts: dict[str, dict[str, float]] = {}
    for u in done:
        row = parts.setdefault(part_of(u), {"units": 0, "worker_s": 0.0})
        row["units"] += 1
        row["worker_s"] += seconds[u.id]
    return {"scale": scale, "workers": workers, "units": len(units), "done": len(done),
            "missing": len(units) - len(done), "parts": parts, "worker_s": sum(seconds.values()),
            "cpu_timed": sum(1 for r in records.values() if r.get("unit_cpu_s") is not None),
            "interrupted": sum(1 for r in records.values() if int(r.get("unit_attempts") or 1) > 1),
            "makespan_s": schedule(done, seconds, workers)["makespan_s"]}


def projected(scale: str, estimated: Mapping[str, float], workers: int = 2) -> dict[str, Any]:
    """The wall time of the campaign at `scale` with what it has done and what is left: finished units at their
    recorded seconds, the others at their `estimated` seconds (`qallegro.campaign.estimate.estimate`'s `units`),
    scheduled on `workers` one-thread workers in the plan's order."""
    units, records = _records(scale)
    seconds = {u.id: recorded_seconds(records[u.id]) if u.id in records else float(estimated[u.id]) for u in units}
    done_s = sum(seconds[i] for i in records)
    return {"scale": scale, "workers": workers, "units": len(units), "done": len(records), "done_worker_s": done_s,
            "left_worker_s": sum(seconds.values()) - done_s,
            "makespan_s": schedule(units, seconds, workers)["makespan_s"]}


def hours_text(hours: float) -> str:
    """A duration for the page: "40 minutes" below an hour, else "11.6 hours" ("12 hours" when whole)."""
    minutes = round(hours * 60)
    if minutes < 60:
        return "less than a minute" if minutes == 0 else f"{minutes} minute{'' if minutes == 1 else 's'}"
    h = round(hours, 1)
    return f"{h:g} hour{'' if h == 1 else 's'}"


@dataclass(frozen=True)
class CampaignTime:
    """Hours: the units' summed time (`worker_h`), their wall time on `workers` workers (`campaign_h`), the pages'
    execution (`pages_h`) and the sum (`total_h`) against `target_h` (None when the scale sets none)."""

    workers: int
    units: int
    done: int
    interrupted: int
    cpu_timed: int
    worker_h: float
    campaign_h: float
    pages_h: float
    target_h: float | None

    @property
    def total_h(self) -> float:
        return self.campaign_h + self.pages_h

    def verdict(self) -> str:
        """The sentence on the target, computed from the numbers."""
        if self.target_h is None:
            return "this scale sets no time target"
        if self.done < self.units:
            return (f"not comparable with the target of {hours_text(self.target_h)} yet: {self.units - self.done} of "
                    f"{self.units} units are not finished")
        if self.total_h <= self.target_h:
            return f"within the target of {hours_text(self.target_h)}"
        return f"over the target of {hours_text(self.target_h)} by {hours_text(self.total_h - self.target_h)}"


def campaign_time(scale: str, pages_s: float, workers: int = 2) -> tuple[CampaignTime, pd.DataFrame]:
    """The campaign's measured time at `scale` (`measured`) with the pages' `pages_s`,
    and its parts as a table (units, worker hours)."""
    m = measured(scale, workers)
    target = scales.settings("campaign", scale).get("target_hours")
    summary = CampaignTime(workers=workers, units=m["units"], done=m["done"], interrupted=m["interrupted"],
                           cpu_timed=m["cpu_timed"],
                           worker_h=m["worker_s"] / 3600, campaign_h=m["makespan_s"] / 3600,
                           pages_h=pages_s / 3600, target_h=float(target) if target is not None else None)
    parts = pd.DataFrame([{"part": part, "units": int(row["units"]), "worker time [h]": row["worker_s"] / 3600}
                          for part, row in m["parts"].items()])
    return summary, parts
