"""Create, resume and run a study; any number of workers may run the same study at once.

A study is an Optuna study with two minimised objectives (error, inference time) whose settings (dataset,
variant, scale, sampler, seed, search space, objective, target) are stored in its user attrs, so a worker only
needs the storage URL and the study name. Guarantees:

* the target counts COMPLETE trials: a worker starts a trial only while complete + running < target (or a
  retry is waiting), under the study's claim lock, so the study ends with exactly `n_trials` complete trials;
* a killed worker (SIGKILL, node lost) loses only its running trial: it stops beating, is failed by another
  worker after the grace period and retried once in the same trial folder (the training resumes from its
  checkpoint);
* Ctrl-C (or SIGTERM) fails the running trial with `interrupted=True` and stops; the next run retries it once;
* a complete trial is never retried, so nothing already computed is lost or run twice.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
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
from qallegro.hpo import space as space_mod
from qallegro.hpo.objective import DEFAULT_OBJECTIVE, TrialContext, load_objective, objective_names
from qallegro.hpo.samplers import SAMPLERS, make_sampler
from qallegro.hpo.storage import HeartbeatThread, RetryOnce, StudyStorage, open_storage, original_number
from qallegro.utils import atomic_write_json, environment_record, get_logger

ATTR = "qallegro"


def results_root() -> Path:
    """`$QALLEGRO_RESULTS`, else `<repo>/results`."""
    env = os.environ.get("QALLEGRO_RESULTS")
    return Path(env) if env else Path(__file__).resolve().parents[3] / "results"


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
        if self.variant not in space_mod.VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {space_mod.VARIANTS}")
        if self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {', '.join(SAMPLERS)}")
        if self.name is None:
            self.name = f"{self.dataset}-{self.variant}-{self.sampler}-s{self.seed}"


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
    settings: dict[str, Any]
    target: int
    folder: Path

    @property
    def name(self) -> str:
        return self.study.study_name


def _settings(scale: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """The scale's HPO preset (`presets/hpo.yaml`) with a study's overrides (mappings are updated, one level)."""
    settings = scales.settings("hpo", scale)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict) and isinstance(settings.get(key), dict):
            settings[key] = {**settings[key], **value}
        else:
            settings[key] = value
    settings.setdefault("heartbeat", {})
    return settings


def _open(url: str, settings: dict[str, Any]) -> StudyStorage:
    hb = settings["heartbeat"]
    return open_storage(url, int(hb.get("interval", 60)), int(hb.get("grace_period", 180)),
                        int(hb.get("max_retry", 1)))


def _sampler(spec: StudySpec, space: space_mod.SearchSpace, settings: dict[str, Any], worker_index: int):
    opts = dict((settings.get("samplers") or {}).get(spec.sampler) or {})
    opts.update(spec.sampler_options)
    # worker 0 uses the study seed (a single-worker run is reproducible); later workers and resumed runs get
    # their own streams, so that random proposals are not repeated.
    seed = spec.seed if worker_index == 0 else (spec.seed * 1_000_003 + worker_index) % 2**31
    return make_sampler(spec.sampler, seed, space.distributions(), opts)


def create_or_resume(spec: StudySpec) -> OpenStudy:
    """Create the study, or load it when it exists (checking that it is the same study)."""
    settings = _settings(spec.scale, spec.settings)
    space = space_mod.load_space(spec.variant, spec.scale, spec.space_file)
    storage = _open(spec.storage or str(study_dir(spec.scale, spec.name) / "journal.log"), settings)
    target = int(spec.n_trials or settings["n_trials"])
    record = {**asdict(spec), "space": space_mod.space_to_dict(space), "target": target}
    record.pop("storage")
    with storage.claim(spec.name):
        names = {s.study_name for s in optuna.get_all_study_summaries(storage.storage, include_best_trial=False)}
        if spec.name in names:
            study = optuna.load_study(study_name=spec.name, storage=storage.storage)
            old = study.user_attrs.get(ATTR)
            if old is None:
                raise ValueError(f"study {spec.name!r} in {storage.url} was not created by qallegro")
            for key in ("dataset", "variant", "scale", "sampler", "seed", "space", "objective"):
                if old.get(key) != record[key]:
                    raise ValueError(f"study {spec.name!r} in {storage.url} exists with {key}={old.get(key)!r}, "
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
    probe = open_storage(storage_url)
    try:
        study = optuna.load_study(study_name=study_name, storage=probe.storage)
    except KeyError:
        raise ValueError(f"no study {study_name!r} in {probe.url}; create it with `qallegro hpo run`") from None
    rec = study.user_attrs.get(ATTR)
    if rec is None:
        raise ValueError(f"study {study_name!r} in {probe.url} was not created by qallegro")
    settings = _settings(rec["scale"], rec.get("settings"))
    storage = _open(storage_url, settings)
    return _attach(optuna.load_study(study_name=study_name, storage=storage.storage), storage)


def _attach(study: optuna.Study, storage: StudyStorage) -> OpenStudy:
    rec = dict(study.user_attrs[ATTR])
    settings = _settings(rec["scale"], rec.get("settings"))
    space = space_mod.space_from_dict(rec["variant"], rec.get("space"))
    spec = StudySpec(**{k: rec[k] for k in StudySpec.__dataclass_fields__ if k in rec and k != "storage"},
                     storage=storage.url)
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


def counts(study: optuna.Study) -> dict[str, int]:
    """Number of trials per state name."""
    out = {s.name: 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] += 1
    return out


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
    hb = op.settings.get("heartbeat") or {}
    interval = float(hb.get("interval", 60))
    poll_s = float(poll_s if poll_s is not None else hb.get("poll", max(1.0, interval)))
    max_failures = int(op.settings.get("max_consecutive_failures", 3))
    worker = f"{socket.gethostname()}:{os.getpid()}"
    with op.storage.claim(op.name):
        attrs = op.study._storage.get_study_system_attrs(op.study._study_id)
        registry = list(attrs.get("qallegro:workers", []))
        index = len(registry)
        op.study._storage.set_study_system_attr(op.study._study_id, "qallegro:workers", [*registry, worker])
    op.study.sampler = _sampler(op.spec, op.space, op.settings, index)
    if index == 0 or not (op.folder / "study.json").exists():
        atomic_write_json(op.folder / "study.json", {"spec": asdict(op.spec), "target": op.target,
                                                     "space": op.space.describe(), "env": environment_record()})
    summary = WorkerSummary()
    failures_in_row = 0
    bar = tqdm(total=op.target, desc=op.name, unit="trial", disable=not progress)
    # BLAS threads = this worker's threads (samplers and data code use numpy/scipy; torch is set by training)
    blas = threadpool_limits(threads, user_api="blas")
    try:
        while max_trials is None or summary.completed + summary.failed < max_trials:
            with op.storage.claim(op.name), warnings.catch_warnings():
                # we run our own trial loop with heartbeats, not Study.optimize (see the module docstring)
                warnings.filterwarnings("ignore", "Heartbeat of storage", UserWarning)
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                optuna.storages.fail_stale_trials(op.study)
                requeue_interrupted(op.study, int(hb.get("max_retry", 1)))
                c = counts(op.study)
                done = c["COMPLETE"] + c["PRUNED"]  # PRUNED: stopped early by a multi-fidelity schedule
                bar.n = min(done, op.target)
                bar.refresh()
                if done >= op.target:
                    break
                start = c["WAITING"] > 0 or done + c["RUNNING"] < op.target
                trial = op.study.ask() if start else None
            if trial is None:
                time.sleep(poll_s)  # the remaining trials are running elsewhere; wait in case one dies
                continue
            ok = _run_trial(op, trial, objective, worker, threads, interval, log)
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


def _run_trial(op: OpenStudy, trial: optuna.Trial, objective, worker: str, threads: int, interval: float,
               log) -> bool:
    """Run one asked trial with a heartbeat; tell the result. Returns True when it completed."""
    frozen = op.study._storage.get_trial(trial._trial_id)
    number = original_number(frozen)
    trial_dir = op.folder / "trials" / f"{number:05d}"
    with HeartbeatThread(op.storage, trial._trial_id, interval):
        try:
            raw = op.space.suggest(trial)
            overrides = op.space.overrides(raw)
            trial.set_user_attr("trial_dir", str(trial_dir))
            trial.set_user_attr("worker", worker)
            trial.set_user_attr("config", overrides)
            ctx = TrialContext(op.spec.dataset, op.spec.variant, op.spec.scale, trial_dir, number, op.settings,
                               threads, log, trial)
            log.info(f"trial {trial.number} (folder {trial_dir.name}) starts: {op.space.values(raw)}")
            result = objective(overrides, ctx)
            values = tuple(float(v) for v in result.values)
            if len(values) != 2 or not all(math.isfinite(v) for v in values):
                raise ValueError(f"objective returned {result.values!r}; expected two finite numbers")
            for key, value in result.attrs.items():
                trial.set_user_attr(key, value)
        except optuna.TrialPruned as stop:  # a multi-fidelity objective stopped the trial early (counts as done)
            log.info(f"trial {trial.number}: {stop}")
            op.study.tell(trial, state=TrialState.PRUNED, skip_if_finished=True)
            return True
        except KeyboardInterrupt:
            trial.set_user_attr("interrupted", True)
            op.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            raise
        except Exception as err:
            log.exception(f"trial {trial.number} failed")
            trial.set_user_attr("error", repr(err)[:2000])
            op.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            return False
    atomic_write_json(trial_dir / "trial.json", {"number": trial.number, "folder_number": number,
                                                 "params": op.space.values(raw), "config": overrides,
                                                 "values": values, "attrs": result.attrs, "worker": worker})
    op.study.tell(trial, values, skip_if_finished=True)
    state = op.study._storage.get_trial(trial._trial_id).state
    if state != TrialState.COMPLETE:
        log.warning(f"trial {trial.number} was declared {state.name} by another worker meanwhile "
                    "(no heartbeat for the grace period); its retry recomputes it")
        return False
    return True


def run(spec: StudySpec | None = None, *, threads: int = 1, progress: bool = True, plots: bool = True,
        **fields: Any) -> dict[str, Any]:
    """Create or resume a study, run this process as a worker until the target, then write the results.

    `run(dataset="rmd17-benzene", variant="mlp", sampler="nsga2", scale="smoke")` is what `qallegro hpo run`
    does. Returns `study` (an `OpenStudy`), `summary` (this worker's counts) and `paths` (the written files).
    """
    from qallegro.hpo.report import write_results

    spec = spec or StudySpec(**fields)
    op = create_or_resume(spec)
    summary = run_worker(op, threads=threads, progress=progress)
    return {"study": op, "summary": summary, "paths": write_results(op, plots=plots)}
