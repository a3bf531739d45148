"""Every trial is a model: its config, learning curve, metrics and weights as Optuna artifacts.

A completed trial uploads the files of its training run (`ARTIFACT_FILES`, those that exist) to a file-system
artifact store beside the study (`<study folder>/artifacts/`, Optuna's `FileSystemArtifactStore`, which
`optuna-dashboard --artifact-dir` serves); the trial's user attr `artifacts` maps file names to artifact ids.
Workers on several machines need that folder on a shared file system.

`front(op)` lists the Pareto front with each point's error, time and model artifact (`qallegro hpo show`);
`pick(op, ...)` re-times the front models on this machine and exports the best one under a budget
(`qallegro pick`).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.artifacts import FileSystemArtifactStore, download_artifact, upload_artifact
from optuna.trial import TrialState

from qallegro.errors import HpoError
from qallegro.paths import local

ARTIFACT_FILES = ("config.yaml", "epochs.csv", "metrics.json", "model.pt")
# stated, not guessed from the extension (Python's table calls .pt "application/vnd.snesdev-page-table")
MIMETYPES = {"config.yaml": "application/yaml", "epochs.csv": "text/csv", "metrics.json": "application/json",
             "model.pt": "application/octet-stream"}
ATTR = "artifacts"


def artifact_dir(folder: str | Path) -> Path:
    """The artifact folder of a study folder."""
    return Path(folder) / "artifacts"


def artifact_store(folder: str | Path) -> FileSystemArtifactStore:
    path = artifact_dir(folder)
    path.mkdir(parents=True, exist_ok=True)
    return FileSystemArtifactStore(str(path))


def upload_trial_artifacts(trial: optuna.Trial, trial_dir: str | Path, folder: str | Path) -> dict[str, str]:
    """Upload the run files of `trial_dir` as artifacts of `trial`; record and return {file name: artifact id}."""
    store = artifact_store(folder)
    ids = {name: upload_artifact(artifact_store=store, file_path=str(Path(trial_dir) / name), study_or_trial=trial,
                                 mimetype=MIMETYPES[name])
           for name in ARTIFACT_FILES if (Path(trial_dir) / name).is_file()}
    trial.set_user_attr(ATTR, ids)
    return ids


def front(op: Any) -> list[dict[str, Any]]:
    """The complete trials on the Pareto front (error, time), fastest first: number, error, time_s, ms per
    structure, the model artifact id (None for trials without one) and whether its weights are on this machine
    (`present`: the artifact or the trial folder's model.pt; neither is committed)."""
    from qallegro.hpo.pareto import pareto_mask

    trials = [t for t in op.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
    if not trials:
        return []
    mask = pareto_mask(np.array([t.values for t in trials], dtype=float))
    rows = []
    for t, on_front in zip(trials, mask):
        if not on_front:
            continue
        n = t.user_attrs.get("inference_n_structures")
        rows.append({"number": t.number, "error": float(t.values[0]), "time_s": float(t.values[1]),
                     "ms_per_structure": 1000.0 * t.values[1] / n if n else None,
                     "model": (t.user_attrs.get(ATTR) or {}).get("model.pt"),
                     "trial_dir": t.user_attrs.get("trial_dir")})
        rows[-1]["present"] = has_model(op, rows[-1])
    return sorted(rows, key=lambda r: r["time_s"])


def _local_model(row: dict[str, Any]) -> Path | None:
    """The trial folder's model.pt (studies run before trials had artifacts), when it exists."""
    path = local(row["trial_dir"]) / "model.pt" if row.get("trial_dir") else None
    return path if path is not None and path.is_file() else None


def _artifact_present(op: Any, row: dict[str, Any]) -> bool:
    """Whether the front row's model artifact is in the study's artifact folder (it is not committed)."""
    return bool(row["model"]) and (artifact_dir(op.folder) / row["model"]).is_file()


def has_model(op: Any, row: dict[str, Any]) -> bool:
    """Whether the front row's weights are here: its model artifact or its trial folder's model.pt."""
    return _artifact_present(op, row) or _local_model(row) is not None


def _model_file(op: Any, row: dict[str, Any], where: Path) -> Path:
    """The front row's weights: its model artifact (downloaded into `where`), else its trial folder's model.pt."""
    if not _artifact_present(op, row):
        local = _local_model(row)
        if local is None:
            raise HpoError(f"study {op.name}: the model of trial {row['number']} is not present (no artifact in "
                           f"{artifact_dir(op.folder)}, no model.pt in its trial folder)")
        return local
    path = where / f"{row['model']}.pt"
    download_artifact(artifact_store=artifact_store(op.folder), file_path=str(path), artifact_id=row["model"])
    return path


def retime(op: Any, row: dict[str, Any], threads: int = 1) -> float:
    """Inference time of a front model on this machine, ms per structure, as the study measured it (its test
    structures, batch size, repeats)."""
    from qallegro.hpo.objective import measure_inference, trial_config
    from qallegro.models import load_model

    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(_model_file(op, row, Path(tmp))).eval()
    trial = op.study.trials[row["number"]]
    cfg = trial_config(op.spec.dataset, op.spec.variant, op.spec.scale, trial.user_attrs.get("config") or {},
                       op.settings)
    timing = measure_inference(model, op.spec.dataset, op.settings, threads, cfg["dataset_options"])
    return 1000.0 * timing["total_s"] / timing["n_structures"]


def pick(op: Any, output: str | Path, max_time_ms: float | None = None, max_error: float | None = None,
         threads: int = 1) -> dict[str, Any]:
    """The front model that fits the budget, re-timed here, exported to `output` (`qallegro export` format).

    `max_time_ms`: the lowest-error model whose re-timed inference takes at most that many ms per structure.
    `max_error`: the fastest (re-timed) model whose validation error is at most that. Front trials whose weights
    are not here (artifacts are not committed) are skipped and listed in the result's `skipped`. Raises
    HpoError when no front model is here or none fits, naming the missing trials or the closest model."""
    from qallegro.deploy.export import export_model
    from qallegro.models import load_model

    if (max_time_ms is None) == (max_error is None):
        raise HpoError("give exactly one budget: --max-time-ms or --max-error")
    budget = max_time_ms if max_error is None else max_error
    if not budget > 0:
        raise HpoError(f"{'--max-time-ms' if max_error is None else '--max-error'} {budget:g}: must be positive")
    points = front(op)
    rows = [r for r in points if r["present"]]
    skipped = [r["number"] for r in points if r["model"] and not r["present"]]
    if not rows and skipped:
        raise HpoError(f"study {op.name}: the model artifacts of its front trial(s) {_numbers(skipped)} are not "
                       f"present in {artifact_dir(op.folder)} (artifacts are not committed: run the study here or "
                       "copy its artifacts/ folder)")
    if not rows:
        raise HpoError(f"study {op.name}: no front trial has a model (artifact or trial folder model.pt)")
    if max_error is not None:
        fits = [r for r in rows if r["error"] <= max_error]
        if not fits:
            best = min(rows, key=lambda r: r["error"])
            raise HpoError(f"study {op.name}: no front model has error <= {max_error:g} "
                             f"(lowest: {best['error']:.5g}, trial {best['number']})")
        for r in fits:
            r["ms_here"] = retime(op, r, threads)
        chosen = min(fits, key=lambda r: r["ms_here"])
    else:
        chosen = None
        for r in sorted(rows, key=lambda r: r["error"]):  # best error first; stop at the first that fits
            r["ms_here"] = retime(op, r, threads)
            if r["ms_here"] <= max_time_ms:
                chosen = r
                break
        if chosen is None:
            fastest = min(rows, key=lambda r: r["ms_here"])
            raise HpoError(f"study {op.name}: no front model runs in <= {max_time_ms:g} ms per structure here "
                             f"(fastest: {fastest['ms_here']:.3g} ms, trial {fastest['number']})")
    with tempfile.TemporaryDirectory() as tmp:
        model = load_model(_model_file(op, chosen, Path(tmp))).eval()
    prov = {"study": op.name, "trial": chosen["number"], "error": chosen["error"],
            "ms_per_structure_here": chosen["ms_here"], "config": op.study.trials[chosen["number"]].user_attrs.get(
                "config")}
    chosen["exported"] = str(export_model(model, output, prov))
    chosen["skipped"] = skipped
    return chosen


def _numbers(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers))
