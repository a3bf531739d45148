"""Study storage: an embedded journal file (default) or a database URL, both with heartbeats and a claim lock.

* Default: `JournalStorage` on a file (`<study dir>/journal.log`); nothing to install. Optuna's journal storage
  has no heartbeat, so `HeartbeatJournalStorage` adds one: each running trial's worker rewrites a small file
  `<journal>.heartbeats/<trial id>` every `heartbeat_interval` seconds; a running trial whose last heartbeat
  (or start, if none) is older than `grace_period` is failed and retried once by the next worker that looks.
* `postgresql://...` (many machines) or `sqlite:///...`: Optuna's `RDBStorage` with its own heartbeat. A bare
  `postgresql://` or `postgres://` URL is read as `postgresql+psycopg2://` (SQLAlchemy 2.1 would pick psycopg 3,
  which is not installed; psycopg2 is).
* The claim lock serialises "count the trials, then ask for a new one" between workers, so that a study stops
  at exactly its target number of complete trials: a `flock` on `<file>.claim` for files, a PostgreSQL advisory
  lock for PostgreSQL. Both are released by the operating system / the server when a worker dies.
* Credentials never leave the process: `StudyStorage.safe_url` (the URL with its password masked) is what is
  stored in the study, written to results and logs, and printed in messages.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import optuna
from optuna.storages import JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial, TrialState

from qallegro.errors import HpoError
from qallegro.hpo.optuna_api import BaseHeartbeat, trial_id
from qallegro.utils import atomic_write_text

# user attrs that belong to one attempt and are not copied to its retry
ATTEMPT_ATTRS = ("interrupted", "error", "worker", "worker_start")


class RetryOnce:
    """Re-enqueue a failed trial (same parameters; its own folder, seeded from the failed attempt's) as WAITING, at
    most `max_retry` times.

    Equivalent to Optuna's `RetryHeartbeatStaleTrialCallback(max_retry)`; the retry carries `failed_trial` (the
    original number) and `retry_history` in its system attrs, as Optuna's does.
    """

    def __init__(self, max_retry: int = 1) -> None:
        self.max_retry = max_retry

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        history = [*list(trial.system_attrs.get("retry_history", [])), trial.number]
        if len(history) > self.max_retry:
            return
        system_attrs = {**trial.system_attrs, "failed_trial": trial.system_attrs.get("failed_trial", trial.number),
                        "retry_history": history}
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params=trial.params, distributions=trial.distributions,
            user_attrs={k: v for k, v in trial.user_attrs.items() if k not in ATTEMPT_ATTRS},
            system_attrs=system_attrs))


def original_number(trial: FrozenTrial) -> int:
    """The number of the first attempt of `trial` (itself unless it is a retry)."""
    return int(trial.system_attrs.get("failed_trial", trial.number))


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    """`JournalStorage` on a file, with file-based heartbeats (see the module docstring)."""

    def __init__(self, path: str | Path, heartbeat_interval: int, grace_period: int,
                 stale_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(JournalFileBackend(str(path)))
        self.path = path
        self.heartbeat_dir = path.with_name(path.name + ".heartbeats")
        self.heartbeat_dir.mkdir(exist_ok=True)
        self.heartbeat_interval, self.grace_period = int(heartbeat_interval), int(grace_period)
        self.stale_callback = stale_callback

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        state.pop("stale_callback", None)
        return state

    def record_heartbeat(self, trial_id: int) -> None:
        atomic_write_text(self.heartbeat_dir / str(trial_id), f"{time.time():.3f}\n")

    def last_heartbeat(self, trial: FrozenTrial) -> float:
        try:
            return float((self.heartbeat_dir / str(trial_id(trial))).read_text())
        except (OSError, ValueError):
            start = trial.datetime_start
            return start.timestamp() if start is not None else time.time()

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        return [trial_id(t) for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
                if now - self.last_heartbeat(t) > self.grace_period]

    def get_heartbeat_interval(self) -> int | None:
        return self.heartbeat_interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self.stale_callback


@dataclass
class StudyStorage:
    """An opened storage, the URL workers use to reach it, and the claim lock of its studies."""

    storage: Any
    url: str
    kind: str  # "journal" | "postgresql" | "sqlite"

    @property
    def safe_url(self) -> str:
        """`url` with its password masked: what may be stored, logged and printed."""
        return mask_url(self.url)

    @contextlib.contextmanager
    def claim(self, study_name: str) -> Iterator[None]:
        """Hold the study's claim lock (see the module docstring)."""
        if self.kind == "postgresql":
            from sqlalchemy import text

            key = int.from_bytes(hashlib.sha256(f"qallegro-hpo:{study_name}".encode()).digest()[:8], "big",
                                 signed=True)
            with self.storage.engine.connect() as conn:
                conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": key})
                conn.commit()
                try:
                    yield
                finally:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()
        else:
            path = Path(self.url.removeprefix("journal:").removeprefix("sqlite:///") + ".claim")
            with open(path, "a+") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)

    def record_heartbeat(self, trial_id: int) -> None:
        self.storage.record_heartbeat(trial_id)


