"""The Cu-Li pages' tables and sentences, from a generated set's `provenance.json` (`qallegro.culi.generate`) and
its splits."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

SPLITS = ("train", "val", "test", "ood", "dropped")
SPLIT_LABELS = {"train": "training", "val": "validation", "test": "test", "ood": "held-out interface",
                "dropped": "dropped (buffers)"}
CATEGORY_LABELS = {"slab": "slab", "surface_vacancy": "surface vacancy", "supercell_vacancy": "supercell vacancy",
                   "adatom": "adatom", "md": "melt-quench MD"}


def culi_splits(scale: str) -> dict[str, list[Any]]:
    """The generated set's frames at `scale` by split: train, val, test, and the held-out interface (`ood`) when
    the set has one."""
    from qallegro.data import load_dataset
    from qallegro.data.errors import DataOptionError

    out = {split: load_dataset("culi", split, scale=scale) for split in ("train", "val", "test")}
    try:
        out["ood"] = load_dataset("culi", "ood", scale=scale)
    except DataOptionError:  # a set split without a held-out interface
        pass
    return out


def split_sentence(sizes: Mapping[str, int], prov: Mapping[str, Any]) -> str:
    """The split in one sentence for the dataset page: by group (with a pointer to the split page) or at random."""
    n = " / ".join(f"{sizes[s]:,}" for s in ("train", "val", "test"))
    if int((prov.get("split") or {}).get("split_version", 1)) < 2:
        return (f"The frames are split at random (seeded, saved beside the dataset in `splits.json`) into {n} "
                "training / validation / test frames.")
    held = f", and {sizes['ood']:,} frames of the held-out interface" if sizes.get("ood") else ""
    dropped = int(prov.get("n_frames", 0)) - sum(sizes.values())
    buffer = f" ({dropped:,} frames of the buffers are in no split)" if dropped > 0 else ""
    return (f"The frames are split by group (all frames of one relaxation or parent structure in one split, MD "
            f"trajectories in blocks with a buffer between splits; the next page shows how) into {n} training / "
            f"validation / test frames{held}{buffer}.")


def read_provenance(path: Path) -> dict[str, Any] | None:
    """The provenance record of a generated Cu-Li set, or None when the set was not generated at this scale."""
    path = Path(path)
    return json.loads(path.read_text()) if path.is_file() else None


def split_counts(prov: Mapping[str, Any]) -> pd.DataFrame:
    """Frames per category (rows) and split (columns) of a group split; empty for a version-1 (random) split."""
    counts = (prov.get("split") or {}).get("counts")
    if not counts:
        return pd.DataFrame()
    df = pd.DataFrame({s: counts.get(s, {}) for s in SPLITS if s in counts}).fillna(0).astype(int)
    df.loc["all"] = df.sum()
    df = df.rename(index=CATEGORY_LABELS, columns=SPLIT_LABELS)
    df.index.name = "category"
    return df


def decorrelation_table(prov: Mapping[str, Any]) -> pd.DataFrame:
    """Each melt-quench trajectory's force decorrelation time, and whether it is held out."""
    split = prov.get("split") or {}
    held = {g.removeprefix("Li/Cu") for g in split.get("ood_groups", [])}
    times = split.get("force_decorrelation_fs") or {}
    bases = [name.removeprefix("md:").split("#")[0] for name in times]
    rows = []
    for name, t in times.items():
        base, _, k = name.removeprefix("md:").partition("#")
        label = f"{base}, run {int(k or 0) + 1}" if bases.count(base) > 1 else base  # "#1": the second run
        rows.append({"trajectory": label, "force decorrelation time": t,
                     "held out": base.removeprefix("Li/Cu") in held})
    return pd.DataFrame(rows)


def split_summary(prov: Mapping[str, Any]) -> str:
    """One paragraph stating the split of a generated set (its numbers from the provenance record)."""
    split = prov.get("split") or {}
    n = prov.get("n_frames", 0)
    if int(split.get("split_version", 1)) < 2:
        return (f"The set at this scale has {n:,} frames, split as single frames at random (split version 1): "
                "no groups, blocks or buffers, so neighbouring MD frames sit in different splits.")
    decor = list((split.get("force_decorrelation_fs") or {}).values())
    held = ", ".join(split.get("ood_groups", [])) or "no interface"
    return (f"The set at this scale has {n:,} frames, split by group (split version {split['split_version']}; "
            "version 1 was a random split of single frames): "
            f"MD blocks of {split['block_fs']:g} fs; the longest force decorrelation time is {max(decor):.1f} fs, so "
            f"the buffer between blocks of different splits is {split['buffer_fs']:g} fs "
            f"({split.get('n_dropped', 0)} frames dropped). Held out whole: {held} "
            f"({split.get('n_ood', 0)} frames).")


