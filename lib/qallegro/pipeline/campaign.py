"""The campaign's units before the pages: at a scale whose book is computed from the campaign
(`run_with_book` in presets/campaign.yaml), `qallegro reproduce` works as one of the campaign's workers first."""

from __future__ import annotations

import sys

from qallegro.campaign.ablation import settings
from qallegro.campaign.plan import RUNNERS, campaign_root, plan
from qallegro.campaign.units import Unit, UnitQueue, status, work
from qallegro.campaign.verdicts import write_verdicts
from qallegro.utils import set_threads


def campaign_units(scale: str) -> list[Unit]:
    """The campaign's units when the book at `scale` is computed from them, else an empty list."""
    return plan(scale) if settings(scale).get("run_with_book") else []


def run_campaign(scale: str) -> str | None:
    """Run the campaign's ready units in this process (one thread) and write the verdicts from the records; None
    when every unit is done, else why the pages must wait."""
    units = campaign_units(scale)
    if not units:
        return None
    queue = UnitQueue(campaign_root(scale))
    set_threads(1)
    work(units, queue, RUNNERS, log=lambda m: print(m, file=sys.stderr, flush=True))
    left = status(units, queue)
    # from the records as they are now (other workers may have finished units since the last write); deterministic
    # (seeded permutations), so a finished campaign rewrites the same file
    write_verdicts(scale)
    if left["running"] or left["ready"] or left["waiting"]:
        return (f"{len(left['done'])} of {len(units)} campaign units done; other workers hold "
                f"{len(left['running'])}; the pages wait until all are done (qallegro campaign status "
                f"--scale {scale})")
    return None
