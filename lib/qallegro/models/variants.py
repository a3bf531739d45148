"""The variant registry: one `VariantSpec` per model variant (the edge-energy readout is what differs).

Everything that names, builds, searches, draws or tabulates a variant reads it from here: the model config
(default options, checks), `build_model` (the head factory), the HPO search space (the extra searched
parameters), the plots (label, colour), the paper tables (which table holds its best hyperparameters) and the
CLIs' `--variant` choices. Adding a variant is one spec (`register_variant`, or one entry below) plus its head
module and its tests.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from qallegro.utils import FieldView

if TYPE_CHECKING:
    from torch import nn

# an HPO parameter beyond the six every variant shares (see `qallegro.hpo.space.Param`):
# (name, config key, kind "float"|"int"|"pow2", low, high, log scale, index in a list-valued key)
SearchRange = tuple[str, str, str, float, float, bool, int | None]


@dataclass(frozen=True)
class VariantSpec:
    """One model variant.

    `head` is the readout's factory `head(cfg, latent_dim) -> nn.Module` (or "module:function", imported on first
    use, so that reading the registry does not import torch); `defaults` fill the model keys
    the config leaves at None (the edge-energy MLP's output width k); `fixed` are values the variant requires;
    `search` the HPO parameters of the head; `paper_table` / `paper_values_key` where the paper prints its best
    hyperparameters (None: not one of the paper's variants).
    """

    name: str
    label: str
    colour: str
    head: str | Callable[[Mapping[str, Any], int], nn.Module]
    defaults: Mapping[str, Any] = field(default_factory=dict)
    fixed: Mapping[str, Any] = field(default_factory=dict)
    search: tuple[SearchRange, ...] = ()
    paper_table: str | None = None
    paper_values_key: str | None = None

    def make_head(self, cfg: Mapping[str, Any], latent_dim: int) -> nn.Module:
        """The readout on latents of width `latent_dim`, from a resolved model config."""
        factory = self.head
        if isinstance(factory, str):
            module, _, name = factory.partition(":")
            factory = getattr(importlib.import_module(module), name)
        return factory(cfg, latent_dim)


VARIANTS: dict[str, VariantSpec] = {
    spec.name: spec
    for spec in (
        VariantSpec("allegro", "Allegro", "#800000", "qallegro.models.heads:allegro_head",
                    defaults={"edge_eng_mlp_output_dim": 1}, fixed={"edge_eng_mlp_output_dim": 1},
                    paper_table="Table 1", paper_values_key="table1_allegro"),
        VariantSpec("mlp", "Allegro+MLP", "#008033", "qallegro.models.heads:mlp_head",
                    defaults={"edge_eng_mlp_output_dim": 16},
                    search=(("k", "edge_eng_mlp_output_dim", "pow2", 4, 128, False, None),
                            ("final_mlp_h1", "final_mlp_latent_dimensions", "pow2", 4, 1024, False, 0),
                            ("final_mlp_h2", "final_mlp_latent_dimensions", "pow2", 4, 1024, False, 1)),
                    paper_table="Table 2", paper_values_key="table2_mlp"),
        VariantSpec("qdi", "Allegro+QDI", "#1f4e9c", "qallegro.models.heads:qdi_head",
                    defaults={"edge_eng_mlp_output_dim": 4},
                    search=(("qdi_input_features", "edge_eng_mlp_output_dim", "int", 4, 24, False, None),
                            ("qdi_depth", "qdi_depth", "int", 1, 4, False, None),
                            ("qdi_fc_dim", "qdi_fc_dim", "pow2", 4, 1024, False, None)),
                    paper_table="Table 3", paper_values_key="table3_qdi"),
    )
}


def register_variant(spec: VariantSpec) -> VariantSpec:
    """Add `spec` to the registry (a new name; `ValueError` when it is taken)."""
    if spec.name in VARIANTS:
        raise ValueError(f"variant {spec.name!r} is already registered")
    VARIANTS[spec.name] = spec
    return spec


def variant_spec(name: str) -> VariantSpec:
    """The spec of variant `name`; `ValueError` listing the known variants otherwise."""
    try:
        return VARIANTS[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown variant {name!r}; choose one of {', '.join(VARIANTS)}") from None


def variant_names(paper_only: bool = False) -> tuple[str, ...]:
    """The registered names (only the paper's three, when `paper_only`)."""
    return tuple(n for n, s in VARIANTS.items() if s.paper_table or not paper_only)


def make_head(cfg: Mapping[str, Any], latent_dim: int) -> nn.Module:
    """The readout of `cfg["variant"]` on latents of width `latent_dim`."""
    return variant_spec(cfg["variant"]).make_head(cfg, latent_dim)


# name -> label / colour of every registered variant (read-only views, always current)
VARIANT_LABELS: Mapping[str, str] = FieldView(VARIANTS, "label")
VARIANT_COLOURS: Mapping[str, str] = FieldView(VARIANTS, "colour")
