"""Build, save and load potentials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from qallegro import __version__, torchfile
from qallegro.errors import ModelError
from qallegro.models.config import resolve_model_config
from qallegro.models.potential import AllegroPotential

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
FORMAT = "qallegro-model-2"


def build_model(config: dict[str, Any], species: list[int], fused: bool = False) -> AllegroPotential:
    """A potential for `species` (atomic numbers) from a config with legacy Allegro keys (other keys ignored).

    Weights are initialised from `config["seed"]` without touching the global RNG; parameters and buffers use
    `config["default_dtype"]` (energies are accumulated in float64). `fused`: the tensor products in the forms
    the compiled models trace (`qallegro.models.compile`).
    """
    cfg = resolve_model_config(config)
    species = sorted(int(z) for z in species)
    if not species or len(set(species)) != len(species) or species[0] < 1 or species[-1] > 118:
        raise ModelError(f"species must be distinct atomic numbers in 1..118, got {species}")
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
    """Write config, species and weights to `path` atomically, with a checksum (`qallegro.torchfile`)."""
    return torchfile.save(path, {"format": FORMAT, "qallegro_version": __version__, "config": model.config,
                                 "species": model.species, "state_dict": model.state_dict()})


def load_model(path: str | Path, map_location: str | torch.device = "cpu") -> AllegroPotential:
    """A potential saved by `save_model`; the checksum is verified and nothing but tensors and plain types is
    unpickled. Errors name the file."""
    path = Path(path)
    blob = torchfile.load(path, "model file", ModelError, map_location)
    if not isinstance(blob, dict) or not {"config", "species", "state_dict"} <= set(blob):
        raise ModelError(f"{path}: not a qallegro model file (needs config, species and state_dict)")
    model = build_model(blob["config"], blob["species"])
    try:
        model.load_state_dict(blob["state_dict"])
    except RuntimeError as err:  # missing, unexpected or mis-shaped weights
        detail = " ".join(str(err).split())
        raise ModelError(f"{path}: the weights do not match the model its config describes ({detail[:300]})") from err
    return model
