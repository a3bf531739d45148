"""The numbers of `book/deviations.md` (a hand-written page) checked against their sources.

Each case computes a number from where it comes from (the paper's values file, the presets, the committed
records under `data/`, `results/` and `benchmarks/results/`, the data mirror, or a cheap library computation),
formats it as the page prints it and asserts that the page holds the sentence fragment with it, so a changed
source (or a changed page) fails here. Cases are grouped by source, one parametrised test per group.
"""

from __future__ import annotations

import csv
import hashlib
import inspect
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "book" / "deviations.md"
CULI_DATA = ROOT / "data" / "culi"
NOTES = ROOT.parent / "shared" / "paper" / "NOTES.md"
WORDS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
TIMES = {1: "once", 2: "twice"}

Case = Callable[[], list[str]]


# ------------------------------------------------------------------------------------------------------ helpers
@cache
def page() -> str:
    """The page's Markdown source with every run of whitespace (line breaks included) made one space."""
    return " ".join(PAGE.read_text(encoding="utf-8").split())


def check_fragments(fragments: list[str]) -> None:
    """Every fragment (a sentence piece holding a number computed from its source) is on the page."""
    missing = [f for f in fragments if f not in page()]
    assert not missing, "book/deviations.md does not say (computed from the source):\n  " + "\n  ".join(missing)


def read_json(path: Path) -> Any:
    """A committed JSON record."""
    return json.loads(path.read_text(encoding="utf-8"))


def sci(x: float) -> str:
    """9e-4 style (as the page writes the learning-rate range)."""
    mantissa, exponent = f"{x:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def listing(parts: list[str]) -> str:
    """'a, b and c'."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def registry(group: dict[str, Case]) -> Callable[[Case], Case]:
    """A decorator that adds a case (named by its function) to `group`."""

    def register(fn: Case) -> Case:
        group[fn.__name__] = fn
        return fn

    return register


@cache
def paper_values() -> dict[str, Any]:
    """`qallegro.paper.values()`: the paper's printed values (`data/paper/paper_values.yaml`)."""
    from qallegro import paper

    return paper.values()


@cache
def scale_settings(topic: str, scale: str) -> dict[str, Any]:
    """`qallegro.scales.settings(topic, scale)` (read-only here)."""
    from qallegro.scales import settings

    return settings(topic, scale)


@cache
def culi_plan(scale_or_provenance: str) -> tuple[tuple[str, str, int], ...]:
    """(id, category, atoms) of the Cu-Li generation plan of a scale's preset, or of the settings recorded in the
    provenance file `data/culi/<name>` (structures only: no relaxation, no labels)."""
    from qallegro.culi.generate import make_plan

    if scale_or_provenance.endswith(".json"):
        prov = read_json(CULI_DATA / scale_or_provenance)
        settings, seed = prov["settings"], prov["seed"]
    else:
        settings, seed = scale_settings("culi", scale_or_provenance), 0
    return tuple((t.id, t.category, t.n_atoms) for t in make_plan(settings, seed))


