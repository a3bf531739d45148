"""Model hyperparameters with legacy Allegro (v0.2.0) names; defaults = the legacy `configs/example.yaml`."""

from __future__ import annotations

import copy
import numbers
from typing import Any

from qallegro.errors import ModelError
from qallegro.models.variants import VARIANTS

PARITIES = ("o3_full", "o3_restricted", "so3")
NONLINEARITIES = ("silu", "tanh", None)
INITIALIZATIONS = ("uniform", "normal")
DTYPES = ("float32", "float64")
QDI_BACKENDS = ("torch", "pennylane", "lightning")

MODEL_DEFAULTS: dict[str, Any] = {
    "variant": "allegro",
    # radial embedding
    "r_max": 6.0,
    "num_basis": 8,
    "BesselBasis_trainable": True,
    "normalize_basis": True,
    "PolynomialCutoff_p": 6.0,
    # tensor track
    "l_max": 2,
    "parity": "o3_full",
    "num_layers": 2,
    "env_embed_multiplicity": 64,
    "embed_initial_edge": True,
    # scalar track
    "two_body_latent_mlp_latent_dimensions": [128, 256, 512, 1024],
    "two_body_latent_mlp_nonlinearity": "silu",
    "two_body_latent_mlp_initialization": "uniform",
    "latent_mlp_latent_dimensions": [1024, 1024, 1024],
    "latent_mlp_nonlinearity": "silu",
    "latent_mlp_initialization": "uniform",
    "latent_resnet": True,
    "latent_resnet_update_ratios": None,
    "latent_resnet_update_ratios_learnable": False,
    "env_embed_mlp_latent_dimensions": [],
    "env_embed_mlp_nonlinearity": None,
    "env_embed_mlp_initialization": "uniform",
    # edge-energy readout (the slot the paper's variants replace)
    "edge_eng_mlp_latent_dimensions": [128],
    "edge_eng_mlp_nonlinearity": None,
    "edge_eng_mlp_initialization": "uniform",
    "edge_eng_mlp_output_dim": None,  # k; None = the variant's default: 1 (allegro), 16 (mlp, as in the authors'
                                      # code), 4 (qdi)
    "final_mlp_latent_dimensions": [32, 32],
    "final_mlp_nonlinearity": "silu",
    "final_mlp_initialization": "uniform",
    "qdi_n_qubits": 4,
    "qdi_depth": 1,
    "qdi_fc_dim": 16,
    "qdi_backend": "torch",
    # normalisation and per-species scale/shift (numbers from the training set, filled in by the trainer)
    "avg_num_neighbors": None,
    "per_species_rescale_shifts": 0.0,
    "per_species_rescale_scales": 1.0,
    "default_dtype": "float32",
    "seed": 0,
}

# the largest cutoff accepted (Å): the paper uses 4-6 Å; beyond ~20 Å every atom of a periodic cell has
# thousands of neighbours and the neighbour list runs for minutes (a typo such as 1e6 would hang)
R_MAX_LIMIT = 20.0


def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ModelError(f"model config: {key}: {msg}")


def _is_int(val: Any) -> bool:
    return isinstance(val, numbers.Integral) and not isinstance(val, bool)


def _is_number(val: Any) -> bool:
    return isinstance(val, numbers.Real) and not isinstance(val, bool)


def _int(cfg: dict[str, Any], key: str, low: int, high: int | None = None) -> None:
    val, span = cfg[key], f">= {low}" if high is None else f"in {low}..{high}"
    _check(_is_int(val) and val >= low and (high is None or val <= high), key,
           f"must be an integer {span}, got {val!r}")


def _number(cfg: dict[str, Any], key: str, low: float, high: float | None = None, low_open: bool = False) -> None:
    val = cfg[key]
    span = f"{'>' if low_open else '>='} {low}" + ("" if high is None else f" and <= {high}")
    ok = _is_number(val) and (val > low if low_open else val >= low) and (high is None or val <= high)
    _check(ok, key, f"must be a number {span}, got {val!r}")


def _dims(cfg: dict[str, Any], key: str) -> list[int]:
    val = cfg[key]
    _check(isinstance(val, (list, tuple)) and all(_is_int(v) and v > 0 for v in val), key,
           f"expected a list of positive integers, got {val!r}")
    return list(val)


def resolve_model_config(config: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with the model keys of `config`, validated. Non-model keys are ignored."""
    cfg = copy.deepcopy(MODEL_DEFAULTS)
    cfg.update({k: copy.deepcopy(v) for k, v in config.items() if k in MODEL_DEFAULTS})
    _check(cfg["variant"] in VARIANTS, "variant", f"{cfg['variant']!r} not in {tuple(VARIANTS)}")
    variant = VARIANTS[cfg["variant"]]
    for key, value in variant.defaults.items():
        if cfg[key] is None:
            cfg[key] = value
    _number(cfg, "r_max", 0.0, R_MAX_LIMIT, low_open=True)
    _int(cfg, "num_basis", 1)
    _number(cfg, "PolynomialCutoff_p", 2.0)
    _int(cfg, "l_max", 0)
    _check(cfg["parity"] in PARITIES, "parity", f"{cfg['parity']!r} not in {PARITIES}")
    _int(cfg, "num_layers", 1)
    _int(cfg, "env_embed_multiplicity", 1)
    for key in ("two_body_latent_mlp_latent_dimensions", "latent_mlp_latent_dimensions"):
        _check(len(_dims(cfg, key)) >= 1, key, "needs at least one layer")
    for key in ("env_embed_mlp_latent_dimensions", "edge_eng_mlp_latent_dimensions", "final_mlp_latent_dimensions"):
        _dims(cfg, key)
    for prefix in ("two_body_latent_mlp", "latent_mlp", "env_embed_mlp", "edge_eng_mlp", "final_mlp"):
        _check(cfg[f"{prefix}_nonlinearity"] in NONLINEARITIES, f"{prefix}_nonlinearity",
               f"{cfg[f'{prefix}_nonlinearity']!r} not in {NONLINEARITIES}")
        _check(cfg[f"{prefix}_initialization"] in INITIALIZATIONS, f"{prefix}_initialization",
               f"{cfg[f'{prefix}_initialization']!r} not in {INITIALIZATIONS}")
    _int(cfg, "edge_eng_mlp_output_dim", 1)
    for key, value in variant.fixed.items():
        _check(cfg[key] == value, key, f"variant {variant.name} ({variant.label}) needs {value}, got {cfg[key]!r}")
    _int(cfg, "qdi_n_qubits", 1, 12)
    _int(cfg, "qdi_depth", 1)
    _int(cfg, "qdi_fc_dim", 1)
    _check(cfg["qdi_backend"] in QDI_BACKENDS, "qdi_backend", f"{cfg['qdi_backend']!r} not in {QDI_BACKENDS}")
    _int(cfg, "seed", 0)
    _check(cfg["default_dtype"] in DTYPES, "default_dtype", f"{cfg['default_dtype']!r} not in {DTYPES}")
    nbar = cfg["avg_num_neighbors"]
    _check(_is_number(nbar) and nbar > 0, "avg_num_neighbors",
           "must be a positive number (the trainer computes it from the training set; 'auto' is resolved there)")
    ratios = cfg["latent_resnet_update_ratios"]
    if ratios is not None:
        _check(len(ratios) == cfg["num_layers"] and all(0 < float(r) < 1 for r in ratios),
               "latent_resnet_update_ratios", f"needs {cfg['num_layers']} values in (0, 1)")
    return cfg
