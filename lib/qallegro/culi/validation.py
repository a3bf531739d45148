"""The labeller's error against DFT: the GPAW references of the data mirror, and a GPAW-labelled subset of ours.

Formation (mixing) energies use each method's own elemental references, so they compare across codes:
E_f = [E - n_Cu mu_Cu - n_Li mu_Li] / N, with mu from fcc Cu and bcc Li bulk cells.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms

from qallegro.culi.labelers import GPAWLabeler, Labeler, LabelError, get_labeler
from qallegro.data.errors import ChecksumError, InvalidDataError, MissingDataError
from qallegro.utils import atomic_write_json, atomic_write_text, pid_alive, sha256_file

log = logging.getLogger(__name__)

VALIDATION_FILES = {
    "structures": "culi_test3.extxyz",
    "labels": "culi_test3_gpaw_pw350.extxyz",
    "refs": "refs_gpaw_pw350.extxyz",
    "pw500": "culi_cfg2_gpaw_pw500.extxyz",
}


def mirror_culi_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """`<data_dir or $QALLEGRO_DATA>/culi` (the project's data mirror)."""
    from qallegro.data.registry import mirror_dir

    root = Path(data_dir) if data_dir is not None else mirror_dir()
    if root is None:
        raise MissingDataError("no data mirror: set QALLEGRO_DATA to the project's data folder (it holds culi/)")
    return root / "culi"


def reference_files(data_dir: str | os.PathLike | None = None) -> dict[str, Path]:
    """The GPAW reference files, each verified against `culi/SHA256SUMS`."""
    folder = mirror_culi_dir(data_dir)
    sums_path = folder / "SHA256SUMS"
    if not sums_path.is_file():
        raise MissingDataError(f"missing {sums_path}: the Cu-Li validation references come with the data mirror")
    sums = {}
    for line in sums_path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2:
            sums[Path(parts[1]).as_posix().removeprefix("./")] = parts[0]
    out = {}
    for key, name in VALIDATION_FILES.items():
        rel = f"validation/{name}"
        path = folder / rel
        if not path.is_file():
            raise MissingDataError(f"missing validation file {path}")
        if rel not in sums:
            raise InvalidDataError(f"{rel} is not listed", sums_path)
        if sha256_file(path) != sums[rel]:
            raise ChecksumError(f"sha256 differs from {sums_path}; the file is corrupt or another version", path)
        out[key] = path
    return out


def same_structure(a: Atoms, b: Atoms) -> bool:
    """Whether `a` and `b` are one structure: the same atoms at the same positions (to 1e-6 Å, what extxyz keeps)."""
    return len(a) == len(b) and bool((a.numbers == b.numbers).all()) and \
        np.allclose(a.positions, b.positions, atol=1e-6)


def elemental_references(frames: list[Atoms]) -> dict[str, float]:
    """mu (eV/atom) per element from one-element frames."""
    mu = {}
    for atoms in frames:
        symbols = set(atoms.get_chemical_symbols())
        if len(symbols) != 1:
            raise ValueError(f"elemental reference frame has several elements: {symbols}")
        mu[symbols.pop()] = atoms.get_potential_energy() / len(atoms)
    return mu


def formation_energy(atoms: Atoms, energy: float, mu: dict[str, float]) -> float:
    """[E - sum_i mu_i] / N in eV/atom."""
    symbols = atoms.get_chemical_symbols()
    return (energy - sum(mu[s] for s in symbols)) / len(symbols)


def compare(reference: list[Atoms], predicted: list[dict[str, Any]], mu_ref: dict[str, float],
            mu_pred: dict[str, float]) -> list[dict[str, Any]]:
    """Per frame: force MAE/RMSE (meV/Å), formation energies (eV/atom) and their difference."""
    rows = []
    for atoms, pred in zip(reference, predicted, strict=True):
        f_ref = atoms.get_forces(apply_constraint=False)
        diff = np.asarray(pred["forces"]) - f_ref
        e_ref = formation_energy(atoms, atoms.get_potential_energy(), mu_ref)
        e_pred = formation_energy(atoms, float(pred["energy"]), mu_pred)
        rows.append({"n_atoms": len(atoms), "composition": atoms.get_chemical_formula(mode="metal"),
                     "force_mae_meV_A": 1000 * float(np.abs(diff).mean()),
                     "force_rmse_meV_A": 1000 * float(np.sqrt((diff**2).mean())),
                     "dft_force_rms_meV_A": 1000 * float(np.sqrt((f_ref**2).mean())),
                     "e_form_dft_eV_atom": e_ref, "e_form_labeler_eV_atom": e_pred,
                     "e_form_error_eV_atom": e_pred - e_ref})
    return rows


def summarize(rows: list[dict[str, Any]], reference: list[Atoms], predicted: list[dict[str, Any]]) -> dict[str, Any]:
    """Force MAE/RMSE over all force components of all frames (meV/Å) and energy error statistics."""
    diff = np.concatenate([np.asarray(p["forces"]) - a.get_forces(apply_constraint=False)
                           for a, p in zip(reference, predicted, strict=True)])
    f_ref = np.concatenate([a.get_forces(apply_constraint=False) for a in reference])
    e_err = np.array([r["e_form_error_eV_atom"] for r in rows])
    return {"n_frames": len(rows), "force_mae_meV_A": 1000 * float(np.abs(diff).mean()),
            "force_rmse_meV_A": 1000 * float(np.sqrt((diff**2).mean())),
            "dft_force_rms_meV_A": 1000 * float(np.sqrt((f_ref**2).mean())),
            "e_form_mae_eV_atom": float(np.abs(e_err).mean()), "e_form_mean_error_eV_atom": float(e_err.mean())}


def labeller_error(labeler: str | Labeler = "sevenn", data_dir: str | os.PathLike | None = None) -> dict[str, Any]:
    """The labeller against the mirror's GPAW PBE (PW 350 eV) labels of three 32-atom Cu-Li cells.

    Returns {"rows": per cell, "summary": totals, "cutoff_check": PW500 vs PW350 forces on cell C (DFT vs DFT)}.
    """
    from ase.io import read

    lab = get_labeler(labeler)
    files = reference_files(data_dir)
    reference = read(files["labels"], ":")
    structures = read(files["structures"], ":")
    if [len(a) for a in reference] != [len(a) for a in structures] or any(
            not np.allclose(a.positions, b.positions, atol=1e-6) for a, b in zip(reference, structures)):
        raise InvalidDataError("the labelled cells do not match culi_test3.extxyz", files["labels"])
    refs = read(files["refs"], ":")
    mu_dft = elemental_references(refs)
    predicted = [lab.label(a) for a in reference]
    mu_lab = elemental_references([_labelled(a, lab.label(a)) for a in refs])
    rows = compare(reference, predicted, mu_dft, mu_lab)
    for row, name in zip(rows, "ABC"):
        row["cell"] = name
    pw500 = read(files["pw500"])
    c_dft = reference[2].get_forces(apply_constraint=False)
    cutoff = {"force_mae_meV_A": 1000 * float(np.abs(pw500.get_forces() - c_dft).mean()),
              "force_max_meV_A": 1000 * float(np.abs(pw500.get_forces() - c_dft).max())}
    return {"rows": rows, "summary": summarize(rows, reference, predicted), "mu_dft": mu_dft, "mu_labeler": mu_lab,
            "labeler": lab.settings(), "reference": "GPAW 22.8 PBE PW350 (data mirror culi/validation)",
            "cutoff_check": cutoff}


def _labelled(atoms: Atoms, labels: dict[str, Any]) -> Atoms:
    from ase.calculators.singlepoint import SinglePointCalculator

    out = atoms.copy()
    out.calc = SinglePointCalculator(out, energy=labels["energy"], forces=labels["forces"])
    return out


def bulk_references() -> list[Atoms]:
    """fcc Cu and bcc Li one-atom cells at the recipe's lattice constants (for formation energies)."""
    from ase.build import bulk

    from qallegro.culi.structures import BULK

    return [bulk(el, kind, a=a) for el, (kind, a) in BULK.items()]


# valence electrons of GPAW's PAW setups (gpaw-data 0.9.20000): a frame's GPAW cost grows with their number
VALENCE_ELECTRONS = {"Cu": 11, "Li": 1}


def valence_electrons(atoms: Atoms) -> int:
    """GPAW's valence electrons of `atoms` (Cu 11, Li 1), the measure of a frame's DFT cost."""
    return sum(VALENCE_ELECTRONS[s] for s in atoms.get_chemical_symbols())


def pick_subset(frames: list[Atoms], n: int, max_electrons: int, seed: int = 0,
                among: Collection[int] | None = None) -> list[int]:
    """Indices of `n` frames with at most `max_electrons` valence electrons, taken in turn from each category (in
    the generator's order) and preferring parents not used yet. Each category draws with its own seeded generator,
    so one category's frames never change another's picks; the order is the picking order, so a smaller `n`
    gives a prefix. `among`: only these frame indices (a split)."""
    from qallegro.culi.generate import CATEGORIES

    by_cat: dict[str, list[int]] = {}
    for i, atoms in enumerate(frames):
        if (among is None or i in among) and valence_electrons(atoms) <= max_electrons:
            by_cat.setdefault(str(atoms.info.get("category")), []).append(i)
    order = [c for c in CATEGORIES if c in by_cat] + sorted(set(by_cat) - set(CATEGORIES))
    pools = {c: [int(i) for i in np.random.default_rng([seed, k]).permutation(by_cat[c])]
             for k, c in enumerate(order)}
    chosen: list[int] = []
    seen_parents: set[str] = set()
    while len(chosen) < n and any(pools.values()):
        for cat in order:
            pool = pools[cat]
            if not pool or len(chosen) >= n:
                continue
            # prefer a parent not used yet, so the subset covers many structures; else the frame farthest in
            # steps (MD time, relaxation) from those of its parent already chosen
            pick = next((i for i in pool if str(frames[i].info.get("parent")) not in seen_parents), None)
            if pick is None:
                pick = max(pool, key=lambda i: min(abs(int(frames[i].info.get("step", 0)) -
                                                       int(frames[j].info.get("step", 0))) for j in chosen
                                                   if frames[j].info.get("parent") == frames[i].info.get("parent")))
            pool.remove(pick)
            chosen.append(pick)
            seen_parents.add(str(frames[pick].info.get("parent")))
    return chosen


def labelling_order(frames: list[Atoms], chosen: list[int]) -> list[int]:
    """`chosen` in the order to label them: the cheapest frame (fewest valence electrons) of each category first,
    then the others cheapest first, so that an interrupted labelling covers every category it can afford."""
    cheapest = sorted(chosen, key=lambda i: (valence_electrons(frames[i]), i))
    first: dict[str, int] = {}
    for i in cheapest:
        first.setdefault(str(frames[i].info.get("category")), i)
    return list(first.values()) + [i for i in cheapest if i not in first.values()]


def by_category(rows: list[dict[str, Any]], reference: list[Atoms],
                predicted: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """`summarize` of each category's frames (rows carry `category`), in the generator's category order."""
    from qallegro.culi.generate import CATEGORIES

    cats = [c for c in CATEGORIES if any(r["category"] == c for r in rows)]
    out = {}
    for cat in cats:
        idx = [k for k, r in enumerate(rows) if r["category"] == cat]
        out[cat] = summarize([rows[k] for k in idx], [reference[k] for k in idx], [predicted[k] for k in idx])
    return out


def _shown(path: Path) -> str:
    """`path` relative to the working directory when it is inside it (files written into the repository carry no
    machine-specific prefix), else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _claim(path: Path) -> bool:
    """Take the claim file `path` for this process (its pid inside), or False when a live process on this machine
    holds it; a dead process's claim is taken over."""
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
    except FileExistsError:
        try:
            pid = int(path.read_text().strip() or 0)
        except (ValueError, FileNotFoundError):
            pid = 0
        if pid and pid_alive(pid):
            return False
        path.unlink(missing_ok=True)
        return _claim(path)
    with os.fdopen(fd, "w") as fh:
        fh.write(str(os.getpid()))
    return True


def gpaw_subset(dataset_dir: str | os.PathLike, n: int = 16, max_electrons: int = 380, seed: int = 0,
                work: str | os.PathLike | None = None, table: str | os.PathLike | None = None,
                labeler: Labeler | None = None, dataset_labeler: Labeler | None = None,
                progress: bool = True, label_missing: bool = True, split: str | None = None) -> dict[str, Any]:
    """Label `n` frames of a generated dataset with GPAW and compare them with the dataset's labels.

    The frames are `pick_subset`'s (at most `max_electrons` valence electrons each, every category in turn),
    labelled in `labelling_order` (each category's cheapest frame first), so that an interrupted run has covered
    the categories early. `split` (e.g. "val,test"):
    only frames of those splits of the dataset's `splits.json`, so that trained models can be scored on them.

    `labeler` is the reference (default GPAW PW 500 eV), `dataset_labeler` the one that labelled the dataset
    (default SevenNet-0; it computes its own elemental references). Each reference result is saved in `work`
    (default `<dataset_dir>/gpaw-subset`) as soon as it is done, so an interrupted run resumes, and several
    processes may label one subset at once (each frame is claimed by one, `<frame>.claim`); a saved result
    whose structure is not the dataset's frame any more (a regenerated dataset) is labelled again. A GPAW
    labeller without a `restart_dir` gets `work/restart/`: a killed frame's SCF resumes from its saved density.
    `label_missing=False` labels nothing new: the table holds the selected frames already labelled (the
    elemental references must be). Writes the comparison table (CSV) and its provenance (JSON beside it) to
    `table`; `selection.n_labelled` says how many of the `n` frames it holds.
    """
    from ase.io import read, write

    from qallegro.data.culi import DATASET_FILE, read_frames

    folder = Path(dataset_dir)
    frames = read_frames(folder / DATASET_FILE)
    lab = labeler or get_labeler("gpaw")
    lab.check()
    work = Path(work) if work else folder / "gpaw-subset"
    work.mkdir(parents=True, exist_ok=True)
    if isinstance(lab, GPAWLabeler) and lab.restart_dir is None:  # killed SCFs resume from work/restart/
        lab.restart_dir = work / "restart"
    among = None
    if split is not None:
        from qallegro.data.culi import SPLITS_FILE

        splits = json.loads((folder / SPLITS_FILE).read_text())
        among = {}  # frame index -> its split
        for name in split.split(","):
            if not isinstance(splits.get(name), list):
                names = ", ".join(k for k, v in splits.items() if isinstance(v, list))
                raise InvalidDataError(f"no split {name!r} (splits: {names})", folder / SPLITS_FILE)
            among.update({int(i): name for i in splits[name]})
    chosen = pick_subset(frames, n, max_electrons, seed, among)
    targets = [(f"ref-{a.get_chemical_formula()}", a) for a in bulk_references()] + \
              [(f"frame-{i:06d}", frames[i]) for i in labelling_order(frames, chosen)]
    from tqdm.auto import tqdm

    def saved(name: str, atoms: Atoms) -> Atoms | None:
        """The saved result of `atoms`, if there is one for this very structure."""
        path = work / f"{name}.extxyz"
        if not path.exists():
            return None
        old = read(path)
        if same_structure(old, atoms):
            return old
        log.warning("%s: saved for another structure (the dataset was regenerated?); labelling again", path)
        return None

    failures, seconds, labelled = [], {}, {}  # labelled: name -> the saved result, read back once
    for name, atoms in tqdm(targets, desc="GPAW subset", disable=not progress):
        old = saved(name, atoms)
        if old is not None:
            labelled[name] = old
            continue
        if not label_missing and name.startswith("frame-"):
            continue
        path = work / f"{name}.extxyz"
        claim = work / f"{name}.claim"
        if not _claim(claim):
            continue  # another process labels it
        t0 = time.perf_counter()
        try:
            labels = lab.label(atoms)
        except LabelError as err:
            failures.append({"frame": name, "error": str(err)})
            continue
        finally:
            claim.unlink(missing_ok=True)
        seconds[name] = round(time.perf_counter() - t0, 1)
        out = _labelled(Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc),
                        labels)
        out.info.update({k: v for k, v in atoms.info.items() if isinstance(v, (str, int, float))})
        out.info["seconds"] = seconds[name]
        tmp = path.with_suffix(".extxyz.tmp")
        write(tmp, out, format="extxyz")
        os.replace(tmp, path)  # a killed run leaves no half-written result
        labelled[name] = read(path)  # as a resumed run reads it (extxyz rounding)
    for name, atoms in targets:  # what other processes labelled meanwhile
        if name not in labelled and (old := saved(name, atoms)) is not None:
            labelled[name] = old
    mu_dft = elemental_references([labelled[name] for name, _ in targets[:2]])
    from qallegro.culi.labelers import SevenNetLabeler

    dataset_lab = dataset_labeler or SevenNetLabeler()
    mu_lab = elemental_references([_labelled(a, dataset_lab.label(a)) for a in bulk_references()])
    done = [i for i in chosen if f"frame-{i:06d}" in labelled]
    reference = [labelled[f"frame-{i:06d}"] for i in done]
    predicted = [{"energy": frames[i].get_potential_energy(), "forces": frames[i].get_forces(apply_constraint=False)}
                 for i in done]
    rows = compare(reference, predicted, mu_dft, mu_lab)
    for row, i, ref in zip(rows, done, reference):
        row.update(source_index=i, split=among.get(i) if among else None, category=frames[i].info.get("category"),
                   parent=frames[i].info.get("parent"),
                   step=int(frames[i].info.get("step", -1)), valence_electrons=valence_electrons(frames[i]),
                   gpaw_seconds=float(ref.info.get("seconds", np.nan)))
        if hasattr(lab, "kpts"):
            row["kpts"] = "x".join(str(k) for k in lab.kpts(frames[i]))
    result = {"rows": rows, "summary": summarize(rows, reference, predicted) if rows else {},
              "by_category": by_category(rows, reference, predicted),
              "mu_gpaw": mu_dft, "mu_labeler": mu_lab, "failures": failures, "gpaw": lab.settings(),
              "gpaw_versions": lab.versions(), "labeler": dataset_lab.settings(), "work": _shown(work),
              "dataset": _shown(folder / DATASET_FILE), "dataset_sha256": sha256_file(folder / DATASET_FILE),
              "selection": {"n": n, "n_labelled": len(done), "max_electrons": max_electrons, "seed": seed,
                            "split": split, "method": "pick_subset"}}
    if table is not None:
        import pandas as pd

        table = Path(table)
        atomic_write_text(table, pd.DataFrame(rows).to_csv(index=False, float_format="%.6g"))
        atomic_write_json(table.with_suffix(".json"), {k: v for k, v in result.items() if k != "rows"})
    return result
