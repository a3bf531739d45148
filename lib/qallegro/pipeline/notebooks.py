"""The registry of the book's notebooks: what papermill runs, with which parameters, in which order.

A `Notebook` is one papermill run: a source notebook (relative to `book/`), the page it writes (the source
itself for an ordinary page, its own page for each instance of a parameterised notebook such as the MOO study),
its parameters (`scale` always; `dataset`/`variant` where they apply; extra ones per scale), the notebooks whose
results it reads (`depends`), the datasets whose checksums, the preset topics whose settings at the run's scale,
and the committed files whose contents enter its cache key, and, for an instance of a templated notebook, its own
page title.

`PAPER_ITEMS` maps every figure and table of the paper to the page that reproduces it (checked by the tests
against the table of contents and the page titles).
"""

from __future__ import annotations

import fnmatch
import graphlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from qallegro.data.datasets import DATASET_LABELS, DATASETS
from qallegro.models.variants import VARIANT_LABELS
from qallegro.scales import SCALES, check_scale, settings


@dataclass(frozen=True)
class Notebook:
    """One papermill run of the pipeline (paths relative to `book/`)."""

    name: str
    source: str
    output: str = ""  # the executed page; "" = the source itself (executed in place)
    parameters: Mapping[str, Any] = field(default_factory=dict)
    per_scale: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    depends: tuple[str, ...] = ()
    datasets: tuple[str, ...] = ()
    presets: tuple[str, ...] = ()  # `topic` or `topic.key` of lib/qallegro/presets/<topic>.yaml[scale] it reads
    inputs: tuple[str, ...] = ()  # committed files it reads (glob patterns relative to the repository root;
    # `{scale}` is the scale being run, so that another scale's results do not enter the key)
    title: str = ""  # the page's title, replacing the source's first `# ` heading (for templated pages)
    results: tuple[str, ...] = ()  # committed result files the page shows (globs; `{scale}`, `{sampler}`, ...
    # are its parameters), linked for download from the page; not part of the cache key


    @property
    def page(self) -> str:
        return self.output or self.source

    def result_patterns(self, scale: str) -> list[str]:
        """The `results` globs with this run's parameters at `scale` filled in, less those that cannot match at
        `scale` (`result_applies`)."""
        params = self.params(scale)
        return [pattern.format(**params) for pattern in self.results if result_applies(pattern, scale)]

    def params(self, scale: str) -> dict[str, Any]:
        """The papermill parameters of this run at `scale`."""
        check_scale(scale)
        return {"scale": scale, **self.parameters, **self.per_scale.get(scale, {})}


# The paper's studies (Fig. 2): Allegro and Allegro+MLP on every dataset, Allegro+QDI on Cu-Li only (the paper
# transferred the QDI hyperparameters from Cu-Li to the others).
MOO_RUNS: tuple[tuple[str, str], ...] = (
    ("rmd17-aspirin", "allegro"), ("rmd17-aspirin", "mlp"),
    ("rmd17-benzene", "allegro"), ("rmd17-benzene", "mlp"),
    ("qm9", "allegro"), ("qm9", "mlp"),
    ("culi", "allegro"), ("culi", "mlp"), ("culi", "qdi"),
)

# The optimiser of the paper's studies: our SAMO-COBRA-style sampler (the paper used SAMO-COBRA).
MOO_SAMPLER = "samo-cobra"


def from_campaign(scale: str) -> bool:
    """Whether the book's experiments at `scale` are the campaign's units (`run_with_book` in
    presets/campaign.yaml): the pages then read the campaign's records and compute nothing it computed."""
    return bool(settings("campaign", scale).get("run_with_book"))


