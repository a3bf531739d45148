"""The dataset and variant registries: one spec per dataset / variant is all the rest of the library reads.

A toy fourth variant and a new dataset are added here without editing any library file, and followed through
the model config, `build_model` (physics checked), the HPO space and objective, the labels and the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from qallegro.data import DATASETS, DatasetSpec, UnknownDatasetError, dataset_spec, load_dataset, register_dataset
from qallegro.data.datasets import DATASET_LABELS
from qallegro.data.errors import DataOptionError, MissingDataError
from qallegro.data.graph import atoms_to_graph
from qallegro.models import VARIANTS, VariantSpec, build_model, register_variant, resolve_model_config
from qallegro.models.heads import EdgeEnergyHead, _mlp
from qallegro.models.variants import VARIANT_COLOURS, VARIANT_LABELS

TOY_BASE = {
    "r_max": 4.0, "l_max": 1, "num_layers": 1, "env_embed_multiplicity": 4,
    "two_body_latent_mlp_latent_dimensions": [8], "latent_mlp_latent_dimensions": [8],
    "edge_eng_mlp_latent_dimensions": [8], "avg_num_neighbors": 4.0, "default_dtype": "float64", "seed": 1,
}


# ------------------------------------------------------------------------------------------------- variants
class SquaredHead(EdgeEnergyHead):
    """A toy readout: edge-energy MLP -> k -> sum of squares (an invariant of invariants)."""

    def forward(self, h: torch.Tensor, cut: torch.Tensor) -> torch.Tensor:
        return self.edge_eng(h).pow(2).sum(-1) * cut


def squared_head(cfg, latent_dim: int) -> SquaredHead:
    return SquaredHead(_mlp(cfg, "edge_eng_mlp", latent_dim, int(cfg["edge_eng_mlp_output_dim"])))


@pytest.fixture()
def toy_variant() -> Iterator[VariantSpec]:
    spec = register_variant(VariantSpec(
        "squared", "Allegro+Sq", "#aa00aa", squared_head, defaults={"edge_eng_mlp_output_dim": 3},
        search=(("sq_k", "edge_eng_mlp_output_dim", "int", 2, 6, False, None),)))
    try:
        yield spec
    finally:
        del VARIANTS["squared"]


def _molecule(seed: int = 0) -> Atoms:
    rng = np.random.default_rng(seed)
    pos = rng.uniform(0, 3.0, (6, 3))
    return Atoms(numbers=rng.choice([1, 6, 8], 6), positions=pos + np.arange(6)[:, None] * 0.3)


def test_the_three_paper_variants_are_registered_with_their_paper_tables() -> None:
    assert {n: (s.label, s.paper_table) for n, s in VARIANTS.items()} == {
        "allegro": ("Allegro", "Table 1"), "mlp": ("Allegro+MLP", "Table 2"), "qdi": ("Allegro+QDI", "Table 3")}
    assert [resolve_model_config({"variant": v, "avg_num_neighbors": 1.0})["edge_eng_mlp_output_dim"]
            for v in ("allegro", "mlp", "qdi")] == [1, 16, 4]
    with pytest.raises(ValueError, match="edge_eng_mlp_output_dim: variant allegro"):
        resolve_model_config({"variant": "allegro", "edge_eng_mlp_output_dim": 2, "avg_num_neighbors": 1.0})


def test_a_toy_fourth_variant_needs_only_its_spec_and_head(toy_variant: VariantSpec) -> None:
    from qallegro.cli import build_parser
    from qallegro.hpo.plots import COLOURS
    from qallegro.hpo.space import default_space
    from qallegro.hpo.study import StudySpec
    from qallegro.paper import best_hyperparameters
    from qallegro.pipeline.compare import TABLE_OF_VARIANT
    from qallegro.training import resolve_config

    cfg = resolve_model_config({**TOY_BASE, "variant": "squared"})
    assert cfg["edge_eng_mlp_output_dim"] == 3
    model = build_model(cfg, [1, 6, 8]).eval()
    assert isinstance(model.head, SquaredHead)
    # forces are minus the energy's gradient (central differences) and the energy is rotation invariant
    atoms = _molecule()
    out = model(atoms_to_graph(atoms, 4.0, torch.float64))
    f_num = np.zeros((len(atoms), 3))
    for i in range(len(atoms)):
        for a in range(3):
            e = []
            for d in (1e-5, -1e-5):
                moved = atoms.copy()
                moved.positions[i, a] += d
                e.append(model(atoms_to_graph(moved, 4.0, torch.float64), compute_forces=False)["energy"].item())
            f_num[i, a] = -(e[0] - e[1]) / 2e-5
    np.testing.assert_allclose(out["forces"].detach().numpy(), f_num, atol=1e-7)
    rotated = atoms.copy()
    rotated.rotate(73, (1, 2, 3), center=(0, 0, 0))
    e_rot = model(atoms_to_graph(rotated, 4.0, torch.float64), compute_forces=False)["energy"]
    assert e_rot.item() == pytest.approx(out["energy"].item(), abs=1e-10)
    # the rest of the library reads the spec
    space = default_space("squared")
    assert [p.name for p in space.params][-1] == "sq_k" and len(space.params) == 7
    assert space.overrides({p.trial_name: p.raw(p.high) for p in space.params})["edge_eng_mlp_output_dim"] == 6
    assert resolve_config("rmd17-benzene", "squared", "smoke")["variant"] == "squared"
    assert StudySpec(dataset="rmd17-benzene", variant="squared").name.startswith("rmd17-benzene-squared-")
    assert (VARIANT_LABELS["squared"], VARIANT_COLOURS["squared"], COLOURS["squared"]) == \
        ("Allegro+Sq", "#aa00aa", "#aa00aa")
    assert TABLE_OF_VARIANT["squared"] is None
    with pytest.raises(ValueError, match="not one of the paper's"):
        best_hyperparameters("culi", "squared")
    args = build_parser().parse_args(["hpo", "run", "--dataset", "qm9", "--variant", "squared"])
    assert args.variant == "squared"


def test_unknown_or_duplicate_variant_is_a_clear_error() -> None:
    from qallegro.hpo.space import default_space

    with pytest.raises(ValueError, match=r"variant: 'allegro2' not in \('allegro', 'mlp', 'qdi'\)"):
        build_model({**TOY_BASE, "variant": "allegro2"}, [1])
    with pytest.raises(ValueError, match="unknown variant 'allegro2'; choose one of allegro, mlp, qdi"):
        default_space("allegro2")
    with pytest.raises(ValueError, match="already registered"):
        register_variant(VARIANTS["mlp"])


# ------------------------------------------------------------------------------------------------- datasets
def _frames(n: int, forces: bool, periodic: bool) -> list[Atoms]:
    out = []
    for k in range(n):
        atoms = _molecule(k)
        if periodic:
            atoms.set_cell([6.0, 6.0, 6.0])
            atoms.pbc = True
        calc = {"energy": -1.0 - 0.1 * k}
        if forces:
            calc["forces"] = np.full((len(atoms), 3), 0.01 * k)
        atoms.calc = SinglePointCalculator(atoms, **calc)
        out.append(atoms)
    return out


def load_toy(split: str, data_dir=None, *, path: str, max_frames: int | None = None) -> list[Atoms]:
    """A loader a user writes for their own extxyz file: every third frame is validation, the rest train."""
    from ase.io import read

    frames = read(path, index=":")
    keep = [a for i, a in enumerate(frames) if (i % 3 == 2) == (split == "val")] if split != "test" else frames[:2]
    return keep[:max_frames]


@pytest.fixture()
def toy_dataset(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "toy.extxyz"
    write(path, _frames(9, forces=True, periodic=True))
    register_dataset(DatasetSpec("toy", "Toy", "nine frames", loader=f"{__name__}:load_toy", has_forces=True,
                                 periodic=True, split_rule="every third frame is validation",
                                 source_units="eV, eV/Å"))
    try:
        yield path
    finally:
        del DATASETS["toy"]


def test_the_paper_datasets_are_registered() -> None:
    assert {n: (s.label, s.has_forces, s.periodic) for n, s in DATASETS.items()} == {
        "rmd17-aspirin": ("rMD17-aspirin", True, False), "rmd17-benzene": ("rMD17-benzene", True, False),
        "qm9": ("QM9", False, False), "culi": ("Cu-Li", True, True)}
    assert DATASETS["culi"].group_key == "group" and DATASETS["qm9"].group_key is None
    assert set(DATASETS["rmd17-aspirin"].options()) == {"split_index", "seed", "max_frames", "source", "download"}
    assert set(DATASETS["culi"].options()) == {"scale", "labeler", "max_frames", "download"}


def test_unknown_name_lists_the_known_ones_and_no_longer_falls_back_to_culi() -> None:
    for bad in ("cu-li", "aspirin"):
        with pytest.raises(UnknownDatasetError, match="available: rmd17-aspirin, rmd17-benzene, qm9, culi"):
            dataset_spec(bad)
    with pytest.raises(MissingDataError, match="dataset file not found"):
        dataset_spec("nowhere/frames.extxyz")
    with pytest.raises(DataOptionError, match=r"unknown option\(s\) \['labeler'\] for dataset 'qm9'"):
        load_dataset("qm9", "train", labeler="gpaw")
    from qallegro.training import ConfigError, resolve_config

    with pytest.raises(ConfigError, match="dataset: unknown dataset 'md17'; available: rmd17-aspirin"):
        resolve_config("md17")


def test_a_registered_dataset_flows_through_loader_labels_and_objective(toy_dataset: Path) -> None:
    from qallegro.hpo.objective import objective_names

    val = load_dataset("toy", "val", path=str(toy_dataset))
    assert [a.get_potential_energy() for a in val] == pytest.approx([-1.2, -1.5, -1.8])
    assert len(load_dataset("toy", "train", path=str(toy_dataset), max_frames=4)) == 4
    with pytest.raises(DataOptionError, match=r"\['seed'\] for dataset 'toy'; accepted: max_frames, path"):
        load_dataset("toy", "train", path=str(toy_dataset), seed=1)
    assert DATASET_LABELS["toy"] == "Toy" and objective_names("toy")[0] == "val_f_mae"


def test_a_structure_file_is_a_dataset_without_registration(tmp_path: Path) -> None:
    from qallegro.hpo.objective import objective_names
    from qallegro.training.data import load_structures

    energies = tmp_path / "energies.extxyz"
    write(energies, _frames(6, forces=False, periodic=False))
    spec = dataset_spec(str(energies))
    assert (spec.label, spec.has_forces, spec.periodic, spec.loader) == ("energies.extxyz", False, False, None)
    assert objective_names(str(energies)) == ("val_e_mae", "inference_total_s")
    with_forces = tmp_path / "forces.extxyz"
    write(with_forces, _frames(6, forces=True, periodic=True))
    assert (dataset_spec(with_forces).has_forces, dataset_spec(with_forces).periodic) == (True, True)
    split = load_structures({"dataset": str(with_forces), "n_train": 3, "n_val": 2, "n_test": None,
                             "dataset_seed": 0})
    assert [len(split[s]) for s in ("train", "val", "test")] == [3, 2, 1]
    assert sorted(a.get_potential_energy() for s in split.values() for a in s) == \
        pytest.approx(sorted(-1.0 - 0.1 * k for k in range(6)))
