"""Issue 19 findings 4, 6, 7 and 12: one-line user errors (exit 2), safe and checksummed torch files, coincident
atoms. Every error names the file, key or value concerned."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from qallegro import Calculator, torchfile
from qallegro.cli import main
from qallegro.errors import ModelError, QallegroError
from qallegro.models import build_model, load_model, save_model
from qallegro.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from qallegro.utils import atomic_write_yaml

ROOT = Path(__file__).resolve().parents[1]
SMALL = {"r_max": 4.0, "l_max": 1, "num_layers": 1, "env_embed_multiplicity": 4,
         "two_body_latent_mlp_latent_dimensions": [8], "latent_mlp_latent_dimensions": [8],
         "edge_eng_mlp_latent_dimensions": [8], "avg_num_neighbors": 2.0, "default_dtype": "float64"}


def _one_line_error(argv: list[str], capsys: pytest.CaptureFixture[str], *needles: str) -> str:
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


def _water(n: int, labelled: bool = True) -> list[Atoms]:
    rng = np.random.default_rng(0)
    frames = []
    for _ in range(n):
        a = Atoms("OH2", positions=np.array([[0, 0, 0], [0.96, 0, 0], [-0.24, 0.93, 0]]) + rng.normal(0, 0.02, (3, 3)))
        if labelled:
            a.calc = SinglePointCalculator(a, energy=-14.0, forces=np.zeros((3, 3)))
        frames.append(a)
    return frames


@pytest.mark.parametrize(("overrides", "needles"), [
    (["r_max=[1,2]"], ("r_max", "[1, 2]")),
    (["r_max=1e6"], ("r_max", "20.0")),
    (["num_layers=true"], ("num_layers", "True")),
    (["batch_size=false"], ("batch_size", "False")),
])
def test_config_values_are_type_checked(overrides: list[str], needles: tuple[str, ...],
                                        capsys: pytest.CaptureFixture[str]) -> None:
    args = ["train", "--dataset", "rmd17-benzene", "--scale", "smoke", "--print-config"]
    _one_line_error(args + [f"--set={o}" for o in overrides], capsys, *needles)


@pytest.mark.parametrize(("device", "needles"), [
    ("tpu", ("device must be auto, cpu, cuda or cuda:N", "'tpu'")),
    ("cuda:x", ("device must be", "'cuda:x'")),
    ("0", ("device must be", "got 0")),
    ("cuda", ("device 'cuda': torch.cuda.is_available() is False", "use auto or cpu")),
])
def test_unusable_devices_are_refused_before_the_run_folder_exists(
        device: str, needles: tuple[str, ...], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a CPU-only torch, also on a GPU machine
    run = tmp_path / "run"
    args = ["train", "--dataset", "rmd17-benzene", "--scale", "smoke", "--run-dir", str(run), "--no-progress"]
    _one_line_error([*args, "--set", f"device={device}"], capsys, *needles)
    assert not run.exists()


def test_cuda_devices_are_checked_against_those_present(monkeypatch: pytest.MonkeyPatch) -> None:
    from qallegro.training.config import ConfigError, check_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    for ok in ("auto", "cpu", "cuda", "cuda:0", "cuda:1"):
        check_device(ok)
    with pytest.raises(ConfigError, match=r"device 'cuda:2': torch sees 2 CUDA device\(s\) here"):
        check_device("cuda:2")
    with pytest.raises(ConfigError, match="device must be auto, cpu, cuda or cuda:N, got None"):
        check_device(None)


def test_config_file_errors_name_the_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "five.yaml"
    text.write_text('r_max: "five"\n')
    _one_line_error(["train", "--dataset", "rmd17-benzene", "--config", str(text), "--print-config"], capsys,
                    "r_max", "'five'")
    binary = tmp_path / "config.bin"
    binary.write_bytes(bytes(range(256)) * 4)
    _one_line_error(["train", "--dataset", "rmd17-benzene", "--config", str(binary)], capsys, str(binary))


def test_structure_files_are_checked_frame_by_frame(tmp_path: Path, results_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    small = ["--set", "n_train=2", "--set", "n_val=1", "--scale", "smoke", "--no-progress"]
    garbage = tmp_path / "garbage.xyz"
    garbage.write_text("3\nnot a comment line we can parse\nO 0 0\n")
    _one_line_error(["train", "--dataset", str(garbage), *small], capsys, str(garbage))
    unlabelled = tmp_path / "unlabelled.extxyz"
    frames = _water(5)
    frames[3] = _water(1, labelled=False)[0]
    write(unlabelled, frames)
    _one_line_error(["train", "--dataset", str(unlabelled), *small], capsys, str(unlabelled), "frame 3",
                    "no energy")
    _one_line_error(["train", "--dataset", "rmd17-benzene", "--scale", "smoke", "--set", "n_train=100000",
                     "--no-progress"], capsys, "n_train=100000", "950")


def test_truncated_or_altered_checkpoint_is_refused(tmp_path: Path, results_dir: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from qallegro.training import resolve_config

    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(3)}, "epoch": 2})
    state = load_checkpoint(path)
    assert state["epoch"] == 2 and torch.equal(state["model"]["w"], torch.ones(3))
    data = path.read_bytes()
    for name, broken in (("truncated", data[: len(data) // 2]), ("flipped", data[:40] + bytes([data[40] ^ 1])
                                                                  + data[41:])):
        (tmp_path / name).write_bytes(broken)
        with pytest.raises(CheckpointError, match=name):
            load_checkpoint(tmp_path / name)
    # through the command: a run directory whose checkpoint was cut short
    run = tmp_path / "run"
    cfg = resolve_config("rmd17-benzene", None, "smoke")
    atomic_write_yaml(run / "config.yaml", cfg)
    (run / "checkpoint.pt").write_bytes(data[:1000])
    _one_line_error(["train", "--dataset", "rmd17-benzene", "--scale", "smoke", "--run-dir", str(run), "--resume",
                     "--no-progress"], capsys, str(run / "checkpoint.pt"))


class _Boom:
    """A pickle that runs code when unpickled (what a malicious checkpoint holds)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_no_file_is_unpickled_with_code(tmp_path: Path) -> None:
    """Finding 4: a checkpoint or model file carrying code (with a valid checksum) is refused, not run."""
    marker = tmp_path / "pwned"
    buf = io.BytesIO()
    torch.save({"format_version": 2, "evil": _Boom(marker)}, buf)
    payload = buf.getvalue()
    import hashlib

    evil = tmp_path / "checkpoint.pt"
    evil.write_bytes(payload + torchfile.MAGIC + hashlib.sha256(payload).hexdigest().encode() + b"\n")
    with pytest.raises(CheckpointError, match="other than tensors"):
        load_checkpoint(evil)
    with pytest.raises(ModelError, match=r"checkpoint\.pt"):
        load_model(evil)
    assert not marker.exists()
    sources = [p for p in (ROOT / "lib").rglob("*.py") if "weights_only=False" in p.read_text()]
    assert sources == []