def result_applies(pattern: str, scale: str) -> bool:
    """Whether a `results` glob can match at `scale`: the final models of `qallegro.hpo.final` only where the
    pages train them (not at a campaign scale), the campaign's final runs only where the scale plans some (the
    datasets whose finals its `cut` in presets/campaign.yaml leaves, `qallegro.campaign.studies.final_units`), the
    sampler comparison only where it does not cut it."""
    cut = settings("campaign", scale).get("cut") or {}
    if "/campaign/final/" in pattern:
        from qallegro.campaign.studies import final_units

        return from_campaign(scale) and bool(final_units(scale))
    if any(key in pattern for key in ("final-lowest_error", "final-trial-", "transfer-")):
        return not from_campaign(scale)
    if "/hpo/compare-" in pattern:
        return "compare" not in cut
    return True


def study_source(scale: str) -> dict[str, Any]:
    """The sampler and seed of the book's studies at `scale`: the campaign's (`studies` in
    presets/campaign.yaml) at a `run_with_book` scale, else `MOO_SAMPLER` with seed 0."""
    if from_campaign(scale):
        s = settings("campaign", scale)["studies"]
        return {"sampler": str(s["sampler"]), "seed": int(s["seed"])}
    return {"sampler": MOO_SAMPLER, "seed": 0}


# the panel of Fig. 2 of each dataset (labels: DATASET_LABELS, VARIANT_LABELS from the registries)
FIG2_PANEL = {"rmd17-aspirin": "a", "rmd17-benzene": "b", "qm9": "c", "culi": "d"}
# the pages that open the studies (or their final models) get `study_source` of each scale as parameters
_EXPERIMENT = {"sampler": MOO_SAMPLER}
_SOURCE = {scale: study_source(scale) for scale in SCALES if from_campaign(scale)}
# the campaign's records the pages read at a `run_with_book` scale (part of their cache key)
_CAMPAIGN_STUDIES = ("results/{scale}/campaign/study/*/*/record.json", "results/{scale}/campaign/retime/*/record.json")
_CAMPAIGN_FINALS = ("results/{scale}/campaign/final/*/*/record.json",)
# the files of one study (`qallegro.hpo`) that the pages show, and those of the final models
_STUDY_FILES = ("trials.csv", "pareto.csv", "hypervolume.csv", "chosen.json")
_FINALS = ("results/{scale}/hpo/*-{sampler}-s*/final-lowest_error.json", "results/{scale}/hpo/transfer-*-qdi.json",
           "results/{scale}/campaign/final/*/*/record.json")
_PAPER = ("data/paper/paper_values.yaml",)
_FIG2 = ("data/paper/fig2_pareto_points.csv",)
# the search page reads the benchmark records of the samplers (test problems, learning-curve table, overhead, workers)
_SEARCH = ("benchmarks/results/hpo-problems/hpo-problems.json", "benchmarks/results/lctable-benzene/compare.json",
           "benchmarks/results/lctable-benzene/compare-summary.csv", "benchmarks/results/lctable-benzene/table.csv",
           "benchmarks/results/lctable-benzene/bounds.json", "benchmarks/results/hpo-overhead.json",
           "benchmarks/results/hpo-workers.json")


def moo_name(dataset: str, variant: str) -> str:
    return f"moo-{dataset}-{variant}"


_MOO = tuple(
    Notebook(moo_name(ds, var), "templates/moo_study.ipynb", output=f"moo/{ds}-{var}.ipynb",
             parameters={"dataset": ds, "variant": var, **_EXPERIMENT}, per_scale=_SOURCE,
             presets=("hpo", "train"), inputs=_CAMPAIGN_STUDIES,
             datasets=(ds,) if DATASETS[ds].downloadable else (), depends=("culi_dataset",) if ds == "culi" else (),
             title=f"Fig. 2{FIG2_PANEL[ds]}: {DATASET_LABELS[ds]}, {VARIANT_LABELS[var]}",
             results=(*(f"results/{{scale}}/hpo/{ds}-{var}-{{sampler}}-s*/{f}" for f in _STUDY_FILES),
                      f"results/{{scale}}/campaign/retime/{ds}-{var}-{{sampler}}-s*/record.json", *_FIG2, *_PAPER))
    for ds, var in MOO_RUNS
)
_MOO_NAMES = tuple(nb.name for nb in _MOO)

