"""The book's experiments that several pages share: the paper's studies (Fig. 2), the final training of their
chosen configurations and the Cu-Li -> other datasets QDI transfer (Tables 4-6, Figs. 5-6, MD stability).

The studies are the MOO pages' (`qallegro.hpo.run` with the registry's sampler and seed); the final models are
trained by `qallegro.hpo.final_train` / `transfer_train`, whose summaries (`final-lowest_error.json`,
`transfer-<dataset>-qdi.json`) the later pages read back. Nothing here re-implements the library: it names
the runs and finds their files.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qallegro.hpo.records import FinalRecord
from qallegro.pipeline.notebooks import MOO_RUNS

# the paper trained Allegro+QDI on these datasets with the QDI parameters of the Cu-Li study (section 5)
TRANSFER_TARGETS: tuple[str, ...] = ("rmd17-aspirin", "rmd17-benzene", "qm9")
# the point of each front trained in full: the most accurate one (the paper states no rule; its Tables 1-3 give
# one configuration per study)
CHOICE = "lowest_error"


def study_name(dataset: str, variant: str, sampler: str, seed: int) -> str:
    """The name `qallegro.hpo.StudySpec` gives a study (the MOO pages use the default)."""
    return f"{dataset}-{variant}-{sampler}-s{seed}"


def open_study(dataset: str, variant: str, scale: str, sampler: str, seed: int):
    """The study of a MOO page (an `OpenStudy`); a clear error when that page has not run at `scale`."""
    from qallegro.hpo.study import load, study_dir

    name = study_name(dataset, variant, sampler, seed)
    journal = study_dir(scale, name) / "journal.log"
    if not journal.is_file():
        raise FileNotFoundError(f"no study {name!r} at scale {scale} ({journal} is missing); run its page first: "
                                f"qallegro reproduce --scale {scale} --only moo-{dataset}-{variant}")
    return load(str(journal), name)


def summary_path(dataset: str, variant: str, scale: str, sampler: str, seed: int) -> Path:
    """Where the summary of a final model is written: the study's `final-lowest_error.json`, or for a
    transferred Allegro+QDI model `results/<scale>/hpo/transfer-<dataset>-qdi.json`."""
    from qallegro.hpo.study import study_dir

    if (dataset, variant) in MOO_RUNS:
        return study_dir(scale, study_name(dataset, variant, sampler, seed)) / f"final-{CHOICE}.json"
    if variant == "qdi" and dataset in TRANSFER_TARGETS:
        return study_dir(scale, f"transfer-{dataset}-qdi.json")
    raise ValueError(f"no final model for {dataset} {variant} in the book's experiments")


def final_models() -> list[tuple[str, str]]:
    """Every (dataset, variant) with a final model: the paper's nine studies and the three transfers."""
    return [*MOO_RUNS, *((d, "qdi") for d in TRANSFER_TARGETS)]


def train_finals(scale: str, sampler: str, seed: int, threads: int = 1, progress: bool = False
                 ) -> dict[tuple[str, str], FinalRecord]:
    """Train (or resume, or reuse when finished) every final model at `scale`; returns the summaries."""
    from qallegro.hpo.final import final_train, transfer_train

    out: dict[tuple[str, str], FinalRecord] = {}
    for dataset, variant in MOO_RUNS:
        op = open_study(dataset, variant, scale, sampler, seed)
        out[dataset, variant] = final_train(op, CHOICE, threads=threads, progress=progress)
    qdi = open_study("culi", "qdi", scale, sampler, seed)
    for dataset in TRANSFER_TARGETS:
        allegro = open_study(dataset, "allegro", scale, sampler, seed)
        out[dataset, "qdi"] = transfer_train(qdi, allegro, CHOICE, threads=threads, progress=progress)
    return out


def load_finals(scale: str, sampler: str, seed: int) -> dict[tuple[str, str], FinalRecord]:
    """The summaries written by `train_finals`, read back as validated records (nothing is trained)."""
    out = {}
    for dataset, variant in final_models():
        path = summary_path(dataset, variant, scale, sampler, seed)
        if not path.is_file():
            raise FileNotFoundError(f"no final model summary {path}; run the final-training page first: "
                                    f"qallegro reproduce --scale {scale} --only final_training")
        out[dataset, variant] = FinalRecord.read(path)
    return out


def run_dir(record: Mapping[str, Any], scale: str) -> Path:
    """The training run of a final-model summary, found under this machine's results folder (the summary's
    absolute `run_dir` may come from another checkout)."""
    from qallegro.hpo.study import study_dir

    if "transfer" in record:
        return study_dir(scale, f"transfer-{record['dataset']}-qdi")
    return study_dir(scale, record["study"]) / f"final-trial-{int(record['trial']):05d}"


def epochs(record: Mapping[str, Any], scale: str):
    """The per-epoch CSV of a final model (`epochs.csv` of its training run) as a DataFrame."""
    import pandas as pd

    path = run_dir(record, scale) / "epochs.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no training curve {path}")
    return pd.read_csv(path)


def load_model(record: Mapping[str, Any], scale: str):
    """The trained final model (best EMA weights); the checkpoints are not committed, so on a fresh clone the
    final-training page must run first."""
    from qallegro.training import load_run

    folder = run_dir(record, scale)
    if not (folder / "checkpoint.pt").is_file():
        raise FileNotFoundError(f"no checkpoint in {folder} (model files are not committed); train the final "
                                f"models first: qallegro reproduce --scale {scale} --only final_training --force")
    return load_run(folder)


def transferred_params(scale: str, sampler: str, seed: int) -> dict[tuple[str, str], dict[str, Any]]:
    """The hyperparameters of each transferred Allegro+QDI model ((dataset, "qdi") -> its Allegro parameters with
    the Cu-Li QDI parameters), read from the summaries `train_finals` wrote; {} for a dataset not trained yet."""
    out = {}
    for dataset in TRANSFER_TARGETS:
        path = summary_path(dataset, "qdi", scale, sampler, seed)
        if path.is_file():
            t = json.loads(path.read_text())["transfer"]
            out[dataset, "qdi"] = {**t["allegro_params"], **t["qdi_params"]}
    return out
