"""Search spaces: the paper's 6/9/9 parameters, mapping onto config keys, presets and YAML overrides."""

from __future__ import annotations

import math
from pathlib import Path

import optuna
import pytest
from qallegro import scales
from qallegro.hpo.space import (
    SpaceError,
    default_space,
    load_space,
    paper_values,
    space_from_dict,
    space_to_dict,
)


def test_parameter_counts_and_kinds() -> None:
    assert [len(default_space(v).params) for v in ("allegro", "mlp", "qdi")] == [6, 9, 9]
    s = default_space("mlp")
    assert s["learning_rate"].log and s["learning_rate"].kind == "float"
    assert s["batch_size"].kind == s["num_layers"].kind == "int"
    assert s["final_mlp_h1"].kind == "pow2"
    d = s.distributions()
    assert isinstance(d["edge_mlp_width_log2"], optuna.distributions.IntDistribution)
    assert (d["edge_mlp_width_log2"].low, d["edge_mlp_width_log2"].high) == (2, 7)  # widths 4..128


def test_overrides_map_onto_config_keys() -> None:
    s = default_space("mlp")
    raw = {"r_max": 6.5, "PolynomialCutoff_p": 6.0, "batch_size": 3, "num_layers": 2, "edge_mlp_width_log2": 5,
           "learning_rate": 2e-3, "k_log2": 4, "final_mlp_h1_log2": 10, "final_mlp_h2_log2": 2}
    assert s.overrides(raw) == {
        "r_max": 6.5, "PolynomialCutoff_p": 6.0, "batch_size": 3, "num_layers": 2,
        "edge_eng_mlp_latent_dimensions": [32], "learning_rate": 2e-3, "edge_eng_mlp_output_dim": 16,
        "final_mlp_latent_dimensions": [1024, 4]}
    q = default_space("qdi")
    raw_q = {k: v for k, v in raw.items() if not k.startswith(("k_", "final_"))}
    raw_q.update({"qdi_input_features": 8, "qdi_depth": 3, "qdi_fc_dim_log2": 7})
    out = q.overrides(raw_q)
    assert (out["edge_eng_mlp_output_dim"], out["qdi_depth"], out["qdi_fc_dim"]) == (8, 3, 128)
    with pytest.raises(KeyError):
        q.overrides({"r_max": 6.0})


def test_suggest_covers_space_and_values_are_in_range() -> None:
    s = default_space("qdi")
    study = optuna.create_study(directions=["minimize", "minimize"], sampler=optuna.samplers.RandomSampler(0))
    for _ in range(20):
        trial = study.ask()
        raw = s.suggest(trial)
        vals = s.values(raw)
        for p in s.params:
            assert p.low <= vals[p.name] <= p.high
            if p.kind == "pow2":
                assert 2 ** round(math.log2(vals[p.name])) == vals[p.name]
        study.tell(trial, [0.0, 0.0])


def test_yaml_file_overrides_and_round_trip(tmp_path: Path) -> None:
    f = tmp_path / "space.yaml"
    f.write_text("r_max: {low: 4.0, high: 8.0}\nlearning_rate: {low: 1.0e-4, high: 1.0e-2}\n"
                 "final_mlp_h1: {low: 8, high: 256}\nnum_layers: {fixed: 2}\nqdi_depth: {high: 2}\n")
    s = load_space("mlp", None, f)  # qdi_depth belongs to another variant: ignored for mlp
    assert (s["r_max"].low, s["r_max"].high) == (4.0, 8.0)
    assert s["final_mlp_h1"].distribution().low == 3
    assert "num_layers" not in {p.name for p in s.searched} and len(s.distributions()) == 8
    raw = {p.trial_name: p.distribution().low for p in s.searched}
    assert s.overrides(raw)["num_layers"] == 2
    assert space_from_dict("mlp", space_to_dict(s)).params == s.params
    by_variant = tmp_path / "by_variant.yaml"
    by_variant.write_text("allegro: {batch_size: {high: 2}}\nqdi: {qdi_depth: {high: 2}}\n")
    assert load_space("allegro", None, by_variant)["batch_size"].high == 2
    assert load_space("qdi", None, by_variant)["qdi_depth"].high == 2