# The content pages, in the book's order. A page that says what the campaign cuts (`cut` in campaign.yaml) has the
# campaign preset in its key.
_PAGES: tuple[Notebook, ...] = (
    Notebook("culi_dataset", "culi_dataset.ipynb", presets=("culi",), datasets=("culi",),
             inputs=("data/culi/*.json", "data/culi/*.csv", "results/{scale}/campaign/labels/culi/*/record.json",
                     "results/{scale}/campaign/data/culi/record.json"),
             results=("data/culi/*.json", "data/culi/*.csv", "results/{scale}/culi/provenance.json",
                      "results/{scale}/campaign/labels/culi/*/record.json")),
    Notebook("culi_split", "culi_split.ipynb", inputs=("results/{scale}/culi/provenance.json",),
             results=("results/{scale}/culi/provenance.json",)),
    Notebook("datasets", "datasets.ipynb", depends=("culi_dataset",), presets=("train",),
             datasets=("rmd17-aspirin", "rmd17-benzene", "qm9")),
    Notebook("qdi_layer", "qdi_layer.ipynb", presets=("book.qdi",), results=_PAPER),
    *_MOO,
    Notebook("moo_summary", "moo_summary.ipynb", parameters=_EXPERIMENT, per_scale=_SOURCE, depends=_MOO_NAMES,
             presets=("hpo", "campaign"),
             inputs=(*_CAMPAIGN_STUDIES, *_CAMPAIGN_FINALS, "results/{scale}/claims/verdicts.json"),
             results=(*(f"results/{{scale}}/hpo/{ds}-{var}-{{sampler}}-s*/{f}" for ds, var in MOO_RUNS
                        for f in ("pareto.csv", "chosen.json")),
                      "results/{scale}/claims/verdicts.json", *_FIG2, *_PAPER)),
    Notebook("final_training", "final_training.ipynb", parameters=_EXPERIMENT, per_scale=_SOURCE,
             depends=_MOO_NAMES, presets=("hpo", "train", "campaign"),
             inputs=(*_CAMPAIGN_FINALS, "results/{scale}/campaign/final/*/*/run/epochs.csv",
                     "results/{scale}/claims/verdicts.json"),
             results=(*_FINALS, "results/{scale}/hpo/*-{sampler}-s*/final-trial-*/epochs.csv",
                      "results/{scale}/hpo/transfer-*-qdi/epochs.csv",
                      "results/{scale}/campaign/final/*/*/run/epochs.csv", *_PAPER)),
    Notebook("table6", "table6.ipynb", parameters=_EXPERIMENT, per_scale=_SOURCE, depends=("final_training",),
             presets=("campaign",), inputs=_CAMPAIGN_FINALS,
             results=(*_FINALS, *_PAPER)),
    Notebook("optimisers", "beyond_optimisers.ipynb", presets=("hpo", "train"), datasets=("rmd17-benzene",),
             results=("results/{scale}/hpo/compare-*/hypervolume.csv", "results/{scale}/hpo/compare-*/study.json")),
    Notebook("hpo_search", "hpo_search.ipynb", inputs=_SEARCH, results=_SEARCH),
    Notebook("md_stability", "beyond_md.ipynb", parameters=_EXPERIMENT, per_scale=_SOURCE,
             depends=("final_training",), presets=("book.md", "campaign"), inputs=_CAMPAIGN_FINALS,
             results=_FINALS),
    Notebook("claims", "claims.ipynb", presets=("campaign",),
             inputs=("results/{scale}/claims/verdicts.json", "results/{scale}/campaign/ablation/*/*/record.json"),
             results=("results/{scale}/claims/verdicts.json",)),
    Notebook("ablation", "ablation.ipynb", presets=("campaign",),
             inputs=("results/{scale}/campaign/ablation/*/*/record.json",
                     "results/{scale}/campaign/sweep/*/*/record.json", "results/{scale}/campaign/pilot.json"),
             results=("results/{scale}/campaign/ablation/*/*/record.json",
                      "results/{scale}/campaign/sweep/*/*/record.json", "results/{scale}/campaign/pilot.json")),
    Notebook("speed", "beyond_speed.ipynb", inputs=("benchmarks/results/*.json",),
             results=("benchmarks/results/*.json",)),
)

