"""The benchmark results the book shows (`benchmarks/results/*.json`), read as they are: whatever files exist, each
with its date and hardware, never a number that is not in a file.

Three kinds are recognised by their contents: the speed race against the maintainers' Allegro
(`benchmarks/race_allegro.py --json`: `results` maps "size/part" to timings per mode), the accuracy benchmark
(`benchmarks/bench_accuracy.py`: `test_f_mae_meV_per_A` ...) and paper scale on a GPU
(`benchmarks/bench_gpu_paper.py`: `"benchmark": "gpu-paper"`). Anything else is listed as "other".
"""

from __future__ import annotations

import datetime as _dt
import json
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


ACCURACY_FIELDS = {
    "test_f_mae_meV_per_A": "test force MAE (meV/Å)", "test_f_rmse_meV_per_A": "test force RMSE (meV/Å)",
    "test_etot_mae_meV": "test energy MAE (meV per molecule)", "test_e_mae_meV_per_atom": "test energy MAE (meV/atom)",
    "val_f_mae_at_1500s_meV_per_A": "validation force MAE at 1500 s (meV/Å)", "budget_s": "training budget (s)",
    "wall_s": "training time (s)", "epochs": "epochs", "steps": "optimizer steps", "n_parameters": "parameters",
    "threads": "torch threads", "target_meV_per_A": "target (meV/Å)", "meets_target": "target met",
}


def accuracy_table(data: dict[str, Any]) -> pd.DataFrame:
    """The accuracy benchmark's numbers that are present, with readable names, and its ratios to the anchor."""
    rows = [{"quantity": label, "value": data[key]} for key, label in ACCURACY_FIELDS.items() if key in data]
    for name, ratios in (data.get("ratios_vs_anchor") or {}).items():
        for key, value in ratios.items():
            if value is not None:
                rows.append({"quantity": f"ours / {name}: {key}", "value": value})
    return pd.DataFrame(rows, dtype=object).set_index("quantity") if rows else pd.DataFrame()


HEADLINE_KEYS = ("ratio", "speedup", "speed-up", "target", "agree", "mean_s", "max_s")


def headline_table(data: Any, max_depth: int = 3) -> pd.DataFrame:
    """The headline numbers of any other benchmark file: every number or boolean (to `max_depth` levels of nested
    dicts) whose key path names a ratio, speed-up, target, agreement or a mean/max time, as "path" -> value, in
    file order."""
    rows: list[dict[str, Any]] = []

    def walk(node: Any, path: list[str]) -> None:
        if isinstance(node, dict) and len(path) < max_depth:
            for key, value in node.items():
                if key not in ("env", "environment"):
                    walk(value, [*path, str(key)])
        elif isinstance(node, (bool, int, float)) and any(k in p.lower() for p in path for k in HEADLINE_KEYS):
            rows.append({"quantity": " / ".join(path), "value": node})

    walk(data, [])
    return pd.DataFrame(rows, dtype=object).set_index("quantity") if rows else pd.DataFrame()
