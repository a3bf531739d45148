"""The benchmark results the book shows (`benchmarks/results/*.json`), read as they are: whatever files exist, each
with its date and hardware, never a number that is not in a file or computed from one (the accuracy race partners'
errors from their recorded ratios, a factor from a recorded log-ratio).

Three kinds are recognised by their contents: the speed race against the maintainers' Allegro
(`benchmarks/race_allegro.py --json`: `results` maps "size/part" to timings per mode), the accuracy benchmark
(`benchmarks/bench_accuracy.py`: `test_f_mae_meV_per_A` ...) and paper scale on a GPU
(`benchmarks/bench_gpu_paper.py`: `"benchmark": "gpu-paper"`). Anything else is listed as "other": a known file name
(`OTHER_BENCHMARKS`) gives it a title, a line on what it measures and readable labels of its numbers.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import subprocess
from pathlib import Path
from typing import Any

import pandas as pd

from qallegro.pipeline.page import describe_hardware


def file_date(path: Path) -> str:
    """The date of the last commit that touched `path` (YYYY-MM-DD), else its modification date, marked so."""
    path = Path(path)
    try:
        out = subprocess.run(["git", "-C", str(path.parent), "log", "-1", "--format=%cs", "--", path.name],
                             capture_output=True, text=True, check=False, timeout=30).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        out = ""
    if out:
        return out
    day = _dt.datetime.fromtimestamp(path.stat().st_mtime, _dt.UTC).strftime("%Y-%m-%d")
    return f"{day} (file date, not committed)"


def kind_of(data: Any) -> str:
    """"race", "accuracy", "gpu" or "other"."""
    if isinstance(data, dict) and isinstance(data.get("results"), dict) and any(
            isinstance(v, dict) and any(isinstance(m, dict) and "median_ms" in m for m in v.values())
            for v in data["results"].values()):
        return "race"
    if isinstance(data, dict) and "test_f_mae_meV_per_A" in data:
        return "accuracy"
    if isinstance(data, dict) and data.get("benchmark") == "gpu-paper":
        return "gpu"
    return "other"


def load_results(folder: Path) -> list[dict[str, Any]]:
    """Every `*.json` of `folder`, sorted by name: file, kind, date, hardware (a line), threads, data; a file
    that is not valid JSON is listed with kind "unreadable" and the error."""
    out = []
    for path in sorted(Path(folder).glob("*.json")):
        entry: dict[str, Any] = {"file": path.name, "date": file_date(path)}
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            out.append({**entry, "kind": "unreadable", "error": str(err), "data": None, "hardware": "",
                        "threads": None})
            continue
        env = data.get("env") or data.get("environment") or {} if isinstance(data, dict) else {}
        hw = env.get("hardware") if isinstance(env, dict) else None
        out.append({**entry, "kind": kind_of(data), "data": data,
                    "hardware": describe_hardware(hw) if hw else "not recorded in the file",
                    "threads": data.get("threads") if isinstance(data, dict) else None})
    return out


def race_table(data: dict[str, Any]) -> pd.DataFrame:
    """One row per benchmark ("size/part"): the median time (ms) of every mode, and the speed-ups theirs/ours
    (eager vs eager, and best vs best over the eager and compiled modes; > 1: ours is faster). Where the race
    counted the matrix products (`_flops`), also their GFLOP, the time ours need at this core's measured GEMM rate,
    and the largest speed-up over their best that this arithmetic allows."""
    rows = []
    for bench, modes in data["results"].items():
        times = {m: float(v["median_ms"]) for m, v in modes.items() if not m.startswith("_") and "median_ms" in v}
        row: dict[str, Any] = {"benchmark": bench, **{f"{m} (ms)": t for m, t in times.items()}}
        ours = {m: t for m, t in times.items() if m.startswith("ours ") and "e3nn" not in m}
        theirs = {m: t for m, t in times.items() if m.startswith("theirs ")}
        if "ours eager" in times and "theirs eager" in times:
            row["speed-up, eager (theirs / ours)"] = times["theirs eager"] / times["ours eager"]
        if ours and theirs:
            row["speed-up, best (theirs / ours)"] = min(theirs.values()) / min(ours.values())
        flops = modes.get("_flops")
        if flops and theirs:  # our matrix products at this core's GEMM rate: the most any speed-up can be
            row["our matrix products (GFLOP)"] = float(flops["gflop_ours"])
            row["their matrix products (GFLOP)"] = float(flops["gflop_theirs"])
            row["our time at the GEMM rate (ms)"] = float(flops["ours_floor_ms"])
            row["largest speed-up possible"] = min(theirs.values()) / float(flops["ours_floor_ms"])
        rows.append(row)
    if not rows:
        return pd.DataFrame()
    df = pd.DataFrame(rows).set_index("benchmark")
    times = [c for c in df.columns if c.endswith("(ms)") and "GEMM" not in c]  # every mode's time first
    return df[times + [c for c in df.columns if c not in times]]


def gpu_table(data: dict[str, Any]) -> pd.DataFrame:
    """One row per run of `bench_gpu_paper.py`: the variant at the paper's best aspirin configuration, its training
    speed, the errors reached in the wall-clock budget, the inference objective, and the paper's budgets at that
    speed."""
    rows = []
    for r in data["rows"]:
        compiled = {k: v.get("total_s") for k, v in (r.get("inference_compiled") or {}).items()}
        rows.append({
            "variant": r["variant"] + (" (compiled training)" if r.get("compiled_training") else ""),
            "parameters": r["n_parameters"], "batch size": r["config"].get("batch_size"),
            "s per epoch": round(r["epoch_s"], 2), "training budget (s)": r.get("wall_budget_s", r["wall_s"]),
            "epochs": r["epochs"], "val F-MAE (meV/Å)": round(r["val_f_mae_meV_A"], 1),
            "test F-MAE (meV/Å)": round(r["test_f_mae_meV_A"], 1),
            f"inference, {r['n_test_structures']} test frames, eager (s)": round(r["inference_eager_s"], 3),
            "inference, compiled (s)": round(compiled["inductor"], 3) if compiled.get("inductor") else "failed",
            "epochs in the paper's per-trial budget": round(r["epochs_in_paper_trial_budget"], 1),
            f"final run of {r['paper_final_epochs']} epochs (h)": round(r["paper_final_training_h"], 1),
        })
    return pd.DataFrame(rows, dtype=object).set_index("variant") if rows else pd.DataFrame()


ACCURACY_FIELDS = {  # record key -> (label, the anchor's key in `ratios_vs_anchor`, if it has one)
    "test_f_mae_meV_per_A": ("test force MAE (meV/Å)", "test_f_mae"),
    "test_f_rmse_meV_per_A": ("test force RMSE (meV/Å)", None),
    "test_etot_mae_meV": ("test energy MAE (meV per molecule)", "test_etot_mae"),
    "test_e_mae_meV_per_atom": ("test energy MAE (meV/atom)", None),
    "val_f_mae_at_1500s_meV_per_A": ("validation force MAE at 1500 s of training (meV/Å)", "val_f_mae_at_1500s"),
    "budget_s": ("training budget (s)", None), "wall_s": ("training time (s)", None), "epochs": ("epochs", None),
    "steps": ("optimizer steps", None), "n_parameters": ("parameters", None), "threads": ("torch threads", None),
    "target_meV_per_A": ("this project's target: our test force MAE at most (meV/Å)", None),
    "meets_target": ("our test force MAE meets that target", None),
}
RATIO_LABELS = {"test_f_mae": "ours / theirs: test force MAE", "test_etot_mae": "ours / theirs: test energy MAE",
                "val_f_mae_at_1500s": "ours / theirs: validation force MAE at 1500 s"}
OURS = "ours"


def accuracy_table(data: dict[str, Any]) -> pd.DataFrame:
    """The accuracy benchmark side by side with its race partners ("anchors": the maintainers' Allegro measured
    with the same protocol): one row per quantity with a readable name and unit, a column "ours" and one per
    anchor of `ratios_vs_anchor` ("theirs: <anchor>"). The record stores the anchors as ratios ours / theirs;
    their values are ours divided by that ratio (the numbers `bench_accuracy.py` holds as `ANCHOR`), shown where
    a ratio exists; the ratios themselves follow as rows of their own. Quantities the record lacks are left out,
    unknown ratio keys are shown under a readable name."""
    anchors = {f"theirs: {name}": r for name, r in (data.get("ratios_vs_anchor") or {}).items()
               if isinstance(r, dict)}
    rows: list[dict[str, Any]] = []
    for key, (label, ratio_key) in ACCURACY_FIELDS.items():
        if key not in data:
            continue
        row: dict[str, Any] = {"quantity": label, OURS: data[key]}
        for name, ratios in anchors.items():
            ratio = ratios.get(ratio_key) if ratio_key else None
            ok = isinstance(data[key], (int, float)) and not isinstance(data[key], bool) and ratio
            row[name] = data[key] / ratio if ok else None
        rows.append(row)
    for key in dict.fromkeys([*RATIO_LABELS, *(k for r in anchors.values() for k in r)]):
        if any(r.get(key) is not None for r in anchors.values()):
            rows.append({"quantity": RATIO_LABELS.get(key, f"ours / theirs: {readable_key(key)}"), OURS: None,
                         **{name: r.get(key) for name, r in anchors.items()}})
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(rows, columns=["quantity", OURS, *anchors], dtype=object).set_index("quantity")


HEADLINE_KEYS = ("ratio", "speedup", "speed-up", "target", "agree", "mean_s", "max_s", "spearman")
UNIT_SUFFIXES = (("_meV_per_A", "(meV/Å)"), ("_per_h", "per hour"), ("_ms", "(ms)"), ("_s", "(s)"))


def readable_key(key: Any) -> str:
    """A record key as words: underscores as spaces, a unit suffix as a unit ("max_s" -> "max (s)")."""
    key = str(key)
    for suffix, unit in UNIT_SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return f"{key[:-len(suffix)].replace('_', ' ')} {unit}"
    return key.replace("_", " ")


def _exp(x: float) -> float:
    return math.exp(x)


# The other benchmark files, keyed by file name (without .json): a title, what the benchmark measures (one line,
# from its script in benchmarks/ and benchmarks/README.md), the script, and labels of the record's keys (a path
# of keys or list indices -> a label, or (label, function) where the shown value is function(recorded value)).
# A label may name fields of the dict that holds the value ("{depth}"). Rows follow this order; numbers of the
# record that no label names but that read as headline numbers (`HEADLINE_KEYS`) follow under readable names.
OTHER_BENCHMARKS: dict[str, dict[str, Any]] = {
    "hpo-overhead": {
        "title": "The optimisers' overhead per proposal",
        "script": "bench_hpo_overhead.py",
        "what": "Seconds a sampler takes to propose one configuration of the Allegro+MLP search space when 200 "
                "trials are finished (12 proposals, one thread; SAMO-COBRA computes its whole batch at a "
                "generation's first proposal). The project's targets are for the worst proposal; random search and "
                "Optuna's GP sampler are measured for comparison and have none.",
        "rows": {
            **{path: label for name, title in (("tpe", "TPE"), ("nsga2", "NSGA-II"), ("samo-cobra", "SAMO-COBRA"),
                                               ("random", "random search"), ("gp", "Optuna's GP sampler"))
               for path, label in ((("results", name, "mean_s"), f"{title}: mean per proposal (s)"),
                                   (("results", name, "max_s"), f"{title}: worst proposal (s)"),
                                   (("targets", name), f"{title}: target for the worst proposal (s)"))},
        },
    },
    "hpo-workers": {
        "title": "Two HPO workers against one",
        "script": "bench_hpo_workers.py",
        "what": "Trials per hour of two worker processes (one torch thread each) sharing one study on this 2-core "
                "machine, divided by one worker's, on the same configurations; median of alternating rounds. "
                "The project's target: at least 1.7x for real trials. The two references bound it: sleeping trials "
                "show what the study machinery allows, a pure-Python load what the two cores gave at that moment.",
        "rows": {
            ("median_ratio", "real"): "real smoke-scale trials: two workers / one (×)",
            ("median_ratio", "sleep"): "sleeping trials, the study machinery's limit: two workers / one (×)",
            ("median_ratio", "cpu"): "pure-Python CPU load, the cores' limit: two workers / one (×)",
            ("trials",): "trials per set-up and round",
            ("epochs",): "epochs per real trial",
        },
    },
    **{stem: {
        "title": f"MD steps per second with a neighbour-list skin ({atoms} atoms)",
        "script": "bench_md_skin.py",
        "what": f"NVE molecular dynamics of a {atoms}-atom Cu-Li cell through `qallegro.Calculator` (one thread, "
                "CPU time, interleaved blocks of steps): the neighbour list rebuilt at every step (skin 0) against "
                "pairs kept within a 1 Å skin, for the eager model and its exported `.pt2` archive. Speeds are "
                "relative to the eager model at skin 0 (above 1: faster).",
        "rows": {
            **{path: label for name, title in (("eager, skin 0", "eager model, skin 0"),
                                               ("eager, skin 1", "eager model, 1 Å skin"),
                                               ("exported, skin 1", "exported archive, 1 Å skin"))
               for path, label in ((("steps_per_s", name), f"{title}: MD steps per second"),
                                   (("ratio", name), f"{title}: speed / eager model's at skin 0 (×)"),
                                   (("neighbour_list_builds", name), f"{title}: neighbour-list builds in the run"))},
        },
    } for stem, atoms in (("md-skin", 108), ("md-skin-864", 864))},
    "qdi-layer": {
        "title": "The QDI layer against PennyLane's TorchLayer",
        "script": "bench_qdi_layer.py",
        "what": "Forward and backward pass (gradients with respect to inputs and weights, as in force training) of "
                "the 4-qubit circuit on 100,000 edges, one thread, float32: our batched torch state vector against "
                "PennyLane's `TorchLayer` on `default.qubit`. Speed-up = TorchLayer's time / ours. The "
                "project's target: at least 10x.",
        "rows": {
            **{path: label for k in (0, 1)
               for path, label in ((("cases", k, "ours_s"), "depth {depth} ({n_weights} weights): ours (s)"),
                                   (("cases", k, "pennylane_s"), "depth {depth}: TorchLayer (s)"),
                                   (("cases", k, "speedup"), "depth {depth}: speed-up (×)"))},
            ("speedup",): "speed-up, the smallest over the depths (×)",
            ("agree",): "same outputs and gradients as TorchLayer (relative difference at most 1e-4)",
        },
    },
    "timing-retest": {
        "title": "Test-retest agreement of the inference-time objective",
        "script": "bench_timing_retest.py",
        "what": "Eight architectures of the search space timed twice, in two separate runs, while other jobs ran "
                "(the load average below): with the campaign's protocol (200 benzene test structures, one thread, "
                "CPU time, warm-up, median of 5 interleaved rounds: how the overnight studies time their trials) and "
                "with the old quick protocol it replaced (wall clock, 30 structures, median of 3, one model after "
                "the other). A protocol is repeatable when the rank correlation of the two runs is near 1 (target "
                "for the campaign's: at least 0.95) and a model's two times are close; the file records the "
                "largest |ln(time 1 / time 2)| over the models, shown here as the factor it stands for (1: equal "
                "times). Only the campaign protocol times the studies' trials; the old protocol is shown for "
                "comparison, and its large factor is why it was replaced.",
        "rows": {
            ("spearman_campaign",): "campaign protocol: rank correlation of the two runs (Spearman)",
            ("max_log_ratio_campaign",): ("campaign protocol: largest ratio of a model's two times (×)", _exp),
            ("spearman_quick",): "old quick protocol: rank correlation of the two runs (Spearman)",
            ("max_log_ratio_quick",): ("old quick protocol: largest ratio of a model's two times (×)", _exp),
            ("spearman_flops_vs_time",): "matrix-product FLOPs against the campaign protocol's times (Spearman)",
            ("load_average_1_5_15", 0): "load average of the 2 cores at the end (last minute)",
        },
    },
    "train-step-variants": {
        "title": "The training step of the three variants",
        "script": "bench_train_step_variants.py",
        "what": "One training step (forward with forces, energy and force loss, backward, Adam) on 5 aspirin frames "
                "with the quick preset's Allegro body and each head, median per-process CPU time of interleaved "
                "steps, one thread. The project's target: Allegro+QDI at most 1.3x Allegro+MLP.",
        "rows": {
            ("ratios", "QDI / MLP, defaults"): "Allegro+QDI / Allegro+MLP, each head's defaults (×)",
            ("ratios", "QDI / MLP, same k=4"): "Allegro+QDI / Allegro+MLP, the same head input width k = 4 (×)",
            ("ratios", "Allegro / MLP, defaults"): "Allegro / Allegro+MLP (×)",
            ("results", "allegro (defaults)", "median_ms"): "Allegro: median step (ms)",
            ("results", "mlp (defaults)", "median_ms"):
                "Allegro+MLP, default head (k 16, MLP [32, 32]): median step (ms)",
            ("results", "qdi (defaults)", "median_ms"): "Allegro+QDI, default head (k 4, depth 1): median step (ms)",
            ("results", "mlp (same k=4)", "median_ms"): "Allegro+MLP, k 4 (MLP [16, 16]): median step (ms)",
            ("results", "qdi (same k=4)", "median_ms"): "Allegro+QDI, k 4 (depth 1): median step (ms)",
        },
    },
}
KIND_TITLES = {"race": "The speed race", "accuracy": "The accuracy race", "gpu": "Paper scale on one GPU",
               "unreadable": "Not valid JSON"}


def describe(entry: dict[str, Any]) -> dict[str, str]:
    """Title, one line on what it measures, and the script, of a `load_results` entry (a benchmark of
    `OTHER_BENCHMARKS` by its file name; the three known kinds by their kind; else the file name and that it is
    not described)."""
    stem = Path(entry["file"]).stem
    if entry.get("kind") == "other" and stem in OTHER_BENCHMARKS:
        known = OTHER_BENCHMARKS[stem]
        return {"title": known["title"], "what": known["what"], "script": known["script"]}
    if entry.get("kind") in KIND_TITLES:
        return {"title": KIND_TITLES[entry["kind"]], "what": "", "script": ""}
    return {"title": stem, "what": "Not described yet (add it to `qallegro.pipeline.benchmarks.OTHER_BENCHMARKS`); "
                                   "its headline numbers as recorded.", "script": ""}


def _lookup(data: Any, path: tuple) -> tuple[bool, Any, Any]:
    """(found, value, the dict or list that holds it) for a path of keys and list indices."""
    parent, node = None, data
    for key in path:
        if isinstance(node, dict) and key in node:
            parent, node = node, node[key]
        elif isinstance(node, list) and isinstance(key, int) and -len(node) <= key < len(node):
            parent, node = node, node[key]
        else:
            return False, None, None
    return True, node, parent


def headline_table(data: Any, file: str | None = None, max_depth: int = 3) -> pd.DataFrame:
    """The numbers of an "other" benchmark file as "quantity" -> value. For a file of `OTHER_BENCHMARKS` (by its
    name, `file`), its labelled keys first, in the mapping's order; then every number or boolean (to `max_depth`
    levels of nested dicts) whose key path names a ratio, speed-up, target, agreement, rank correlation or a
    mean/max time and that no label covers, in file order, under readable names ("results: gp: max (s)")."""
    labels = OTHER_BENCHMARKS.get(Path(file).stem, {}).get("rows", {}) if file else {}
    rows: list[dict[str, Any]] = []
    for path, spec in labels.items():
        found, value, parent = _lookup(data, path)
        if not found or not isinstance(value, (bool, int, float)):
            continue
        label, fn = spec if isinstance(spec, tuple) else (spec, None)
        try:
            label = label.format(**parent) if isinstance(parent, dict) else label
        except (KeyError, IndexError, ValueError):
            pass
        rows.append({"quantity": label, "value": fn(value) if fn else value})

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, dict) and len(path) < max_depth:
            for key, value in node.items():
                if key not in ("env", "environment"):
                    walk(value, [*path, str(key)])
        elif isinstance(node, (bool, int, float)) and tuple(path) not in labels and \
                any(k in p.lower() for p in path for k in HEADLINE_KEYS):
            rows.append({"quantity": ": ".join(readable_key(p) for p in path), "value": node})

    walk(data, [])
    return pd.DataFrame(rows, dtype=object).set_index("quantity") if rows else pd.DataFrame()