# The reproducibility page lists the run records of every other page, so it runs after all of them.
NOTEBOOKS: tuple[Notebook, ...] = (
    *_PAGES,
    Notebook("reproducibility", "reproducibility.ipynb", depends=tuple(nb.name for nb in _PAGES),
             presets=("book.plan", "campaign"), inputs=("results/{scale}/campaign/*/*/record.json",
                                                        "results/{scale}/campaign/*/*/*/record.json"),
             results=("results/{scale}/campaign/*/*/record.json", "results/{scale}/campaign/*/*/*/record.json")),
)

# Every figure and table of the paper -> the page (path in book/ without suffix) that reproduces it.
PAPER_ITEMS: dict[str, str] = {
    "Fig. 1": "qdi_layer",
    "Fig. 2": "moo_summary",
    "Fig. 3": "qdi_layer",
    "Fig. 4": "qdi_layer",
    "Fig. 5": "final_training",
    "Fig. 6": "final_training",
    "Fig. 7": "culi_dataset",
    "Table 1": "moo_summary",
    "Table 2": "moo_summary",
    "Table 3": "moo_summary",
    "Table 4": "final_training",
    "Table 5": "final_training",
    "Table 6": "table6",
}


def check_registry(notebooks: Iterable[Notebook]) -> list[Notebook]:
    """The notebooks in dependency order (registry order among independent ones).

    Raises ValueError for duplicate names or pages, an unknown dependency, or a cycle.
    """
    nbs = list(notebooks)
    by_name: dict[str, Notebook] = {}
    pages: dict[str, str] = {}
    for nb in nbs:
        if nb.name in by_name:
            raise ValueError(f"notebook registry: duplicate name {nb.name!r}")
        if nb.page in pages:
            raise ValueError(f"notebook registry: {nb.name!r} and {pages[nb.page]!r} both write {nb.page}")
        by_name[nb.name] = nb
        pages[nb.page] = nb.name
    sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
    for nb in nbs:
        unknown = [d for d in nb.depends if d not in by_name]
        if unknown:
            raise ValueError(f"notebook registry: {nb.name!r} depends on unknown notebook(s) {unknown}")
        sorter.add(nb.name, *nb.depends)
    rank = {nb.name: i for i, nb in enumerate(nbs)}
    order: list[str] = []
    try:
        sorter.prepare()
    except graphlib.CycleError as err:
        raise ValueError(f"notebook registry: dependency cycle {' -> '.join(err.args[1])}") from None
    while sorter.is_active():
        ready = sorted(sorter.get_ready(), key=rank.__getitem__)
        order.extend(ready)
        sorter.done(*ready)
    return [by_name[n] for n in order]


def select(notebooks: Iterable[Notebook], only: Iterable[str] = ()) -> list[Notebook]:
    """The notebooks matching the `only` patterns (fnmatch on names) plus everything they depend on, in
    dependency order; all of them when `only` is empty. An unmatched pattern raises ValueError."""
    ordered = check_registry(notebooks)
    patterns = list(only)
    if not patterns:
        return ordered
    by_name = {nb.name: nb for nb in ordered}
    wanted: set[str] = set()
    for pattern in patterns:
        hits = [n for n in by_name if fnmatch.fnmatchcase(n, pattern)]
        if not hits:
            raise ValueError(f"no notebook matches {pattern!r}; known: {', '.join(by_name)}")
        wanted.update(hits)
    stack = list(wanted)
    while stack:
        for dep in by_name[stack.pop()].depends:
            if dep not in wanted:
                wanted.add(dep)
                stack.append(dep)
    return [nb for nb in ordered if nb.name in wanted]
