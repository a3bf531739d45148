"""The paper's claims about its studies and final models, from the campaign's records: one verdict per claim of
the book's list, the evidence in one sentence that states the rule, and the tests behind it.

- `trade-off` (Fig. 2): every study's re-timed front (`tradeoff`), page `moo_summary`;
- `mlp-accuracy-allegro-speed` (section 4): on aspirin and benzene Allegro+MLP has the lower final test error and
  Allegro the shorter inference time, on QM9 the opposite (`final_claims`), page `final_training`;
- `hyperparameter-significance` (section 4): P and the edge-MLP width not significant in any study
  (`significance`), page `moo_summary`;
- `qdi-time` (Fig. 2d): on Cu-Li the final Allegro+QDI slower than Allegro+MLP (`final_claims`), page
  `final_training`.

Where the scale cuts a dataset's final runs, its final-model claims are tested on the studies' most accurate
trials instead (`final_claims.study_error_row`, `study_time_row`; the claim's rule names those datasets, and its
page is `moo_summary` where every test is on the studies).

`verdicts.study_claim_verdicts` combines each claim's tests into its verdict (`verdicts.combine`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import Any

from qallegro.campaign import final_claims, significance, tradeoff, words
from qallegro.campaign.study_records import StudyRecords

# (dataset, the more accurate variant, the faster variant): the paper's section 4 on Fig. 2
ACCURACY_SPEED = (("rmd17-aspirin", "mlp", "allegro"), ("rmd17-benzene", "mlp", "allegro"), ("qm9", "allegro", "mlp"))
QDI_TIME = ("culi", "mlp", "qdi")   # dataset, faster, slower


def tests(studies: Sequence[StudyRecords], finals: Sequence[Mapping[str, Any]],
          ablation: Sequence[Mapping[str, Any]], retimes: Mapping[str, Mapping[str, Any]] | None = None,
          no_finals: Collection[str] = ()) -> dict[str, list[dict[str, Any]]]:
    """Every test behind each claim, by claim key (`retimes`: the final-model re-timings by dataset); the
    final-model claims of the datasets in `no_finals` (whose finals the scale cuts) are tested on the studies'
    most accurate trials (`final_claims.study_error_row`, `study_time_row`)."""
    def time_row(dataset: str, faster: str, slower: str) -> dict[str, Any]:
        if dataset in no_finals:
            return final_claims.study_time_row(studies, dataset, faster, slower)
        return final_claims.time_row(finals, studies, dataset, faster, slower, retimes)

    pairs = []
    for dataset, accurate, fast in ACCURACY_SPEED:
        pairs.append(final_claims.study_error_row(studies, ablation, dataset, accurate, fast)
                     if dataset in no_finals else final_claims.error_row(finals, dataset, accurate, fast))
        pairs.append(time_row(dataset, fast, accurate))
    return {"trade-off": [tradeoff.study_row(s, ablation) for s in studies],
            "mlp-accuracy-allegro-speed": pairs,
            "hyperparameter-significance": [significance.study_row(s) for s in studies],
            "qdi-time": [time_row(*QDI_TIME)]}


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
    """The tests of every claim from the records of the campaign at `scale`; the final-model claims of a dataset
    whose finals the scale cuts (`plan.cuts`: `finals`, or `finals:NAME`) are tested on its studies, and a test
    that needs the seed spread of a head ablation the scale cuts (`ablation:NAME`; a trade-off or a study-level
    test) gives that cut's reason."""
    from qallegro import stats
    from qallegro.campaign.plan import ablation_records, cut_reason, cuts
    from qallegro.campaign.studies import finals_cut
    from qallegro.campaign.study_records import final_records, finals_retimes, load_studies

    cut = cuts(scale)
    datasets = {d for d, _, _ in ACCURACY_SPEED} | {QDI_TIME[0]}
    no_finals = {d for d in datasets if finals_cut(cut, d) is not None}
    out = tests(load_studies(scale), final_records(scale), ablation_records(scale), finals_retimes(scale), no_finals)
    for rows in out.values():
        for row in rows:
            why = cut_reason(cut, f"ablation:{row.get('dataset')}")
            if why and row.get("verdict") == stats.NOT_TESTABLE and row.get("missing") == "seed spread":
                row["reason"] = f"{row['reason']}: {why}"
    return out


def rule(key: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """The rule of claim `key` as its tests `rows` apply it (the final-model claims on the studies where the
    scale cuts the finals: of every dataset, or of some, which the rule names)."""
    on_studies = [r for r in rows if r.get("level") == "studies"]
    if not on_studies:
        return RULES[key]
    parts = [final_claims.STUDY_RULE]
    if any(r["test"] == "error" for r in on_studies):
        parts.append(final_claims.STUDY_ERROR)
    studies_rule = "; ".join([*parts, final_claims.STUDY_TIME])
    if len(on_studies) == len(rows):
        return studies_rule
    names = ", ".join(dict.fromkeys(words.dataset(r["dataset"]) for r in on_studies))
    return f"{RULES[key]}; for {names}: {studies_rule}"


def page(key: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """The page that shows the evidence of claim `key` (the studies' summary where its tests are on the studies)."""
    return "moo_summary" if rows and all(r.get("level") == "studies" for r in rows) else PAGES[key]
