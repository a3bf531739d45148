"""`qallegro evaluate`, `qallegro md` and `qallegro lammps` on a small Cu-Li potential: metrics against a hand
computation, MD files and energy conservation, LAMMPS energies, forces and pressure against the ASE calculator."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import ase.io
import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.singlepoint import SinglePointCalculator
from qallegro import Calculator
from qallegro.deploy.evaluate import read_structures
from qallegro.models import build_model, save_model

ROOT = Path(__file__).resolve().parents[1]
CULI = {"r_max": 4.0, "l_max": 1, "num_layers": 2, "env_embed_multiplicity": 4,
        "two_body_latent_mlp_latent_dimensions": [8], "latent_mlp_latent_dimensions": [8],
        "edge_eng_mlp_latent_dimensions": [4], "avg_num_neighbors": 8.0, "default_dtype": "float64",
        "per_species_rescale_shifts": [-1.9, -3.7], "per_species_rescale_scales": [0.9, 1.3], "seed": 5}


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    return subprocess.run([sys.executable, "-m", "qallegro.cli", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=600)


def interrupted(args: list[str], ready: Callable[[], bool]) -> tuple[int, str]:
    """Run `qallegro ARGS`, send SIGINT once `ready()` holds (at most 300 s), return (exit code, stderr)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "lib")}
    proc = subprocess.Popen([sys.executable, "-m", "qallegro.cli", *args], stderr=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, text=True, env=env)
    try:
        deadline = time.monotonic() + 300
        while not ready() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert proc.poll() is None, "the run ended before it was interrupted"
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    return proc.returncode, err


