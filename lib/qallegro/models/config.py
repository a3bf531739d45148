"""Model hyperparameters with legacy Allegro (v0.2.0) names; defaults = the legacy `configs/example.yaml`."""

from __future__ import annotations

import copy
from typing import Any

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

def _check(cond: bool, key: str, msg: str) -> None:
    if not cond:
        raise ValueError(f"model config: {key}: {msg}")


def _dims(cfg: dict[str, Any], key: str) -> list[int]:
    val = cfg[key]
    _check(isinstance(val, (list, tuple)) and all(isinstance(v, int) and v > 0 for v in val), key,
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
    _check(float(cfg["r_max"]) > 0, "r_max", "must be positive")
    _check(int(cfg["num_basis"]) >= 1, "num_basis", "must be >= 1")
    _check(float(cfg["PolynomialCutoff_p"]) >= 2, "PolynomialCutoff_p", "must be >= 2")
    _check(isinstance(cfg["l_max"], int) and cfg["l_max"] >= 0, "l_max", "must be an integer >= 0")
    _check(cfg["parity"] in PARITIES, "parity", f"{cfg['parity']!r} not in {PARITIES}")
    _check(isinstance(cfg["num_layers"], int) and cfg["num_layers"] >= 1, "num_layers", "must be an integer >= 1")
    _check(isinstance(cfg["env_embed_multiplicity"], int) and cfg["env_embed_multiplicity"] >= 1,
           "env_embed_multiplicity", "must be an integer >= 1")
    for key in ("two_body_latent_mlp_latent_dimensions", "latent_mlp_latent_dimensions"):
        _check(len(_dims(cfg, key)) >= 1, key, "needs at least one layer")
    for key in ("env_embed_mlp_latent_dimensions", "edge_eng_mlp_latent_dimensions", "final_mlp_latent_dimensions"):
        _dims(cfg, key)
    for prefix in ("two_body_latent_mlp", "latent_mlp", "env_embed_mlp", "edge_eng_mlp", "final_mlp"):
        _check(cfg[f"{prefix}_nonlinearity"] in NONLINEARITIES, f"{prefix}_nonlinearity",
               f"{cfg[f'{prefix}_nonlinearity']!r} not in {NONLINEARITIES}")
        _check(cfg[f"{prefix}_initialization"] in INITIALIZATIONS, f"{prefix}_initialization",
               f"{cfg[f'{prefix}_initialization']!r} not in {INITIALIZATIONS}")
    k = cfg["edge_eng_mlp_output_dim"]
    _check(isinstance(k, int) and k >= 1, "edge_eng_mlp_output_dim", f"must be a positive integer, got {k!r}")
    for key, value in variant.fixed.items():
        _check(cfg[key] == value, key, f"variant {variant.name} ({variant.label}) needs {value}, got {cfg[key]!r}")
    _check(isinstance(cfg["qdi_n_qubits"], int) and 1 <= cfg["qdi_n_qubits"] <= 12, "qdi_n_qubits",
           "must be an integer in 1..12")
    _check(isinstance(cfg["qdi_depth"], int) and cfg["qdi_depth"] >= 1, "qdi_depth", "must be an integer >= 1")
    _check(isinstance(cfg["qdi_fc_dim"], int) and cfg["qdi_fc_dim"] >= 1, "qdi_fc_dim", "must be an integer >= 1")
    _check(cfg["qdi_backend"] in QDI_BACKENDS, "qdi_backend", f"{cfg['qdi_backend']!r} not in {QDI_BACKENDS}")
    _check(cfg["default_dtype"] in DTYPES, "default_dtype", f"{cfg['default_dtype']!r} not in {DTYPES}")
    nbar = cfg["avg_num_neighbors"]
    _check(nbar is not None and not isinstance(nbar, str) and float(nbar) > 0, "avg_num_neighbors",
           "must be a positive number (the trainer computes it from the training set; 'auto' is resolved there)")
    ratios = cfg["latent_resnet_update_ratios"]
    if ratios is not None:
        _check(len(ratios) == cfg["num_layers"] and all(0 < float(r) < 1 for r in ratios),
               "latent_resnet_update_ratios", f"needs {cfg['num_layers']} values in (0, 1)")
    return cfg
