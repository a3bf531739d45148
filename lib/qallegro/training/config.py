"""Training configuration: one flat dict with the legacy Allegro/nequip key names.

Resolution order (later wins)::

    MODEL_DEFAULTS (qallegro.models) <- TRAIN_DEFAULTS <- presets/train.yaml[scale]["all"]
        <- presets/train.yaml[scale][dataset] <- config file <- overrides ("key=value", YAML-typed)

`TRAIN_DEFAULTS` are the training keys of the legacy Allegro example config (`configs/example.yaml` of
mir-group/allegro v0.2.0), see the book's methods page and `../shared/paper/NOTES.md` section 2.2.
Dataset statistics (`avg_num_neighbors`, `per_species_rescale_shifts`, `per_species_rescale_scales`) may be
given as numbers or as the legacy `dataset_*` / `auto` names; the trainer replaces names by numbers computed
on the training set before `build_model` (see `qallegro.training.statistics`).
"""

from __future__ import annotations

import copy
import numbers
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from qallegro import scales
from qallegro.errors import QallegroError, TrainingError
from qallegro.paths import results_root
from qallegro.utils import config_hash

TRAIN_DEFAULTS: dict[str, Any] = {
    # what to train
    "dataset": None,                      # a registered dataset name or a path to an ASE-readable file
    "variant": "allegro",                 # allegro | mlp | qdi
    "scale": scales.DEFAULT_SCALE,
    "model_builder": "qallegro.models:build_model",   # "module:function" with build_model's signature
    # data
    "n_train": 950,
    "n_val": 50,
    "n_test": None,                       # None: the whole split
    "dataset_seed": 123456,               # split of a dataset given as a file
    "dataset_options": {},                # passed to qallegro.data.load_dataset (split_index, seed, energy, ...)
    # optimisation (legacy example config)
    "batch_size": 5,
    "validation_batch_size": 50,          # evaluation only; does not change the result
    "learning_rate": 0.001,
    "max_epochs": 1000000,
    "max_wall_s": 604800.0,               # early_stopping_upper_bounds: cumulative_wall
    "lr_scheduler_patience": 50,
    "lr_scheduler_factor": 0.5,
    "early_stopping_patience": 100,       # epochs without improvement of `metrics_key`
    "early_stopping_lr_floor": 1.0e-5,    # early_stopping_lower_bounds: LR
    "metrics_key": "validation_loss",     # or val_f_mae, val_e_mae, ... (a column of epochs.csv)
    "use_ema": True,
    "ema_decay": 0.99,
    "ema_use_num_updates": True,
    "loss_coeffs": {"forces": 1.0, "energy_per_atom": 1.0},   # forces: 0 -> energy-only (QM9)
    "shuffle": True,
    "seed": 123456,
    "threads": None,                      # torch threads; None: QALLEGRO_THREADS or all available CPUs
    "device": "auto",                     # auto (CUDA when available), cpu, cuda, cuda:1, ...
    "compile": False,                     # compile the training step's energy+forces (qallegro.models.compile):
                                          # about a minute per run, then faster steps (benchmarks/README.md)
    "checkpoint_interval_s": 600.0,       # also checkpoint inside long epochs
    # dataset statistics written into the model config before build_model
    "avg_num_neighbors": "auto",
    "per_species_rescale_shifts": "dataset_per_atom_total_energy_mean",
    "per_species_rescale_scales": "dataset_forces_rms",
}

# keys that change nothing in the numbers a run produces (not part of the run's identity)
NON_IDENTITY_KEYS = ("threads", "validation_batch_size", "checkpoint_interval_s", "device", "compile")
# keys a resumed run may change (a longer budget)
RESUMABLE_CHANGES = ("max_epochs", "max_wall_s", *NON_IDENTITY_KEYS)


class _Loader(yaml.SafeLoader):
    """YAML 1.1 safe loader that also reads `1e-3` (no dot) as a float, as YAML 1.2 does."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
                    |\.[0-9_]+(?:[eE][-+][0-9]+)?
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.VERBOSE),
    list("-+0123456789."),
)


def yaml_load(text: str) -> Any:
    """Parse YAML text with number handling suited to configs (`1e-3` is a float)."""
    return yaml.load(text, Loader=_Loader)


class ConfigError(TrainingError):
    """A configuration problem, with the key and the file it came from."""


def model_defaults() -> dict[str, Any]:
    """`qallegro.models.MODEL_DEFAULTS` (a copy)."""
    from qallegro.models import MODEL_DEFAULTS

    return copy.deepcopy(dict(MODEL_DEFAULTS))


def all_defaults() -> dict[str, Any]:
    """Model defaults updated by the training defaults: the full set of known keys."""
    cfg = model_defaults()
    cfg.update(copy.deepcopy(TRAIN_DEFAULTS))
    return cfg


def read_yaml_file(path: str | os.PathLike, what: str, error: type[QallegroError]) -> Any:
    """The YAML document in `path` (`what`: "config file", ...), read as UTF-8 text; a missing, unreadable,
    binary or invalid file raises `error` (the caller's floor's class) naming the file."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} not found: {path}")
    try:
        return yaml_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise error(f"{path}: not a text file (a YAML {what} must be UTF-8 text)") from None
    except OSError as err:
        raise error(f"{path}: cannot read the {what} ({err.strerror})") from err
    except yaml.YAMLError as err:
        raise error(f"{path}: not valid YAML: {err}") from err