def culi_cell(seed: int, reps: tuple[int, int, int] = (2, 1, 1)) -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(reps)
    rng = np.random.default_rng(seed)
    atoms.numbers[rng.choice(len(atoms), len(atoms) // 3, replace=False)] = 3
    atoms.rattle(0.08, seed=seed)
    return atoms


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path]:
    model = build_model(CULI, [3, 29]).eval()
    return model, save_model(model, tmp_path_factory.mktemp("model") / "model.pt")


def test_evaluate_metrics_equal_a_hand_computation(model_file, tmp_path: Path):
    model, path = model_file
    rng = np.random.default_rng(0)
    frames, d_e, d_f = [], [], []
    for k in range(6):
        atoms = culi_cell(k, (2, 1, 1) if k % 2 else (1, 1, 1))
        atoms.info["category"] = "bulk" if k < 4 else "interface"
        calc = Calculator(model)
        calc.calculate(atoms, ["energy", "forces"])
        de, df = rng.normal(0, 0.2), rng.normal(0, 0.1, (len(atoms), 3))
        atoms.calc = SinglePointCalculator(atoms, energy=calc.results["energy"] + de,
                                           forces=calc.results["forces"] + df)
        frames.append(atoms)
        d_e.append(de)
        d_f.append(df)
    data = tmp_path / "labelled.extxyz"
    ase.io.write(data, frames)
    proc = cli("evaluate", str(path), str(data), "-o", str(tmp_path / "ev"), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    got = json.loads((tmp_path / "ev" / "metrics.json").read_text())
    d_e, n = np.array(d_e), np.array([len(a) for a in frames])
    all_f = np.concatenate(d_f)
    numbers = np.concatenate([a.numbers for a in frames])
    tol = {"rel": 1e-6, "abs": 1e-7}  # extxyz stores labels to about 1e-8
    assert got["n_structures"] == 6 and got["n_atoms"] == n.sum()
    assert got["energy_mae_eV"] == pytest.approx(np.abs(d_e).mean(), **tol)
    assert got["energy_rmse_eV"] == pytest.approx(np.sqrt((d_e ** 2).mean()), **tol)
    assert got["energy_per_atom_mae_eV"] == pytest.approx(np.abs(d_e / n).mean(), **tol)
    assert got["forces_mae_eV_per_A"] == pytest.approx(np.abs(all_f).mean(), **tol)
    assert got["forces_rmse_eV_per_A"] == pytest.approx(np.sqrt((all_f ** 2).mean()), **tol)
    for z in (3, 29):
        assert got["per_species"][str(z)]["forces_mae_eV_per_A"] == pytest.approx(
            np.abs(all_f[numbers == z]).mean(), **tol)
    assert got["per_category"]["bulk"]["energy_mae_eV"] == pytest.approx(np.abs(d_e[:4]).mean(), **tol)
    assert got["per_category"]["interface"]["forces_mae_eV_per_A"] == pytest.approx(
        np.abs(np.concatenate(d_f[4:])).mean(), **tol)
    assert (tmp_path / "ev" / "parity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_evaluate_reads_dataset_splits_and_rejects_unlabelled_files(model_file, tmp_path: Path):
    frames, label = read_structures("rmd17-benzene:val", max_frames=2)
    assert label == "rmd17-benzene:val" and len(frames) == 2 and frames[0].get_forces().shape == (12, 3)
    bare = tmp_path / "bare.xyz"
    ase.io.write(bare, culi_cell(0))
    proc = cli("evaluate", str(model_file[1]), str(bare), "-o", str(tmp_path / "ev"))
    assert proc.returncode == 2 and "bare.xyz: frame 0 has no reference energy or forces" in proc.stderr
    water = tmp_path / "water.extxyz"
    w = Atoms("H2O", positions=[[0, 0, 0], [0.96, 0, 0], [0, 0.96, 0]])
    w.calc = SinglePointCalculator(w, energy=0.0, forces=np.zeros((3, 3)))
    ase.io.write(water, w)
    proc = cli("evaluate", str(model_file[1]), str(water), "-o", str(tmp_path / "ev"))
    assert proc.returncode == 2 and "species [1, 8] not in the model's species [3, 29]" in proc.stderr


def test_md_nve_conserves_energy_and_writes_its_files(model_file, tmp_path: Path):
    structure = tmp_path / "cell.traj"
    ase.io.write(structure, culi_cell(3, (2, 2, 1)))
    out = tmp_path / "nve"
    proc = cli("md", str(model_file[1]), str(structure), "--steps", "60", "--dt", "0.5", "--temperature", "600",
               "--interval", "20", "-o", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    rows = np.loadtxt(out / "energy.csv", delimiter=",", skiprows=1)
    assert rows.shape == (61, 4) and np.allclose(rows[:, 3], rows[:, 1] + rows[:, 2])
    etot, ekin = rows[:, 3], rows[:, 2]
    assert ekin.std() > 0.01                                  # the atoms move
    assert etot.std() < 0.02 * ekin.std()                     # velocity Verlet conserves the total energy
    assert summary["max_abs_drift_per_atom_eV"] < 1e-4
    assert len(ase.io.read(out / "md.traj", ":")) == 4        # steps 0, 20, 40, 60
    assert "Time[ps]" in (out / "md.log").read_text()
    assert (out / "energy.png").read_bytes()[:4] == b"\x89PNG"
    assert summary["neighbor_list_builds"] < 10               # pairs reused between steps (skin 1 Å)


@pytest.mark.parametrize("suffix", [".extxyz", ".traj"])
def test_md_frame_outside_the_file_is_one_line(model_file, suffix: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]):
    """`--index` past either end names the file, the frame and the number of frames (ASE raised StopIteration
    past the end and gave the first frame for a negative index before it)."""
    from qallegro.cli import main
    from qallegro.deploy.md import read_structure

    structure = tmp_path / f"cells{suffix}"
    frames = [culi_cell(seed) for seed in range(3)]
    ase.io.write(structure, frames)
    for index in (99, 3, -4, -99):
        out = tmp_path / f"md{index}"
        rc = main(["md", str(model_file[1]), str(structure), "--index", str(index), "--steps", "1", "-o", str(out),
                   "--no-progress"])
        err = capsys.readouterr().err
        assert rc == 2 and err.strip().splitlines() == [
            f"qallegro md: {structure}: frame {index} not in file (3 frames)"], err
        assert not out.exists()
    for index in (-3, -1, 2):
        assert np.allclose(read_structure(structure, index).positions, frames[index].positions, atol=1e-6)


def test_md_stops_on_ctrl_c_and_says_where_the_steps_are(model_file, tmp_path: Path):
    ase.io.write(tmp_path / "cell.xyz", culi_cell(11))
    out = tmp_path / "md"
    log = out / "md.log.part"
    rc, err = interrupted(["md", str(model_file[1]), str(tmp_path / "cell.xyz"), "--steps", "100000000",
                           "--interval", "1", "--no-progress", "-o", str(out)],
                          lambda: log.exists() and len(log.read_text().splitlines()) > 3)
    assert rc == 130, err[-2000:]
    assert err.strip().splitlines()[-1].startswith(f"qallegro md: interrupted; the steps so far are in {out}")
    assert len(ase.io.read(out / "md.traj.part", ":")) > 2


def test_md_nvt_thermostat_holds_the_temperature(model_file, tmp_path: Path):
    structure = tmp_path / "cell.traj"
    ase.io.write(structure, culi_cell(4, (2, 2, 1)))
    from qallegro.deploy.md import run_md

    atoms = ase.io.read(structure)
    summary = run_md(model_file[0], atoms, tmp_path / "nvt", "nvt", steps=150, dt_fs=1.0, temperature_K=800.0,
                  friction_per_fs=0.05, interval=50, seed=1, progress=False)
    rows = np.loadtxt(tmp_path / "nvt" / "energy.csv", delimiter=",", skiprows=1)
    temps = rows[:, 2] / (1.5 * units.kB * len(atoms))
    assert 400 < temps[-50:].mean() < 1300                   # held near 800 K (a 32-atom cell fluctuates)
    assert summary["ensemble"] == "nvt" and (tmp_path / "nvt" / "md.traj").exists()


LAMMPS_INPUT = """units metal
atom_style atomic
boundary p p p
read_data {data}
fix qallegro all external pf/callback 1 1
fix_modify qallegro energy yes virial yes
thermo_style custom step pe ke etotal press
thermo 10
timestep 0.0005
run 0
"""


def write_lammps(tmp_path: Path, atoms: Atoms, order: list[str]) -> Path:
    data = tmp_path / "cell.data"
    ase.io.write(data, atoms, format="lammps-data", specorder=order, masses=True, atom_style="atomic")
    script = tmp_path / "in.lmp"
    script.write_text(LAMMPS_INPUT.format(data=data))
    return script


def test_lammps_fix_external_matches_the_ase_calculator_and_conserves_energy(model_file, tmp_path: Path):
    from qallegro.deploy.lammps import run_input

    model, path = model_file
    atoms = culi_cell(7, (2, 2, 1))
    script = write_lammps(tmp_path, atoms, ["Cu", "Li"])
    lmp = run_input(path, script, "Cu,Li")
    try:
        calc = Calculator(model)
        calc.calculate(atoms, ["energy", "forces", "stress"])
        assert lmp.get_thermo("pe") == pytest.approx(calc.results["energy"], rel=1e-10)
        n = len(atoms)
        ids = lmp.numpy.extract_atom("id")[:n]
        forces = lmp.numpy.extract_atom("f")[:n][np.argsort(ids)]
        np.testing.assert_allclose(forces, calc.results["forces"], atol=1e-10)
        pressure_bar = -calc.results["stress"][:3].mean() / units.bar  # no velocities yet: virial only
        assert lmp.get_thermo("press") == pytest.approx(pressure_bar, rel=1e-6)
        lmp.commands_string("velocity all create 600 1 mom yes rot no\nfix nve all nve\nrun 0")
        e0, ke0 = lmp.get_thermo("etotal"), lmp.get_thermo("ke")
        etot = []
        for _ in range(10):
            lmp.command("run 10")
            etot.append(lmp.get_thermo("etotal"))
        assert ke0 > 0.5 and np.abs(np.array(etot) - e0).max() / n < 1e-4
    finally:
        lmp.close()


def test_lammps_type_maps_that_do_not_fit_are_named(model_file, tmp_path: Path):
    from qallegro.deploy.lammps import run_input

    script = write_lammps(tmp_path, culi_cell(8), ["Cu", "Li"])
    for types, message in (("Cu", r"type map Cu has 1 element\(s\); the LAMMPS box has 2 atom type\(s\)"),
                           ("Cu,O", r"type map: species \['O'\] not in the model's species \['Li', 'Cu'\]"),
                           ("Li,Cu", r"atom type 1 is Li \(6.9\d+ u\) but its LAMMPS mass is 63.5\d+ u"),
                           ("Cu,Xx", "type map 'Cu,Xx': not element symbols: Xx")):
        with pytest.raises(ValueError, match=message):
            run_input(model_file[1], script, types)
    proc = cli("lammps", str(model_file[1]), str(script), "--types", "Li,Cu", "--log", str(tmp_path / "log"))
    assert proc.returncode == 2 and "atom type 1 is Li" in proc.stderr
    typo = tmp_path / "typo.lmp"
    typo.write_text(script.read_text().replace("run 0", "rnu 0"))
    with pytest.raises(ValueError, match=r"typo\.lmp: LAMMPS stopped: ERROR: Unknown command: rnu 0"):
        run_input(model_file[1], typo, "Cu,Li")
    with pytest.raises(ValueError, match="no 'fix ID all external pf/callback N M' line"):
        (tmp_path / "nofix.lmp").write_text("units metal\n")
        run_input(model_file[1], tmp_path / "nofix.lmp", "Cu,Li")


def test_lammps_bad_types_and_skin_fail_before_lammps_starts(model_file, tmp_path: Path, monkeypatch):
    import qallegro.deploy.lammps as L

    script = write_lammps(tmp_path, culi_cell(8), ["Cu", "Li"])

    def started(*args, **kwargs):
        raise AssertionError("LAMMPS was started")

    monkeypatch.setattr(L, "open_lammps", started)
    with pytest.raises(ValueError, match="type map 'Cu,Xx': not element symbols: Xx"):
        L.run_input(model_file[1], script, "Cu,Xx")
    with pytest.raises(ValueError, match="skin must be >= 0 Å, got -1"):
        L.run_input(model_file[1], script, "Cu,Li", skin=-1.0)


def test_lammps_stops_when_the_model_fails_instead_of_running_without_forces(model_file, tmp_path: Path):
    """An exception in the fix's callback cannot cross LAMMPS's C frames (ctypes prints and ignores it, and LAMMPS
    ran on with zero forces): two atoms on one site make the model fail at step 0, and a run of 10^8 steps stops
    there with one error naming the script and the step."""
    from qallegro.deploy.lammps import run_input
    from qallegro.errors import ModelError

    atoms = culi_cell(9)
    atoms.positions[1] = atoms.positions[0]
    script = write_lammps(tmp_path, atoms, ["Cu", "Li"])
    script.write_text(script.read_text().replace("run 0", "fix nve all nve\nrun 100000000"))
    with pytest.raises(ModelError, match=r"in\.lmp: the qallegro model failed at LAMMPS step 0, which stopped the "
                                         r"run: atoms 0 and 1 are 0.0e\+00 Å apart \(coincident"):
        run_input(model_file[1], script, "Cu,Li")
    proc = cli("lammps", str(model_file[1]), str(script), "--types", "Cu,Li", "--log", str(tmp_path / "log"))
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    assert "Exception ignored" not in proc.stderr and "LAMMPS step 0" in proc.stderr


def test_lammps_run_stops_on_ctrl_c(model_file, tmp_path: Path):
    """Ctrl-C during a long LAMMPS run (the KeyboardInterrupt is raised inside the fix's callback) stops it: exit
    130 and one line naming the log."""
    script = write_lammps(tmp_path, culi_cell(10), ["Cu", "Li"])
    script.write_text(script.read_text().replace("run 0", "fix nve all nve\nrun 100000000"))
    log = tmp_path / "log.lammps"
    rc, err = interrupted(["lammps", str(model_file[1]), str(script), "--types", "Cu,Li", "--log", str(log)],
                          lambda: log.exists() and "Step" in log.read_text())
    assert rc == 130, err[-2000:]
    assert err.strip().splitlines()[-1] == f"qallegro lammps: interrupted; LAMMPS's log up to that step is {log}"
    assert "Exception ignored" not in err


def test_readme_lammps_example_runs_with_an_exported_model(model_file, tmp_path: Path):
    from qallegro.deploy.export import export_model

    readme = (ROOT / "README.md").read_text()
    script = readme.split("<!-- lammps-example -->\n```\n", 1)[1].split("```", 1)[0]
    (tmp_path / "in.culi").write_text(script)
    export_model(model_file[0], tmp_path / "culi.pt2")
    proc = cli("lammps", "culi.pt2", "in.culi", "--types", "Cu,Li", "--log", "log.culi", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "log.culi").read_text().splitlines()
    start = next(k for k, line in enumerate(log) if line.split()[:2] == ["Step", "Temp"])
    rows = np.array([[float(x) for x in line.split()] for line in log[start + 1:start + 12]])
    assert rows[:, 0].tolist() == list(range(0, 101, 10)) and rows[0, 1] == pytest.approx(300, rel=0.01)
    etot, ke = rows[:, 4], rows[:, 3]
    assert np.abs(etot - etot[0]).max() < 0.01 * np.abs(ke - ke[0]).max()   # NVE: energy moves between KE and PE
    # the same set-up in this process: the step-0 energy is the Calculator's on LAMMPS's atoms
    from qallegro.deploy.lammps import lammps_atoms, run_input

    (tmp_path / "in.zero").write_text(script.replace("run 100", "run 0"))
    lmp = run_input(tmp_path / "culi.pt2", tmp_path / "in.zero", "Cu,Li")
    try:
        atoms = lammps_atoms(lmp, lmp.numpy.extract_atom("x")[:108], np.array([0, 29, 3]))
        assert lmp.get_thermo("pe") == pytest.approx(rows[0, 2], abs=1e-5)  # the log's 6 decimals
        assert Calculator(model_file[0]).get_potential_energy(atoms) == pytest.approx(rows[0, 2], abs=1e-5)
        assert (atoms.numbers == 3).sum() == pytest.approx(27, abs=8)
    finally:
        lmp.close()


def test_misused_options_are_one_line_errors(model_file, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    """Values that used to run on to NaN or end in a traceback: each is one line naming the option."""
    from qallegro.cli import main

    structure = tmp_path / "cell.extxyz"
    ase.io.write(structure, culi_cell(1))
    model = str(model_file[1])
    cases = {("md", model, str(structure), "--temperature", "-100"): "temperature -100.0 K: must be >= 0",
             ("md", model, str(structure), "--ensemble", "nvt", "--friction", "-1"): "friction -1.0 1/fs",
             ("evaluate", model, "rmd17-benzene", "--max-frames", "0"): "max_frames 0: must be at least 1",
             ("export", model, "-o", str(tmp_path)): f"{tmp_path}: is a folder",
             ("export", model, "-o", model): f"{model}: exists and is not a .pt2 export; not overwritten",
             ("lammps", model, "in.lmp", "--types", "Li,Cu", "--log", str(tmp_path / "no" / "log")):
                 "its folder does not exist",
             ("lammps", str(tmp_path / "absent.pt2"), "in.lmp", "--types", "Li,Cu"): "no model at"}
    for args, message in cases.items():
        rc = main([*args, "-o", str(tmp_path / "out")] if args[0] in ("md", "evaluate") else list(args))
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and message in err[0], (args, err)
    assert not (tmp_path / "out" / "md.traj").exists()
    assert torch.load(model, weights_only=True)  # the trained model file is still the trained model


def test_calculator_refuses_nan_positions_with_a_kept_neighbour_list(model_file):
    """With a skin the pairs are reused; NaN positions must not pass as 'not moved' (every edge would drop and the
    energy stay finite)."""
    atoms = culi_cell(2)
    atoms.calc = Calculator(model_file[0], skin=1.0)
    atoms.get_potential_energy()
    atoms.positions[0] = np.nan
    with pytest.raises(ValueError, match=r"positions contain NaN or inf \(atom\(s\) \[0\]\)"):
        atoms.get_potential_energy()


def test_evaluate_reads_the_culi_set_the_model_was_trained_on(model_file, tmp_path: Path):
    from qallegro.deploy.evaluate import training_dataset_options

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("dataset: culi\ndataset_options: {scale: smoke}\n")
    assert training_dataset_options(run, model_file[0], "culi") == {"scale": "smoke"}
    assert training_dataset_options(run, model_file[0], "rmd17-benzene") == {}
    assert training_dataset_options(model_file[1], model_file[0], "culi") == {}  # a bare model.pt: no config
