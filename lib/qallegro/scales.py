"""The named scales (`smoke`, `quick`, `overnight`, `paper`) and their per-topic settings.

Each topic (training budgets, HPO budgets, Cu-Li generation, ...) keeps its table in
`qallegro/presets/<topic>.yaml`, keyed first by scale. `settings(topic, scale)` returns a deep copy.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from qallegro.errors import QallegroError

SCALES = ("smoke", "quick", "overnight", "paper")
DEFAULT_SCALE = "quick"
BOOK_SCALE = "overnight"  # the scale of the committed pages: `make book` on a fresh clone computes nothing
PRESETS = Path(__file__).with_name("presets")


class ScaleError(QallegroError, ValueError):
    """An unknown scale name, or a preset file without the scale's settings."""


def check_scale(scale: str) -> str:
    if scale not in SCALES:
        raise ScaleError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    return scale


def read_presets(path: Path) -> dict[str, Any]:
    """The preset table in `path`, read now (no cache), with a section for every scale. FileNotFoundError when
    the file is missing, ValueError when it is not valid YAML or lacks a scale."""
    if not path.exists():
        raise ScaleError(f"no preset file {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ScaleError(f"{path}: not valid YAML: {err}") from err
    missing = [s for s in SCALES if not isinstance(data, dict) or s not in data]
    if missing:
        raise ScaleError(f"{path}: missing scale(s) {missing}")
    return data


@cache
def _load(topic: str) -> dict[str, Any]:
    return read_presets(PRESETS / f"{topic}.yaml")


def settings(topic: str, scale: str = DEFAULT_SCALE) -> dict[str, Any]:
    """The settings of `topic` at `scale` (a fresh copy the caller may modify)."""
    return copy.deepcopy(_load(topic)[check_scale(scale)])
