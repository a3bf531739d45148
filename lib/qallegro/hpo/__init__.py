"""Multi-objective hyperparameter optimisation (validation error vs inference time), as in the paper and beyond.

Modules: `space` (search spaces), `objective` (one trial: train, then time inference), `samplers` and
`samo_cobra` (SAMO-COBRA, checked against the authors' code), `storage` (journal file or PostgreSQL,
heartbeats, claim lock),
`study` (create/resume/run workers), `pareto` (front and 2-D hypervolume from moocore, knee), `multifidelity`
(MO-ASHA over epochs), `lctable` (the learning-curve table benchmark), `report` and `plots` (results),
`final` (final training of chosen configurations and the Cu-Li -> other datasets transfer), `experiment`
(samplers compared at equal budget), `problems` (analytic test problems), `cli` (`qallegro hpo ...`).

Names are imported lazily so that `import qallegro.hpo` (and `qallegro --help`) stays cheap.
"""

from __future__ import annotations

from qallegro.lazy import lazy_attributes

_LAZY = {
    "StudySpec": "qallegro.hpo.study",
    "create_or_resume": "qallegro.hpo.study",
    "load": "qallegro.hpo.study",
    "run_worker": "qallegro.hpo.study",
    "study_dir": "qallegro.hpo.study",
    "load_space": "qallegro.hpo.space",
    "default_space": "qallegro.hpo.space",
    "make_sampler": "qallegro.hpo.samplers",
    "SamoCobraSampler": "qallegro.hpo.samo_cobra",
    "pareto_front": "qallegro.hpo.pareto",
    "hypervolume_2d": "qallegro.hpo.pareto",
    "knee_point": "qallegro.hpo.pareto",
    "write_results": "qallegro.hpo.report",
    "trials_frame": "qallegro.hpo.report",
    "final_train": "qallegro.hpo.final",
    "transfer_train": "qallegro.hpo.final",
    "compare_samplers": "qallegro.hpo.experiment",
    "Table": "qallegro.hpo.lctable",
    "build_table": "qallegro.hpo.lctable",
    "compare_on_table": "qallegro.hpo.lctable",
    "run": "qallegro.hpo.study",
}

__all__ = list(_LAZY)

__getattr__ = lazy_attributes(__name__, _LAZY)