@cache
def gpaw_subset() -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The GPAW-labelled subset: its rows (`gpaw_subset_overnight.csv`) and its provenance (`.json`)."""
    rows = list(csv.DictReader((CULI_DATA / "gpaw_subset_overnight.csv").open(encoding="utf-8")))
    return rows, read_json(CULI_DATA / "gpaw_subset_overnight.json")


# ------------------------------------------------------------------------------- the paper (qallegro.paper, NOTES)
PAPER: dict[str, Case] = {}
paper_case = registry(PAPER)


@paper_case
def culi_set() -> list[str]:
    pc = paper_values()["culi_dataset"]
    return [f"The paper's Cu-Li set ({pc['structures']:,} structures labelled with {pc['dft']['code']} and the "
            f"{pc['dft']['functional']} functional)"]


@paper_case
def culi_recipe() -> list[str]:
    pc = paper_values()["culi_dataset"]
    md = pc["md"]
    return [f"with {pc['vacuum_A']} Å of vacuum",
            f"areas matched within {pc['area_tolerance']:.0%} with a {pc['interface_gap_A']} Å gap",
            f"({md['t_high_K']} K to {md['t_low_K']} K at {md['cooling_K_per_ps']} K/ps, {md['timestep_fs']} fs steps)"]


@paper_case
def hpo_budget() -> list[str]:
    hpo = paper_values()["hpo"]
    minutes = hpo["mean_minutes_per_evaluation"].values()
    assert "T4" in hpo["hardware"]
    assert hpo["generations"] * hpo["offspring_per_generation"] == hpo["evaluations_per_variant_and_dataset"]
    return [f"The paper evaluates {hpo['evaluations_per_variant_and_dataset']:,} configurations per study on an "
            f"NVIDIA T4 ({min(minutes):g}-{max(minutes):g} minutes each)"]


@paper_case
def final_training_epochs() -> list[str]:
    e = paper_values()["final_training_epochs"]
    assert e["rmd17-aspirin"] == e["rmd17-benzene"]
    return [f"The paper trains up to {e['qm9']:,} epochs on QM9, {e['culi']:,} on Cu-Li and "
            f"{e['rmd17-aspirin']:,} on aspirin and benzene"]


@paper_case
def culi_r_max_optima() -> list[str]:
    from qallegro.hpo.space import load_space

    v = paper_values()
    mlp, qdi, allegro = (v[k]["culi"]["r_max"] for k in ("table2_mlp", "table3_qdi", "table1_allegro"))
    assert mlp == qdi
    for scale in ("overnight", "quick"):
        r = load_space("allegro", scale, dataset="culi")["r_max"]
        assert r.low <= mlp <= r.high and not r.low <= allegro <= r.high
    return [f"The paper's Cu-Li optima of the MLP and QDI variants ({mlp:.1f} Å) lie inside this range; that of "
            f"plain Allegro ({allegro:.1f} Å) does not"]


@paper_case
def culi_other_optima() -> list[str]:
    from qallegro.hpo.space import load_space
    from qallegro.hpo.space import paper_values as space_values

    v = paper_values()
    layers = [v[k]["culi"]["layers"] for k in ("table1_allegro", "table2_mlp", "table3_qdi")]
    final_mlp = v["table2_mlp"]["culi"]["final_mlp"]
    qdi_width = v["table3_qdi"]["culi"]["final_mlp"]
    for variant in ("mlp", "qdi"):  # every Cu-Li optimum but Allegro's r_max lies inside the Cu-Li ranges
        space = load_space(variant, "overnight", dataset="culi")
        best = space_values("culi", variant)
        assert all(p.low <= best[p.name] <= p.high for p in space.params if p.name in best), variant
    return [f"Every Cu-Li optimum of the paper's Tables 1-3 ({min(layers)}-{max(layers)} layers, final MLP "
            f"[{final_mlp[0]}, {final_mlp[1]}], QDI width {qdi_width}) lies inside them"]


@paper_case
def table3_transfer() -> list[str]:
    t3 = paper_values()["table3_qdi"]
    culi, asp, benz = t3["culi"], t3["rmd17-aspirin"], t3["rmd17-benzene"]
    assert (t3["qm9"]["qdi_depth"], t3["qm9"]["qdi_input_features"]) == (culi["qdi_depth"], culi["qdi_input_features"])
    return [f"transferred from Cu-Li (depth {culi['qdi_depth']}, {culi['qdi_input_features']} features), but the "
            f"aspirin row lists depth {asp['qdi_depth']} and {asp['qdi_input_features']} features and the benzene "
            f"row depth {benz['qdi_depth']}",
            f"(the {asp['qdi_input_features']} features of Table 3's aspirin row)"]


@paper_case
def supplementary_a() -> list[str]:
    s = paper_values()["supplementary_a"]
    ranks = set(s["fisher_mean_rank"].values())
    assert len(ranks) == 1
    return [f"Fig. 3: 4 qubits and {s['zx_parameters_total']} trainable weights for 4 inputs at depth 1",
            f"the paper's {ranks.pop():.1f} can only come from per-sample matrices",
            f"not the paper's {s['fourier_nonzero']};",
            f"{s['zx_parameters_preserved']} of {s['zx_parameters_total']} parameters survive PyZX's simplification "
            "of the circuit as an open unitary (symbolic phases), as the paper says"]


@paper_case
def units_culi_energy_errors() -> list[str]:
    """The page says it prints the paper's numbers as printed (Table 5: 495.7, 698.9, 809.0)."""
    e = [v for v in paper_values()["table5_val_energy_mae_meV_per_atom"]["culi"].values() if v is not None]
    return [f"the Cu-Li energy errors of {min(e):.1f}-{max(e):.1f} \"meV/atom\" look like total energies"]


