"""The book's experiments that several pages share: the paper's studies (Fig. 2), the final training of their
chosen configurations and the Cu-Li -> other datasets QDI transfer (Tables 4-6, Figs. 5-6, MD stability).

At a scale whose experiments are the evidence campaign's (`run_with_book` in presets/campaign.yaml,
`notebooks.from_campaign`), the pages compute nothing the campaign computed: they open its studies (sampler and
seed: `notebooks.study_source`), use the front's re-timed inference times (its retime units), and read its final
units, one model per seed (`qallegro.report.finals`). At the other scales the MOO pages run their studies
(`qallegro.hpo.run`) and the final-training page trains one final model per study (`qallegro.hpo.final_train` /
`transfer_train`, summaries `final-lowest_error.json`, `transfer-<dataset>-qdi.json`) that the later pages read
back. Nothing here re-implements the library: it names the runs and finds their files.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from qallegro.campaign.studies import study_name
from qallegro.errors import PipelineError
from qallegro.hpo.records import FinalRecord
from qallegro.pipeline.notebooks import MOO_RUNS, from_campaign, study_source
from qallegro.report.finals import FinalRun, from_final_record, from_unit_record

# the paper trained Allegro+QDI on these datasets with the QDI parameters of the Cu-Li study (section 5)
TRANSFER_TARGETS: tuple[str, ...] = ("rmd17-aspirin", "rmd17-benzene", "qm9")
# the point of each front trained in full: the most accurate one (the paper states no rule; its Tables 1-3 give
# one configuration per study)
CHOICE = "lowest_error"


def open_study(dataset: str, variant: str, scale: str, sampler: str, seed: int):
    """The study of a MOO page (an `OpenStudy`); a clear error when that page has not run at `scale`."""
    from qallegro.hpo.study import load, study_dir

    name = study_name(dataset, variant, sampler, seed)
    journal = study_dir(scale, name) / "journal.log"
    if not journal.is_file():
        source = study_source(scale)
        if from_campaign(scale) and (sampler, seed) != (source["sampler"], source["seed"]):
            raise PipelineError(f"no study {name!r} at scale {scale}: the campaign's studies there use sampler "
                                f"{source['sampler']!r}, seed {source['seed']} (papermill: -p sampler "
                                f"{source['sampler']} -p seed {source['seed']}); make this one first: qallegro hpo "
                                f"run --dataset {dataset} --variant {variant} --sampler {sampler} --seed {seed} "
                                f"--scale {scale}")
        how = (f"qallegro reproduce --scale {scale} --campaign-only" if from_campaign(scale) else
               f"qallegro reproduce --scale {scale} --only moo-{dataset}-{variant}")
        raise PipelineError(f"{journal}: no study {name!r} at scale {scale}; run it first: {how}")
    return load(str(journal), name)


def page_study(dataset: str, variant: str, scale: str, sampler: str, seed: int):
    """The study of a MOO page: the campaign's, opened (nothing runs), at a `run_with_book` scale; otherwise run
    (or resumed) to the scale's trial budget by `qallegro.hpo.run`."""
    if from_campaign(scale):
        return open_study(dataset, variant, scale, sampler, seed)
    from qallegro.hpo import run

    return run(dataset=dataset, variant=variant, sampler=sampler, scale=scale, seed=seed, progress=False,
               plots=False)["study"]


def study_trials(op, scale: str):
    """The trials of study `op` (`qallegro.hpo.report.trials_frame`), with the front's inference times replaced
    by the campaign's re-timed ones where its retime unit wrote them (`qallegro.report.studies.apply_retime`)."""
    from qallegro.hpo.report import trials_frame
    from qallegro.report.studies import apply_retime

    trials = trials_frame(op.study, op.space, op.spec.dataset)
    if not from_campaign(scale):
        return trials
    from qallegro.campaign.plan import campaign_root
    from qallegro.campaign.units import read_record

    record = read_record(campaign_root(scale), f"retime/{op.name}")
    return apply_retime(trials, record, op.spec.dataset) if record else trials


def summary_path(dataset: str, variant: str, scale: str, sampler: str, seed: int) -> Path:
    """Where the summary of a final model is written: the study's `final-lowest_error.json`, or for a
    transferred Allegro+QDI model `results/<scale>/hpo/transfer-<dataset>-qdi.json`."""
    from qallegro.hpo.study import study_dir

    if (dataset, variant) in MOO_RUNS:
        return study_dir(scale, study_name(dataset, variant, sampler, seed)) / f"final-{CHOICE}.json"
    if variant == "qdi" and dataset in TRANSFER_TARGETS:
        return study_dir(scale, f"transfer-{dataset}-qdi.json")
    raise PipelineError(f"no final model for {dataset} {variant} in the book's experiments")