def load_config_file(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML config file: a flat mapping of known keys."""
    data = read_yaml_file(path, "config file", ConfigError)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(data).__name__}")
    return data


def parse_overrides(overrides: Iterable[str] | Mapping[str, Any]) -> dict[str, Any]:
    """`["key=value", ...]` with YAML-typed values (`lr=1e-3`, `dims=[32, 32]`) into a dict.

    A dotted key sets one entry of a dict-valued key: `loss_coeffs.forces=0`.
    """
    if isinstance(overrides, Mapping):
        return dict(overrides)
    out: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = str(item).partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected key=value")
        try:
            value = yaml_load(raw) if raw.strip() else None
        except yaml.YAMLError as err:
            raise ConfigError(f"override {item!r}: value is not valid YAML: {err}") from err
        out[key] = value
    return out


def _merge(cfg: dict[str, Any], update: Mapping[str, Any], known: set[str], source: str) -> None:
    """Merge `update` into `cfg` in place; unknown keys raise a ConfigError naming `source`."""
    for key, value in update.items():
        top, dot, sub = str(key).partition(".")
        if top not in known:
            raise ConfigError(f"{source}: unknown config key {top!r}" + _suggest(top, known))
        if dot:
            if not isinstance(cfg.get(top), dict):
                raise ConfigError(f"{source}: {top!r} is not a mapping, cannot set {key!r}")
            cfg[top] = {**cfg[top], sub: value}
        else:  # a mapping given whole (loss_coeffs: {...}) replaces the default one
            cfg[top] = copy.deepcopy(value)


def _suggest(key: str, known: set[str]) -> str:
    import difflib

    close = difflib.get_close_matches(key, sorted(known), n=3)
    return f" (did you mean {', '.join(close)}?)" if close else ""


PAPER_EPOCHS = "paper_final_training_epochs"


def preset(scale: str, dataset: str) -> dict[str, Any]:
    """The `presets/train.yaml` entries for `scale`: the `all` block updated by the `dataset` block.

    `max_epochs: paper_final_training_epochs` becomes the paper's final-run epochs for the dataset.
    """
    table = scales.settings("train", scale) or {}
    out = dict(table.get("all") or {})
    out.update(table.get(dataset_key(dataset)) or {})
    if out.get("max_epochs") == PAPER_EPOCHS:
        from qallegro.paper import values

        epochs = values()["final_training_epochs"]
        if dataset not in epochs:
            out.pop("max_epochs")  # a dataset of the user's: keep the default
        else:
            out["max_epochs"] = int(epochs[dataset])
    return out


def dataset_key(dataset: str) -> str:
    """The name under which a dataset appears in presets and run directories (a file's stem for paths)."""
    return Path(dataset).stem if ("/" in dataset or os.sep in dataset or Path(dataset).suffix) else dataset


def resolve_config(
    dataset: str | None = None,
    variant: str | None = None,
    scale: str | None = None,
    config_file: str | os.PathLike | None = None,
    overrides: Iterable[str] | Mapping[str, Any] = (),
) -> dict[str, Any]:
    """The full training config: defaults <- scale preset for the dataset <- file <- overrides.

    `dataset`, `variant` and `scale` given here win over the file; when None they come from the file, else
    from the defaults (variant "allegro", scale "quick"). Unknown keys raise a ConfigError naming the key and
    where it came from.
    """
    cfg = all_defaults()
    known = set(cfg)
    file_cfg = load_config_file(config_file) if config_file is not None else {}
    over = parse_overrides(overrides)
    explicit = {k: v for k, v in (("dataset", dataset), ("variant", variant), ("scale", scale)) if v is not None}
    chosen = {**cfg, **{k: v for k, v in file_cfg.items() if k in ("dataset", "variant", "scale")},
              **{k: v for k, v in over.items() if k in ("dataset", "variant", "scale")}, **explicit}
    if not chosen["dataset"]:
        raise ConfigError("no dataset: pass --dataset NAME or set `dataset` in the config file")
    from qallegro.data import DataError, dataset_spec

    try:
        dataset_spec(str(chosen["dataset"]))  # a registered name or a structure file
    except DataError as err:
        raise ConfigError(f"dataset: {err}") from None
    scale_name = scales.check_scale(str(chosen["scale"]))
    _merge(cfg, preset(scale_name, str(chosen["dataset"])), known, f"presets/train.yaml[{scale_name}]")
    if config_file is not None:
        _merge(cfg, file_cfg, known, str(config_file))
    _merge(cfg, over, known, "overrides")
    cfg.update(explicit)
    validate(cfg)
    check_model_keys(cfg)
    return cfg


def check_model_keys(cfg: Mapping[str, Any]) -> None:
    """Validate the model keys now (before data are loaded); statistics named `auto`/`dataset_*` are skipped."""
    from qallegro.models import resolve_model_config

    probe = dict(cfg)
    if probe.get("avg_num_neighbors") is None or isinstance(probe.get("avg_num_neighbors"), str):
        probe["avg_num_neighbors"] = 1.0
    try:
        resolve_model_config(probe)
    except ValueError as err:
        raise ConfigError(str(err)) from err


def validate(cfg: Mapping[str, Any]) -> None:
    """Check the training keys' types and ranges (the model checks its own keys)."""
    def need(cond: bool, msg: str) -> None:
        if not cond:
            raise ConfigError(msg)

    def is_int(val: Any) -> bool:
        return isinstance(val, numbers.Integral) and not isinstance(val, bool)

    def is_number(val: Any) -> bool:
        return isinstance(val, numbers.Real) and not isinstance(val, bool)

    for key in ("batch_size", "validation_batch_size", "max_epochs", "early_stopping_patience"):
        need(is_int(cfg[key]) and cfg[key] >= 1, f"{key} must be a positive integer, got {cfg[key]!r}")
    need(is_int(cfg["lr_scheduler_patience"]) and cfg["lr_scheduler_patience"] >= 0,
         f"lr_scheduler_patience must be an integer >= 0, got {cfg['lr_scheduler_patience']!r}")
    for key in ("n_train", "n_val", "n_test"):
        need(cfg[key] is None or (is_int(cfg[key]) and cfg[key] >= 1),
             f"{key} must be a positive integer or null (the whole split), got {cfg[key]!r}")
    for key in ("learning_rate", "max_wall_s", "early_stopping_lr_floor", "checkpoint_interval_s"):
        need(is_number(cfg[key]) and cfg[key] >= 0, f"{key} must be a number >= 0, got {cfg[key]!r}")
    for key in ("lr_scheduler_factor", "ema_decay"):
        need(is_number(cfg[key]), f"{key} must be a number, got {cfg[key]!r}")
    need(0.0 < float(cfg["lr_scheduler_factor"]) < 1.0, "lr_scheduler_factor must lie in (0, 1)")
    need(isinstance(cfg["compile"], bool), f"compile must be true or false, got {cfg['compile']!r}")
    need(0.0 <= float(cfg["ema_decay"]) < 1.0, "ema_decay must lie in [0, 1)")
    coeffs = cfg["loss_coeffs"]
    need(isinstance(coeffs, dict) and set(coeffs) <= {"forces", "energy_per_atom"},
         f"loss_coeffs must be a mapping with keys forces, energy_per_atom; got {coeffs!r}")
    need(all(is_number(v) for v in coeffs.values()), f"loss_coeffs must be numbers; got {coeffs!r}")
    need(all(float(v) >= 0 for v in coeffs.values()) and any(float(v) > 0 for v in coeffs.values()),
         f"loss_coeffs need non-negative weights, at least one positive; got {coeffs!r}")
    need(cfg.get("default_dtype", "float32") in ("float32", "float64"),
         f"default_dtype must be float32 or float64, got {cfg.get('default_dtype')!r}")
    need(isinstance(cfg["dataset_options"], dict),
         f"dataset_options must be a mapping, got {cfg['dataset_options']!r}")
    need(":" in str(cfg["model_builder"]), f"model_builder must be 'module:function', got {cfg['model_builder']!r}")
    need(is_int(cfg["dataset_seed"]), f"dataset_seed must be an integer, got {cfg['dataset_seed']!r}")
    need(cfg["threads"] is None or (is_int(cfg["threads"]) and cfg["threads"] >= 1),
         f"threads must be a positive integer or null, got {cfg['threads']!r}")
    check_device(cfg["device"])


def check_device(value: Any) -> None:
    """`device` is `auto`, `cpu`, or `cuda`/`cuda:N` (`mps`) with such a device visible to torch here."""
    import torch

    if value == "auto":
        return
    present = {"cpu": lambda: True, "cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
    try:
        device = torch.device(value) if isinstance(value, str) else None
    except RuntimeError:
        device = None
    if device is None or device.type not in present:
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")
    if not present[device.type]():
        probe = "torch.cuda" if device.type == "cuda" else "torch.backends.mps"
        raise ConfigError(f"device {value!r}: {probe}.is_available() is False on this machine (no such device, or "
                          "a CPU-only torch); use auto or cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {value!r}: torch sees {torch.cuda.device_count()} CUDA device(s) here")


def identity(cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The part of a config that determines a run's numbers (used for the run directory's hash)."""
    return {k: v for k, v in cfg.items() if k not in NON_IDENTITY_KEYS}


def default_run_dir(cfg: Mapping[str, Any]) -> Path:
    """`results/<scale>/train/<dataset>-<variant>-<hash>/`."""
    name = f"{dataset_key(str(cfg['dataset']))}-{cfg['variant']}-{config_hash(identity(cfg))}"
    return results_root() / str(cfg["scale"]) / "train" / name
