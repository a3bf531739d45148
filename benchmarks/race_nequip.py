"""The maintainers' Allegro (nequip 0.19.1 + nequip-allegro 0.8.3) for the speed race: models, data, AOTInductor
export and the training step, as measured in ../shared/notes/nequip-anchor.md (Appendix C).

Runs only in `.venv-bench` (benchmarks/race.sh installs it); qallegro itself never imports nequip.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

os.environ.setdefault("NEQUIP_SKIP_AOTI_MODEL_CHECK", "1")  # the self-check compares NaN stress of molecules

from nequip.utils.global_state import set_global_state

set_global_state(allow_tf32=False)

from allegro.model import AllegroModel  # noqa: E402 (after set_global_state, as nequip requires)
from nequip.data import AtomicDataDict, from_ase  # noqa: E402
from nequip.integrations.utils import basic_transforms  # noqa: E402

# nequip-anchor §1.1 ("quick", FullAllegroModel defaults) and §1.2 (closest to the legacy example config)
SIZES = {
    "quick": {
        "radial_chemical_embed_dim": 64, "scalar_embed_mlp_hidden_layers_depth": 1,
        "scalar_embed_mlp_hidden_layers_width": 64, "num_scalar_features": 64, "num_tensor_features": 16,
        "allegro_mlp_hidden_layers_depth": 1, "allegro_mlp_hidden_layers_width": 64,
        "readout_mlp_hidden_layers_depth": 1, "readout_mlp_hidden_layers_width": 32,
        "readout_mlp_nonlinearity": "silu", "bessel_trainable": False},
    "legacy": {
        "radial_chemical_embed_dim": 128, "scalar_embed_mlp_hidden_layers_depth": 2,
        "scalar_embed_mlp_hidden_layers_width": 512, "num_scalar_features": 1024, "num_tensor_features": 64,
        "allegro_mlp_hidden_layers_depth": 2, "allegro_mlp_hidden_layers_width": 1024,
        "readout_mlp_hidden_layers_depth": 1, "readout_mlp_hidden_layers_width": 128,
        "readout_mlp_nonlinearity": None, "bessel_trainable": True},
}


def build(size: str, type_names: list[str], r_max: float, avg_num_neighbors: float, l_max: int = 2,
          num_layers: int = 2, compile_mode: str = "eager") -> torch.nn.Module:
    """An `AllegroModel` of nequip-anchor §1 in float32 (seed 456, l_max 2, parity, 8 Bessels, p = 6)."""
    s = dict(SIZES[size])
    bessel_trainable = s.pop("bessel_trainable")
    return AllegroModel(
        seed=456, model_dtype="float32", type_names=type_names, r_max=r_max, l_max=l_max, parity=True,
        num_layers=num_layers, tp_path_channel_coupling=True, compile_mode=compile_mode,
        radial_chemical_embed={"_target_": "allegro.nn.TwoBodyBesselScalarEmbed", "num_bessels": 8,
                               "bessel_trainable": bessel_trainable, "polynomial_cutoff_p": 6},
        scalar_embed_mlp_nonlinearity="silu", allegro_mlp_nonlinearity="silu",
        avg_num_neighbors=avg_num_neighbors, per_type_energy_shifts=dict.fromkeys(type_names, -1.0),
        per_type_energy_scales=dict.fromkeys(type_names, 1.0), **s)


def data(atoms, r_max: float, type_names: list[str]) -> dict[str, torch.Tensor]:
    """`from_ase` + type mapping + neighbour list (matscipy), as nequip's ASE calculator prepares a structure."""
    d = from_ase(atoms)
    for t in basic_transforms({}, r_max, type_names, {t: t for t in type_names}):
        d = t(d)
    return d


def batch(frames: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    return AtomicDataDict.batched_from_list(frames)


def energy_forces(model: torch.nn.Module, d: dict[str, torch.Tensor]):
    out = model(dict(d))
    return out[AtomicDataDict.TOTAL_ENERGY_KEY], out[AtomicDataDict.FORCE_KEY]


def train_step(model: torch.nn.Module, b: dict[str, torch.Tensor], opt: torch.optim.Optimizer) -> float:
    """nequip-anchor §3.1: MSE(per-atom energy) + MSE(forces), backward (through the forces), Adam step."""
    opt.zero_grad(set_to_none=True)
    out = model(dict(b))
    n = torch.bincount(b[AtomicDataDict.BATCH_KEY]).to(out[AtomicDataDict.TOTAL_ENERGY_KEY].dtype)
    e = out[AtomicDataDict.TOTAL_ENERGY_KEY].reshape(-1)
    loss = torch.mean(((e - b[AtomicDataDict.TOTAL_ENERGY_KEY].reshape(-1)) / n) ** 2) + torch.mean(
        (out[AtomicDataDict.FORCE_KEY] - b[AtomicDataDict.FORCE_KEY]) ** 2)
    loss.backward()
    opt.step()
    return float(loss.detach())


def aoti(model: torch.nn.Module, d: dict[str, torch.Tensor], path: Path):
    """Export with AOTInductor as `nequip-compile --mode aotinductor --target ase` does (dynamic atoms and edges,
    one frame), load it back, and return `f(d) -> (energy, forces)`."""
    from nequip.scripts._compile_utils import COMPILE_TARGET_DICT
    from nequip.utils.aot import aot_export_model

    target = COMPILE_TARGET_DICT["ase"]
    batch_map = {
        "graph": torch.export.Dim.STATIC,
        "node": torch.export.dynamic_shapes.Dim("num_nodes", min=2, max=torch.inf),
        "edge": torch.export.dynamic_shapes.Dim("num_edges", min=2, max=torch.inf),
    }
    dd = target["data_settings"](dict(d))
    aot_export_model(model=model, device="cpu", input_fields=target["input"], output_fields=target["output"],
                     data=dd, batch_map=batch_map, output_path=str(path))
    runner = torch._inductor.aoti_load_package(str(path))
    keys_in, keys_out = target["input"], target["output"]
    i_e, i_f = keys_out.index(AtomicDataDict.TOTAL_ENERGY_KEY), keys_out.index(AtomicDataDict.FORCE_KEY)

    def call(x: dict[str, torch.Tensor]):
        with torch.inference_mode():
            out = runner([x[k] for k in keys_in])
        return out[i_e], out[i_f]

    return call
