"""`train(config)`: Adam + ReduceLROnPlateau + EMA with early stopping, resumable bit for bit.

A run directory holds `config.yaml` (the resolved config), `env.json` (versions, git commit, hardware, one
entry per session), `statistics.json` (training-set statistics written into the model config),
`epochs.csv` (one row per epoch), `checkpoint.pt`, `metrics.json` (test and validation errors with the
best EMA weights), `model.pt` (the best model, `qallegro.models.save_model` format, default builder only)
and `train.log`.
"""

from __future__ import annotations

import copy
import csv
import importlib
import io
import logging
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from qallegro.data.graph import Graph, collate, to
from qallegro.errors import TrainingError
from qallegro.training import data as tdata
from qallegro.training.checkpoint import Checkpoint, TrainState
from qallegro.training.checkpoint import load_checkpoint as load_checkpoint  # re-exported: the plain dict
from qallegro.training.config import (
    RESUMABLE_CHANGES,
    ConfigError,
    default_run_dir,
    identity,
    validate,
)
from qallegro.training.ema import ExponentialMovingAverage
from qallegro.training.evaluate import evaluate
from qallegro.training.loss import EnergyForceLoss
from qallegro.training.metrics import METRIC_NAMES, ErrorAccumulator
from qallegro.training.result import METRIC_UNITS, TrainResult
from qallegro.training.statistics import resolve_statistics
from qallegro.utils import (
    _plain,
    atomic_write_json,
    atomic_write_text,
    atomic_write_yaml,
    config_hash,
    environment_record,
    get_logger,
    set_threads,
)

CSV_COLUMNS = (["epoch", "steps", "wall_s", "epoch_s", "lr", "train_loss"] + [f"train_{m}" for m in METRIC_NAMES]
               + ["val_loss"] + [f"val_{m}" for m in METRIC_NAMES])
WALL_COLUMNS = ("wall_s", "epoch_s")
DEFAULT_BUILDER = "qallegro.models:build_model"


def builder_of(cfg: Mapping[str, Any]) -> Callable[[dict, list[int]], torch.nn.Module]:
    module, _, name = str(cfg["model_builder"]).partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as err:
        raise ConfigError(f"model_builder {cfg['model_builder']!r} cannot be imported: {err}") from err


def device_of(cfg: Mapping[str, Any]) -> torch.device:
    """`device: auto` is CUDA when available, else CPU."""
    name = str(cfg.get("device", "auto"))
    return torch.device(("cuda" if torch.cuda.is_available() else "cpu") if name == "auto" else name)


def build(cfg: Mapping[str, Any], species: list[int]) -> torch.nn.Module:
    """Seeded model construction in the config's dtype (statistics must already be numbers in `cfg`)."""
    torch.manual_seed(int(cfg["seed"]))
    model = builder_of(cfg)(dict(cfg), list(species))
    return model.to(tdata.dtype_of(cfg))


class _Interrupt:
    """Turns the first SIGINT/SIGTERM into a flag checked between optimizer steps (a second one aborts)."""

    def __init__(self) -> None:
        self.requested = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True

        old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in old.items():
                signal.signal(s, h)


def _format(value: Any) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)


def write_epochs_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _format(row[k]) for k in CSV_COLUMNS})
    atomic_write_text(path, buf.getvalue())


