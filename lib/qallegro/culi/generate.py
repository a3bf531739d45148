"""Generate the Cu-Li dataset: plan the structures, run them (resumable), merge, split, write provenance.

Layout of a dataset folder (default `<results>/<scale>/culi`, `<results>` = `$QALLEGRO_RESULTS` or `<repo>/results`):
  plan.json        the tasks (one per structure: a relaxation or a melt-quench run) and the settings hash
  state.json       finished tasks: frames written, failures, seconds (rewritten atomically after each task)
  parts/NNNNN.extxyz   the frames of task NNNNN (written atomically: a half-written frame is never read)
  work/NNNNN.npz   MD checkpoint of a running melt-quench task (removed when the task is done)
  culi.extxyz      all frames in task order, once every task is done;  splits.json  train/val/test indices
  provenance.json  labeller and driver settings, package versions, seed, counts per category, failures, timing
  generate.log     the log;   .gitignore  keeps everything but provenance.json out of git

Re-running the same command continues where it stopped. A different scale setting, seed or labeller setting (e.g.
a GPAW cutoff) in an existing folder is refused: one dataset never mixes settings.
"""

from __future__ import annotations

import io
import json
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from qallegro.culi import structures as st
from qallegro.culi.interfaces import build_interface
from qallegro.culi.labelers import Labeler, LabelError, SevenNetLabeler, get_labeler
from qallegro.culi.md import Frame, MeltQuench, melt_quench, relax, sample_steps
from qallegro.errors import CuliError
from qallegro.paths import CULI_DATASET_FILE as DATASET_FILE
from qallegro.paths import CULI_PROVENANCE_FILE as PROVENANCE_FILE
from qallegro.paths import CULI_SPLITS_FILE as SPLITS_FILE
from qallegro.paths import culi_dir
from qallegro.scales import check_scale
from qallegro.utils import atomic_write_json, atomic_write_text, config_hash, get_logger, sha256_file, torch_threads

CATEGORIES = ("slab", "surface_vacancy", "supercell_vacancy", "adatom", "md")
FORMAT = 1
# a generated folder ignores itself in git (the dataset is never committed); only provenance.json may be
GITIGNORE = "# written by `qallegro culi generate`: the dataset is never committed\n*\n!.gitignore\n!provenance.json\n"


class SettingsMismatch(CuliError):
    """An existing dataset folder was generated with other settings; appending would mix them."""


def default_dir(scale: str, labeler: str = "sevenn") -> Path:
    """`<results>/<scale>/culi` (SevenNet-0 labels) or `<results>/<scale>/culi-<labeler>`."""
    return culi_dir(check_scale(scale), labeler)


@dataclass
class Task:
    """One structure to relax (slab, vacancies, adatom) or to melt-quench (interface), and its frame quota."""

    index: int
    id: str
    category: str
    recipe: dict[str, Any]
    n_frames: int
    n_atoms: int


_SITES: dict[str, list[tuple[str, np.ndarray]]] = {}  # adatom sites per (slab settings, element, plane)