def _span(values: pd.Series) -> str:
    """`12-17` (or `17` when every value rounds alike)."""
    low, high = f"{values.min():.0f}", f"{values.max():.0f}"
    return low if low == high else f"{low}-{high}"


def generation_note(prov: Mapping[str, Any], record: Mapping[str, Any] | None) -> str:
    """Where the campaign's own generation of the set (its `data/culi` unit's record, as on the reproducibility
    page) took another time than this provenance's, a clause giving it ("; the campaign's generation of this
    scale's set, ... took 76 minutes"); else ""."""
    if not record or not record.get("labelling_seconds") or not prov.get("labelling_seconds"):
        return ""
    ours, theirs = float(prov["labelling_seconds"]), float(record["labelling_seconds"])
    if abs(ours - theirs) <= 0.2 * theirs:
        return ""
    return (f"; the campaign's generation of this scale's set, the data/culi unit of the reproducibility page, "
            f"took {_minutes(theirs)}")


def paper_count_note(paper_counts: Mapping[str, int], total: int) -> str:
    """Where the paper's frames per category do not add up to its stated total, a sentence saying so; else ""."""
    counted = sum(int(v) for v in paper_counts.values())
    if counted == total:
        return ""
    return (f"The paper's frames per category add up to {counted:,}, against its stated total of {total:,}; it "
            f"does not say where the other {abs(total - counted):,} {'are' if total > counted else 'come from'}.")


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes" if seconds >= 90 else f"{seconds:.0f} s"


def gpaw_subset(table: Path) -> dict[str, Any] | None:
    """A GPAW-labelled subset (`qallegro culi gpaw-subset`: the CSV `table` and its JSON) for the dataset page:
    `frames` (one row per frame), `categories` (SevenNet-0 against GPAW per category and over all) and `text`
    (what it is, how far it got, what GPAW cost); None when `table` does not exist."""
    table = Path(table)
    if not table.is_file():
        return None
    rows = pd.read_csv(table)
    info = json.loads(table.with_suffix(".json").read_text())
    sel, gpaw = info["selection"], info["gpaw"]
    by_cat = info["by_category"]  # in the generator's order (the JSON file sorts its keys)
    cats = {**{CATEGORY_LABELS[c]: by_cat[c] for c in CATEGORY_LABELS if c in by_cat}, "all": info["summary"]}
    categories = pd.DataFrame({
        "frames": {k: v["n_frames"] for k, v in cats.items()},
        "force MAE": {k: v["force_mae_meV_A"] for k, v in cats.items()},
        "DFT force RMS": {k: v["dft_force_rms_meV_A"] for k, v in cats.items()},
        "formation-energy MAE": {k: 1000 * v["e_form_mae_eV_atom"] for k, v in cats.items()}})
    categories.index.name = "category"
    frames = rows[["category", "composition", "n_atoms", "split", "force_mae_meV_A", "e_form_error_eV_atom",
                   "gpaw_seconds"]].replace({"category": CATEGORY_LABELS}).assign(
        e_form_error_eV_atom=lambda d: 1000 * d["e_form_error_eV_atom"]).rename(columns={
        "n_atoms": "atoms", "force_mae_meV_A": "force MAE", "e_form_error_eV_atom": "formation-energy error",
        "gpaw_seconds": "GPAW time"})
    splits = " and ".join(SPLIT_LABELS.get(s, s) for s in str(sel.get("split") or "").split(",") if s)
    missing = [c for c in CATEGORY_LABELS if c not in info["by_category"]]
    left = (f" {len(rows)} of the {sel['n']} selected frames are labelled so far (each category's cheapest frame "
            "first, then the others cheapest first; qallegro culi gpaw-subset resumes with the rest)."
            if len(rows) < sel["n"] else "")
    scf = (f", SCF to an eigenstate error of {gpaw['eigenstates']:.0e} eV² per electron".replace("e-0", "e-")
           if gpaw.get("eigenstates") else "")
    how = (f"GPAW (PBE, {gpaw['ecut_eV']:g} eV, k-point density {gpaw['kpt_density_A']:g} Å{scf})"
           if "ecut_eV" in gpaw else str(gpaw.get("labeler")))
    text = (f"{len(rows)} frames{f' of the {splits} splits' if splits else ''}, labelled with {how}, taken in "
            "turn from each category "
            f"among the frames of at most {sel['max_electrons']} valence electrons (Cu 11, Li 1: GPAW's cost grows "
            "with them, which leaves out the Cu-hosted adatom and supercell-vacancy frames and the 117-atom "
            f"held-out interface).{left} "
            + (f"Not yet covered: {', '.join(CATEGORY_LABELS[c] for c in missing)}. " if missing else
               "Every category is covered. ")
            + f"GPAW took {_minutes(float(rows['gpaw_seconds'].median()))} per frame (median; "
            f"{_minutes(float(rows['gpaw_seconds'].max()))} at most) on one core of this machine, beside another "
            f"job on the other core; each result is committed in {info['work']}.")
    return {"frames": frames, "categories": categories, "text": text, "info": info}


