"""Final training of chosen configurations, and the paper's Cu-Li -> other datasets QDI transfer.

`final_train` retrains a study's chosen configuration (lowest error, as the paper; or the knee point) at the
scale's full training budget (`final_overrides`, default: the training preset itself) and records what Tables 4-5
(validation force and energy MAE) and Figs. 5-6 (learning curves: `epochs.csv` of the run) need, plus the
inference time of the final model. `transfer_train` combines the QDI-specific parameters of the best Cu-Li
Allegro+QDI trial with the Allegro parameters of another dataset's Allegro study, as the paper did for aspirin,
benzene and QM9 ("this transfer likely represents a lower bound on Allegro+QDI performance").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from qallegro.errors import HpoError
from qallegro.hpo import space as space_mod
from qallegro.hpo.objective import measure_inference, objective_names, trial_config
from qallegro.hpo.records import FinalRecord, HpoSettings
from qallegro.hpo.report import choose, trials_frame
from qallegro.utils import atomic_write_json

CHOICES = ("lowest_error", "knee")


def chosen_config(op, choice: str = "lowest_error") -> dict[str, Any]:
    """The chosen entry (`report.choose`) of study `op`: number, objectives, params, config."""
    if choice not in CHOICES:
        raise HpoError(f"unknown choice {choice!r}; choose one of {CHOICES}")
    df = trials_frame(op.study, op.space, op.spec.dataset)
    if df.empty or not (df["state"] == "COMPLETE").any():
        raise HpoError(f"study {op.name!r} has no complete trial yet")
    return choose(df, op.space, op.spec.dataset)[choice]


def _train_and_record(dataset: str, variant: str, scale: str, overrides: dict[str, Any], settings: HpoSettings,
                      run_dir: Path, summary: Path, record: dict[str, Any], threads: int | None,
                      progress: bool) -> FinalRecord:
    from qallegro.training import load_run, train

    cfg = trial_config(dataset, variant, scale, overrides, settings, threads, final=True)
    result = train(cfg, run_dir=run_dir, resume=True, progress=progress)
    model = load_run(run_dir)
    timing = measure_inference(model, dataset, settings, int(cfg["threads"] or 1), cfg["dataset_options"])
    out = FinalRecord.from_json(
        {**record, "dataset": dataset, "variant": variant, "scale": scale, "config": overrides,
         "run_dir": str(run_dir), "epochs_csv": str(run_dir / "epochs.csv"), "val_f_mae": result.val_f_mae,
         "val_e_mae": result.val_e_mae, "val": result.val, "test": result.test, "epochs": result.epochs,
         "wall_s": result.wall_s, "inference_total_s": timing["total_s"],
         "inference_n_structures": timing["n_structures"], "objectives": list(objective_names(dataset))},
        str(summary))
    atomic_write_json(summary, out.to_json())
    return out


def final_train(op, choice: str = "lowest_error", threads: int | None = None, progress: bool = True
                ) -> FinalRecord:
    """Train `op`'s chosen configuration at the full budget into `<study>/final-trial-<number>/` (shared when
    two choices pick the same trial); the summary goes to `<study>/final-<choice>.json`. Resumable: a finished
    run is not repeated."""
    from qallegro.hpo.study import study_log

    entry = chosen_config(op, choice)
    with study_log(op.folder) as log:
        log.info(f"final training of {op.name} {choice} (trial {entry['number']}): {entry['params']}")
    record = {"study": op.name, "choice": choice, "trial": entry["number"], "params": entry["params"],
              "hpo_values": {k: entry[k] for k in objective_names(op.spec.dataset)}}
    return _train_and_record(op.spec.dataset, op.spec.variant, op.spec.scale, entry["config"], op.settings,
                             op.folder / f"final-trial-{entry['number']:05d}", op.folder / f"final-{choice}.json",
                             record, threads, progress)


def transfer_config(qdi_op, allegro_op, choice: str = "lowest_error") -> tuple[dict[str, Any], dict[str, Any]]:
    """Config overrides of the transferred Allegro+QDI model and its provenance: the QDI-specific parameters
    (`space.QDI_SPECIFIC`) of `qdi_op`'s chosen trial, every other parameter from `allegro_op`'s chosen trial."""
    if qdi_op.spec.variant != "qdi":
        raise HpoError(f"study {qdi_op.name!r} is a {qdi_op.spec.variant} study; the QDI source must be qdi")
    if allegro_op.spec.variant != "allegro":
        raise HpoError(f"study {allegro_op.name!r} is a {allegro_op.spec.variant} study; expected allegro")
    q = chosen_config(qdi_op, choice)
    a = chosen_config(allegro_op, choice)
    qdi_space = space_mod.default_space("qdi")
    overrides = dict(a["config"])
    for name in space_mod.QDI_SPECIFIC:
        overrides[qdi_space[name].key] = q["params"][name]
    provenance = {"qdi_study": qdi_op.name, "qdi_trial": q["number"],
                  "qdi_params": {n: q["params"][n] for n in space_mod.QDI_SPECIFIC},
                  "allegro_study": allegro_op.name, "allegro_trial": a["number"], "allegro_params": a["params"]}
    return overrides, provenance


def transfer_train(qdi_op, allegro_op, choice: str = "lowest_error", threads: int | None = None,
                   progress: bool = True) -> FinalRecord:
    """Train the transferred Allegro+QDI model on `allegro_op`'s dataset at the full budget, into
    `results/<scale>/hpo/transfer-<dataset>-qdi/` (summary in `transfer-<dataset>-qdi.json`)."""
    overrides, provenance = transfer_config(qdi_op, allegro_op, choice)
    dataset, scale = allegro_op.spec.dataset, allegro_op.spec.scale
    run_dir = allegro_op.folder.parent / f"transfer-{dataset}-qdi"
    record = {"transfer": provenance, "choice": choice}
    return _train_and_record(dataset, "qdi", scale, overrides, allegro_op.settings, run_dir,
                             run_dir.parent / f"{run_dir.name}.json", record, threads, progress)