@paper_case
def fig2_digitisation() -> list[str]:
    header = " ".join(line for line in (ROOT / "data" / "paper" / "fig2_pareto_points.csv").read_text(
        encoding="utf-8").splitlines() if line.startswith("#"))
    found = re.search(r"\+-([\d.]+) eV/A, ~\+-([\d.]+) s", header)
    assert found, "the Fig. 2 file's header no longer states the panel d reading error"
    return [f"panel d from a raster image, to about ±{found[1]} eV/Å and ±{found[2]} s"]


@paper_case
def authors_k() -> list[str]:
    # presets/campaign.yaml: "the MLP head's k = 16 as in the authors' code"
    heads = scale_settings("campaign", "overnight")["ablation"]["heads"]
    k = heads["mlp"]["edge_eng_mlp_output_dim"]
    if NOTES.is_file():  # the authors' code as read into the research notes (§3.2)
        found = re.search(r"EDGE_ENERGY_REDUCED, mlp_output_dimension=(\d+)", NOTES.read_text(encoding="utf-8"))
        assert found and int(found[1]) == k
    return [f"the authors' code fixes it at {k}"]


@pytest.mark.parametrize("case", list(PAPER))
def test_numbers_from_the_paper(case: str) -> None:
    """Numbers the page quotes from the paper, against `data/paper/paper_values.yaml` (and NOTES.md)."""
    check_fragments(PAPER[case]())


# -------------------------------------------------------- the Cu-Li labeller records (data/culi, Cu-Li plan)
LABELS: dict[str, Case] = {}
labels_case = registry(LABELS)


@labels_case
def sevennet_vs_gpaw_refs() -> list[str]:
    ref = read_json(CULI_DATA / "sevenn_vs_gpaw_refs.json")
    atoms = {row["n_atoms"] for row in ref["rows"]}
    assert len(atoms) == 1 and ref["summary"]["n_frames"] == len(ref["rows"])
    return [f"GPAW on {WORDS[len(ref['rows'])]} {atoms.pop()}-atom Cu-Li cells is about "
            f"{ref['summary']['force_mae_meV_A']:.0f} meV/Å in the forces"]


@labels_case
def gpaw_subset_errors() -> list[str]:
    rows, info = gpaw_subset()
    s = info["summary"]
    assert s["n_frames"] == len(rows) == info["selection"]["n_labelled"]
    return [f"a GPAW-labelled subset of {len(rows)} of our own frames", f"{s['force_mae_meV_A']:.0f} meV/Å in the "
            f"forces and {1000 * s['e_form_mae_eV_atom']:.0f} meV/atom in the formation energy"]


@labels_case
def gpaw_subset_kpoints() -> list[str]:
    from qallegro.culi.labelers import GPAWLabeler

    _, info = gpaw_subset()
    route = inspect.signature(GPAWLabeler.__init__).parameters["kpt_density"].default
    assert paper_values()["culi_dataset"]["dft"]["kpoint_density"].startswith(f"{route:g} ")
    return [f"k-point density of {info['gpaw']['kpt_density_A']:g} Å instead of the dataset route's {route:g} Å"]


@labels_case
def gpaw_subset_selection() -> list[str]:
    """Which frames: the splits, the electron budget, and the categories it covers (all five when done)."""
    from qallegro.culi.generate import CATEGORIES

    rows, info = gpaw_subset()
    sel = info["selection"]
    assert sel["split"] == "val,test" and {r["split"] for r in rows} <= {"val", "test"}
    covered = [c for c in CATEGORIES if c in {r["category"] for r in rows}]
    assert sorted(info["by_category"]) == sorted(covered)
    words = "every category" if len(covered) == len(CATEGORIES) else \
        f"{WORDS[len(covered)]} of the {WORDS[len(CATEGORIES)]} categories"
    return [f"{sel['n_labelled']} of the {sel['n']} frames", "validation and test frames", words,
            f"at most {sel['max_electrons']} valence electrons"]


@labels_case
def gpaw_subset_sizes_and_times() -> list[str]:
    rows, _ = gpaw_subset()
    atoms = [int(r["n_atoms"]) for r in rows]
    minutes = [float(r["gpaw_seconds"]) / 60 for r in rows]
    return [f"have {min(atoms)}-{max(atoms)} atoms and took up to {max(minutes):.0f} minutes of GPAW each"]


@pytest.mark.parametrize("case", list(LABELS))
def test_numbers_from_the_culi_labeller_records(case: str) -> None:
    """The labeller's error and the GPAW subset, against `data/culi/*`."""
    check_fragments(LABELS[case]())


