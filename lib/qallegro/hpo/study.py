"""Create, resume and run a study; any number of workers may run the same study at once.

A study is an Optuna study with two minimised objectives (error, inference time) whose settings (dataset,
variant, scale, sampler, seed, search space, objective, target) are stored in its user attrs, so a worker only
needs the storage URL and the study name. Guarantees:

* the target counts COMPLETE trials: a worker starts a trial only while complete + running < target (or a
  retry is waiting), under the study's claim lock, so the study ends with exactly `n_trials` complete trials;
* a killed worker (SIGKILL, node lost) loses only its running trial: it stops beating, is failed by another
  worker after the grace period (at once by a worker on the same host, which sees that the process is gone)
  and retried once; every attempt runs in its own folder (`trials/<first number>`, then
  `trials/<first number>-<retry number>`), and a retry starts from a copy of the previous attempt's folder (the
  training resumes from its checkpoint);
* a worker that was only stalled (SIGSTOP, a frozen node) and finds on waking that its trial was finished by
  others discards its result with a logged warning and goes on with the next trial;
* Ctrl-C (or SIGTERM) fails the running trial with `interrupted=True` and stops; the next run retries it once;
* a complete trial is never retried, so nothing already computed is lost or run twice;
* everything is checked before anything is created (`preflight`): names, dataset, space, objective, counts;
* a sampler's proposal identical to a complete or running trial is not evaluated again: it is pruned with
  `duplicate_of` and the sampler asked again (NSGA-II at small populations proposes copies of its parents).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import shutil
import socket
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState
from threadpoolctl import threadpool_limits

from qallegro import scales
from qallegro.errors import HpoError
from qallegro.hpo import space as space_mod
from qallegro.hpo.artifacts import upload_trial_artifacts
from qallegro.hpo.objective import DEFAULT_OBJECTIVE, TrialContext, load_objective, objective_names, trial_config
from qallegro.hpo.optuna_api import set_study_system_attr, study_system_attrs, trial_id
from qallegro.hpo.records import HpoSettings, hpo_settings
from qallegro.hpo.report import counts, write_results
from qallegro.hpo.samplers import DEFAULTS, SAMPLERS, make_sampler
from qallegro.hpo.storage import (
    HeartbeatThread,
    RetryOnce,
    StudyStorage,
    is_database_url,
    open_storage,
    original_number,
)
from qallegro.paths import local, results_root
from qallegro.utils import atomic_write_json, environment_record, get_logger

ATTR = "qallegro"
# a sampler's proposal equal to a complete or running trial is pruned (marked `duplicate_of`) and another one
# asked for, at most this many times in a row (a small, exhausted space then evaluates duplicates)
MAX_DUPLICATES_IN_ROW = 20
STUDY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


@dataclass
class StudySpec:
    """What a study is. Stored with the study; `name` defaults to `<dataset>-<variant>-<sampler>-s<seed>`."""

    dataset: str
    variant: str = "allegro"
    sampler: str = "nsga2"
    scale: str = scales.DEFAULT_SCALE
    seed: int = 0
    n_trials: int | None = None                 # None: the scale preset's `n_trials`
    name: str | None = None
    storage: str | None = None                  # None: a journal file in the study folder
    space_file: str | None = None
    objective: str = DEFAULT_OBJECTIVE
    warm_start: bool = False
    sampler_options: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)  # overrides of the preset (e.g. heartbeat, timing)

    def __post_init__(self) -> None:
        scales.check_scale(self.scale)
        space_mod.variant_spec(self.variant)  # ValueError listing the known variants
        if self.sampler not in SAMPLERS:
            raise HpoError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if not _is_int(self.seed) or self.seed < 0:
            raise HpoError(f"seed must be an integer >= 0, got {self.seed!r}")
        if self.n_trials is not None and (not _is_int(self.n_trials) or self.n_trials < 1):
            raise HpoError(f"the number of trials must be a positive integer, got {self.n_trials!r}")
        if self.name is None:
            self.name = f"{Path(self.dataset).stem}-{self.variant}-{self.sampler}-s{self.seed}"
        check_study_name(self.name)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_study_name(name: str) -> str:
    """A study name is also a folder name under `results/<scale>/hpo/`: letters, digits, `.`, `_`, `-`, at most
    100 characters, not starting with `.` or `-` (so it can neither leave that folder nor hide in it)."""
    if not isinstance(name, str) or not STUDY_NAME.fullmatch(name):
        raise HpoError(f"study name {name!r}: use letters, digits, '.', '_' and '-' (at most 100, the first a "
                       "letter or digit)")
    return name


def check_dataset(dataset: str) -> str:
    """A registered dataset name or an existing structure file."""
    from qallegro.data.datasets import DATASETS

    if dataset in DATASETS or Path(dataset).is_file():
        return dataset
    raise HpoError(f"unknown dataset {dataset!r}: use one of {', '.join(DATASETS)} or the path of a structure file")


def check_threads(threads: int) -> int:
    if not _is_int(threads) or threads < 1:
        raise HpoError(f"threads must be a positive integer, got {threads!r}")
    return threads


def preflight(spec: StudySpec, settings: HpoSettings, space: space_mod.SearchSpace) -> None:
    """Everything a study needs, checked before anything is created: the dataset, the objective, and the
    training config of the search space's corners (all lows, all highs) at the study's scale."""
    check_dataset(spec.dataset)
    load_objective(spec.objective)
    dists = space.distributions()
    for corner in ("low", "high"):
        raw = {name: getattr(d, corner) for name, d in dists.items()}
        try:
            trial_config(spec.dataset, spec.variant, spec.scale, space.overrides(raw), settings, threads=1)
        except ValueError as err:
            raise HpoError(f"search space at its {corner} corner: {err}") from None
    if spec.storage and not is_database_url(spec.storage):
        folder = Path(spec.storage.removeprefix("journal:")).resolve().parent
        if not folder.is_dir():
            raise HpoError(f"no folder {folder} for the journal given as --storage (create it first)")


def study_dir(scale: str, name: str) -> Path:
    """`results/<scale>/hpo/<study>/`."""
    return results_root() / scale / "hpo" / name


@dataclass
class OpenStudy:
    """A loaded study with its settings, search space and storage."""

    study: optuna.Study
    storage: StudyStorage
    spec: StudySpec
    space: space_mod.SearchSpace
    settings: HpoSettings
    target: int
    folder: Path

    @property
    def name(self) -> str:
        return self.study.study_name


def _settings(scale: str, overrides: dict[str, Any] | None = None) -> HpoSettings:
    """The scale's HPO preset (`presets/hpo.yaml`) with a study's overrides (mappings are updated, one level)."""
    settings = scales.settings("hpo", scale)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    return hpo_settings(settings, f"presets/hpo.yaml[{scale}] with the study's settings")


def _open(url: str, settings: HpoSettings, create: bool = True) -> StudyStorage:
    hb = settings.heartbeat
    return open_storage(url, hb.interval, hb.grace_period, hb.max_retry, create=create)


def sampler_options(spec: StudySpec, settings: HpoSettings) -> dict[str, Any]:
    """The options a study's sampler is built with: the sampler's defaults, then the scale's preset
    (`samplers` in presets/hpo.yaml), then the study's own (`sampler_options`)."""
    return {**DEFAULTS.get(spec.sampler, {}), **(settings.samplers.get(spec.sampler) or {}), **spec.sampler_options}


