"""One family of user errors: `QallegroError`, with one subclass per floor.

A `QallegroError` is a mistake the user can fix (a bad file, key, value or name); its message is one line that
names the file, key or value and the problem. The `qallegro` command prints it as `qallegro: <message>` and
exits with `EXIT_USER_ERROR` (2); anything else is a bug and keeps its traceback. Each floor's class also
derives from the built-in exception its callers caught before (ValueError, RuntimeError).
"""

from __future__ import annotations

EXIT_USER_ERROR = 2


class QallegroError(Exception):
    """Base class of every user error of qallegro."""


class DataError(QallegroError, ValueError):
    """Floor 1, data: bad, missing or inconsistent input data."""


class ModelError(QallegroError, ValueError):
    """Floor 2, models: a bad model config, model file or model input."""


class TrainingError(QallegroError, ValueError):
    """Floor 3, training: a bad training config, run directory or checkpoint."""


class HpoError(QallegroError, ValueError):
    """Floor 4, studies: a bad study, storage, search space, objective or worker setting."""


class CuliError(QallegroError, RuntimeError):
    """Floor 4, Cu-Li generation: a labeller or generation step that cannot go on."""


class PipelineError(QallegroError, RuntimeError):
    """Floor 5, pipeline: a notebook or book build that cannot run or failed."""


class CampaignError(QallegroError, ValueError):
    """Floor 5, campaign: a bad campaign preset, an unknown dataset or unit, or records that cannot be compared."""