def mask_url(url: str) -> str:
    """A storage URL with the password replaced by `***` (`postgresql://user:***@host/db`)."""
    if "://" not in url:
        return url
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}" if "@" in rest else url


def normalise_url(url: str) -> str:
    """`url` with a bare `postgresql://` or `postgres://` scheme made `postgresql+psycopg2://` (the installed
    driver); any other URL or path unchanged."""
    for bare in ("postgresql://", "postgres://"):
        if url.startswith(bare):
            return "postgresql+psycopg2://" + url.removeprefix(bare)
    return url


def is_database_url(url: str) -> bool:
    """True for a PostgreSQL or SQLite URL (a bare `postgres://` included), False for a journal path."""
    return normalise_url(url).startswith(("postgresql", "sqlite"))


def open_storage(url: str | Path, heartbeat_interval: int = 60, grace_period: int = 180,
                 max_retry: int = 1, create: bool = True) -> StudyStorage:
    """Open `url`: a journal file path (`journal:PATH` or a path ending in `.log`), `postgresql://...` or
    `sqlite:///...` (a bare `postgresql://` or `postgres://` uses psycopg2); heartbeats every
    `heartbeat_interval` s, stale after `grace_period` s, retried `max_retry`.
    With `create=False` a journal or SQLite file must exist already (nothing is created for a mistyped path).
    A server that cannot be reached is an `HpoError` naming the URL (password masked)."""
    url = normalise_url(str(url))
    safe = mask_url(url)
    if grace_period <= heartbeat_interval:
        raise HpoError(f"grace_period ({grace_period} s) must exceed heartbeat_interval ({heartbeat_interval} s)")
    callback = RetryOnce(max_retry)
    if url.startswith(("postgresql", "sqlite")):
        from sqlalchemy.exc import SQLAlchemyError

        kind = "postgresql" if url.startswith("postgresql") else "sqlite"
        if kind == "sqlite":
            path = Path(url.removeprefix("sqlite:///"))
            if not create and not path.is_file():
                raise HpoError(f"no SQLite study file at {path}")
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                storage = RDBStorage(url, heartbeat_interval=heartbeat_interval, grace_period=grace_period,
                                     heartbeat_stale_trial_callback=callback,
                                     engine_kwargs={"pool_pre_ping": True} if kind == "postgresql" else None)
        except (SQLAlchemyError, ImportError, ValueError) as err:
            first = (str(getattr(err, "orig", None) or err).strip().splitlines() or [""])[0]
            raise HpoError(f"cannot open the study storage {safe}: {first.replace(url, safe)}") from None
        return StudyStorage(storage, url, kind)
    if "://" in url:
        raise HpoError(f"unsupported storage URL {safe!r}: use a journal file path, postgresql://... or sqlite:///...")
    path = Path(url.removeprefix("journal:")).resolve()
    if not create and not path.is_file():
        raise HpoError(f"no study journal at {path} (check the --storage path)")
    storage = HeartbeatJournalStorage(path, heartbeat_interval, grace_period, callback)
    return StudyStorage(storage, f"journal:{path}", "journal")


class HeartbeatThread:
    """Record a trial's heartbeat every `interval` seconds until the context exits."""

    def __init__(self, storage: StudyStorage, trial_id: int, interval: float) -> None:
        self._storage, self._trial_id, self._interval = storage, trial_id, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{trial_id}", daemon=True)

    def _run(self) -> None:
        while True:
            try:
                self._storage.record_heartbeat(self._trial_id)
            except Exception as err:
                optuna.logging.get_logger(__name__).warning(f"heartbeat of trial {self._trial_id}: {err!r}")
            if self._stop.wait(self._interval):
                return

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