# ------------------------------------------------------- the Cu-Li generation (presets/culi.yaml, provenance)
CULI: dict[str, Case] = {}
culi_case = registry(CULI)


@culi_case
def recipe_settings() -> list[str]:
    from qallegro.culi import structures

    p = scale_settings("culi", "paper")
    reps = inspect.signature(structures.supercell).parameters["reps"].default
    if NOTES.is_file():
        notes = NOTES.read_text(encoding="utf-8")
        assert "{" + str(p["max_miller"]) * 3 + "} Miller" in notes and "×".join(map(str, reps)) in notes
    return ["up to the {" + str(p["max_miller"]) * 3 + "} Miller indices",
            f"the outer {WORDS[p['slab']['free_layers']]} layers free",
            f"vacancies in {'x'.join(map(str, reps))} supercells, Li and Cu adatoms {p['adatom_height']:g} Å above "
            f"{'x'.join(map(str, reps))} supercells"]


@culi_case
def paper_scale() -> list[str]:
    p, pc = scale_settings("culi", "paper"), paper_values()["culi_dataset"]
    assert p["frames"] == {"slab": 2 * pc["slabs_per_element"], "surface_vacancy": pc["surface_vacancies"],
                           "supercell_vacancy": pc["supercell_vacancies"], "adatom": pc["adatoms"],
                           "md": pc["md_frames"]}
    li, cu = pc["li_slab_thickness_A"], pc["cu_slab_thickness_A"]
    for part in ("slab", "interface"):
        assert p[part]["thickness"] == {"Li": li, "Cu": cu}
    return [f"The `paper` scale follows the paper's counts per category and thicknesses (Li {li} Å, Cu {cu} Å)"]


@culi_case
def overnight_scale() -> list[str]:
    o = scale_settings("culi", "overnight")
    prov = read_json(ROOT / "results" / "overnight" / "culi" / "provenance.json")
    for key in ("slab", "md", "md_interfaces", "max_structures", "splits"):  # the book's dataset used this preset
        assert prov["settings"][key] == o[key], key
    thickness = set(o["slab"]["thickness"].values())
    assert len(thickness) == 1
    runs = o["md_interfaces"]
    kinds = ", ".join(f"({''.join(map(str, r['miller']))}) {TIMES[r['replicas']]}" for r in runs)
    kinds = kinds.replace(" twice", " twice with different MD seeds")
    rate, paper_rate = o["md"]["cooling_rate"], paper_values()["culi_dataset"]["md"]["cooling_K_per_ps"]
    assert rate / paper_rate == 2
    return [f"uses {thickness.pop():g} Å slabs, at most {o['max_structures']['adatom']} adatom structures, and "
            f"{WORDS[sum(r['replicas'] for r in runs)]} melt-quench interface runs instead of one per interface kind "
            f"({kinds}), cooled at {rate:g} K/ps, twice the paper's rate"]


@culi_case
def overnight_generation_time() -> list[str]:
    prov = read_json(ROOT / "results" / "overnight" / "culi" / "provenance.json")
    minutes = prov["labelling_seconds"] / 60
    assert minutes <= 90, f"the overnight Cu-Li generation took {minutes:.0f} min, more than an hour and a half"
    return ["so that generation fits about an hour and a half on one core"]


@culi_case
def quick_scale() -> list[str]:
    q = scale_settings("culi", "quick")
    prov = read_json(ROOT / "results" / "quick" / "culi" / "provenance.json")
    assert prov["settings"]["md"]["cooling_rate"] == q["md"]["cooling_rate"]
    assert [t[0] for t in culi_plan("quick")] == [t[0] for t in culi_plan("overnight")]  # the same structures
    return [f"The `quick` scale uses the same structures with runs cooled at {q['md']['cooling_rate']:,.0f} K/ps"]


@culi_case
def group_split() -> list[str]:
    o, q = scale_settings("culi", "overnight")["splits"], scale_settings("culi", "quick")["splits"]
    prov = read_json(ROOT / "results" / "overnight" / "culi" / "provenance.json")
    assert prov["split"]["block_fs"] == o["block_fs"]
    assert (o["train"], o["val"], o["test"]) == (q["train"], q["val"], q["test"])
    return [f"contiguous {o['block_fs']:g} fs blocks ({q['block_fs']:g} fs at the `quick` scale)",
            f"About {100 * o['train']:.0f}/{100 * o['val']:.0f}/{100 * o['test']:.0f} of the groups"]