def campaign_finals(scale: str) -> dict[tuple[str, str], list[FinalRun]]:
    """The campaign's final models at `scale`, every seed (`qallegro.campaign.studies.final_units`: those of the
    datasets whose finals the scale does not cut), by (dataset, variant); a unit without a record is an error
    naming it (the campaign runs before the pages)."""
    from qallegro.campaign.plan import campaign_root
    from qallegro.campaign.studies import final_units
    from qallegro.campaign.units import read_record

    root = campaign_root(scale)
    units = final_units(scale)
    missing = [u.id for u in units if read_record(root, u.id) is None]
    if missing or not units:
        raise PipelineError(f"{root}: {len(missing)} of {len(units)} final unit(s) have no record (e.g. "
                            f"{missing[:2]}); run the campaign first: qallegro reproduce --scale {scale} "
                            f"--campaign-only")
    out: dict[tuple[str, str], list[FinalRun]] = {}
    for unit in units:
        run = from_unit_record(read_record(root, unit.id), root / unit.id)
        out.setdefault((run.dataset, run.variant), []).append(run)
    return _ordered({key: sorted(runs, key=lambda r: r.seed) for key, runs in out.items()})


def _ordered(finals: dict[tuple[str, str], list[FinalRun]]) -> dict[tuple[str, str], list[FinalRun]]:
    """The final models in the registries' order (datasets, then variants), as the pages list them."""
    from qallegro.data.datasets import DATASETS
    from qallegro.models.variants import VARIANTS

    return {key: finals[key] for key in sorted(finals, key=lambda k: (list(DATASETS).index(k[0]),
                                                                        list(VARIANTS).index(k[1])))}


def finals_cuts(scale: str) -> dict[str, str]:
    """Why `scale` leaves out the campaign's final runs, by dataset of the final models (`final_models`): the
    reason of its `finals:NAME` in `cut` (presets/campaign.yaml), else of `finals` (all of them); {} where the
    scale runs them all, or where the pages train them."""
    if not from_campaign(scale):
        return {}
    from qallegro.campaign.plan import cuts
    from qallegro.campaign.studies import finals_cut

    cut = cuts(scale)
    return {d: why for d in dict.fromkeys(d for d, _ in final_models()) if (why := finals_cut(cut, d)) is not None}


def book_finals(scale: str, sampler: str, seed: int, train: bool = False) -> dict[tuple[str, str], list[FinalRun]]:
    """The final models the pages show at `scale`: the campaign's (every seed) at a `run_with_book` scale, of the
    datasets whose finals it does not cut (`finals_cuts`; none where it cuts them all), else the one model per
    study of `train_finals` (trained when `train`, else read back with `load_finals`)."""
    if from_campaign(scale):
        every = {d for d, _ in final_models()}
        return {} if every <= set(finals_cuts(scale)) else campaign_finals(scale)
    import yaml

    records = train_finals(scale, sampler, seed, threads=1) if train else load_finals(scale, sampler, seed)
    out = {}
    for key, rec in records.items():
        folder = run_dir(rec, scale)
        config = folder / "config.yaml"
        if not config.is_file():
            raise PipelineError(f"{config}: missing (the training config of a final model is committed with it)")
        out[key] = [from_final_record(rec, folder, int(yaml.safe_load(config.read_text())["seed"]))]
    return _ordered(out)


def transferred_params(scale: str, sampler: str, seed: int,
                       chosen: Mapping[tuple[str, str], Mapping[str, Any]] | None = None
                       ) -> dict[tuple[str, str], dict[str, Any]]:
    """The hyperparameters of each transferred Allegro+QDI model (`qallegro.report.finals.transferred_params`).
    Where a final model is not there (a scale that cuts its dataset's finals, or trains them after the Fig. 2
    summary), the combination it would train from the studies' `chosen` entries (`chosen_entries`): the Cu-Li
    Allegro+QDI trial's QDI-specific parameters with the dataset's Allegro trial's others
    (`qallegro.hpo.final.transfer_config`); without `chosen`, the final models' alone."""
    from qallegro.hpo.space import QDI_SPECIFIC
    from qallegro.report.finals import transferred_params as from_finals

    try:
        found = from_finals(book_finals(scale, sampler, seed))
    except PipelineError:
        if from_campaign(scale):
            raise
        found = {}
    if chosen is None or ("culi", "qdi") not in chosen:
        return found
    qdi = chosen["culi", "qdi"]["params"]
    combined = {(d, "qdi"): {**chosen[d, "allegro"]["params"], **{n: qdi[n] for n in QDI_SPECIFIC}}
                for d in TRANSFER_TARGETS if (d, "allegro") in chosen}
    return {**combined, **found}


