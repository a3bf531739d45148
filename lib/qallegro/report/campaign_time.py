"""The measured time of a scale's campaign and pages, against the scale's target (the reproducibility page)."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from qallegro import scales
from qallegro.campaign.estimate import measured


@dataclass(frozen=True)
class CampaignTime:
    """Hours: the units' summed time (`worker_h`), their wall time on `workers` workers (`campaign_h`), the pages'
    execution (`pages_h`) and the sum (`total_h`) against `target_h` (None when the scale sets none)."""

    workers: int
    units: int
    done: int
    interrupted: int
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
            return (f"not comparable with the target of {self.target_h:g} hours yet: {self.units - self.done} of "
                    f"{self.units} units are not finished")
        if self.total_h <= self.target_h:
            return f"within the target of {self.target_h:g} hours"
        return f"over the target of {self.target_h:g} hours by {self.total_h - self.target_h:.1f} h"


def campaign_time(scale: str, pages_s: float, workers: int = 2) -> tuple[CampaignTime, pd.DataFrame]:
    """The campaign's measured time at `scale` (`qallegro.campaign.estimate.measured`) with the pages' `pages_s`,
    and its parts as a table (units, worker hours)."""
    m = measured(scale, workers)
    target = scales.settings("campaign", scale).get("target_hours")
    summary = CampaignTime(workers=workers, units=m["units"], done=m["done"], interrupted=m["interrupted"],
                           worker_h=m["worker_s"] / 3600, campaign_h=m["makespan_s"] / 3600,
                           pages_h=pages_s / 3600, target_h=float(target) if target is not None else None)
    parts = pd.DataFrame([{"part": part, "units": int(row["units"]), "worker time [h]": row["worker_s"] / 3600}
                          for part, row in m["parts"].items()])
    return summary, parts
