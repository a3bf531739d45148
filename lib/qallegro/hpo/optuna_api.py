"""The only place that reaches into Optuna beyond its public API (optuna is pinned; see toolchain.md).

`tests/test_hpo_optuna_api.py` checks each of these against Optuna's behaviour, so an Optuna upgrade that
changes any of them fails there, not in the middle of a study.

* `storage_of(study)`: the storage object behind a study (Optuna keeps it in `Study._storage`);
* `trial_id(trial)`: a trial's storage id (`Trial._trial_id`, `FrozenTrial._trial_id`), which heartbeats and
  per-trial system attrs are keyed by;
* `BaseHeartbeat`: the interface `optuna.storages.fail_stale_trials` requires of a storage
  (`optuna.storages._heartbeat`).
"""

from __future__ import annotations

from typing import Any

import optuna
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.trial import FrozenTrial

__all__ = ["BaseHeartbeat", "set_study_system_attr", "set_trial_system_attr", "storage_of", "study_system_attrs",
           "trial_id"]


def storage_of(study: optuna.Study) -> Any:
    """The storage object of `study`."""
    return study._storage


def trial_id(trial: optuna.Trial | FrozenTrial) -> int:
    """The storage id of `trial` (not its number)."""
    return trial._trial_id


def study_system_attrs(study: optuna.Study) -> dict[str, Any]:
    """The study's system attrs, read fresh from its storage (`Study.system_attrs` is deprecated)."""
    storage = storage_of(study)
    return storage.get_study_system_attrs(storage.get_study_id_from_name(study.study_name))


def set_study_system_attr(study: optuna.Study, key: str, value: Any) -> None:
    """Set one system attr of the study (`Study.set_system_attr` is deprecated)."""
    storage = storage_of(study)
    storage.set_study_system_attr(storage.get_study_id_from_name(study.study_name), key, value)


def set_trial_system_attr(study: optuna.Study, trial: optuna.Trial | FrozenTrial, key: str, value: Any) -> None:
    """Set one system attr of a running trial (`Trial.set_system_attr` is deprecated)."""
    storage_of(study).set_trial_system_attr(trial_id(trial), key, value)