@pytest.mark.parametrize("case", list(CULI))
def test_numbers_from_the_culi_generation(case: str) -> None:
    """The stand-in dataset's settings, against `presets/culi.yaml`, its provenance and the generator's plan."""
    check_fragments(CULI[case]())


# --------------------------------------------------------------- the datasets (data/splits, mirror, registry)
DATA: dict[str, Case] = {}
data_case = registry(DATA)


def mirror_file(relpath: str) -> Path:
    """A file of the data mirror (`$QALLEGRO_DATA`); the case is skipped without it."""
    from qallegro.data import registry as data_registry

    root = data_registry.mirror_dir()
    path = root / relpath if root is not None else None
    if path is None or not path.is_file():
        pytest.skip(f"data mirror file {relpath} not present")
    return path


@data_case
def rmd17_split() -> list[str]:
    split = read_json(ROOT / "data" / "splits" / "rmd17_split01_seed0.json")
    n, n_val = split["n_frames"], split["n_val"]
    assert all(len(v) == n_val for v in split["val_old_indices"].values())
    return [f"Of the {n:,} training frames of split {split['split_index']}, {n - n_val} train and {n_val} validate"]


@data_case
def rmd17_test_file() -> list[str]:
    with np.load(mirror_file("rmd17/rmd17_aspirin_test_01.npz")) as npz:
        n = len(npz["energies"])
    with np.load(mirror_file("rmd17/rmd17_benzene_test_01.npz")) as npz:
        assert len(npz["energies"]) == n
    return [f"the {n:,}-frame test file is the test set"]


@data_case
def qm9_exclusions() -> list[str]:
    from qallegro.data.qm9 import N_QM9_TOTAL

    with np.load(mirror_file("qm9/qm9_qm9pack.npz")) as npz:
        kept = len(npz["index"])
    return [f"the {N_QM9_TOTAL - kept:,} molecules that failed the geometry consistency check are excluded "
            f"({kept:,} remain)"]


@data_case
def qm9_split() -> list[str]:
    from qallegro.data.qm9 import DEFAULT_N_TRAIN, DEFAULT_N_VAL

    return [f"the split is {DEFAULT_N_TRAIN:,} / {DEFAULT_N_VAL:,} / the rest"]


@pytest.mark.parametrize("case", list(DATA))
def test_numbers_from_the_datasets(case: str) -> None:
    """Split sizes and dataset counts, against the saved splits, the data mirror and the QM9 loader."""
    check_fragments(DATA[case]())


# ----------------------------------------------- the HPO and campaign settings (presets, space, study records)
HPO: dict[str, Case] = {}
hpo_case = registry(HPO)


@hpo_case
def inferred_ranges() -> list[str]:
    from qallegro.hpo.space import default_space

    s = default_space("allegro")
    r, p, lr, bs, layers = (s[k] for k in ("r_max", "PolynomialCutoff_p", "learning_rate", "batch_size",
                                           "num_layers"))
    assert (r.low, r.high) == (p.low, p.high) and lr.log and s["edge_mlp_width"].kind == "pow2"
    return [f"`r_max` and `PolynomialCutoff_p` in [{r.low:g}, {r.high:g}], learning rate in "
            f"[{sci(lr.low)}, {sci(lr.high)}] on a log scale, batch size {bs.low}-{bs.high}, "
            f"{layers.low}-{layers.high} layers, widths powers of two"]


@hpo_case
def ranges_contain_paper_optima() -> list[str]:
    from qallegro.hpo.space import load_space
    from qallegro.hpo.space import paper_values as space_values

    tables = {"allegro": "table1_allegro", "mlp": "table2_mlp", "qdi": "table3_qdi"}
    for scale in ("overnight", "quick"):
        for variant, key in tables.items():
            space = load_space(variant, scale)
            for dataset in paper_values()[key]:
                best = space_values(dataset, variant)
                outside = [p.name for p in space.params if p.name in best and not p.low <= best[p.name] <= p.high]
                assert not outside, (scale, variant, dataset, outside)
    return ["which contain every optimum of the paper's Tables 1-3"]


@hpo_case
def learning_rate_reach() -> list[str]:
    highs = {scale_settings("hpo", s)["space"]["learning_rate"]["high"] for s in ("overnight", "quick")}
    assert len(highs) == 1
    from qallegro.campaign.ablation import chosen_optimiser

    root = ROOT / "results" / "overnight" / "campaign"
    best = {d.name: chosen_optimiser(root, "overnight", d.name)["learning_rate"]  # by each dataset's error
            for d in sorted((root / "sweep").iterdir())}
    return [f"the learning rate reaches up to {highs.pop():g} (the campaign's sweep found "
            f"{min(best.values()):g}-{max(best.values()):g} best"]


