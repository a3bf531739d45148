"""The Optuna behaviour qallegro relies on (issue 13): `qallegro.hpo.optuna_api` is the only module that reaches
into Optuna's internals, and the public calls below must keep behaving as the study machinery assumes. An Optuna
upgrade that changes any of this fails here."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from qallegro.hpo import optuna_api
from qallegro.hpo.storage import open_storage

optuna.logging.set_verbosity(optuna.logging.WARNING)
pytestmark = pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning",
                                        "ignore::optuna.exceptions.ExperimentalWarning")


@pytest.fixture(params=["journal", "sqlite"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path / "j.log") if request.param == "journal" else f"sqlite:///{tmp_path / 'db.sqlite'}"


def test_adapter_reaches_the_storage_and_trial_ids(storage_url: str) -> None:
    storage = open_storage(storage_url, 1, 3).storage
    study = optuna.create_study(study_name="s", storage=storage, directions=["minimize", "minimize"])
    behind = optuna_api.storage_of(study)  # the storage itself, or Optuna's cache around an RDB storage
    assert behind.get_study_id_from_name("s") == storage.get_study_id_from_name("s")
    for _ in range(3):
        trial = study.ask()
    frozen = study.get_trials(deepcopy=False)[trial.number]
    sid = storage.get_study_id_from_name("s")
    assert optuna_api.trial_id(trial) == optuna_api.trial_id(frozen) \
        == storage.get_trial_id_from_study_id_trial_number(sid, trial.number)
    optuna_api.set_study_system_attr(study, "k", [1, 2])
    assert optuna_api.study_system_attrs(study)["k"] == [1, 2]
    optuna_api.set_trial_system_attr(study, trial, "slot", [0, 1])
    assert study.get_trials(deepcopy=False)[trial.number].system_attrs["slot"] == [0, 1]
    assert isinstance(storage, optuna_api.BaseHeartbeat)  # fail_stale_trials requires it
    # trial numbers index get_trials (the study machinery reads a trial's frozen copy this way)
    assert [t.number for t in study.get_trials(deepcopy=False)] == list(range(3))


def test_a_trial_finished_by_another_handle_refuses_updates(storage_url: str) -> None:
    """What a stalled worker meets on waking: its trial was failed by another worker."""
    storage = open_storage(storage_url, 1, 3).storage
    mine = optuna.create_study(study_name="s", storage=storage, directions=["minimize", "minimize"])
    trial = mine.ask()
    other = optuna.load_study(study_name="s", storage=open_storage(storage_url, 1, 3).storage)
    told = other.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
    assert told.state == TrialState.FAIL
    with pytest.raises(optuna.exceptions.UpdateFinishedTrialError):
        trial.set_user_attr("x", 1)
    again = mine.tell(trial, [1.0, 2.0], skip_if_finished=True)  # no error, and the state stays FAIL
    assert again.state == TrialState.FAIL and again.values is None