@pytest.mark.parametrize("text, message", [
    ("r_maxx: {low: 1, high: 2}", "unknown parameter 'r_maxx'"),
    ("r_max: {low: 9, high: 2}", "low 9 > high 2"),
    ("edge_mlp_width: {low: 6, high: 64}", "powers of two"),
    ("learning_rate: {low: 0, high: 1, log: true}", "log scale needs low > 0"),
    ("batch_size: {low: 1.5, high: 3}", "integer bounds"),
    ("r_max: [1, 2]", "expected a mapping"),
    ("r_max: {min: 1}", "expected a mapping with keys"),
    ("- a\n- b", "expected a mapping of parameter names"),
    ("r_max: {low: 1, high: [2", "not valid YAML"),
    ("num_layers: {low: true, high: 3}", r"num_layers: low/high must be numbers, got True, 3"),
    ("r_max: {low: 5, high: false}", r"r_max: low/high must be numbers, got 5, False"),
    ("r_max: {low: '5', high: 8}", r"r_max: low/high must be numbers, got '5', 8"),
    ("num_layers: {fixed: true}", r"num_layers: fixed must be a number, got True"),
    ("learning_rate: {log: 1}", r"learning_rate: log must be true or false, got 1"),
])
def test_bad_space_files_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(text)
    with pytest.raises(SpaceError, match=message) as err:
        load_space("allegro", None, f)
    assert str(f) in str(err.value)
    with pytest.raises(SpaceError, match="not found"):
        load_space("allegro", None, tmp_path / "missing.yaml")


@pytest.mark.parametrize("scale", scales.SCALES)
@pytest.mark.parametrize("variant", ["allegro", "mlp", "qdi"])
def test_scale_presets_only_narrow(scale: str, variant: str) -> None:
    """The presets narrow the paper's inferred ranges; only the learning rate may reach above them (the sweep on
    this CPU found 0.02-0.04 best for budgets of tens of epochs), and the overnight space still contains every
    optimum of the paper's Tables 1-3."""
    base, s = default_space(variant), load_space(variant, scale)
    for b, p in zip(base.params, s.params, strict=True):
        high = max(b.high, 0.04) if p.name == "learning_rate" else b.high
        assert b.low <= p.low <= p.high <= high, (scale, p)
    if scale == "overnight":
        for dataset in ("rmd17-aspirin", "rmd17-benzene", "qm9", "culi"):
            _, notes = s.raw_from_values(paper_values(dataset, variant))
            assert notes == [], (dataset, notes)


def test_space_by_dataset_narrows_one_dataset() -> None:
    """`space_by_dataset` applies to its dataset only: the overnight Cu-Li r_max stops at 6 Å (the paper's Cu-Li
    Allegro optimum, 12 Å, falls outside and is named), the other datasets keep the paper's [5, 12]."""
    culi, benzene = load_space("allegro", "overnight", dataset="culi"), load_space("allegro", "overnight",
                                                                               dataset="rmd17-benzene")
    assert (culi["r_max"].low, culi["r_max"].high) == (5.0, 6.0)
    assert (benzene["r_max"].low, benzene["r_max"].high) == (5.0, 12.0)
    assert culi.sources[-1] == "presets/hpo.yaml[overnight].space_by_dataset.culi"
    _, notes = culi.raw_from_values(paper_values("culi", "allegro"))
    assert [n.split(":")[0] for n in notes] == ["r_max"]
    _, notes = load_space("qdi", "overnight", dataset="culi").raw_from_values(paper_values("culi", "qdi"))
    assert notes == []


def test_paper_values_clip_with_notes() -> None:
    s = default_space("mlp")
    vals = paper_values("culi", "mlp")
    assert vals["learning_rate"] == 9.35e-4 and vals["final_mlp_h1"] == 4 and "k" not in vals
    raw, notes = s.raw_from_values(vals)
    assert notes == []  # the inferred ranges contain the paper's optimum
    assert s.values(raw)["final_mlp_h2"] == 16
    narrow = load_space("mlp", "smoke")
    _, notes = narrow.raw_from_values(paper_values("rmd17-aspirin", "mlp"))
    assert any(n.startswith("final_mlp_h1: 1024 -> 16") for n in notes)
    q = paper_values("culi", "qdi")
    assert (q["qdi_fc_dim"], q["qdi_depth"], q["qdi_input_features"]) == (128, 3, 4)
