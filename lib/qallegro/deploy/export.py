"""Portable models: a trained potential as one `torch.export` archive (`.pt2`) that loads with plain torch.

Why `torch.export` and not AOTInductor or TorchScript: an AOTInductor package holds a shared library compiled for
one platform and one torch build, and takes minutes of C++ compilation per graph here; TorchScript is deprecated
(and e3nn's modules do not script). The exported program is the same traced ATen graph that
`qallegro.models.compile` hands to inductor (energy, the inner `autograd.grad` for forces and stress, weights as
constants), serialised with its metadata; `torch.export.load(path).module()` runs it on any machine with torch,
and `torch._inductor.aoti_compile_and_package` can still compile it there. An Allegro+QDI model's circuit is
exported as the torch state vector (`qallegro.quantum.statevector`) whichever backend it uses, so the archive
runs without PennyLane.

The program takes one structure (`INPUTS`, the graph keys of `qallegro.data.graph`, float64 positions) and
returns `OUTPUTS`; the metadata (`qallegro.json` inside the archive) holds species, r_max, units, dtype, variant,
versions and the training run's provenance. Using it without qallegro (`neighbour list: i, j, S` from e.g. ASE):

    extra = {"qallegro.json": ""}
    program = torch.export.load("model.pt2", extra_files=extra).module()
    meta = json.loads(extra["qallegro.json"])
    energy, atomic_energy, forces, stress, bad_species = program(
        pos, cell[None], pbc[None], torch.stack([i, j]), S.double(), torch.zeros(n, dtype=torch.long),
        torch.tensor([0, n]), numbers, *([torch.empty(max(2, nmax), 0)] if meta["needs_padding"] else []))

with `nmax` the largest number of neighbours of any atom. At least 2 atoms and 2 edges (`ExportedPotential`
pads smaller graphs). `bad_species` is true when a number is not one of the model's species: the outputs are
then meaningless.
"""

from __future__ import annotations

import io
import json
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from qallegro import __version__
from qallegro.data import graph as G
from qallegro.errors import ModelError
from qallegro.utils import atomic_write_bytes

FORMAT = "qallegro-export-1"
META_FILE = "qallegro.json"
INPUTS = ("pos", "cell", "pbc", "edge_index", "edge_cell_shift", "batch", "ptr", "atomic_numbers")
OUTPUTS = ("energy", "atomic_energy", "forces", "stress", "bad_species")
UNITS = {"energy": "eV", "length": "Å", "forces": "eV/Å", "stress": "eV/Å^3"}


def _unwrap(model: nn.Module) -> nn.Module:
    """The `AllegroPotential` inside a compiled wrapper."""
    return model._modules["model"] if "model" in model._modules and hasattr(model, "compile_s") else model


def export_model(model: nn.Module, path: str | Path, provenance: dict[str, Any] | None = None) -> Path:
    """Write `model` (an `AllegroPotential`, in eval mode for export) as a self-contained `.pt2` archive at
    `path`, atomically; `provenance` (JSON-able) is stored in the metadata."""
    from qallegro.models.compile import _trace, _Variant, fused_twin, unsupported_reason

    model = _unwrap(model)
    qdi = getattr(getattr(model, "head", None), "qdi", None)
    reason = unsupported_reason(model)
    if reason is not None and qdi is None:  # a QDI head on PennyLane or Lightning is exported below
        raise ModelError(f"cannot export: {reason}")
    was_training = model.training
    flags = [p.requires_grad for p in model.parameters()]
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        variant = _Variant(model, compute_forces=True, compute_stress=True, single=True)
        f64, i64 = torch.float64, torch.int64  # the dtypes of `atoms_to_graph`'s graphs (what the example copies)
        like = {G.POS: torch.zeros(0, 3, dtype=f64), G.CELL: torch.zeros(1, 3, 3, dtype=f64),
                G.PBC: torch.zeros(1, 3, dtype=torch.bool), G.EDGE_INDEX: torch.zeros(2, 0, dtype=i64),
                G.EDGE_CELL_SHIFT: torch.zeros(0, 3, dtype=f64), G.BATCH: torch.zeros(0, dtype=i64),
                G.PTR: torch.zeros(2, dtype=i64)}
        example = variant.example(model, like)
        twin = fused_twin(model)
        if qdi is not None:
            # PennyLane and Lightning run outside torch and cannot be traced; the three backends share the one
            # weight and compute the same circuit (tests/test_quantum_layer.py), so the archive holds the torch
            # state vector whichever backend the model was trained or evaluated with
            twin.head.qdi.backend = "torch"
        traced = _trace(variant.function(twin, None), example)
        n_atoms = torch.export.Dim("n_atoms", min=2)
        n_edges = torch.export.Dim("n_edges", min=2)
        shapes: list[Any] = [{0: n_atoms}, None, None, {1: n_edges}, {0: n_edges}, {0: n_atoms}, None, {0: n_atoms}]
        if variant.padded:
            shapes.append({0: torch.export.Dim("nmax", min=2)})
        program = torch.export.export(traced, tuple(example), dynamic_shapes=tuple(shapes))
    finally:
        for p, flag in zip(model.parameters(), flags):
            p.requires_grad_(flag)
        model.train(was_training)
    cfg = dict(model.config)
    if qdi is not None:
        cfg["qdi_backend"] = "torch"  # what the program runs; the model's own backend is kept beside it
    meta = {
        "format": FORMAT, "species": list(model.species), "r_max": float(model.r_max), "units": UNITS,
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."), "variant": cfg.get("variant", "allegro"),
        "qallegro_version": __version__, "torch_version": torch.__version__,
        "inputs": [*INPUTS, *(["padding"] if variant.padded else [])], "outputs": list(OUTPUTS),
        "needs_padding": bool(variant.padded), "config": json.loads(json.dumps(cfg, default=str)),
        "provenance": provenance or {},
        **({"qdi_backend_of_model": qdi.backend} if qdi is not None else {}),
    }
    buf = io.BytesIO()
    with warnings.catch_warnings():  # constants are CPU tensors; torch warns about grouping them for other devices
        warnings.filterwarnings("ignore", message="No complete tensor found")
        torch.export.save(program, buf, extra_files={META_FILE: json.dumps(meta, sort_keys=True)})
    return atomic_write_bytes(path, buf.getvalue())


