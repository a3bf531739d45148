"""The paper's claims about its studies and final models, from the campaign's records: one verdict per claim of
the book's list, the evidence in one sentence that states the rule, and the tests behind it.

- `trade-off` (Fig. 2): every study's re-timed front (`tradeoff`), page `moo_summary`;
- `mlp-accuracy-allegro-speed` (section 4): on aspirin and benzene Allegro+MLP has the lower final test error and
  Allegro the shorter inference time, on QM9 the opposite (`final_claims`), page `final_training`;
- `hyperparameter-significance` (section 4): P and the edge-MLP width not significant in any study
  (`significance`), page `moo_summary`;
- `qdi-time` (Fig. 2d): on Cu-Li the final Allegro+QDI slower than Allegro+MLP (`final_claims`), page
  `final_training`.

`verdicts.study_claim_verdicts` combines each claim's tests into its verdict (`verdicts.combine`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from qallegro.campaign import final_claims, significance, tradeoff
from qallegro.campaign.study_records import StudyRecords

# (dataset, the more accurate variant, the faster variant): the paper's section 4 on Fig. 2
ACCURACY_SPEED = (("rmd17-aspirin", "mlp", "allegro"), ("rmd17-benzene", "mlp", "allegro"), ("qm9", "allegro", "mlp"))
QDI_TIME = ("culi", "mlp", "qdi")   # dataset, faster, slower


def tests(studies: Sequence[StudyRecords], finals: Sequence[Mapping[str, Any]],
          ablation: Sequence[Mapping[str, Any]], retimes: Mapping[str, Mapping[str, Any]] | None = None
          ) -> dict[str, list[dict[str, Any]]]:
    """Every test behind each claim, by claim key (`retimes`: the final-model re-timings by dataset)."""
    pairs = []
    for dataset, accurate, fast in ACCURACY_SPEED:
        pairs.append(final_claims.error_row(finals, dataset, accurate, fast))
        pairs.append(final_claims.time_row(finals, studies, dataset, fast, accurate, retimes))
    return {"trade-off": [tradeoff.study_row(s, ablation) for s in studies],
            "mlp-accuracy-allegro-speed": pairs,
            "hyperparameter-significance": [significance.study_row(s) for s in studies],
            "qdi-time": [final_claims.time_row(finals, studies, *QDI_TIME, retimes)]}


def sentence(row: Mapping[str, Any]) -> str:
    """The evidence of one test in one clause."""
    test = row["test"]
    if test == "trade-off":
        return tradeoff.sentence(row)
    if test == "significance":
        return significance.sentence(row)
    return final_claims.time_sentence(row) if test == "time" else final_claims.error_sentence(row)


RULES = {"trade-off": tradeoff.RULE, "hyperparameter-significance": significance.RULE,
         "mlp-accuracy-allegro-speed": f"test error paired by seed over the final runs (t 95% CI); {final_claims.RULE}",
         "qdi-time": final_claims.RULE}
PAGES = {"trade-off": "moo_summary", "hyperparameter-significance": "moo_summary",
         "mlp-accuracy-allegro-speed": "final_training", "qdi-time": "final_training"}


def study_claim_tests(scale: str) -> dict[str, list[dict[str, Any]]]:
    """The tests of every claim from the records of the campaign at `scale`; a final-model test of a dataset whose
    finals the scale cuts (`plan.cuts`: `finals`, or `finals:NAME`) gives the cut's reason."""
    from qallegro import stats
    from qallegro.campaign.plan import ablation_records, cut_reason, cuts
    from qallegro.campaign.study_records import final_records, finals_retimes, load_studies

    out = tests(load_studies(scale), final_records(scale), ablation_records(scale), finals_retimes(scale))
    cut = cuts(scale)
    for rows in out.values():
        for row in rows:
            why = cut_reason(cut, "finals") or cut_reason(cut, f"finals:{row.get('dataset')}")
            if why and row.get("test") in ("time", "error") and row.get("verdict") == stats.NOT_TESTABLE:
                row["reason"] = why
    return out
