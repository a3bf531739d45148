"""Search spaces of the paper's HPO (6 / 9 / 9 parameters) and their mapping onto config keys.

The paper does not print its ranges; the defaults below are the ones inferred in `../shared/paper/NOTES.md` §5.3
from the reported optima (r_max and P in [5, 12], lr in [9e-4, 6e-3] on a log scale, batch 1-5, 2-4 layers,
MLP widths powers of two). Widths are searched as integer exponents (`*_log2`: width = 2**value), so every sampler
sees an ordered, integer parameter; integers and powers of two are therefore always exact, never rounded floats.

Ranges can be narrowed by the scale preset (`presets/hpo.yaml`, key `space`) and overridden by a YAML file::

    r_max: {low: 4.0, high: 8.0}
    learning_rate: {low: 1.0e-4, high: 1.0e-2, log: true}
    final_mlp_h1: {low: 8, high: 256}       # widths are given as widths (powers of two)
    num_layers: {fixed: 2}                  # take it out of the search, pin the value

A file may also be split by variant (`allegro: {...}`, `mlp: {...}`, `qdi: {...}`). The head's parameters of each
variant come from its spec in the variant registry (`qallegro.models.variants`).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from qallegro.errors import HpoError
from qallegro.models.variants import VARIANTS, variant_spec
from qallegro.training.config import read_yaml_file


@dataclass(frozen=True)
class Param:
    """One searched hyperparameter.

    `name` is the user-facing name (also used in space files); `key` the config key it sets and `index` the
    position inside a list-valued key (`final_mlp_latent_dimensions: [h1, h2]`). For kind `pow2`, `low`/`high`
    are widths (powers of two) and the Optuna parameter is the integer exponent `<name>_log2`.
    """

    name: str
    key: str
    kind: str
    low: float
    high: float
    log: bool = False
    index: int | None = None
    fixed: Any = None

    @property
    def trial_name(self) -> str:
        """The name of the Optuna parameter."""
        return f"{self.name}_log2" if self.kind == "pow2" else self.name

    def distribution(self):
        """The Optuna distribution of this parameter."""
        from optuna.distributions import FloatDistribution, IntDistribution

        if self.kind == "float":
            return FloatDistribution(float(self.low), float(self.high), log=self.log)
        if self.kind == "int":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return IntDistribution(int(math.log2(self.low)), int(math.log2(self.high)))

    def value(self, raw: Any) -> Any:
        """The config value of a trial's raw parameter value."""
        if self.kind == "pow2":
            return 2 ** int(raw)
        return int(raw) if self.kind == "int" else float(raw)

    def raw(self, value: Any) -> Any:
        """Inverse of `value` (a config value onto the Optuna parameter), clipped to the range."""
        if self.kind == "pow2":
            return int(min(max(round(math.log2(float(value))), math.log2(self.low)), math.log2(self.high)))
        if self.kind == "int":
            return int(min(max(round(float(value)), self.low), self.high))
        return float(min(max(float(value), self.low), self.high))


def _p(name: str, key: str, kind: str, low: float, high: float, log: bool = False,
       index: int | None = None) -> Param:
    return Param(name, key, kind, low, high, log, index)


# the six Allegro parameters shared by every variant (each variant's spec adds its head's, `_extra`)
_ALLEGRO = (
    _p("r_max", "r_max", "float", 5.0, 12.0),
    _p("PolynomialCutoff_p", "PolynomialCutoff_p", "float", 5.0, 12.0),
    _p("batch_size", "batch_size", "int", 1, 5),
    _p("num_layers", "num_layers", "int", 2, 4),
    _p("edge_mlp_width", "edge_eng_mlp_latent_dimensions", "pow2", 4, 128, index=0),
    _p("learning_rate", "learning_rate", "float", 9e-4, 6e-3, log=True),
)


def _extra(variant: str) -> tuple[Param, ...]:
    """The head's parameters of `variant` (its registry spec's `search`)."""
    return tuple(_p(*r) for r in variant_spec(variant).search)


# parameters specific to the QDI head (transferred from Cu-Li in the paper)
QDI_SPECIFIC = ("qdi_input_features", "qdi_depth", "qdi_fc_dim")
# the names of `qallegro.paper.best_hyperparameters` (Tables 1-3) for each parameter
PAPER_NAMES = {"r_max": "r_max", "PolynomialCutoff_p": "P", "batch_size": "batch", "num_layers": "layers",
               "edge_mlp_width": "edge_mlp", "learning_rate": "lr", "qdi_input_features": "qdi_input_features",
               "qdi_depth": "qdi_depth", "qdi_fc_dim": "final_mlp"}