def _sampler(spec: StudySpec, space: space_mod.SearchSpace, settings: HpoSettings, worker_index: int):
    opts = sampler_options(spec, settings)
    # worker 0 uses the study seed (a single-worker run is reproducible); later workers and resumed runs get
    # their own streams, so that random proposals are not repeated.
    seed = spec.seed if worker_index == 0 else (spec.seed * 1_000_003 + worker_index) % 2**31
    return make_sampler(spec.sampler, seed, space.distributions(), opts)


def create_or_resume(spec: StudySpec) -> OpenStudy:
    """Create the study, or load it when it exists (checking that it is the same study)."""
    settings = _settings(spec.scale, spec.settings)
    space = space_mod.load_space(spec.variant, spec.scale, spec.space_file, spec.dataset)
    preflight(spec, settings, space)
    storage = _open(spec.storage or str(study_dir(spec.scale, spec.name) / "journal.log"), settings)
    target = int(spec.n_trials or settings.n_trials)
    record = {**asdict(spec), "space": space_mod.space_to_dict(space), "target": target}
    record.pop("storage")
    with storage.claim(spec.name):
        names = {s.study_name for s in optuna.get_all_study_summaries(storage.storage, include_best_trial=False)}
        if spec.name in names:
            study = optuna.load_study(study_name=spec.name, storage=storage.storage)
            old = study.user_attrs.get(ATTR)
            if old is None:
                raise HpoError(f"study {spec.name!r} in {storage.safe_url} was not created by qallegro")
            for key in ("dataset", "variant", "scale", "sampler", "seed", "space", "objective"):
                if old.get(key) != record[key]:
                    raise HpoError(f"study {spec.name!r} in {storage.safe_url} exists with {key}={old.get(key)!r}, "
                                     f"not {record[key]!r}; choose another --study name")
            if old.get("target") != target:
                study.set_user_attr(ATTR, {**old, "target": target})
        else:
            study = optuna.create_study(study_name=spec.name, storage=storage.storage,
                                        directions=["minimize", "minimize"])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(list(objective_names(spec.dataset)))
            study.set_user_attr(ATTR, record)
            if spec.warm_start:
                enqueue_paper_configs(study, spec.dataset, spec.variant, space)
    return _attach(study, storage)