def dft_scores(records: list[Mapping[str, Any]], n_labelled: int | None = None) -> dict[str, Any] | None:
    """The Cu-Li models against the GPAW subset (the records of the campaign's `labels` units,
    `qallegro.campaign.dft`): `heads` (force and formation-energy errors of each head, SevenNet-0 on the same
    frames beside them), `categories` (force error per category and head) and `text`, which says when the subset
    now holds more frames (`n_labelled`) than the records scored; None without records."""
    from qallegro.models.variants import VARIANT_LABELS

    if not records:
        return None
    lab = records[0]["labels_vs_dft"]["all"]
    heads = pd.DataFrame([{
        "model": VARIANT_LABELS[r["variant"]],
        "force MAE vs DFT": r["model_vs_dft"]["all"]["force_mae_meV_A"],
        "force MAE vs SevenNet-0": r["model_vs_labels"]["force_mae_meV_A"],
        "formation-energy MAE vs DFT": 1000 * r["model_vs_dft"]["all"]["e_form_mae_eV_atom"]} for r in records]
        + [{"model": "SevenNet-0 (the labels)", "force MAE vs DFT": lab["force_mae_meV_A"],
            "force MAE vs SevenNet-0": 0.0, "formation-energy MAE vs DFT": 1000 * lab["e_form_mae_eV_atom"]}]
    ).set_index("model")
    cats = [c for c in CATEGORY_LABELS if c in records[0]["model_vs_dft"]]  # the generator's order
    categories = pd.DataFrame({VARIANT_LABELS[r["variant"]]: {CATEGORY_LABELS.get(c, c): r["model_vs_dft"][c][
        "force_mae_meV_A"] for c in cats} for r in records})
    categories["SevenNet-0"] = {CATEGORY_LABELS.get(c, c): records[0]["labels_vs_dft"][c]["force_mae_meV_A"]
                                for c in cats}
    categories.insert(0, "frames", {CATEGORY_LABELS.get(c, c): records[0]["model_vs_dft"][c]["n_frames"]
                                    for c in cats})
    categories.index.name = "category"
    n = {r["subset"]["n_frames"] for r in records}
    retrained = [r for r in records if r["retrained"]]
    same = all(v["recorded"] == v["retrained"] for r in retrained for v in r["reproduced"].values())
    same_data = all(r.get("data_sha256") == r.get("ablation_data_sha256") for r in retrained)
    off = max((abs(r["reproduced"]["test_f_mae"]["retrained"] / r["reproduced"]["test_f_mae"]["recorded"] - 1)
               for r in retrained), default=0.0)
    model_f = heads["force MAE vs DFT"].drop("SevenNet-0 (the labels)")
    fit = heads["force MAE vs SevenNet-0"].drop("SevenNet-0 (the labels)")
    text = (f"Seed {', '.join(sorted({str(r['seed']) for r in records}))} of each head, scored on the "
            f"{' / '.join(str(k) for k in sorted(n))} labelled frames: against DFT the models are "
            f"{_span(model_f)} meV/Å off in the forces, SevenNet-0 (their labels) "
            f"{lab['force_mae_meV_A']:.0f} meV/Å; against the SevenNet-0 labels they were trained on, the models are "
            f"{_span(fit)} meV/Å off. "
            + (f"The models are not kept in the repository, so {len(retrained)} of them were retrained here with "
               "their ablation runs' configs; "
               + ("their validation and test errors equal the ablation records' to the last digit: they are the "
                  "same models. " if same else
                  f"they are not the ablation's very models: their test force MAE is within {off:.1%} of the "
                  "ablation records'"
                  + ("" if same_data else " (and the Cu-Li set generated here has another sha256 than the one the "
                     "campaign trained on: data/culi/README.md says where the two differ)") + ". ")
               if retrained else "")
            + (f"The subset holds {n_labelled} labelled frames now: run the labels units again (delete their "
               "records) to score the models on all of them. " if n_labelled and n_labelled > max(n) else ""))
    return {"heads": heads, "categories": categories, "text": text, "records": records}
