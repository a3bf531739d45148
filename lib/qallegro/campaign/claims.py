"""The paper's claims about the heads, tested on the head-ablation records with paired seeds.

Each claim compares two variants on one dataset and metric: "`other` has a lower error than `reference`" (the
paper's Tables 4-5 and its text, `../shared/paper/NOTES.md` §7.4-7.5), or "`other` is competitive with
`reference`" (a non-inferiority claim: its error at most `margin` percent above). The paper's own number is its
Table 4/5 relative difference. Our number is the paired difference over the seeds that both variants finished
untruncated under one protocol; `verdict` comes from `qallegro.stats`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from qallegro import stats
from qallegro.errors import CampaignError

SPLITS = ("test", "val", "ood")


@dataclass(frozen=True)
class Claim:
    """One testable statement of the paper about two heads on one dataset and metric."""

    id: str
    text: str
    dataset: str
    metric: str          # f_mae | e_mae
    reference: str
    other: str
    direction: str = "lower"   # lower | within
    margin_percent: float = 10.0

    def paper_percent(self) -> float | None:
        """The paper's relative difference (other - reference) / reference in %, from Tables 4-5."""
        from qallegro.paper import values

        table = values()["table4_val_force_mae_meV_per_A" if self.metric == "f_mae"
                         else "table5_val_energy_mae_meV_per_atom"]
        row = table.get(self.dataset) or {}
        ref, oth = row.get(self.reference), row.get(self.other)
        return None if ref is None or oth is None else 100.0 * (oth - ref) / ref


CLAIMS: tuple[Claim, ...] = (
    Claim("culi-f-qdi-mlp", "Allegro+QDI has a lower Cu-Li force error than Allegro+MLP (\"almost 13%\")",
          "culi", "f_mae", "mlp", "qdi"),
    Claim("culi-f-qdi-allegro", "Allegro+QDI has a lower Cu-Li force error than Allegro", "culi", "f_mae",
          "allegro", "qdi"),
    Claim("culi-f-mlp-allegro", "Allegro+MLP has a lower Cu-Li force error than Allegro", "culi", "f_mae",
          "allegro", "mlp"),
    Claim("culi-e-qdi-mlp", "Allegro+QDI has a lower Cu-Li energy error than Allegro+MLP", "culi", "e_mae",
          "mlp", "qdi"),
    Claim("culi-e-qdi-allegro", "Allegro+QDI has a lower Cu-Li energy error than Allegro", "culi", "e_mae",
          "allegro", "qdi"),
    Claim("benzene-f-mlp-allegro", "Allegro+MLP has a lower benzene force error than Allegro", "rmd17-benzene",
          "f_mae", "allegro", "mlp"),
    Claim("aspirin-f-mlp-allegro", "Allegro+MLP has a lower aspirin force error than Allegro", "rmd17-aspirin",
          "f_mae", "allegro", "mlp"),
    Claim("benzene-e-qdi-allegro", "Allegro+QDI has a lower benzene energy error than Allegro", "rmd17-benzene",
          "e_mae", "allegro", "qdi"),
    Claim("benzene-e-qdi-mlp", "Allegro+QDI has a lower benzene energy error than Allegro+MLP", "rmd17-benzene",
          "e_mae", "mlp", "qdi"),
    Claim("qm9-e-allegro-mlp", "Allegro has a lower QM9 energy error than Allegro+MLP", "qm9", "e_mae", "mlp",
          "allegro"),
    Claim("qm9-e-allegro-qdi", "Allegro has a lower QM9 energy error than Allegro+QDI", "qm9", "e_mae", "qdi",
          "allegro"),
    Claim("benzene-f-qdi-competitive", "Allegro+QDI with the Cu-Li head settings is competitive with Allegro on "
          "benzene forces (at most 10% higher error)", "rmd17-benzene", "f_mae", "allegro", "qdi", "within"),
    Claim("aspirin-f-qdi-competitive", "Allegro+QDI with the Cu-Li head settings is competitive with Allegro on "
          "aspirin forces (at most 10% higher error)", "rmd17-aspirin", "f_mae", "allegro", "qdi", "within"),
    Claim("qm9-e-qdi-competitive", "Allegro+QDI with the Cu-Li head settings is competitive with Allegro on "
          "QM9 energies (at most 10% higher error)", "qm9", "e_mae", "allegro", "qdi", "within"),
)


def energy_pairs(datasets: Iterable[str] | None = None, heads: tuple[str, ...] | None = None) -> tuple[Claim, ...]:
    """Every pair of heads (default: the paper's three variants) on every dataset's (default: the paper's)
    energy error, each as "the second head lower than the first" (the comparisons behind the paper's "no model
    strictly superior in energies", `verdicts.energy_verdict`)."""
    from qallegro.data.datasets import DATASETS
    from qallegro.models.variants import variant_names

    datasets = [d for d, s in DATASETS.items() if s.in_paper] if datasets is None else datasets
    heads = variant_names(paper_only=True) if heads is None else heads
    return tuple(Claim(f"{d}-e-{b}-{a}", f"{b} has a lower energy error than {a}", d, "e_mae", a, b)
                 for d in datasets for i, a in enumerate(heads) for b in heads[i + 1:])