@hpo_case
def culi_ranges() -> list[str]:
    from qallegro.hpo.space import default_space

    culi = [scale_settings("hpo", s)["space_by_dataset"]["culi"] for s in ("overnight", "quick")]
    assert culi[0] == culi[1]
    c = culi[0]
    widths = {c[k]["high"] for k in ("final_mlp_h1", "final_mlp_h2", "qdi_fc_dim")}
    assert len(widths) == 1
    full = default_space("mlp")
    return [f"on Cu-Li `r_max` stops at {c['r_max']['high']:g} Å (`space_by_dataset` in `presets/hpo.yaml`)",
            f"also search at most {c['num_layers']['high']} layers and final-MLP and QDI-layer widths of at most "
            f"{widths.pop()}",
            f"(a per-edge MLP of {full['final_mlp_h1'].high} x {full['final_mlp_h2'].high})"]


def _studies() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The overnight campaign's `studies`, the overnight HPO preset and the overnight campaign preset."""
    return (scale_settings("campaign", "overnight")["studies"], scale_settings("hpo", "overnight"),
            scale_settings("campaign", "overnight"))


@hpo_case
def culi_restart() -> list[str]:
    studies, hpo, _ = _studies()
    n, n_culi = studies["n_trials"], studies["n_trials_by_dataset"]["culi"]
    start = hpo["samplers"]["tpe"]["n_startup_trials"]
    start_culi = studies["sampler_options_by_dataset"]["culi"]["n_startup_trials"]
    assert start / n == start_culi / n_culi == 0.25
    train, train_culi = hpo["trial_overrides"]["n_train"], hpo["trial_overrides_by_dataset"]["culi"]["n_train"]
    return [f"with {n_culi} trials of {train_culi} training structures (the other datasets: {n} trials of {train}), "
            f"their initial design cut from {start} trials to {start_culi} so that it stays a quarter of the trials",
            f"with sampler seed {studies['seed']}",
            f"(TPE's `n_startup_trials`: {start}, and {start_culi} on Cu-Li)"]


@hpo_case
def overnight_budget() -> list[str]:
    import yaml

    studies, hpo, campaign = _studies()
    by_dataset = hpo["trial_overrides_by_dataset"]
    epochs, n_train = hpo["trial_overrides"]["max_epochs"], hpo["trial_overrides"]["n_train"]
    for folder in sorted((ROOT / "results" / "overnight" / "hpo").iterdir()):  # the committed studies agree
        if folder.name.startswith("compare-"):   # the sampler comparison has its own budget (`compare`)
            continue
        dataset = folder.name.split("-")[0] if folder.name.startswith(("culi", "qm9")) else "-".join(
            folder.name.split("-")[:2])
        trials = [r for r in csv.DictReader((folder / "trials.csv").open(encoding="utf-8"))
                  if r["state"] == "COMPLETE"]
        assert len(trials) == studies["n_trials_by_dataset"].get(dataset, studies["n_trials"]), folder.name
        assert {float(r["epochs"]) for r in trials} == {epochs}, folder.name
        config = yaml.safe_load((folder / "trials" / "00000" / "config.yaml").read_text(encoding="utf-8"))
        assert config["n_train"] == by_dataset.get(dataset, {}).get("n_train", n_train), folder.name
    return [f"The `overnight` scale runs {studies['n_trials']} trials per study "
            f"({studies['n_trials_by_dataset']['culi']} on Cu-Li, to fit the {campaign['target_hours']} hours), "
            f"each trained for {epochs} epochs on {n_train} structures (QM9: {by_dataset['qm9']['n_train']}; "
            f"Cu-Li: {by_dataset['culi']['n_train']})"]


@hpo_case
def quick_budget() -> list[str]:
    hpo = scale_settings("hpo", "quick")
    assert scale_settings("campaign", "quick")["studies"]["n_trials"] == hpo["n_trials"]
    return [f"The `quick` scale runs {hpo['n_trials']} trials of {hpo['trial_overrides']['max_epochs']} epochs"]


@hpo_case
def inference_timing() -> list[str]:
    from qallegro.campaign.plan import split_sizes

    t = scale_settings("hpo", "overnight")["timing"]
    n_test = split_sizes("culi", "overnight")["n_test"]
    assert n_test <= t["max_structures"]  # so the Cu-Li studies time the whole test split
    return [f"take the median of {t['repeats']} repeats", f"at the `overnight` scale over the first "
            f"{t['max_structures']} structures of the test split", f"Cu-Li: all {n_test} frames of its test split"]


