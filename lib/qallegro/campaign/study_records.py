"""The campaign's records of its studies and final runs, read once and checked: each study's trials table
(`results/<scale>/hpo/<study>/trials.csv` and the searched parameters of its `study.json`), its re-timed front
(`campaign/retime/<study>/record.json`), and the records of the final runs (`campaign/final/...`).

A record that lacks what the claims read raises a `CampaignError` naming the file and the key.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from qallegro.campaign.units import RECORD, read_record
from qallegro.errors import CampaignError

MEMBER_KEYS = ("times_s", "total_s")


@dataclass(frozen=True)
class StudyRecords:
    """One study of the campaign: its complete trials, searched parameters and (once re-timed) its front."""

    name: str
    dataset: str
    variant: str
    target: int                          # complete trials the campaign asks for
    trials: pd.DataFrame                 # the complete trials of trials.csv (empty before the first slice)
    params: tuple[str, ...]              # the searched (not fixed) parameters, columns of `trials`
    retime: Mapping[str, Any] | None     # the retime unit's record, None until it ran
    folder: Path                         # the study's results folder

    @property
    def error_name(self) -> str:
        from qallegro.hpo.objective import objective_names

        return objective_names(self.dataset)[0]

    def member(self, number: int) -> Mapping[str, Any] | None:
        """The re-timing of trial `number` (times_s per round, total_s, FLOPs per structure), or None."""
        return None if self.retime is None else self.retime["front"].get(str(int(number)))


def read_trials(folder: Path, dataset: str) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """The complete trials of `folder/trials.csv` and the searched parameters named in `folder/study.json`."""
    from qallegro.hpo.objective import objective_names

    path, spec = folder / "trials.csv", folder / "study.json"
    if not path.is_file():
        return pd.DataFrame(), ()
    try:
        space = json.loads(spec.read_text())["space"]
    except (OSError, ValueError, KeyError) as err:
        raise CampaignError(f"{spec}: no readable 'space' beside {path.name} ({err})") from None
    params = tuple(p["name"] for p in space if p.get("fixed") is None)
    df = pd.read_csv(path)
    if df.empty:
        return df, params
    needed = ("number", "state", *objective_names(dataset), *params)
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise CampaignError(f"{path}: missing column(s) {missing}")
    return df[df["state"] == "COMPLETE"].reset_index(drop=True), params


def check_retime(record: Mapping[str, Any], path: Path) -> Mapping[str, Any]:
    """`record` when every front member has its per-round times; otherwise a CampaignError naming `path`."""
    front = record.get("front")
    if not isinstance(front, Mapping) or not front:
        raise CampaignError(f"{path}: 'front' must map trial numbers to their re-timings")
    for key, member in front.items():
        missing = [k for k in MEMBER_KEYS if k not in member]
        if missing:
            raise CampaignError(f"{path}: front[{key!r}] lacks {missing}")
        if len(member["times_s"]) < 2:
            raise CampaignError(f"{path}: front[{key!r}].times_s has {len(member['times_s'])} round(s); need 2")
    return record


def load_studies(scale: str) -> list[StudyRecords]:
    """Every study of the campaign at `scale` (`presets/campaign.yaml` `studies`), in the preset's order."""
    from qallegro.campaign.plan import campaign_root
    from qallegro.campaign.studies import retime_units, study_name
    from qallegro.hpo.study import study_dir

    root, out = campaign_root(scale), []
    for unit in retime_units(scale):
        sp = unit.spec
        name = study_name(sp["dataset"], sp["variant"], sp["sampler"], sp["seed"])
        folder = study_dir(scale, name)
        trials, params = read_trials(folder, sp["dataset"])
        retime = read_record(root, unit.id)
        if retime is not None:
            check_retime(retime, root / unit.id / RECORD)
        out.append(StudyRecords(name, sp["dataset"], sp["variant"], int(sp["n_trials"]), trials, params, retime,
                                folder))
    return out


def final_records(scale: str) -> list[dict[str, Any]]:
    """The finished final-run records at `scale` (each study's chosen configuration and the QDI transfers)."""
    from qallegro.campaign.plan import campaign_root
    from qallegro.campaign.studies import final_units

    root = campaign_root(scale)
    return [rec for unit in final_units(scale) if (rec := read_record(root, unit.id)) is not None]


def finals_retimes(scale: str) -> dict[str, dict[str, Any]]:
    """The records of the finished final-model re-timings at `scale`, by dataset (`retime/finals-<dataset>`)."""
    from qallegro.campaign.plan import campaign_root
    from qallegro.campaign.studies import retime_final_units

    root = campaign_root(scale)
    return {u.spec["dataset"]: rec for u in retime_final_units(scale) if (rec := read_record(root, u.id)) is not None}