def paired_values(records: Iterable[Mapping[str, Any]], claim: Claim, split: str
                  ) -> tuple[list[int], list[float], list[float], list[str]]:
    """Seeds, reference and other values of `claim` on `split`, paired by seed; plus the problems that removed
    a seed (truncated run, missing metric, other protocol), each as one line."""
    by: dict[tuple[str, int], Mapping[str, Any]] = {}
    protocols = set()
    for rec in records:
        if rec.get("dataset") == claim.dataset and rec.get("variant") in (claim.reference, claim.other):
            by[(rec["variant"], int(rec["seed"]))] = rec
            protocols.add(repr(sorted(_protocol_identity(rec).items())))
    if len(protocols) > 1:
        raise CampaignError(f"claim {claim.id}: records of {claim.dataset} come from {len(protocols)} different "
                         "protocols or budgets; a comparison uses one only")
    seeds, ref, oth, problems = [], [], [], []
    for seed in sorted({s for (_, s) in by}):
        pair = [by.get((claim.reference, seed)), by.get((claim.other, seed))]
        if any(p is None for p in pair):
            continue
        if any(p["truncated"] for p in pair):
            problems.append(f"seed {seed}: a truncated run ({[p['stop_reason'] for p in pair]}) is not compared")
            continue
        vals = [(p.get(split) or {}).get(claim.metric) for p in pair]
        if any(v is None for v in vals):
            continue
        seeds.append(seed)
        ref.append(float(vals[0]))
        oth.append(float(vals[1]))
    return seeds, ref, oth, problems


def _protocol_identity(rec: Mapping[str, Any]) -> dict[str, Any]:
    p = dict(rec.get("protocol") or {})
    return {k: p.get(k) for k in ("version", "split_version", "data_sha256", "budget", "learning_rate",
                                  "batch_size", "n_train", "n_val")}


def evaluate_claim(records: Iterable[Mapping[str, Any]], claim: Claim, split: str = "test") -> dict[str, Any]:
    """One row of the verdict table: the paper's %, ours (mean and interval in % of the reference), n, verdict."""
    records = list(records)
    seeds, ref, oth, problems = paired_values(records, claim, split)
    row: dict[str, Any] = {"claim": claim.id, "text": claim.text, "dataset": claim.dataset, "metric": claim.metric,
                           "split": split, "reference": claim.reference, "other": claim.other,
                           "paper_percent": claim.paper_percent(), "n": len(seeds), "seeds": seeds,
                           "problems": problems}
    if len(seeds) < 2:
        why = f"{len(seeds)} paired seed(s) finished" if records else "no runs of this experiment at this scale"
        return {**row, "verdict": stats.NOT_TESTABLE, "reason": why}
    d = stats.paired_difference(ref, oth)
    if claim.direction == "within":
        v = (stats.SUPPORTED if d.percent_high < claim.margin_percent
             else stats.CONTRADICTED if d.percent_low > claim.margin_percent else stats.INCONCLUSIVE)
    else:
        v = stats.verdict(d, claim.direction)
    return {**row, "reference_mean": d.reference_mean, "other_mean": d.other_mean, "difference": d.mean,
            "percent": d.percent, "percent_low": d.percent_low, "percent_high": d.percent_high, "sd": d.sd,
            "seeds_for_10_percent": stats.seeds_needed(d.sd, 0.1 * d.reference_mean), "verdict": v, "reason": ""}


def verdict_table(records: Iterable[Mapping[str, Any]], splits: Iterable[str] = ("test",),
                  claims: Iterable[Claim] = CLAIMS) -> list[dict[str, Any]]:
    """Every claim on every split (rows for the held-out interface only for Cu-Li)."""
    records = list(records)
    return [evaluate_claim(records, c, s) for c in claims for s in splits if s != "ood" or c.dataset == "culi"]


def pilot(records: Iterable[Mapping[str, Any]], dataset: str, metric: str = "f_mae", split: str = "val",
          effects: tuple[float, ...] = (0.10, 0.15)) -> dict[str, Any]:
    """The spread between seeds on `dataset`: per head the mean and standard deviation of `metric`, per pair of
    heads the standard deviation of the paired difference, and the paired seeds needed to resolve a difference of
    each fraction in `effects` of the reference mean (`stats.seeds_needed`)."""
    recs = [r for r in records if r.get("dataset") == dataset and not r.get("truncated")]
    heads = sorted({r["variant"] for r in recs})
    per_head = {}
    for h in heads:
        vals = [float((r.get(split) or {}).get(metric)) for r in recs if r["variant"] == h]
        per_head[h] = {"n": len(vals), "mean": float(np.mean(vals)),
                       "sd": float(np.std(vals, ddof=1)) if len(vals) > 1 else None}
    pairs = {}
    for i, a in enumerate(heads):
        for b in heads[i + 1:]:
            claim = Claim(f"{a}-{b}", "", dataset, metric, a, b)
            seeds, ref, oth, _ = paired_values(recs, claim, split)
            if len(seeds) < 2:
                continue
            d = stats.paired_difference(ref, oth)
            needed = {f"seeds_for_{round(100 * e)}_percent": stats.seeds_needed(d.sd, e * d.reference_mean)
                      for e in effects}
            pairs[f"{b} - {a}"] = {"n": d.n, "sd_difference": d.sd, "reference_mean": d.reference_mean, **needed}
    return {"dataset": dataset, "metric": metric, "split": split, "heads": per_head, "pairs": pairs}