@hpo_case
def samo_cobra() -> list[str]:
    from qallegro.hpo import samo_cobra as sc

    source = inspect.getsource(sc)
    assert "self.n_init or d + 1" in source and "np.full(2, 1.1)" in source and "d_min = d / 1e4" in source
    return ["the same initial design size (d + 1)", f"({WORDS[len(sc.KERNELS)]} kernels with a linear-plus-squares",
            "the reference point (1.1, 1.1)", "the d/1e4 distance requirement"]


@hpo_case
def final_training_plan() -> list[str]:
    _, hpo, campaign = _studies()
    final, by = hpo["final_overrides"], hpo["final_overrides_by_dataset"]
    ablation = campaign["ablation"]
    assert {k: ablation["overrides"][k] for k in ("n_train", "max_epochs")} == {
        k: final[k] for k in ("n_train", "max_epochs")}
    assert ablation["datasets"]["qm9"]["overrides"]["n_train"] == by["qm9"]["n_train"]
    assert by["rmd17-aspirin"]["max_epochs"] == by["qm9"]["max_epochs"]
    return [f"trains each chosen configuration with {len(campaign['finals']['seeds'])} seeds for "
            f"{final['max_epochs']} epochs (aspirin and QM9: {by['qm9']['max_epochs']}) on {final['n_train']} "
            f"structures (QM9: {by['qm9']['n_train']:,} molecules)",
            f"The book's {campaign['target_hours']}-hour budget cuts the Cu-Li runs"]


@hpo_case
def small_model() -> list[str]:
    sizes = [scale_settings("train", s)["all"] for s in ("overnight", "quick")]
    assert sizes[0] == sizes[1]
    a = sizes[0]
    latent = set(a["latent_mlp_latent_dimensions"])
    assert len(latent) == 1
    return [f"`l_max` {a['l_max']}, {a['env_embed_multiplicity']} channels, latent MLPs of {latent.pop()}"]


@pytest.mark.parametrize("case", list(HPO))
def test_numbers_from_the_hpo_and_campaign_settings(case: str) -> None:
    """Search ranges and budgets, against `presets/{hpo,campaign,train}.yaml`, the space and the study records."""
    check_fragments(HPO[case]())


def test_culi_neighbour_counts() -> None:
    """Neighbours per atom of the overnight Cu-Li training split (the generated set, git-ignored: skipped unless
    present and the one of the committed provenance)."""
    from qallegro.data.culi import load_culi
    from qallegro.data.neighbors import neighbor_list

    folder = ROOT / "results" / "overnight" / "culi"
    path = folder / "culi.extxyz"
    prov = read_json(folder / "provenance.json")
    if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != prov["files"]["culi.extxyz"]:
        pytest.skip("the overnight Cu-Li dataset of the committed provenance is not generated here")
    frames = load_culi("train", data_dir=folder, scale="overnight")
    cutoffs = (5.0, 6.0, 12.0)
    edges = dict.fromkeys(cutoffs, 0)
    for atoms in frames:
        i, j, s = neighbor_list(atoms.positions, atoms.cell.array, atoms.pbc, max(cutoffs))
        d = np.linalg.norm(atoms.positions[j] - atoms.positions[i] + s @ atoms.cell.array, axis=1)
        for r in cutoffs:
            edges[r] += int((d < r).sum())
    n_atoms = sum(len(a) for a in frames)
    per_atom = [f"{edges[r] / n_atoms:.0f}" for r in cutoffs]
    check_fragments([f"a Cu-Li training frame has {per_atom[0]} neighbours per atom within {cutoffs[0]:g} Å, "
                     f"{per_atom[1]} within {cutoffs[1]:g} Å and {per_atom[2]} within {cutoffs[2]:g} Å"])


# ------------------------------------------------------------------- library computations (qallegro itself)
LIBRARY: dict[str, Case] = {}
library_case = registry(LIBRARY)