class Trainer:
    """One run: data, model, optimizer and the loop; see `train`."""

    def __init__(self, cfg: dict[str, Any], run_dir: Path, progress: bool, logger: logging.Logger):
        self.cfg, self.run_dir, self.progress, self.log = cfg, run_dir, progress, logger
        self.ckpt_path = run_dir / "checkpoint.pt"
        self.loss_fn = EnergyForceLoss(cfg["loss_coeffs"])
        self.interrupt = _Interrupt()

    # ---------------------------------------------------------------- set-up
    def prepare(self, checkpoint: Checkpoint | None) -> None:
        cfg = self.cfg
        t0 = time.perf_counter()
        structures = tdata.load_structures(cfg)
        self.graphs = {k: tdata.to_graphs(v, float(cfg["r_max"]), k) for k, v in structures.items()}
        if checkpoint is None:
            self.species = tdata.species_of(*self.graphs.values())
            self.stats = resolve_statistics(cfg, self.graphs["train"], self.species)
        else:
            self.species, self.stats = list(checkpoint.species), dict(checkpoint.statistics)
        self.log.info("data: %s train / %s val / %s test structures, species %s, graphs built in %.1f s",
                      *(len(self.graphs[k]) for k in tdata.SPLITS), self.species, time.perf_counter() - t0)
        self.model_cfg = {**cfg, **self.stats}
        self.device = device_of(cfg)
        self.model = build(self.model_cfg, self.species).to(self.device)
        # the training step's forward: compiled on request (validation and test stay eager)
        self.forward = self.model
        if cfg["compile"]:
            from qallegro.models.compile import compile_model

            self.forward = compile_model(self.model, training=True)
        self.n_parameters = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(params, lr=float(cfg["learning_rate"]))
        self.scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(
            self.optimizer, mode="min", factor=float(cfg["lr_scheduler_factor"]),
            patience=int(cfg["lr_scheduler_patience"]))
        self.ema = (ExponentialMovingAverage(params, float(cfg["ema_decay"]), bool(cfg["ema_use_num_updates"]))
                    if cfg["use_ema"] else None)
        self.state = TrainState() if checkpoint is None else checkpoint.state
        if checkpoint is not None:
            self.model.load_state_dict(checkpoint.model)
            self.optimizer.load_state_dict(checkpoint.optimizer)
            self.scheduler.load_state_dict(checkpoint.scheduler)
            if self.ema is not None:
                self.ema.load_state_dict(checkpoint.ema)
            checkpoint.restore_rng()
        else:
            atomic_write_json(self.run_dir / "statistics.json",
                              {**self.stats, "species": self.species, "n_parameters": self.n_parameters})
        self.log.info("model: %s parameters (%s) on %s", self.n_parameters, cfg["model_builder"], self.device)

    def save(self) -> None:
        Checkpoint(config=identity(self.cfg), species=self.species, statistics=self.stats,
                   model=self.model.state_dict(), optimizer=self.optimizer.state_dict(),
                   scheduler=self.scheduler.state_dict(), ema=self.ema.state_dict() if self.ema else None,
                   state=self.state).write(self.ckpt_path)

    # ---------------------------------------------------------------- loop
    def stop_reason(self) -> str | None:
        cfg, st = self.cfg, self.state
        if st.stop_reason == "non-finite loss":
            return st.stop_reason
        if st.epoch >= int(cfg["max_epochs"]):
            return "max_epochs"
        if st.wall_s >= float(cfg["max_wall_s"]):
            return "max_wall_s"
        if self.optimizer.param_groups[0]["lr"] < float(cfg["early_stopping_lr_floor"]):
            return "early_stopping_lr_floor"
        if st.epochs_since_best >= int(cfg["early_stopping_patience"]):
            return "early_stopping_patience"
        return None

    def run(self) -> None:
        st = self.state
        session_start = time.perf_counter() - st.wall_s
        last_save = time.perf_counter()
        train = self.graphs["train"]
        bs = int(self.cfg["batch_size"])
        n_batches = math.ceil(len(train) / bs)
        with self.interrupt.installed():
            while (reason := self.stop_reason()) is None:
                epoch_start = st.wall_s
                if st.step_in_epoch == 0:
                    st.order = self._order(st.epoch, len(train))
                    st.train_acc = ErrorAccumulator().state_dict()
                acc = ErrorAccumulator()
                acc.load_state_dict(st.train_acc)
                lr = self.optimizer.param_groups[0]["lr"]
                self.model.train()
                bar = self._bar(n_batches, st.step_in_epoch, st.epoch)
                cut = False
                for k in range(st.step_in_epoch, n_batches):
                    batch = to(collate([train[i] for i in st.order[k * bs:(k + 1) * bs]]), self.device)
                    loss = self._step(batch, acc)
                    st.step_in_epoch, st.steps = k + 1, st.steps + 1
                    st.train_acc = acc.state_dict()
                    st.wall_s = time.perf_counter() - session_start
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4g}", refresh=False)
                    if not math.isfinite(loss):
                        st.stop_reason = "non-finite loss"
                        self.log.error("non-finite training loss at epoch %d step %d", st.epoch + 1, k + 1)
                        break
                    if self.interrupt.requested:
                        bar.close()
                        self.save()
                        self.log.warning("interrupted in epoch %d after step %d; checkpoint saved",
                                         st.epoch + 1, k + 1)
                        raise KeyboardInterrupt
                    if st.wall_s >= float(self.cfg["max_wall_s"]):
                        cut = k + 1 < n_batches
                        break
                    if time.perf_counter() - last_save >= float(self.cfg["checkpoint_interval_s"]):
                        self.save()
                        last_save = time.perf_counter()
                bar.close()
                if st.stop_reason == "non-finite loss":
                    break
                self._end_epoch(acc, lr, cut, epoch_start, session_start)
                last_save = time.perf_counter()
                if self.interrupt.requested:
                    self.log.warning("interrupted after epoch %d; checkpoint saved", st.epoch)
                    raise KeyboardInterrupt
        st.stop_reason = reason or st.stop_reason
        for label, seconds in getattr(self.forward, "compile_s", {}).items():
            self.log.info("compiled %s in %.1f s", label, seconds)
        for why in getattr(self.forward, "failed", {}).values():
            self.log.warning("trained eagerly: %s", why)
        self.log.info("stopped: %s after %d epochs, %.1f s", st.stop_reason, st.epoch, st.wall_s)
        self.save()

    def _order(self, epoch: int, n: int) -> list[int]:
        if not self.cfg["shuffle"]:
            return list(range(n))
        return np.random.default_rng([int(self.cfg["seed"]), epoch]).permutation(n).tolist()

    def _bar(self, total: int, initial: int, epoch: int) -> Any:
        from tqdm.auto import tqdm

        return tqdm(total=total, initial=initial, desc=f"epoch {epoch + 1}", unit="batch", leave=False,
                    disable=not self.progress, dynamic_ncols=True)

    def _step(self, batch: Graph, acc: ErrorAccumulator) -> float:
        self.optimizer.zero_grad(set_to_none=True)
        out = self.forward(batch, compute_forces=self.loss_fn.uses_forces)
        loss = self.loss_fn(out, batch)
        if not torch.isfinite(loss):
            return float(loss.detach())
        loss.backward()
        self.optimizer.step()
        if self.ema is not None:
            self.ema.update()
        acc.add(out, batch)
        return float(loss.detach())

    def _validate(self) -> dict[str, float]:
        bs = int(self.cfg["validation_batch_size"])
        uses_f = self.loss_fn.uses_forces
        if self.ema is None:
            return evaluate(self.model, self.graphs["val"], bs, uses_f)
        with self.ema.average_parameters():
            return evaluate(self.model, self.graphs["val"], bs, uses_f)

    def _end_epoch(self, acc: ErrorAccumulator, lr: float, cut: bool, epoch_start: float,
                   session_start: float) -> None:
        st = self.state
        train_m = acc.compute()
        val_m = self._validate()
        st.wall_s = time.perf_counter() - session_start
        st.epoch += 1
        st.step_in_epoch, st.order, st.train_acc = 0, None, None
        row: dict[str, Any] = {"epoch": st.epoch, "steps": st.steps, "wall_s": st.wall_s,
                               "epoch_s": st.wall_s - epoch_start, "lr": lr,
                               "train_loss": self.loss_fn.from_metrics(train_m),
                               "val_loss": self.loss_fn.from_metrics(val_m)}
        row.update({f"train_{m}": train_m[m] for m in METRIC_NAMES})
        row.update({f"val_{m}": val_m[m] for m in METRIC_NAMES})
        st.rows.append(row)
        metric = float(row[self._metrics_column()])
        self.scheduler.step(metric)
        if metric < st.best_metric:
            st.best_metric, st.best_epoch, st.epochs_since_best = metric, st.epoch, 0
            st.best_state = self._averaged_state()
        else:
            st.epochs_since_best += 1
        self.log.info("epoch %d%s: %s", st.epoch, " (cut by max_wall_s)" if cut else "",
                      ", ".join(f"{k}={_format(v)}" for k, v in row.items() if k != "epoch"))
        write_epochs_csv(self.run_dir / "epochs.csv", st.rows)
        self.save()

    def _metrics_column(self) -> str:
        key = str(self.cfg["metrics_key"])
        col = "val_loss" if key == "validation_loss" else key
        if col not in CSV_COLUMNS:
            raise ConfigError(f"metrics_key {key!r} is not a column of epochs.csv ({', '.join(CSV_COLUMNS)})")
        return col

    def _averaged_state(self) -> dict[str, torch.Tensor]:
        """The model's state dict with the EMA weights (the weights validation sees)."""
        if self.ema is None:
            return copy.deepcopy(self.model.state_dict())
        with self.ema.average_parameters():
            return copy.deepcopy(self.model.state_dict())

    # ---------------------------------------------------------------- results
    def finish(self) -> TrainResult:
        st = self.state
        if st.best_state is not None:
            self.model.load_state_dict(st.best_state)
        elif self.ema is not None:
            self.ema.copy_to()
        bs, uses_f = int(self.cfg["validation_batch_size"]), self.loss_fn.uses_forces
        val = evaluate(self.model, self.graphs["val"], bs, uses_f)
        test = evaluate(self.model, self.graphs["test"], bs, uses_f) if self.graphs["test"] else {}
        if self.cfg["model_builder"] == DEFAULT_BUILDER:
            from qallegro.models import save_model

            save_model(self.model, self.run_dir / "model.pt")
        result = {
            "run_dir": str(self.run_dir), "val_f_mae": val["f_mae"], "val_e_mae": val["e_mae"], "val": val,
            "test": test, "epochs": st.epoch, "steps": st.steps, "best_epoch": st.best_epoch,
            "wall_s": st.wall_s, "stop_reason": st.stop_reason, "n_parameters": self.n_parameters,
            "statistics": self.stats, "species": self.species,
            "units": dict(METRIC_UNITS),
            "weights": "EMA weights of the best validation epoch" if self.ema else "best validation epoch",
            "config_hash": config_hash(identity(self.cfg)),
        }
        record = TrainResult.from_json(_nan_to_none(result), str(self.run_dir / "metrics.json"))
        atomic_write_json(self.run_dir / "metrics.json", record.to_json())
        self.log.info("test: %s", ", ".join(f"{k}={v}" for k, v in record.test.items()))
        return record