def test_model_file_checksum_and_mismatched_weights(tmp_path: Path) -> None:
    """Findings 12 and 7: a flipped bit is refused; weights of another architecture name the file."""
    model = build_model(SMALL, [1, 8])
    path = save_model(model, tmp_path / "model.pt")
    assert all(torch.equal(a, b) for a, b in zip(load_model(path).state_dict().values(),
                                                 model.state_dict().values()))
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    (tmp_path / "flipped.pt").write_bytes(bytes(data))
    with pytest.raises(ModelError, match=r"flipped\.pt.*corrupt"):
        load_model(tmp_path / "flipped.pt")
    other = build_model({**SMALL, "num_layers": 2}, [1, 8])
    torchfile.save(tmp_path / "mixed.pt", {"config": model.config, "species": model.species,
                                           "state_dict": other.state_dict()})
    with pytest.raises(ModelError, match=r"mixed\.pt: the weights do not match"):
        load_model(tmp_path / "mixed.pt")


def test_coincident_atoms_are_refused_with_their_indices() -> None:
    """Finding 6: two atoms at one position give an error naming them, not NaN energy and forces."""
    atoms = Atoms("OH2", positions=[[0, 0, 0], [0.96, 0, 0], [0.96, 0, 0]])
    atoms.calc = Calculator(build_model(SMALL, [1, 8]))
    with pytest.raises(QallegroError, match=r"atoms 1 and 2 are .* apart"):
        atoms.get_potential_energy()
    atoms.positions[2] = [-0.24, 0.93, 0]
    assert np.isfinite(atoms.get_potential_energy())


def test_coincident_atoms_in_a_training_set_name_the_structure() -> None:
    from qallegro.training.data import to_graphs

    frames = _water(3)
    frames[2].positions[2] = frames[2].positions[0]
    with pytest.raises(QallegroError, match=r"train structure 2: atoms 0 and 2 are"):
        to_graphs(frames, 4.0, "train")