@library_case
def legacy_parameter_count() -> list[str]:
    from qallegro.models import MODEL_DEFAULTS, build_model

    model = build_model({**MODEL_DEFAULTS, "avg_num_neighbors": 10.0}, [1, 6, 8])  # aspirin: H, C, O
    ours = sum(p.numel() for p in model.parameters() if p.requires_grad)
    mult, irreps = MODEL_DEFAULTS["env_embed_multiplicity"], MODEL_DEFAULTS["l_max"] + 1
    dead = mult * mult * irreps  # legacy Allegro's unused linear after the last tensor product
    return [f"registers a {mult}x{mult}x{irreps} = {dead:,}-parameter linear layer",
            f"our legacy aspirin example model has {ours:,} trainable parameters instead of {ours + dead:,}"]


@library_case
def qdi_weights() -> list[str]:
    from qallegro.quantum.layer import QDILayer

    inputs = 4  # the analysed circuit: one encoding of 4 inputs (Supplementary A)
    counts = [QDILayer(inputs, depth=d).weight.numel() for d in (1, 2, 3)]
    qubits = QDILayer(inputs).n_qubits
    assert counts[0] == paper_values()["supplementary_a"]["zx_parameters_total"]
    return [f"{qubits} qubits and {counts[0]} trainable weights for {inputs} inputs at depth 1",
            f"(entangling layers per block: {', '.join(map(str, counts))} weights) with one encoding of {inputs} "
            "inputs"]


@library_case
def fisher() -> list[str]:
    from qallegro.quantum import analysis

    fi = analysis.fisher_information(depth=1, n_weight_samples=5, n_inputs=10, seed=0)
    signature = inspect.signature(analysis.fisher_information).parameters
    bins, near_zero = signature["bins"].default, signature["near_zero"].default
    assert fi["mean_rank"] == paper_values()["supplementary_a"]["fisher_mean_rank"][1]
    zero_rows = [f"w{k + 1}" for k in np.flatnonzero(np.abs(fi["mean_fisher"]).max(axis=1) < 1e-12)]
    return [f"(averaging over inputs first gives {fi['mean_rank_input_averaged']:.0f})",
            f"binned in {bins} equal bins on [0, 1]; \"near zero\" is the first bin (below {near_zero:g})",
            f"({', '.join(zero_rows)} act as a global phase; the Fisher matrix has zero rows there too)"]


@library_case
def fourier() -> list[str]:
    from qallegro.quantum import analysis

    draws = scale_settings("book", "overnight")["qdi"]["fourier_draws"]
    fs = analysis.fourier_spectrum(output=0, seed=0, n_draws=draws)
    assert fs["n_terms"] == paper_values()["supplementary_a"]["fourier_terms"]
    shown = (1e-10, 1e-6, 1e-4, 1e-3)
    means = fs["draw_mean_nonzero_vs_threshold"]
    return [f"We find {fs['n_nonzero']} structurally non-zero terms (first qubit's output)",
            f"Averaged over {draws} weight draws: {' / '.join(f'{means[t]:.1f}' for t in shown)} non-zero terms at "
            f"thresholds {' / '.join(sci(t) for t in shown)}"]


@library_case
def zx() -> list[str]:
    from qallegro.quantum import analysis

    open_unitary = analysis.zx_reduction(n_qubits=4, depth=1)
    plugged = analysis.zx_reduction(n_qubits=4, depth=1, plug_zero_state=True)
    total = open_unitary["n_parameters"]
    gone = sorted({f"w{k}" for k in range(1, total + 1)} - set(plugged["preserved_names"]),
                  key=lambda w: int(w[1:]))
    assert plugged["independent"] == plugged["preserved"]
    return [f"{open_unitary['preserved']} of {total} parameters survive PyZX's simplification",
            f"only {plugged['preserved']} of the {total} weights matter ({', '.join(gone)} act as a global phase"]


@pytest.mark.parametrize("case", list(LIBRARY))
def test_numbers_from_library_computations(case: str) -> None:
    """Parameter counts and the Supplementary A analysis, recomputed with `qallegro` (seconds)."""
    check_fragments(LIBRARY[case]())


# --------------------------------------------------------------------------- benchmarks (benchmarks/results)
def test_compiled_training_step_speedup() -> None:
    """'at most N x faster on aspirin': eager / compiled training step of ours in the race records (the largest:
    quick/train, 51.6 / 28.6 ms = 1.81x)."""
    ratios = []
    for name, key in (("race-quick.json", "quick/train"), ("race-legacy.json", "legacy/train")):
        row = read_json(ROOT / "benchmarks" / "results" / name)["results"][key]
        ratios.append(row["ours eager"]["median_ms"] / row["ours compiled"]["median_ms"])
    check_fragments([f"training step it makes at most {max(ratios):.2f}x faster on aspirin"])
