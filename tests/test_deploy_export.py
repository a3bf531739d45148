"""Portable exported models (`qallegro export`): loaded with plain torch in a process where qallegro cannot be
imported, they give the Calculator's energies, forces and stress; the Calculator loads every kind of model file;
bad files and species get errors that name them; periodic images of small cells are counted."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import bulk, molecule
from qallegro import Calculator
from qallegro.deploy.export import FORMAT, META_FILE, export_model, load_exported
from qallegro.models import build_model, save_model

ROOT = Path(__file__).resolve().parents[1]
# three layers: the middle one uses the atom-centred tensor product, so the export takes the padding input
CULI = {"r_max": 4.0, "l_max": 1, "num_layers": 3, "env_embed_multiplicity": 4,
        "two_body_latent_mlp_latent_dimensions": [8], "latent_mlp_latent_dimensions": [8],
        "edge_eng_mlp_latent_dimensions": [4], "avg_num_neighbors": 8.0, "default_dtype": "float64",
        "per_species_rescale_shifts": [-1.9, -3.7], "per_species_rescale_scales": [0.9, 1.3], "seed": 3}
# Allegro+QDI: 6 features into the 4-qubit circuit (two encodings, the second zero-padded), depth 2
QDI = {**CULI, "num_layers": 2, "variant": "qdi", "edge_eng_mlp_output_dim": 6, "qdi_depth": 2, "qdi_fc_dim": 8}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    return subprocess.run([sys.executable, "-m", "qallegro.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def culi_cell(seed: int = 0) -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat((2, 1, 1))
    atoms.numbers[[0, 3, 6]] = 3
    atoms.rattle(0.08, seed=seed)
    return atoms


@pytest.fixture(scope="module")
def benzene_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from qallegro.training import resolve_config, train

    cfg = resolve_config("rmd17-benzene", scale="smoke", overrides={"n_test": 5, "max_epochs": 2,
                                                                    "default_dtype": "float64"})
    return Path(train(cfg, run_dir=tmp_path_factory.mktemp("benzene") / "run", progress=False)["run_dir"])


@pytest.fixture(scope="module")
def benzene_pt2(benzene_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run exported by the command line."""
    out = tmp_path_factory.mktemp("export") / "benzene.pt2"
    proc = cli("export", str(benzene_run), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    assert f"-> {out}" in proc.stdout
    return out


@pytest.fixture(scope="module")
def culi(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    model = build_model(CULI, [3, 29]).eval()
    path = export_model(model, tmp_path_factory.mktemp("culi") / "culi.pt2", {"made_by": "test"})
    return model, path


@pytest.fixture(scope="module")
def qdi_pennylane(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    """An Allegro+QDI model on the PennyLane backend, saved as a model.pt and exported by the command line."""
    model = build_model({**QDI, "qdi_backend": "pennylane"}, [3, 29]).eval()
    folder = tmp_path_factory.mktemp("qdi")
    save_model(model, folder / "model.pt")
    proc = cli("export", str(folder / "model.pt"), "-o", str(folder / "qdi.pt2"))
    assert proc.returncode == 0, proc.stderr
    return model, folder / "qdi.pt2"


PLAIN_TORCH = r"""
import importlib.abc, json, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in ("qallegro", "pennylane"):
            raise ImportError(f"{name} is blocked in this process")
sys.meta_path.insert(0, Block())
import ase.io, numpy as np, torch
from ase.neighborlist import neighbor_list
model_file, structure_file = sys.argv[1], sys.argv[2]
extra = {"qallegro.json": ""}
program = torch.export.load(model_file, extra_files=extra).module()
meta = json.loads(extra["qallegro.json"])
atoms = ase.io.read(structure_file)
i, j, S = neighbor_list("ijS", atoms, meta["r_max"])
n = len(atoms)
inputs = [torch.tensor(atoms.positions), torch.tensor(atoms.cell.array)[None], torch.tensor(atoms.pbc)[None],
          torch.tensor(np.stack([i, j])), torch.tensor(S).double(),
          torch.zeros(n, dtype=torch.long), torch.tensor([0, n]), torch.tensor(atoms.numbers)]
if meta["needs_padding"]:
    inputs.append(torch.empty(max(2, int(torch.bincount(torch.tensor(i)).max())), 0))
energy, atomic, forces, stress, bad = program(*inputs)
assert not any(m.split(".")[0] in ("qallegro", "pennylane") for m in sys.modules)
print(json.dumps({"energy": energy.tolist(), "forces": forces.tolist(), "stress": stress.tolist(), "bad": bool(bad),
                  "meta": meta}))
"""


def plain_torch(model_file: Path, atoms: Atoms, tmp_path: Path) -> dict:
    structure = tmp_path / "structure.traj"  # binary: positions to the last bit
    atoms.write(structure)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-c", PLAIN_TORCH, str(model_file), str(structure)], capture_output=True,
                          text=True, env=env, cwd=tmp_path, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_exported_run_loads_without_qallegro_and_agrees_with_the_calculator(benzene_run: Path, benzene_pt2: Path,
                                                                            tmp_path: Path):
    out = benzene_pt2
    atoms = molecule("C6H6")
    atoms.rattle(0.05, seed=1)
    got = plain_torch(out, atoms, tmp_path)
    calc = Calculator(benzene_run)
    calc.calculate(atoms, ["energy", "forces"])
    np.testing.assert_allclose(got["energy"][0], calc.results["energy"], rtol=1e-8)
    np.testing.assert_allclose(got["forces"], calc.results["forces"], rtol=1e-8, atol=1e-8 * np.abs(
        calc.results["forces"]).max())
    meta = got["meta"]
    assert meta["format"] == FORMAT and meta["species"] == [1, 6] and meta["r_max"] == 4.0
    assert meta["units"]["energy"] == "eV" and meta["dtype"] == "float64" and meta["variant"] == "allegro"
    assert meta["provenance"]["run_dir"] == benzene_run.name
    assert meta["provenance"]["metrics"]["test"]["f_mae"] > 0  # the run's test errors travel with the model
    assert not got["bad"]


def test_periodic_export_gives_energy_forces_and_stress_in_float64(culi, tmp_path: Path):
    model, path = culi
    atoms = culi_cell()
    got = plain_torch(path, atoms, tmp_path)
    calc = Calculator(model)
    calc.calculate(atoms, ["energy", "forces", "stress"])
    from ase.stress import voigt_6_to_full_3x3_stress

    np.testing.assert_allclose(got["energy"][0], calc.results["energy"], rtol=1e-8)
    scale = np.abs(calc.results["forces"]).max()
    np.testing.assert_allclose(got["forces"], calc.results["forces"], rtol=1e-8, atol=1e-8 * scale)
    stress = voigt_6_to_full_3x3_stress(calc.results["stress"])
    np.testing.assert_allclose(got["stress"][0], stress, rtol=1e-8, atol=1e-8 * np.abs(stress).max())
    assert np.abs(stress).max() > 1e-4 and scale > 1e-3  # not trivially zero


def test_qdi_export_runs_its_circuit_without_qallegro_or_pennylane(qdi_pennylane, tmp_path: Path):
    """The Allegro+QDI archive holds the circuit as the torch state vector: loaded with plain torch (qallegro and
    PennyLane blocked), it gives the energy, forces and stress of the model simulated by PennyLane's
    default.qubit, and so does the Calculator that loads the archive."""
    model, path = qdi_pennylane
    atoms = culi_cell(seed=6)
    got = plain_torch(path, atoms, tmp_path)
    reference = Calculator(model)  # the PennyLane backend
    reference.calculate(atoms, ["energy", "forces", "stress"])
    loaded = Calculator(path)
    loaded.calculate(atoms, ["energy", "forces", "stress"])
    from ase.stress import voigt_6_to_full_3x3_stress

    stress = voigt_6_to_full_3x3_stress(reference.results["stress"])
    scale = np.abs(reference.results["forces"]).max()
    for energy, forces, full_stress in ((got["energy"][0], got["forces"], got["stress"][0]),
                                        (loaded.results["energy"], loaded.results["forces"],
                                         voigt_6_to_full_3x3_stress(loaded.results["stress"]))):
        np.testing.assert_allclose(energy, reference.results["energy"], rtol=1e-8)
        np.testing.assert_allclose(forces, reference.results["forces"], rtol=1e-8, atol=1e-8 * scale)
        np.testing.assert_allclose(full_stress, stress, rtol=1e-8, atol=1e-8 * np.abs(stress).max())
    assert scale > 1e-3 and np.abs(stress).max() > 1e-4 and not got["bad"]
    meta = got["meta"]
    assert meta["variant"] == "qdi" and meta["config"]["qdi_depth"] == 2
    assert meta["config"]["qdi_backend"] == "torch" and meta["qdi_backend_of_model"] == "pennylane"
    assert meta["provenance"] == {"model_file": "model.pt"}
    # the circuit carries energy: other circuit weights give another energy
    with torch.no_grad():
        model.head.qdi.weight.add_(0.5)
    try:
        shifted = Calculator(model).get_potential_energy(atoms)
    finally:
        with torch.no_grad():
            model.head.qdi.weight.sub_(0.5)
    assert abs(shifted - reference.results["energy"]) > 1e-4 * abs(reference.results["energy"])


def test_calculator_loads_every_kind_of_model_file(benzene_run: Path, benzene_pt2: Path, culi, tmp_path: Path):
    model, path = culi
    save_model(model, tmp_path / "model.pt")
    atoms = culi_cell(seed=2)
    results = []
    for source in (model, tmp_path / "model.pt", path, str(path)):
        calc = Calculator(source)
        calc.calculate(atoms, ["energy", "forces", "stress"])
        results.append(calc.results)
    for r in results[1:]:
        np.testing.assert_allclose(r["energy"], results[0]["energy"], rtol=1e-10)
        np.testing.assert_allclose(r["forces"], results[0]["forces"], rtol=1e-8, atol=1e-12)
        np.testing.assert_allclose(r["stress"], results[0]["stress"], rtol=1e-8, atol=1e-14)
    # a run directory (its best weights) and its export agree too
    benzene = molecule("C6H6")
    e_run = Calculator(benzene_run).get_potential_energy(benzene)
    assert Calculator(benzene_pt2).get_potential_energy(benzene) == pytest.approx(e_run, rel=1e-10)


def test_small_cells_count_their_periodic_images(culi):
    """A one-atom fcc cell (3.6 Å, much less than 2 r_max) has the energy per atom of a 3x3x3 supercell."""
    model, path = culi
    exported = load_exported(path)
    prim = bulk("Cu", "fcc", a=3.61)
    big = prim.repeat(3)
    for source in (model, exported):
        e1 = Calculator(source).get_potential_energy(prim)
        e27 = Calculator(source).get_potential_energy(big)
        assert e1 == pytest.approx(e27 / 27, rel=1e-10)
    # isolated atoms (fewer than 2 edges) run through the exported program too: energy = the species' shift
    lone = Atoms("Li", positions=[[0, 0, 0]])
    assert Calculator(exported).get_potential_energy(lone) == pytest.approx(-1.9)
    assert Calculator(model).get_potential_energy(lone) == pytest.approx(-1.9)


def test_bad_model_files_and_species_are_named(culi, tmp_path: Path):
    model, path = culi
    truncated = tmp_path / "truncated.pt2"
    truncated.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(ValueError, match=r"truncated\.pt2: not a readable exported model"):
        load_exported(truncated)
    # an archive of another export format version
    old = tmp_path / "old.pt2"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(old, "w") as dst:
        for item in src.infolist():
            data = src.read(item)
            if item.filename.endswith(META_FILE):
                meta = json.loads(data)
                data = json.dumps({**meta, "format": "qallegro-export-0", "qallegro_version": "0.0.1"}).encode()
            dst.writestr(item, data)
    with pytest.raises(ValueError, match=r"old\.pt2: exported model format 'qallegro-export-0' \(qallegro 0\.0\.1\)"):
        load_exported(old)
    with pytest.raises(FileNotFoundError, match=r"missing\.pt2"):
        Calculator(tmp_path / "missing.pt2")
    water = molecule("H2O")
    for source in (model, path):
        with pytest.raises(ValueError, match=r"species \[1, 8\] not in the model's species \[3, 29\]"):
            Calculator(source).get_potential_energy(water)
    proc = cli("export", str(truncated), "-o", str(tmp_path / "x.pt2"))
    assert proc.returncode == 2 and "truncated.pt2" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_flipped_bit_in_the_weights_is_refused(culi, tmp_path: Path):
    """One bit flipped inside a weights member: torch would load the archive and give another energy; the CRC-32
    of the member no longer matches, and the error names the file and the member."""
    _, path = culi
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        assert z.testzip() is None
        name = max((n for n in z.namelist() if "/weights/weight_" in n), key=lambda n: z.getinfo(n).file_size)
        data = z.read(name)
    assert raw.count(data) == 1
    raw[raw.find(data) + len(data) // 2 + 6] ^= 0x10  # a high mantissa bit of a float64 weight
    flipped = tmp_path / "flipped.pt2"
    flipped.write_bytes(bytes(raw))
    pattern = rf"flipped\.pt2: member {name} is damaged \(its CRC-32 does not match"
    with pytest.raises(ValueError, match=pattern):
        load_exported(flipped)
    with pytest.raises(ValueError, match=pattern):
        Calculator(flipped)
    proc = cli("export", str(flipped), "-o", str(tmp_path / "x.pt2"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"flipped.pt2: member {name} is damaged" in proc.stderr
    assert load_exported(path).species == [3, 29]  # the intact archive still loads


def test_neighbour_pairs_are_reused_within_the_skin_and_match_a_fresh_list(culi):
    model, _ = culi
    atoms = culi_cell(seed=4)
    kept, fresh = Calculator(model, skin=1.0), Calculator(model, skin=0.0)
    rng = np.random.default_rng(0)
    for _ in range(6):
        atoms.positions += rng.normal(0, 0.03, atoms.positions.shape)
        for c in (kept, fresh):
            c.calculate(atoms, ["energy", "forces"])
        assert kept.results["energy"] == pytest.approx(fresh.results["energy"], rel=1e-12)
        np.testing.assert_allclose(kept.results["forces"], fresh.results["forces"], atol=1e-10)
    assert kept.neighbors.builds == 1 and fresh.neighbors.builds == 6
    atoms.positions[0] += 0.6  # more than skin / 2: rebuilt
    kept.calculate(atoms, ["energy"])
    fresh.calculate(atoms, ["energy"])
    assert kept.neighbors.builds == 2
    assert kept.results["energy"] == pytest.approx(fresh.results["energy"], rel=1e-12)


def test_exported_model_takes_batches_like_the_model(culi):
    from qallegro.data.graph import atoms_to_graph, collate

    model, path = culi
    exported = load_exported(path)
    frames = [culi_cell(seed=5), bulk("Cu", "fcc", a=3.61), Atoms("LiCu", positions=[[0, 0, 0], [0, 0, 2.4]])]
    frames[2].center(vacuum=6.0)
    batch = collate([atoms_to_graph(a, 4.0, labels=False) for a in frames])
    ours, theirs = exported(batch, compute_forces=True, compute_stress=True), model(batch, True, True)
    for key in ("energy", "atomic_energy", "forces", "stress"):
        torch.testing.assert_close(ours[key], theirs[key].detach(), rtol=1e-8, atol=1e-10)
    assert ours["energy"].shape == (3,) and ours["forces"].shape == (len(frames[0]) + 3, 3)


def test_evaluate_of_the_export_reproduces_the_trainers_test_errors(benzene_run: Path, benzene_pt2: Path,
                                                                    tmp_path: Path):
    """`qallegro evaluate` of the exported file on the run's test frames equals the trainer's own test metrics."""
    proc = cli("evaluate", str(benzene_pt2), "rmd17-benzene:test", "--max-frames", "5", "-o", str(tmp_path / "ev"),
               "--no-progress")
    assert proc.returncode == 0, proc.stderr
    got = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    test = json.loads((benzene_run / "metrics.json").read_text())["test"]
    assert got["data"] == "rmd17-benzene:test" and got["n_structures"] == test["n_structures"] == 5
    assert got["forces_mae_eV_per_A"] == pytest.approx(test["f_mae"], rel=1e-8)
    assert got["forces_rmse_eV_per_A"] == pytest.approx(test["f_rmse"], rel=1e-8)
    assert got["energy_per_atom_mae_eV"] == pytest.approx(test["e_mae"], rel=1e-6)
    assert got["energy_mae_eV"] == pytest.approx(test["etot_mae"], rel=1e-6)
    assert set(got["per_species"]) == {"1", "6"}