def _nan_to_none(obj: Any) -> Any:
    """NaN (metrics that do not apply, e.g. forces of energy-only data) as None: strict JSON."""
    if isinstance(obj, dict):
        return {k: _nan_to_none(v) for k, v in obj.items()}
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def _check_resumable(cfg: Mapping[str, Any], run_dir: Path) -> None:
    saved_path = run_dir / "config.yaml"
    if not saved_path.exists():
        return
    saved = yaml.safe_load(saved_path.read_text()) or {}
    cfg = yaml.safe_load(yaml.safe_dump(_plain(dict(cfg))))  # compare as stored
    changed = sorted(k for k in set(saved) | set(cfg)
                     if k not in RESUMABLE_CHANGES and saved.get(k, None) != cfg.get(k, None))
    if changed:
        raise ConfigError(f"{saved_path}: the run was started with a different config (keys {changed}); "
                          f"only {', '.join(RESUMABLE_CHANGES)} may change on --resume; use another run dir")


def _finished(cfg: Mapping[str, Any], run_dir: Path) -> TrainResult | None:
    path = run_dir / "metrics.json"
    if not path.exists():
        return None
    result = TrainResult.read(path)
    return result if result.config_hash == config_hash(identity(cfg)) else None


def train(config: Mapping[str, Any], run_dir: str | Path | None = None, resume: bool = False,
          progress: bool = True) -> TrainResult:
    """Train a model as `config` says (see `qallegro.training.config`) and evaluate it on the test split.

    Returns a `TrainResult` (also readable as the mapping of `metrics.json`): `run_dir`, `val_f_mae` (eV/Å),
    `val_e_mae` (eV/atom), `val` and `test` metric dicts (`e_mae`,
    `e_rmse`, `etot_mae`, `etot_rmse`, `f_mae`, `f_rmse`; force metrics are None for energy-only data),
    `epochs`, `steps`, `wall_s`, `best_epoch`, `stop_reason`, `n_parameters`, `statistics`, `species`. A finished
    run with the same config is not repeated: its `metrics.json` is returned.
    With `resume`, an interrupted run continues from `checkpoint.pt` exactly where it stopped (bit for bit on
    CPU; on CUDA, scatter-adds are not deterministic). `device` (config) is `auto`, `cpu` or `cuda[:n]`.
    """
    cfg = copy.deepcopy(dict(config))
    validate(cfg)
    run_dir = Path(run_dir) if run_dir is not None else default_run_dir(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    if resume:
        _check_resumable(cfg, run_dir)
    done = _finished(cfg, run_dir)
    if done is not None:
        return done
    if ckpt_path.exists() and not resume:
        raise TrainingError(f"{run_dir} already holds a checkpoint of an unfinished run; pass resume=True "
                            f"(--resume) to continue it, or choose another run directory")
    threads = set_threads(cfg["threads"])
    logger = get_logger(f"qallegro.train.{config_hash(str(run_dir.resolve()))}", run_dir / "train.log")
    try:
        checkpoint = Checkpoint.read(ckpt_path) if (resume and ckpt_path.exists()) else None
        sessions = []
        if checkpoint is not None and (run_dir / "env.json").exists():
            import json

            sessions = json.loads((run_dir / "env.json").read_text()).get("sessions", [])
        sessions.append({**environment_record(), "threads": threads, "resumed": checkpoint is not None,
                         "started": time.strftime("%Y-%m-%dT%H:%M:%S")})
        atomic_write_json(run_dir / "env.json", {"sessions": sessions})
        atomic_write_yaml(run_dir / "config.yaml", cfg)
        logger.info("%s run in %s (threads %d)", "resuming" if checkpoint else "starting", run_dir, threads)
        trainer = Trainer(cfg, run_dir, progress, logger)
        trainer.prepare(checkpoint)
        trainer.run()
        return trainer.finish()
    finally:
        for h in list(logger.handlers):
            if isinstance(h, logging.FileHandler):
                logger.removeHandler(h)
                h.close()


def load_run(run_dir: str | Path) -> torch.nn.Module:
    """The model of a run with its best weights (EMA weights of the best validation epoch), in eval mode."""
    run_dir = Path(run_dir)
    cfg_path = run_dir / "config.yaml"
    if not cfg_path.exists():
        raise TrainingError(f"{run_dir}: no config.yaml; not a training run directory")
    cfg = yaml.safe_load(cfg_path.read_text())
    ckpt = Checkpoint.read(run_dir / "checkpoint.pt")
    model = build({**cfg, **ckpt.statistics}, list(ckpt.species))
    state = ckpt.state.best_state
    if state is None:
        model.load_state_dict(ckpt.model)
        if ckpt.ema is not None:
            ema = ExponentialMovingAverage([p for p in model.parameters() if p.requires_grad], 0.0)
            ema.load_state_dict(ckpt.ema)
            ema.copy_to()
    else:
        model.load_state_dict(state)
    return model.eval()
