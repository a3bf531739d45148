"""Build, save and load potentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from qallegro import __version__
from qallegro.models.config import resolve_model_config
from qallegro.models.potential import AllegroPotential
from qallegro.utils import atomic_write_bytes

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
FORMAT = "qallegro-model-1"


def build_model(config: dict[str, Any], species: list[int], fused: bool = False) -> AllegroPotential:
    """A potential for `species` (atomic numbers) from a config with legacy Allegro keys (other keys ignored).

    Weights are initialised from `config["seed"]` without touching the global RNG; parameters and buffers use
    `config["default_dtype"]` (energies are accumulated in float64). `fused`: the tensor products in the forms
    the compiled models trace (`qallegro.models.compile`).
    """
    cfg = resolve_model_config(config)
    species = sorted(int(z) for z in species)
    if not species or len(set(species)) != len(species) or species[0] < 1 or species[-1] > 118:
        raise ValueError(f"species must be distinct atomic numbers in 1..118, got {species}")
    dtype = _DTYPES[cfg["default_dtype"]]
    previous = torch.get_default_dtype()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(cfg["seed"]))
        torch.set_default_dtype(dtype)
        try:
            model = AllegroPotential(cfg, species, fused)
        finally:
            torch.set_default_dtype(previous)
    return model.to(dtype)


def save_model(model: AllegroPotential, path: str | Path) -> Path:
    """Write config, species and weights to `path` atomically (loadable with `weights_only=True`)."""
    import io

    buf = io.BytesIO()
    torch.save({"format": FORMAT, "qallegro_version": __version__, "config": model.config,
                "species": model.species, "state_dict": model.state_dict()}, buf)
    return atomic_write_bytes(path, buf.getvalue())


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> AllegroPotential:
    """A potential saved by `save_model` (or a training checkpoint holding the same keys)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no model file at {path}")
    try:
        blob = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # truncated or not a torch file
        raise ValueError(f"{path}: not a readable qallegro model file ({err})") from err
    if not isinstance(blob, dict) or not {"config", "species", "state_dict"} <= set(blob):
        raise ValueError(f"{path}: not a qallegro model file (needs config, species and state_dict)")
    model = build_model(blob["config"], blob["species"])
    model.load_state_dict(blob["state_dict"])
    return model
