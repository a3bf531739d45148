"""Results of a study: trials table, Pareto front, hypervolume history, chosen configurations, plots.

Everything is written atomically under `results/<scale>/hpo/<study>/`:
`trials.csv`, `pareto.csv`, `hypervolume.csv`, `chosen.json`, `pareto.png`, `hypervolume.png`.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from qallegro.errors import HpoError
from qallegro.hpo.objective import objective_names
from qallegro.hpo.pareto import hypervolume_history, knee_point, pareto_mask, reference_point
from qallegro.hpo.space import SearchSpace
from qallegro.utils import atomic_write_bytes, atomic_write_json, atomic_write_text


def trials_frame(study, space: SearchSpace, dataset: str) -> pd.DataFrame:
    """One row per trial: number, state, the two objectives, the parameters (widths, not exponents), the trial
    folder, warm start and retry information, timings; plus `pareto` (on the front of complete trials)."""
    err_name, time_name = objective_names(dataset)
    rows = []
    for t in study.get_trials(deepcopy=False):
        vals = t.values if t.values is not None else [np.nan, np.nan]
        row: dict[str, Any] = {
            "number": t.number, "state": t.state.name, err_name: vals[0], time_name: vals[1],
            **space.values(t.params),
            "trial_dir": t.user_attrs.get("trial_dir"), "warm_start": t.user_attrs.get("warm_start"),
            "retry_of": t.system_attrs.get("failed_trial"), "interrupted": bool(t.user_attrs.get("interrupted")),
            "error": t.user_attrs.get("error"), "worker": t.user_attrs.get("worker"),
            "datetime_start": t.datetime_start, "datetime_complete": t.datetime_complete,
            "duration_s": t.duration.total_seconds() if t.duration is not None else np.nan,
        }
        for key in ("val_f_mae", "val_e_mae", "epochs", "train_wall_s", "inference_per_atom_s", "run_dir"):
            if key in t.user_attrs:
                row[key] = t.user_attrs[key]
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    complete = df["state"] == "COMPLETE"
    df["pareto"] = False
    if complete.any():
        pts = df.loc[complete, [err_name, time_name]].to_numpy(float)
        df.loc[complete, "pareto"] = pareto_mask(pts)
    return df


def hypervolume_frame(df: pd.DataFrame, dataset: str, reference: np.ndarray | None = None) -> pd.DataFrame:
    """Hypervolume of the complete trials, in order of completion: columns `n_complete`, `number`,
    `hypervolume`; the reference point is `reference` or 10 % beyond the worst complete values."""
    names = list(objective_names(dataset))
    done = df[df["state"] == "COMPLETE"].sort_values(["datetime_complete", "number"])
    pts = done[names].to_numpy(float)
    ref = reference_point(pts) if reference is None else np.asarray(reference, float)
    hv = hypervolume_history(pts, ref) if len(pts) else np.zeros(0)
    out = pd.DataFrame({"n_complete": np.arange(1, len(pts) + 1), "number": done["number"].to_numpy(),
                        "hypervolume": hv})
    out.attrs["reference"] = ref.tolist()
    out.attrs["reference_units"] = ["eV/atom" if names[0] == "val_e_mae" else "eV/Å", "s"]
    return out


def choose(df: pd.DataFrame, space: SearchSpace, dataset: str) -> dict[str, Any]:
    """The chosen configurations: `lowest_error` (the paper's choice, NOTES §5.4) and `knee` of the front."""
    names = list(objective_names(dataset))
    front = df[df["pareto"]].sort_values(names)
    if front.empty:
        raise HpoError("no complete trial: nothing to choose")
    out: dict[str, Any] = {}
    for label, row in (("lowest_error", front.iloc[0]),
                       ("knee", front.iloc[knee_point(front[names].to_numpy(float))])):
        params = {p.name: _plain(row[p.name]) for p in space.params if p.name in row}
        raw, _ = space.raw_from_values(params)
        out[label] = {"number": int(row["number"]), names[0]: float(row[names[0]]), names[1]: float(row[names[1]]),
                      "params": params, "config": space.overrides(raw), "trial_dir": row.get("trial_dir")}
    return out


def _plain(v: Any) -> Any:
    return v.item() if hasattr(v, "item") else v


def counts(study) -> dict[str, int]:
    """Number of trials per state name (of an `optuna.Study`)."""
    from optuna.trial import TrialState

    out = {s.name: 0 for s in TrialState}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] += 1
    return out


def write_results(op, plots: bool = True) -> dict[str, Path]:
    """Write the study's results (see the module docstring); returns the written paths."""
    folder: Path = op.folder
    folder.mkdir(parents=True, exist_ok=True)
    ds = op.spec.dataset
    df = trials_frame(op.study, op.space, ds)
    paths: dict[str, Path] = {}
    paths["trials"] = atomic_write_text(folder / "trials.csv", df.to_csv(index=False))
    if df.empty or not (df["state"] == "COMPLETE").any():
        return paths
    names = list(objective_names(ds))
    front = df[df["pareto"]].sort_values(names)
    paths["pareto"] = atomic_write_text(folder / "pareto.csv", front.to_csv(index=False))
    hv = hypervolume_frame(df, ds)
    paths["hypervolume"] = atomic_write_text(folder / "hypervolume.csv", hv.to_csv(index=False))
    chosen = choose(df, op.space, ds)
    summary = {"study": op.name, "dataset": ds, "variant": op.spec.variant, "sampler": op.spec.sampler,
               "scale": op.spec.scale, "seed": op.spec.seed, "target": op.target, "states": counts(op.study),
               "objectives": names, "reference_point": hv.attrs["reference"],
               "hypervolume": float(hv["hypervolume"].iloc[-1]), "chosen": chosen,
               "warm_start_notes": op.study.user_attrs.get("warm_start_notes", [])}
    paths["chosen"] = atomic_write_json(folder / "chosen.json", summary)
    if plots:
        from qallegro.hpo import plots as hp

        fig = hp.plot_pareto(df, ds, op.spec.variant, title=op.name)
        paths["pareto_png"] = save_figure(fig, folder / "pareto.png")
        fig = hp.plot_hypervolume(hv, title=op.name)
        paths["hypervolume_png"] = save_figure(fig, folder / "hypervolume.png")
    return paths


def save_figure(fig, path: Path, dpi: int = 120) -> Path:
    """Save a matplotlib figure as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