def is_exported(path: str | Path) -> bool:
    """Whether `path` is an archive written by `export_model` (by its `.pt2` name or its metadata member)."""
    path = Path(path)
    if path.suffix == ".pt2":
        return True
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith(f"/{META_FILE}") or n == META_FILE for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def load_exported(path: str | Path, device: str | torch.device = "cpu") -> ExportedPotential:
    """Read an archive written by `export_model`, each member checked against its CRC-32 first; errors name the
    file and what is wrong with it (a damaged member by name)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no exported model at {path}")
    try:  # the archive and its metadata first: torch logs a traceback for an unreadable archive
        with zipfile.ZipFile(path) as z:
            damaged = z.testzip()  # every member against its CRC-32: torch reads weights without checking
            member = next((n for n in z.namelist() if n == META_FILE or n.endswith(f"/{META_FILE}")), None)
            raw = z.read(member) if member else b"{}"
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ModelError(f"{path}: not a readable exported model (truncated or not a .pt2 archive: {err})") from err
    if damaged is not None:
        raise ModelError(f"{path}: member {damaged} is damaged (its CRC-32 does not match; the file was altered "
                         "after export): export the model again")
    try:
        meta = json.loads(raw)
    except json.JSONDecodeError as err:
        raise ModelError(f"{path}: its {META_FILE} is not valid JSON ({err})") from err
    if meta.get("format") != FORMAT:
        found = meta.get("format") or f"no {META_FILE}"
        raise ModelError(f"{path}: exported model format {found!r} (qallegro {meta.get('qallegro_version', '?')}); "
                         f"this qallegro {__version__} reads {FORMAT!r}: export the model again")
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="No complete tensor found")
            program = torch.export.load(str(path))
    except Exception as err:  # a damaged or incompatible program raises several types
        made = meta.get("torch_version")
        hint = f"; exported with torch {made}, this is torch {torch.__version__}" if made != torch.__version__ else ""
        raise ModelError(f"{path}: the exported program cannot be loaded ({type(err).__name__}: "
                         f"{str(err)[:200]}){hint}") from err
    if torch.device(device).type != "cpu":
        from torch.export.passes import move_to_device_pass

        program = move_to_device_pass(program, torch.device(device))
    return ExportedPotential(program, meta, path)


class ExportedPotential(nn.Module):
    """An exported program with the call contract of `AllegroPotential` (`forward(graph, compute_forces,
    compute_stress)` -> `energy` [B], `atomic_energy` [N], `forces` [N, 3], `stress` [B, 3, 3]). A batch runs
    structure by structure; a structure with fewer than 2 atoms or 2 edges gets two dummy atoms exactly r_max
    apart (zero envelope: no energy, force or stress), left out of the outputs."""

    def __init__(self, program: Any, meta: dict[str, Any], path: Path | None = None) -> None:
        super().__init__()
        # kept out of the module tree: an exported module refuses train()/eval(); load_exported moves devices
        object.__setattr__(self, "program", program.module())
        self.meta = meta
        self.path = path
        self.species = list(meta["species"])
        self.config = meta["config"]
        self._r_max = float(meta["r_max"])

    @property
    def r_max(self) -> float:
        return self._r_max

    def _check_species(self, numbers: torch.Tensor) -> None:
        unknown = sorted(set(numbers.tolist()) - set(self.species))
        if unknown:
            where = f" ({self.path})" if self.path else ""
            raise ModelError(f"species {unknown} not in the model's species {self.species}{where}")

    def _one(self, graph: G.Graph) -> dict[str, torch.Tensor]:
        pos, numbers = graph[G.POS].to(torch.float64), graph[G.ATOMIC_NUMBERS]
        edges, shifts = graph[G.EDGE_INDEX], graph[G.EDGE_CELL_SHIFT].to(torch.float64)
        n = pos.shape[0]
        padded = n < 2 or edges.shape[1] < 2
        if padded:  # two dummy atoms r_max apart, far from the structure
            far = pos.abs().max() if n else torch.zeros((), dtype=pos.dtype)
            base = torch.tensor([far + 10 * self.r_max, 0.0, 0.0], dtype=pos.dtype, device=pos.device)
            dummy = torch.stack([base, base + torch.tensor([self.r_max, 0.0, 0.0], dtype=pos.dtype,
                                                           device=pos.device)])
            pos = torch.cat([pos, dummy])
            numbers = torch.cat([numbers, numbers.new_full((2,), self.species[0])])
            edges = torch.cat([edges, torch.tensor([[n, n + 1], [n + 1, n]], device=edges.device)], dim=1)
            shifts = torch.cat([shifts, shifts.new_zeros(2, 3)])
        m = pos.shape[0]
        inputs = [pos, graph[G.CELL].to(torch.float64).reshape(1, 3, 3), graph[G.PBC].reshape(1, 3), edges, shifts,
                  torch.zeros(m, dtype=torch.int64, device=pos.device),
                  torch.tensor([0, m], dtype=torch.int64, device=pos.device), numbers]
        if self.meta["needs_padding"]:
            nmax = int(torch.bincount(edges[0], minlength=m).max())
            inputs.append(torch.empty(max(2, nmax), 0, device=pos.device))
        with torch.inference_mode():
            energy, atomic, forces, stress, bad = self.program(*inputs)
        if bad:
            self._check_species(numbers)
        if padded:
            atomic, forces = atomic[:n], forces[:n]
            energy = atomic.sum().reshape(1)
        return {"energy": energy, "atomic_energy": atomic, "forces": forces, "stress": stress}

    def forward(self, graph: G.Graph, compute_forces: bool = True, compute_stress: bool = False
                ) -> dict[str, torch.Tensor]:
        ptr = graph[G.PTR].tolist()
        outs = []
        for b in range(len(ptr) - 1):
            lo, hi = ptr[b], ptr[b + 1]
            keep = (graph[G.EDGE_INDEX][0] >= lo) & (graph[G.EDGE_INDEX][0] < hi)
            one = {G.POS: graph[G.POS][lo:hi], G.ATOMIC_NUMBERS: graph[G.ATOMIC_NUMBERS][lo:hi],
                   G.CELL: graph[G.CELL][b], G.PBC: graph[G.PBC][b],
                   G.EDGE_INDEX: graph[G.EDGE_INDEX][:, keep] - lo, G.EDGE_CELL_SHIFT: graph[G.EDGE_CELL_SHIFT][keep]}
            outs.append(self._one(one))
        out = {"energy": torch.cat([o["energy"] for o in outs]),
               "atomic_energy": torch.cat([o["atomic_energy"] for o in outs])}
        if compute_forces:
            out["forces"] = torch.cat([o["forces"] for o in outs]).to(graph[G.POS].dtype)
        if compute_stress:
            out["stress"] = torch.cat([o["stress"] for o in outs]).to(graph[G.POS].dtype)
        return out


def load_potential(source: str | Path, device: str | torch.device = "cpu") -> nn.Module:
    """A potential from an exported archive, a `model.pt` (`qallegro.models.save_model`), or a training run
    directory (its best weights), in eval mode."""
    source = Path(source)
    if source.is_dir():
        from qallegro.training.trainer import load_run

        return load_run(source).to(device)
    if not source.exists():
        raise FileNotFoundError(f"no model at {source} (expected a .pt2 export, a model.pt or a run directory)")
    if is_exported(source):
        return load_exported(source, device)
    from qallegro.models import load_model

    return load_model(source, map_location=device).eval()


def run_provenance(run_dir: str | Path) -> dict[str, Any]:
    """What an export records of its training run: folder name, config, statistics, metrics, git commit."""
    import yaml

    run_dir = Path(run_dir)
    prov: dict[str, Any] = {"run_dir": run_dir.name}
    for name, key in (("config.yaml", "config"), ("metrics.json", "metrics"), ("statistics.json", "statistics")):
        f = run_dir / name
        if f.exists():
            prov[key] = yaml.safe_load(f.read_text()) if name.endswith(".yaml") else json.loads(f.read_text())
    env = run_dir / "env.json"
    if env.exists():
        sessions = json.loads(env.read_text()).get("sessions") or [{}]
        prov["git_commit"] = sessions[-1].get("git_commit")
        prov["trained_with"] = sessions[-1].get("versions")
    return json.loads(json.dumps(prov, default=str))