class Builder:
    """Builds the structures of a scale's settings (slabs cached per builder, adatom sites per process)."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.s = settings
        self._slabs: dict[tuple, Atoms] = {}

    def slab(self, element: str, hkl: tuple[int, int, int]) -> Atoms:
        key = (element, hkl)
        if key not in self._slabs:
            p = self.s["slab"]
            self._slabs[key] = st.make_slab(element, hkl, p["thickness"][element], vacuum=p["vacuum"],
                                            free_layers=p["free_layers"], min_layers=p["min_layers"],
                                            min_in_plane=p["min_in_plane"])
        return self._slabs[key].copy()

    def supercell(self, element: str, hkl: tuple[int, int, int]) -> Atoms:
        return st.supercell(self.slab(element, hkl), (2, 2, 1), self.s["slab"]["free_layers"])

    def sites(self, element: str, hkl: tuple[int, int, int]) -> list[tuple[str, np.ndarray]]:
        key = config_hash(self.s["slab"], self.s["adatom_height"], element, hkl)
        if key not in _SITES:
            _SITES[key] = st.adatom_sites(self.supercell(element, hkl), self.s["adatom_height"])
        return _SITES[key]

    def interface(self, hkl: tuple[int, int, int]) -> Atoms | None:
        p = self.s["interface"]
        return build_interface(hkl, p["thickness"]["Li"], p["thickness"]["Cu"], gap=p["gap"], vacuum=p["vacuum"],
                               area_tol=p["area_tol"], max_area=p["max_area"], min_layers=p["min_layers"])

    def vacancies(self, category: str, element: str, hkl: tuple[int, int, int]) -> list[Atoms]:
        base = self.slab(element, hkl) if category == "surface_vacancy" else self.supercell(element, hkl)
        out = st.surface_vacancies(base, self.s["slab"]["free_layers"])
        for atoms in out:
            atoms.info["category"] = category
        return out

    def structure(self, category: str, recipe: dict[str, Any]) -> Atoms:
        hkl = tuple(recipe["miller"])
        if category == "slab":
            return self.slab(recipe["element"], hkl)
        if category in ("surface_vacancy", "supercell_vacancy"):
            found = [a for a in self.vacancies(category, recipe["element"], hkl)
                     if a.info["vacancy_cn"] == recipe["cn"]]
            if not found:
                raise ValueError(f"no {category} with coordination {recipe['cn']} on {recipe['element']}{hkl}")
            return found[0]
        if category == "adatom":
            kind, pos = [s for s in self.sites(recipe["element"], hkl) if s[0] == recipe["site"]][recipe["site_index"]]
            return st.add_adatom(self.supercell(recipe["element"], hkl), recipe["species"], pos, kind,
                                 self.s["slab"]["free_layers"])
        if category == "md":
            atoms = self.interface(hkl)
            if atoms is None:
                raise ValueError(f"no Li/Cu interface for {hkl}")
            return atoms
        raise ValueError(f"unknown category {category!r}")

    def candidates(self, category: str) -> list[tuple[str, dict[str, Any], int]]:
        """All structures of a category as (id, recipe, n_atoms), in a fixed order."""
        out: list[tuple[str, dict[str, Any], int]] = []
        max_index = self.s["max_miller"]
        if category == "md":
            runs = self.s.get("md_interfaces")
            if runs is None:
                chosen = [(hkl, 1) for hkl in st.miller_indices("Li", max_index)]
            else:
                chosen = [(tuple(run["miller"]), int(run.get("replicas", 1))) for run in runs]
            for hkl, replicas in chosen:
                atoms = self.interface(hkl)
                if atoms is None:
                    if runs is not None:
                        raise ValueError(f"md_interfaces: no Li/Cu interface for {list(hkl)} at these settings")
                    continue
                for r in range(replicas):  # replicas differ in their MD seed (task_seed of the id)
                    tag = f"#{r}" if r else ""
                    out.append((f"md:Li/Cu{st.miller_label(hkl)}{tag}", {"miller": list(hkl)}, len(atoms)))
            return out
        for element in st.BULK:
            for hkl in st.miller_indices(element, max_index):
                name = f"{element}{st.miller_label(hkl)}"
                recipe: dict[str, Any] = {"element": element, "miller": list(hkl)}
                if category == "slab":
                    out.append((f"slab:{name}", recipe, len(self.slab(element, hkl))))
                elif category in ("surface_vacancy", "supercell_vacancy"):
                    for atoms in self.vacancies(category, element, hkl):
                        cn = atoms.info["vacancy_cn"]
                        out.append((f"{category}:{name}:cn{cn}", {**recipe, "cn": cn}, len(atoms)))
                elif category == "adatom":
                    n_sc = len(self.slab(element, hkl)) * 4
                    counter: dict[str, int] = {}
                    for kind, _ in self.sites(element, hkl):
                        k = counter.get(kind, 0)
                        counter[kind] = k + 1
                        for species in st.BULK:
                            out.append((f"adatom:{species}@{name}:{kind}{k}",
                                        {**recipe, "species": species, "site": kind, "site_index": k}, n_sc + 1))
                else:
                    raise ValueError(f"unknown category {category!r}")
        return out


def frames_available(category: str, settings: dict[str, Any]) -> int:
    """The most frames one structure can give: relaxation steps + 1, or MD steps + 1."""
    if category == "md":
        return schedule(settings).n_steps + 1
    return int(settings["relax"]["max_steps"]) + 1


def schedule(settings: dict[str, Any]) -> MeltQuench:
    p = settings["md"]
    return MeltQuench(t_high=p["t_high"], t_low=p["t_low"], cooling_rate=p["cooling_rate"],
                      timestep_fs=p["timestep_fs"], heat_ps=p["heat_ps"], friction_per_fs=p["friction_per_fs"])


def make_plan(settings: dict[str, Any], seed: int, builder: Builder | None = None) -> list[Task]:
    """Choose the structures of every category (seeded) and give each its share of the category's frames."""
    builder = builder or Builder(settings)
    tasks: list[Task] = []
    for c_index, category in enumerate(CATEGORIES):
        target = int(settings["frames"][category])
        if target <= 0:
            continue
        cap = settings["max_atoms"].get(category)
        cands = [c for c in builder.candidates(category) if cap is None or c[2] <= cap]
        n = min(len(cands), target, settings["max_structures"].get(category) or len(cands))
        if category == "md" and settings.get("md_interfaces") is not None:
            n = len(cands)  # the listed interfaces and replicas, all of them
        if n == 0:
            continue
        rng = np.random.default_rng([seed, c_index])
        chosen = sorted(rng.choice(len(cands), size=n, replace=False).tolist()) if n < len(cands) \
            else list(range(n))
        per = frames_available(category, settings)
        extra = set(rng.permutation(n)[: target % n].tolist())
        for j, i in enumerate(chosen):
            name, recipe, n_atoms = cands[i]
            quota = min(per, target // n + (1 if j in extra else 0))
            tasks.append(Task(len(tasks), name, category, recipe, quota, n_atoms))
    return tasks


def task_seed(seed: int, task_id: str) -> int:
    return int(config_hash(seed, task_id), 16) % (2**32)


def group_of(task: Task) -> str:
    """The parent structure of a task's frames: the surface a slab, vacancy or adatom derives from (`Li(110)`),
    or the interface of a melt-quench (`Li/Cu(110)`, every replica)."""
    hkl = st.miller_label(tuple(task.recipe["miller"]))
    return f"Li/Cu{hkl}" if task.category == "md" else f"{task.recipe['element']}{hkl}"


def _to_atoms(base: Atoms, frame: Frame, task: Task, labels: dict[str, Any], timestep_fs: float) -> Atoms:
    atoms = Atoms(numbers=base.numbers, positions=frame["positions"], cell=base.cell, pbc=base.pbc)
    fixed = base.arrays.get("fixed", np.zeros(len(base), bool))
    atoms.set_array("fixed", np.asarray(fixed, bool))
    info: dict[str, Any] = {"category": task.category, "miller": base.info.get("miller", ""),
                            "composition": atoms.get_chemical_formula(mode="metal"),
                            "temperature": float(frame["temperature"]), "parent": task.id, "step": int(frame["step"]),
                            "group": group_of(task)}
    if task.category == "md":
        info.update(trajectory=task.id, time_fs=round(int(frame["step"]) * timestep_fs, 6))
    if "kinetic_temperature" in frame:
        info["kinetic_temperature"] = round(float(frame["kinetic_temperature"]), 3)
    atoms.info.update(info)
    atoms.calc = SinglePointCalculator(atoms, **labels)
    return atoms


def run_task(task: Task, builder: Builder, driver: Labeler, labeler: Labeler, settings: dict[str, Any],
             seed: int, checkpoint: Path | None = None,
             on_frame: Callable[[], None] | None = None) -> tuple[list[Atoms], list[dict[str, Any]]]:
    """Relax or melt-quench one structure with the driver; label the chosen frames. Returns (frames, failures).

    `on_frame()` is called whenever the melt-quench records a frame (progress bars).
    """
    base = builder.structure(task.category, task.recipe)
    calc = driver.calculator  # type: ignore[attr-defined]
    try:
        if task.category == "md":
            sched = schedule(settings)
            steps = sample_steps(sched.n_steps, task.n_frames)
            wanted = set(steps)

            def on_step(step: int) -> None:
                if on_frame is not None and step in wanted:
                    on_frame()

            raw = melt_quench(base, calc, sched, steps, task_seed(seed, task.id), checkpoint=checkpoint,
                              checkpoint_every=int(settings["md"]["checkpoint_every"]), on_step=on_step)
        else:
            traj = relax(base, calc, settings["relax"]["fmax"], settings["relax"]["max_steps"])
            raw = [traj[i] for i in sample_steps(len(traj) - 1, task.n_frames)]
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as err:
        return [], [{"task": task.id, "stage": "driver", "error": f"{type(err).__name__}: {err}"}]
    frames: list[Atoms] = []
    failures: list[dict[str, Any]] = []
    for frame in raw:
        if labeler is driver:
            labels = {"energy": frame["energy"], "forces": frame["forces"]}
        else:
            probe = Atoms(numbers=base.numbers, positions=frame["positions"], cell=base.cell, pbc=base.pbc)
            try:
                labels = labeler.label(probe)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as err:
                kind = "label" if isinstance(err, LabelError) else "label-crash"
                failures.append({"task": task.id, "stage": kind, "step": int(frame["step"]),
                                 "error": f"{type(err).__name__}: {err}"})
                continue
        frames.append(_to_atoms(base, frame, task, labels, float(settings["md"]["timestep_fs"])))
    return frames, failures


def split_by_group(path: Path, options: dict[str, Any], seed: int, timestep_fs: float) -> dict[str, Any]:
    """The group split of a merged dataset file (`qallegro.data.groups`), with the measured force decorrelation
    time of each MD trajectory and the buffer used (at least the longest of them, rounded up to whole steps)."""
    from ase.io import read

    from qallegro.data.errors import InvalidDataError
    from qallegro.data.groups import SPLIT_VERSION, FrameGroup, force_decorrelation_fs, group_split

    frames = read(path, index=":", format="extxyz")
    bare = next((k for k, a in enumerate(frames) if "group" not in a.info or "category" not in a.info), None)
    if bare is not None:
        raise InvalidDataError(f"frame {bare} has no group metadata (generated before split version 2?); "
                               "a group split needs the `group` and `category` of every frame", path)
    meta = [FrameGroup(a.info["category"], str(a.info["group"]), str(a.info.get("trajectory", "")),
                       float(a.info.get("time_fs", np.nan))) for a in frames]
    ood_groups = [f"Li/Cu{st.miller_label(tuple(h))}" for h in options.get("ood_interfaces", [])]
    decorrelation: dict[str, float] = {}
    for name in sorted({m.trajectory for m in meta if m.trajectory}):
        idx = sorted((i for i, m in enumerate(meta) if m.trajectory == name), key=lambda i: meta[i].time_fs)
        spacing = float(np.median(np.diff([meta[i].time_fs for i in idx])))
        decorrelation[name] = force_decorrelation_fs([frames[i].get_forces() for i in idx], spacing)
    inside = [v for k, v in decorrelation.items() if meta[next(i for i, m in enumerate(meta) if m.trajectory == k)]
              .group not in ood_groups]
    longest = max(inside, default=0.0)
    if not np.isfinite(longest):
        raise ValueError(f"{path}: an MD trajectory's forces never decorrelate within half its length "
                         f"({decorrelation}); lengthen the melt-quench or lower block_fs")
    buffer_fs = max(float(options.get("min_buffer_fs", 0.0)), math.ceil(longest / timestep_fs) * timestep_fs)
    block_fs = float(options["block_fs"])
    parts = group_split(meta, options, seed, block_fs=block_fs, buffer_fs=buffer_fs, ood_groups=ood_groups)
    counts = {split: dict(sorted(Counter(meta[i].category for i in idx).items())) for split, idx in parts.items()}
    return {**parts, "split_version": SPLIT_VERSION, "method": "group (qallegro.data.groups.group_split)",
            "block_fs": block_fs, "buffer_fs": buffer_fs, "ood_groups": ood_groups,
            "force_decorrelation_fs": {k: round(v, 3) for k, v in decorrelation.items()}, "counts": counts}


def frames_to_text(frames: list[Atoms]) -> str:
    from ase.io import write

    buf = io.StringIO()
    if frames:
        write(buf, frames, format="extxyz")
    return buf.getvalue()


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: unreadable JSON ({err}); delete the folder's state to start over") from err


def _settings_record(settings: dict[str, Any], seed: int, labeler: Labeler, driver: Labeler) -> dict[str, Any]:
    return {"format": FORMAT, "settings": settings, "seed": seed, "labeler": labeler.settings(),
            "driver": driver.settings()}


def _explain_mismatch(old: dict[str, Any], new: dict[str, Any]) -> str:
    lines = []
    for key in ("format", "seed", "labeler", "driver", "settings"):
        if old.get(key) != new.get(key):
            lines.append(f"  {key}: existing {old.get(key)!r}\n  {' ' * len(key)}  requested {new.get(key)!r}")
    return "\n".join(lines)


def generate(scale: str = "quick", labeler: str | Labeler = "sevenn", seed: int = 0, out: str | Path | None = None,
             settings: dict[str, Any] | None = None, driver: Labeler | None = None, retry_failed: bool = False,
             progress: bool = True, labeler_options: dict[str, Any] | None = None, threads: int = 1) -> dict[str, Any]:
    """Generate (or resume) a Cu-Li dataset; return its provenance dict.

    `settings` replaces the scale's preset (tests use tiny ones); `driver` (default SevenNet-0) runs relaxations
    and MD; when `labeler` is the driver's kind the driver's own energies and forces are the labels, otherwise the
    chosen frames are relabelled (GPAW: one subprocess per frame). `retry_failed` re-runs tasks with failures.
    `threads`: torch threads while it runs, whatever the caller set (the provenance's environment records it):
    SevenNet-0's float32 sums change in their last bits with the thread count (up to 3e-7 eV/Å between 1 and 2
    threads, measured) and melt-quench MD amplifies that into other trajectories, so the same settings and seed
    give the same bytes only at the same thread count.
    """
    from qallegro.scales import settings as scale_settings

    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    settings = settings if settings is not None else scale_settings("culi", scale)
    lab = get_labeler(labeler, **(labeler_options or {}))
    lab.check()
    drv = driver or (lab if isinstance(lab, SevenNetLabeler) else SevenNetLabeler())
    drv.check()
    if not hasattr(drv, "calculator"):
        raise ValueError(f"driver {drv.name!r} has no ASE calculator to run relaxations and MD")
    out = Path(out) if out is not None else default_dir(scale, lab.name)
    if lab.name == "gpaw" and getattr(lab, "workdir", None) is None:
        lab.workdir = out / "work"  # type: ignore[attr-defined]
    out.mkdir(parents=True, exist_ok=True)
    if not (out / ".gitignore").exists():
        atomic_write_text(out / ".gitignore", GITIGNORE)
    log = get_logger("qallegro.culi", out / "generate.log")
    record = _settings_record(settings, seed, lab, drv)
    digest = config_hash(record)

    plan_path, state_path = out / "plan.json", out / "state.json"
    if plan_path.exists():
        saved = _load_json(plan_path)
        if saved.get("settings_hash") != digest:
            raise SettingsMismatch(
                f"{out} holds a dataset made with other settings; refusing to append (one dataset never mixes "
                f"labellers, cutoffs or recipes). Differences:\n{_explain_mismatch(saved.get('record', {}), record)}\n"
                "Use another --out folder, or delete this one to start over.")
        tasks = [Task(**t) for t in saved["tasks"]]
        builder = Builder(settings)
    else:
        builder = Builder(settings)
        t0 = time.perf_counter()
        tasks = make_plan(settings, seed, builder)
        atomic_write_json(plan_path, {"settings_hash": digest, "record": record, "tasks": [asdict(t) for t in tasks],
                                      "planning_s": round(time.perf_counter() - t0, 2)})
        log.info("planned %d tasks (%d frames) in %s", len(tasks), sum(t.n_frames for t in tasks), out)
    state = _load_json(state_path) if state_path.exists() else {"settings_hash": digest, "done": {}}
    done: dict[str, Any] = state["done"]

    todo = [t for t in tasks if str(t.index) not in done or (retry_failed and done[str(t.index)]["failures"])]
    if not todo and (finished := _finished(out, digest)) is not None:
        return finished  # the generation's provenance (its commit and environment), not this re-check's
    with torch_threads(threads):
        from tqdm.auto import tqdm

        bar = tqdm(total=sum(t.n_frames for t in tasks), initial=sum(d["n_frames"] for d in done.values()),
                   unit="frame", desc=f"culi {scale}", disable=not progress)
        for task in todo:
            t0 = time.perf_counter()
            ckpt = out / "work" / f"{task.index:05d}.npz"
            shown = [0]

            def tick(shown: list[int] = shown) -> None:
                shown[0] += 1
                bar.update(1)

            frames, failures = run_task(task, builder, drv, lab, settings, seed, checkpoint=ckpt, on_frame=tick)
            part = out / "parts" / f"{task.index:05d}.extxyz"
            atomic_write_text(part, frames_to_text(frames))
            done[str(task.index)] = {"id": task.id, "category": task.category, "n_frames": len(frames),
                                     "failures": failures, "seconds": round(time.perf_counter() - t0, 3),
                                     "n_atoms": task.n_atoms}
            atomic_write_json(state_path, state)
            ckpt.unlink(missing_ok=True)
            bar.update(len(frames) - shown[0])
            for f in failures:
                log.warning("failure in %s: %s", task.id, f)
            log.info("task %d/%d %s: %d frames in %.1f s", task.index + 1, len(tasks), task.id, len(frames),
                     done[str(task.index)]["seconds"])
        bar.close()
        return finalize(out, tasks, state, record, lab, drv, scale, log)


def _finished(out: Path, digest: str) -> dict[str, Any] | None:
    """The provenance of a finished dataset in `out` when it was made with settings `digest` and its files still
    match their recorded hashes, else None (finalize again)."""
    path = out / PROVENANCE_FILE
    if not path.exists():
        return None
    prov = _load_json(path)
    files = prov.get("files") or {}
    if prov.get("settings_hash") != digest or set(files) != {DATASET_FILE, SPLITS_FILE}:
        return None
    if any(not (out / f).exists() or sha256_file(out / f) != sha for f, sha in files.items()):
        return None
    return prov


def finalize(out: Path, tasks: list[Task], state: dict[str, Any], record: dict[str, Any], lab: Labeler,
             drv: Labeler, scale: str, log) -> dict[str, Any]:
    """Merge the parts into culi.extxyz, write splits.json and provenance.json (all atomically)."""
    from qallegro.paper import values
    from qallegro.utils import environment_record

    done = state["done"]
    merged = "".join((out / "parts" / f"{t.index:05d}.extxyz").read_text() for t in tasks)
    atomic_write_text(out / DATASET_FILE, merged)
    n = sum(done[str(t.index)]["n_frames"] for t in tasks)
    fractions = record["settings"]["splits"]
    if fractions.get("method", "random") == "group":
        splits = split_by_group(out / DATASET_FILE, fractions, record["seed"],
                                float(record["settings"]["md"]["timestep_fs"]))
    else:
        rng = np.random.default_rng([record["seed"], 7])
        perm = rng.permutation(n)
        n_train, n_val = round(fractions["train"] * n), round(fractions["val"] * n)
        splits = {"train": sorted(perm[:n_train].tolist()), "val": sorted(perm[n_train:n_train + n_val].tolist()),
                  "test": sorted(perm[n_train + n_val:].tolist()), "split_version": 1,
                  "method": "numpy.random.default_rng([seed, 7]).permutation(n_frames)"}
    dataset_sha = sha256_file(out / DATASET_FILE)
    atomic_write_json(out / SPLITS_FILE, {**splits, "seed": record["seed"], "fractions": fractions, "n_frames": n,
                                          "dataset_sha256": dataset_sha})
    counts = {c: sum(d["n_frames"] for d in done.values() if d["category"] == c) for c in CATEGORIES}
    structures = {c: sum(1 for t in tasks if t.category == c) for c in CATEGORIES}
    seconds = {c: round(sum(d["seconds"] for d in done.values() if d["category"] == c), 2) for c in CATEGORIES}
    failures = [f for t in tasks for f in done[str(t.index)]["failures"]]
    paper = values()["culi_dataset"]
    prov = {
        "dataset": "culi", "folder": str(out), "scale": scale, "seed": record["seed"], "n_frames": n,
        "counts": counts,
        "structures": structures, "targets": record["settings"]["frames"],
        "paper_counts": {"slab": 2 * paper["slabs_per_element"], "surface_vacancy": paper["surface_vacancies"],
                         "supercell_vacancy": paper["supercell_vacancies"], "adatom": paper["adatoms"],
                         "md": paper["md_frames"]},
        "labeler": lab.settings(), "labeler_versions": lab.versions(), "driver": drv.settings(),
        "driver_versions": drv.versions(), "settings": record["settings"], "settings_hash": state["settings_hash"],
        "failures": failures, "n_failures": len(failures), "seconds_per_category": seconds,
        "labelling_seconds": round(sum(seconds.values()), 2),
        "frames_per_second": round(n / max(sum(seconds.values()), 1e-9), 4),
        "md": {"thermostat": "ASE Langevin (NVT)", "steps": schedule(record["settings"]).n_steps},
        "files": {DATASET_FILE: dataset_sha, SPLITS_FILE: sha256_file(out / SPLITS_FILE)},
        "split": {k: v for k, v in splits.items() if k not in ("train", "val", "test", "ood", "dropped")}
                 | {f"n_{k}": len(splits[k]) for k in ("train", "val", "test", "ood", "dropped") if k in splits},
        "environment": environment_record(),
    }
    atomic_write_json(out / PROVENANCE_FILE, prov)
    log.info("dataset %s: %d frames %s, %d failures", out / DATASET_FILE, n, counts, len(failures))
    return prov