def load(storage_url: str, study_name: str) -> OpenStudy:
    """Load an existing study by storage URL and name (what a worker on another machine does)."""
    check_study_name(study_name)
    probe = open_storage(storage_url, create=False)
    try:
        study = optuna.load_study(study_name=study_name, storage=probe.storage)
    except KeyError:
        raise HpoError(f"no study {study_name!r} in {probe.safe_url}; create it with `qallegro hpo run`") from None
    rec = study.user_attrs.get(ATTR)
    if rec is None:
        raise HpoError(f"study {study_name!r} in {probe.safe_url} was not created by qallegro")
    spec = _stored_spec(rec, probe.safe_url)
    storage = _open(storage_url, _settings(spec.scale, spec.settings), create=False)
    return _attach(optuna.load_study(study_name=study_name, storage=storage.storage), storage)


def _stored_spec(rec: dict[str, Any], storage_url: str) -> StudySpec:
    """The `StudySpec` stored with a study (its `ATTR` user attr); a key that a study created by an older
    qallegro lacks takes the field's default."""
    return StudySpec(**{k: rec[k] for k in StudySpec.__dataclass_fields__ if k in rec and k != "storage"},
                     storage=storage_url)


def _attach(study: optuna.Study, storage: StudyStorage) -> OpenStudy:
    rec = dict(study.user_attrs[ATTR])
    spec = _stored_spec(rec, storage.safe_url)
    settings = _settings(spec.scale, spec.settings)
    space = space_mod.space_from_dict(spec.variant, rec.get("space"))  # None: the default space
    return OpenStudy(study, storage, spec, space, settings, int(rec["target"]),
                     study_dir(spec.scale, study.study_name))


def enqueue_paper_configs(study: optuna.Study, dataset: str, variant: str,
                          space: space_mod.SearchSpace) -> list[str]:
    """Enqueue the paper's best configurations (Tables 1-3) of `variant` as the first trials: the row of
    `dataset` first, then the other datasets' rows; clipped into `space`. Returns notes on what was clipped."""
    from qallegro.paper import DATASETS

    rows = [dataset] + [d for d in DATASETS if d != dataset]
    notes: list[str] = []
    seen: list[dict[str, Any]] = []
    for ds in rows:
        try:
            values = space_mod.paper_values(ds, variant)
        except ValueError:
            continue
        raw, clipped = space.raw_from_values(values)
        notes += [f"paper {variant} row {ds}: {c}" for c in clipped]
        if raw in seen:
            continue
        seen.append(raw)
        study.enqueue_trial(raw, user_attrs={"warm_start": f"paper {variant} {ds}"})
    if not seen:
        raise ValueError(f"the paper has no {variant} configuration to warm-start from")
    study.set_user_attr("warm_start_notes", notes)
    log = get_logger("qallegro.hpo")
    for n in notes:
        log.warning(f"warm start clipped {n}")
    return notes