class SpaceError(HpoError):
    """A problem in a search-space file or preset, naming the source."""


@dataclass(frozen=True)
class SearchSpace:
    """The ordered parameters of one variant's search."""

    variant: str
    params: tuple[Param, ...]
    sources: tuple[str, ...] = field(default=())

    @property
    def searched(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if p.fixed is None)

    def __getitem__(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def distributions(self) -> dict[str, Any]:
        """Optuna distributions of the searched parameters, keyed by trial parameter name."""
        return {p.trial_name: p.distribution() for p in self.searched}

    def suggest(self, trial) -> dict[str, Any]:
        """Ask `trial` for every searched parameter; returns the raw trial parameters."""
        out: dict[str, Any] = {}
        for p in self.searched:
            d = p.distribution()
            if p.kind == "float":
                out[p.trial_name] = trial.suggest_float(p.trial_name, d.low, d.high, log=d.log)
            else:
                out[p.trial_name] = trial.suggest_int(p.trial_name, d.low, d.high, log=d.log)
        return out

    def values(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """User-facing values (widths, not exponents) of raw trial parameters, fixed ones included."""
        out = {}
        for p in self.params:
            if p.fixed is not None:
                out[p.name] = p.fixed
            elif p.trial_name in raw:
                out[p.name] = p.value(raw[p.trial_name])
        return out

    def overrides(self, raw: Mapping[str, Any]) -> dict[str, Any]:
        """Config overrides (model/training keys) of raw trial parameters; list-valued keys are assembled."""
        vals = self.values(raw)
        missing = [p.name for p in self.params if p.name not in vals]
        if missing:
            raise KeyError(f"trial parameters miss {missing}")
        out: dict[str, Any] = {}
        lists: dict[str, dict[int, Any]] = {}
        for p in self.params:
            if p.index is None:
                out[p.key] = vals[p.name]
            else:
                lists.setdefault(p.key, {})[p.index] = vals[p.name]
        for key, items in lists.items():
            out[key] = [items[i] for i in sorted(items)]
        return out

    def raw_from_values(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
        """Raw trial parameters for user-facing `values` (clipped into the space) and notes on what was clipped."""
        raw: dict[str, Any] = {}
        notes: list[str] = []
        for p in self.searched:
            if p.name not in values:
                continue
            r = p.raw(values[p.name])
            got = p.value(r)
            want = values[p.name]
            if not math.isclose(float(got), float(want), rel_tol=1e-9):
                notes.append(f"{p.name}: {want} -> {got} (space [{p.low}, {p.high}]"
                             + (", powers of two" if p.kind == "pow2" else "") + ")")
            raw[p.trial_name] = r
        return raw, notes

    def describe(self) -> list[dict[str, Any]]:
        """A table-friendly description (name, config key, kind, range, log, fixed)."""
        return [{"name": p.name, "key": p.key + (f"[{p.index}]" if p.index is not None else ""), "kind": p.kind,
                 "low": p.low, "high": p.high, "log": p.log, "fixed": p.fixed} for p in self.params]


def default_space(variant: str) -> SearchSpace:
    """The paper's search space of `variant` (6, 9 or 9 parameters) with the inferred ranges."""
    return SearchSpace(variant, _ALLEGRO + _extra(variant), ("defaults (NOTES §5.3)",))


def _apply(space: SearchSpace, spec: Mapping[str, Any], source: str) -> SearchSpace:
    if not isinstance(spec, Mapping):
        raise SpaceError(f"{source}: expected a mapping of parameter names, got {type(spec).__name__}")
    if set(spec) and set(spec) <= set(VARIANTS):
        spec = spec.get(space.variant) or {}
    names = {p.name for p in space.params}
    everywhere = {p.name for v in VARIANTS for p in _ALLEGRO + _extra(v)}
    params = list(space.params)
    for name, change in spec.items():
        if name in everywhere - names:
            continue  # a parameter of another variant (one file or preset may serve all variants)
        if name not in names:
            raise SpaceError(f"{source}: unknown parameter {name!r} for variant {space.variant!r}; "
                             f"known: {sorted(names)}")
        if not isinstance(change, Mapping) or not set(change) <= {"low", "high", "log", "fixed"}:
            raise SpaceError(f"{source}: {name}: expected a mapping with keys low, high, log, fixed; got {change!r}")
        i = next(k for k, p in enumerate(params) if p.name == name)
        p = replace(params[i], **dict(change.items()))
        _check(p, source)
        params[i] = p
    return SearchSpace(space.variant, tuple(params), (*space.sources, source))


def _check(p: Param, source: str) -> None:
    def bad(msg: str) -> SpaceError:
        return SpaceError(f"{source}: {p.name}: {msg}")

    if not (_is_number(p.low) and _is_number(p.high)):
        raise bad(f"low/high must be numbers, got {p.low!r}, {p.high!r}")
    low, high = float(p.low), float(p.high)
    if not low <= high:
        raise bad(f"low {p.low} > high {p.high}")
    if p.log and low <= 0:
        raise bad("a log scale needs low > 0")
    if p.kind == "int" and (low != int(low) or high != int(high)):
        raise bad(f"integer bounds expected, got {p.low}, {p.high}")
    if p.kind == "pow2":
        for v in (low, high):
            if v < 1 or 2 ** round(math.log2(v)) != v:
                raise bad(f"widths must be powers of two, got {v}")
    if p.fixed is not None and not _is_number(p.fixed):
        raise bad(f"fixed must be a number, got {p.fixed!r}")
    if not isinstance(p.log, bool):
        raise bad(f"log must be true or false, got {p.log!r}")


def _is_number(value: Any) -> bool:
    """An int or float, not a bool (YAML's `true` is an int to Python) and not a numeric string."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def load_space(variant: str, scale: str | None = None, path: str | os.PathLike | None = None,
               dataset: str | None = None) -> SearchSpace:
    """The search space of `variant`: defaults <- scale preset (`presets/hpo.yaml` `space`) <- the preset's
    `space_by_dataset[dataset]` (e.g. a smaller r_max range where neighbour counts make large cutoffs unaffordable)
    <- YAML file."""
    space = default_space(variant)
    if scale is not None:
        from qallegro import scales
        from qallegro.hpo.records import hpo_settings

        settings = hpo_settings(scales.settings("hpo", scale), f"presets/hpo.yaml[{scale}]")
        space = _apply(space, settings.space, f"presets/hpo.yaml[{scale}].space")
        by_dataset = settings.space_by_dataset.get(dataset) if dataset else None
        if by_dataset:
            space = _apply(space, by_dataset, f"presets/hpo.yaml[{scale}].space_by_dataset.{dataset}")
    if path is not None:
        space = _apply(space, read_yaml_file(path, "search-space file", SpaceError) or {}, str(path))
    return space


def space_from_dict(variant: str, spec: Mapping[str, Any] | None) -> SearchSpace:
    """Rebuild a space stored with a study (`describe()`-like overrides on the defaults)."""
    return _apply(default_space(variant), spec or {}, "study attrs")


def space_to_dict(space: SearchSpace) -> dict[str, Any]:
    """The overrides that turn the default space into `space` (stored with a study, JSON-able)."""
    base = default_space(space.variant)
    out: dict[str, Any] = {}
    for p, b in zip(space.params, base.params, strict=True):
        diff = {k: getattr(p, k) for k in ("low", "high", "log", "fixed") if getattr(p, k) != getattr(b, k)}
        if diff:
            out[p.name] = diff
    return out


def paper_values(dataset: str, variant: str) -> dict[str, Any]:
    """The paper's best configuration (Tables 1-3) as user-facing values of this module's parameter names."""
    from qallegro.paper import best_hyperparameters

    row = best_hyperparameters(dataset, variant)
    out: dict[str, Any] = {}
    for p in default_space(variant).params:
        if p.name in ("final_mlp_h1", "final_mlp_h2"):
            out[p.name] = row["final_mlp"][0 if p.name == "final_mlp_h1" else 1]
        elif p.name == "k":
            continue  # Table 2 does not print k (the MLP's input features)
        elif variant == "qdi" and p.name == "qdi_fc_dim":
            out[p.name] = row["final_mlp"]
        else:
            out[p.name] = row[PAPER_NAMES[p.name]]
    return out