def chosen_entries(studies: Mapping[tuple[str, str], Any], trials: Mapping[tuple[str, str], Any]
                   ) -> dict[tuple[str, str], dict[str, Any]]:
    """The most accurate trial of each study (`qallegro.hpo.report.choose`, rule "lowest_error": the one the
    final models train), read from its trials as the page shows them (re-timed where the campaign re-timed)."""
    from qallegro.hpo.report import choose

    return {key: choose(trials[key], op.space, op.spec.dataset)[CHOICE] for key, op in studies.items()}


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
            raise PipelineError(f"{path}: no final model summary; run the final-training page first: "
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


def md_runs(finals: dict[tuple[str, str], list[FinalRun]], md: dict[str, Any], seed: int
            ) -> tuple[dict[tuple[str, str], dict[str, Any]], dict[tuple[str, str], str]]:
    """NVE dynamics (`qallegro.training.nve_drift`, settings `md` of presets/book.yaml, initial velocities drawn
    with `seed`) with every final model of a dataset with forces (of several seeds: the model of seed `seed`),
    from the first test structure of its run's data. Models are never committed: where a model's checkpoint is
    absent (another clone), it is first retrained from its committed `config.yaml` beside its run
    (`<run>-retrained/`, git-ignored; a few CPU-minutes each), and the run records both test force errors
    (`retrained`: recorded, here). Returns the runs by (dataset, variant), each with its `model_seed`, and, for
    the models not run, why."""
    import yaml

    from qallegro.data import DATASETS, load_dataset
    from qallegro.training import load_run, nve_drift

    runs, skipped = {}, {}
    for key, models in finals.items():
        if not DATASETS[key[0]].has_forces:
            continue
        run = models[0] if len(models) == 1 else next((r for r in models if r.seed == seed), None)
        if run is None:
            skipped[key] = f"no model of seed {seed} (seeds {', '.join(str(r.seed) for r in models)})"
            continue
        folder = Path(run.run_dir)
        if not (folder / "config.yaml").is_file():
            skipped[key] = f"no config.yaml in {_shown(folder)}/"
            continue
        cfg = yaml.safe_load((folder / "config.yaml").read_text())
        retrained = None
        if not (folder / "checkpoint.pt").is_file():
            folder, retrained = _retrain(folder, cfg, run)
        start = load_dataset(key[0], "test", max_frames=1, **(cfg.get("dataset_options") or {}))[0]
        with warnings.catch_warnings():  # ASE removes the rotation of a periodic slab too, and says so
            warnings.filterwarnings("ignore", message="Periodic boundary conditions are ignored")
            runs[key] = {**nve_drift(load_run(folder), start, steps=md["steps"], dt_fs=md["dt_fs"],
                                     temperature_K=md["temperature_K"], seed=seed), "model_seed": run.seed,
                         "retrained": retrained}
    return runs, skipped


def _retrain(folder: Path, cfg: dict[str, Any], run: FinalRun) -> tuple[Path, dict[str, float | None]]:
    """Train the run of `folder` again from its config into `<folder>-retrained/` (resumable; a finished one is
    reused); return that folder and the test force MAE recorded and retrained (eV/Å)."""
    import torch

    from qallegro.training import train

    into = folder.with_name(folder.name + "-retrained")
    result = train({**cfg, "threads": torch.get_num_threads()}, run_dir=into, resume=True, progress=False)
    return into, {"recorded": (run.test or {}).get("f_mae"), "here": (result["test"] or {}).get("f_mae")}


def _shown(folder: Path) -> str:
    """A run folder as a page shows it: relative to the results root (no machine path), else its name."""
    from qallegro.paths import results_root

    try:
        return str(folder.resolve().relative_to(results_root().resolve()))
    except ValueError:
        return folder.name