@contextlib.contextmanager
def study_log(folder: Path) -> Iterator[logging.Logger]:
    """The `qallegro.hpo` logger writing to `<folder>/hpo.log` for the duration of the context (the file handler
    is removed afterwards, so that several studies in one process do not write into each other's logs)."""
    path = (folder / "hpo.log").resolve()
    log = get_logger("qallegro.hpo", path)
    try:
        yield log
    finally:
        for h in list(log.handlers):
            if isinstance(h, logging.FileHandler) and Path(h.baseFilename) == path:
                log.removeHandler(h)
                h.close()


def requeue_interrupted(study: optuna.Study, max_retry: int = 1) -> list[int]:
    """Retry (once) the trials failed by Ctrl-C/SIGTERM that have not been retried yet; returns their numbers."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    out = []
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get("interrupted") and t.number not in retried:
            RetryOnce(max_retry)(study, t)
            out.append(t.number)
    return out


@dataclass
class WorkerSummary:
    completed: int = 0
    failed: int = 0
    interrupted: bool = False


def done_trials(study: optuna.Study, c: dict[str, int] | None = None) -> int:
    """Trials that count towards a study's target: complete ones, and pruned ones that a multi-fidelity schedule
    stopped early (not duplicates); `c` = `counts(study)` when the caller has it."""
    c = c if c is not None else counts(study)
    duplicates = sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
                     if "duplicate_of" in t.user_attrs)
    return c["COMPLETE"] + c["PRUNED"] - duplicates


def run_worker(op: OpenStudy, *, max_trials: int | None = None, threads: int = 1, progress: bool = True,
               poll_s: float | None = None) -> WorkerSummary:
    """Run trials of `op` until the study has `op.target` complete trials (or this worker ran `max_trials`).

    Ctrl-C fails the running trial (retried on the next run) and re-raises KeyboardInterrupt.
    """
    op.folder.mkdir(parents=True, exist_ok=True)
    with study_log(op.folder) as log:
        return _work(op, log, max_trials, threads, progress, poll_s)


def _work(op: OpenStudy, log: logging.Logger, max_trials: int | None, threads: int, progress: bool,
          poll_s: float | None) -> WorkerSummary:
    from tqdm.auto import tqdm

    objective = load_objective(op.spec.objective)
    hb = op.settings.heartbeat
    poll_s = float(poll_s if poll_s is not None else hb.poll if hb.poll is not None else max(1.0, hb.interval))
    max_failures = op.settings.max_consecutive_failures
    worker = f"{socket.gethostname()}:{os.getpid()}"
    with op.storage.claim(op.name):
        registry = list(study_system_attrs(op.study).get("qallegro:workers", []))
        index = len(registry)
        set_study_system_attr(op.study, "qallegro:workers", [*registry, worker])
    op.study.sampler = _sampler(op.spec, op.space, op.settings, index)
    if index == 0 or not (op.folder / "study.json").exists():
        atomic_write_json(op.folder / "study.json", {"spec": asdict(op.spec), "target": op.target,
                                                     "space": op.space.describe(), "env": environment_record()})
    summary = WorkerSummary()
    failures_in_row = duplicates_in_row = 0
    bar = tqdm(total=op.target, desc=op.name, unit="trial", disable=not progress)
    # BLAS threads = this worker's threads (samplers and data code use numpy/scipy; torch is set by training)
    blas = threadpool_limits(threads, user_api="blas")
    try:
        while max_trials is None or summary.completed + summary.failed < max_trials:
            with op.storage.claim(op.name), warnings.catch_warnings():
                # we run our own trial loop with heartbeats, not Study.optimize (see the module docstring)
                warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                fail_dead_local_trials(op.study, hb.max_retry, log)
                optuna.storages.fail_stale_trials(op.study)
                requeue_interrupted(op.study, hb.max_retry)
                c = counts(op.study)
                done = done_trials(op.study, c)
                bar.n = min(done, op.target)
                bar.refresh()
                if done >= op.target:
                    break
                start = c["WAITING"] > 0 or done + c["RUNNING"] < op.target
                trial = op.study.ask() if start else None
                if trial is not None:
                    _mark_started(op, trial, worker)
                if trial is not None and duplicates_in_row < MAX_DUPLICATES_IN_ROW and _prune_duplicate(op, trial, log):
                    duplicates_in_row += 1
                    continue
            duplicates_in_row = 0
            if trial is None:
                time.sleep(poll_s)  # the remaining trials are running elsewhere; wait in case one dies
                continue
            ok = _run_trial(op, trial, objective, worker, threads, hb.interval, log)
            if ok is None:
                continue  # finished by others meanwhile: this attempt's result was discarded
            if ok:
                summary.completed += 1
                failures_in_row = 0
            else:
                summary.failed += 1
                failures_in_row += 1
                if failures_in_row >= max_failures:
                    raise RuntimeError(f"{failures_in_row} trials in a row failed; see {op.folder / 'hpo.log'} "
                                       f"and the trials' `error` attrs")
    except KeyboardInterrupt:
        summary.interrupted = True
        log.warning("interrupted; the running trial is marked failed and will be retried on the next run")
        raise
    finally:
        bar.close()
        blas.restore_original_limits()
    return summary


def _prune_duplicate(op: OpenStudy, trial: optuna.Trial, log: logging.Logger) -> bool:
    """Prune `trial` when the sampler proposed the parameters of a complete or running trial (enqueued trials,
    retries and warm starts, are never pruned); True when pruned."""
    trials = op.study.get_trials(deepcopy=False)
    if {"fixed_params", "failed_trial"} & set(trials[trial.number].system_attrs):
        return False
    params = op.space.suggest(trial)
    same = next((t.number for t in trials if t.number != trial.number and t.params == params
                 and t.state in (TrialState.COMPLETE, TrialState.RUNNING)), None)
    if same is None:
        return False
    trial.set_user_attr("duplicate_of", same)
    op.study.tell(trial, state=TrialState.PRUNED)
    log.info(f"trial {trial.number} repeats the parameters of trial {same}: pruned, not evaluated again")
    return True


def attempt_dir(folder: Path, first: int, number: int) -> Path:
    """The folder of one attempt: `trials/<first>` for a trial's first attempt, `trials/<first>-<number>` for a
    retry (`first` is the number of the first attempt, `number` this attempt's trial number)."""
    return folder / "trials" / (f"{first:05d}" if number == first else f"{first:05d}-{number:05d}")


def _start_from(previous: Path, trial_dir: Path) -> None:
    """Seed a retry's folder with a copy of the previous attempt's files (its checkpoint: the training resumes);
    temporary files of atomic writes in flight are left out."""
    if previous.is_dir() and not trial_dir.exists():
        tmp = trial_dir.with_name(f".{trial_dir.name}.copy")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(previous, tmp, ignore=shutil.ignore_patterns(".*.tmp"))
        os.replace(tmp, trial_dir)


def _process_start(pid: int) -> str | None:
    """The start time of process `pid` (Linux: field 22 of /proc/PID/stat), None when unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


def _worker_alive(worker: str, started: str | None) -> bool:
    """Whether the worker `host:pid` (started at `started`, see `_process_start`) may still run; False only when
    it ran on this host and its process is gone (or the pid now belongs to a process started later)."""
    host, _, pid = worker.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # another user's process holds the pid
    return started is None or _process_start(int(pid)) in (None, started)


def _mark_started(op: OpenStudy, trial: optuna.Trial, worker: str) -> None:
    """Name the worker of a just-asked trial and record its first heartbeat, under the claim lock: a running
    trial without a worker is then one whose worker died holding the lock (`fail_dead_local_trials` fails it;
    PostgreSQL never finds a trial without a heartbeat stale)."""
    trial.set_user_attr("worker", worker)
    trial.set_user_attr("worker_start", _process_start(os.getpid()))
    op.storage.record_heartbeat(trial_id(trial))


def fail_dead_local_trials(study: optuna.Study, max_retry: int, log: logging.Logger) -> list[int]:
    """Fail (and retry once) the running trials of workers on this host whose process is gone, and those whose
    worker died between asking for them and naming itself (see `_mark_started`), without waiting for a heartbeat
    to go stale; returns their numbers. Call under the study's claim lock."""
    out = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        worker = t.user_attrs.get("worker")
        if not worker or not _worker_alive(worker, t.user_attrs.get("worker_start")):
            frozen = study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            if frozen.state == TrialState.FAIL:
                RetryOnce(max_retry)(study, frozen)
                out.append(t.number)
                log.warning(f"trial {t.number}: its worker {worker or '(unnamed)'} is gone; failed and retried")
    return out


def _run_trial(op: OpenStudy, trial: optuna.Trial, objective, worker: str, threads: int, interval: float,
               log) -> bool | None:
    """Run one asked trial with a heartbeat and tell the result: True when it completed, False when it failed,
    None when others finished it meanwhile (its heartbeat went stale; the result is discarded)."""
    frozen = op.study.get_trials(deepcopy=False)[trial.number]
    number = original_number(frozen)
    previous = frozen.user_attrs.get("trial_dir")  # a retry carries the previous attempt's folder
    trial_dir = attempt_dir(op.folder, number, trial.number)
    try:
        with HeartbeatThread(op.storage, trial_id(trial), interval):
            try:
                raw = op.space.suggest(trial)
                overrides = op.space.overrides(raw)
                trial.set_user_attr("trial_dir", str(trial_dir))
                trial.set_user_attr("config", overrides)
                if previous:
                    _start_from(local(previous), trial_dir)
                ctx = TrialContext(op.spec.dataset, op.spec.variant, op.spec.scale, trial_dir, number,
                                   op.settings, threads, log, trial)
                log.info(f"trial {trial.number} (folder {trial_dir.name}) starts: {op.space.values(raw)}")
                result = objective(overrides, ctx)
                values = tuple(float(v) for v in result.values)
                if len(values) != 2 or not all(math.isfinite(v) for v in values):
                    raise ValueError(f"objective returned {result.values!r}; expected two finite numbers")
                for key, value in result.attrs.items():
                    trial.set_user_attr(key, value)
                upload_trial_artifacts(trial, trial_dir, op.folder)  # config, learning curve, weights
            except optuna.TrialPruned as stop:  # a multi-fidelity objective stopped the trial early (counts as done)
                log.info(f"trial {trial.number}: {stop}")
                op.study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
                return True
            except KeyboardInterrupt:
                with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                    trial.set_user_attr("interrupted", True)
                op.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                raise
            except optuna.exceptions.UpdateFinishedTrialError:
                raise
            except Exception as err:
                log.exception(f"trial {trial.number} failed")
                trial.set_user_attr("error", repr(err)[:2000])
                op.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                return False
        told = op.study.tell(trial, values, skip_if_finished=True)
        if told.state != TrialState.COMPLETE or tuple(told.values) != values:
            raise optuna.exceptions.UpdateFinishedTrialError(f"trial {trial.number} is {told.state.name}")
    except optuna.exceptions.UpdateFinishedTrialError:
        log.warning(f"trial {trial.number} (folder {trial_dir.name}) was finished by another worker meanwhile "
                    "(no heartbeat for the grace period; its retry recomputes it): this result is discarded")
        return None
    atomic_write_json(trial_dir / "trial.json", {"number": trial.number, "folder_number": number,
                                                 "params": op.space.values(raw), "config": overrides,
                                                 "values": values, "attrs": result.attrs, "worker": worker})
    return True


def run(spec: StudySpec | None = None, *, threads: int = 1, progress: bool = True, plots: bool = True,
        **fields: Any) -> dict[str, Any]:
    """Create or resume a study, run this process as a worker until the target, then write the results.

    `run(dataset="rmd17-benzene", variant="mlp", sampler="nsga2", scale="smoke")` is what `qallegro hpo run`
    does. Returns `study` (an `OpenStudy`), `summary` (this worker's counts) and `paths` (the written files).
    """
    spec = spec or StudySpec(**fields)
    op = create_or_resume(spec)
    summary = run_worker(op, threads=threads, progress=progress)
    return {"study": op, "summary": summary, "paths": write_results(op, plots=plots)}
