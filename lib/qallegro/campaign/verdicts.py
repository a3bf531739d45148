"""From the head-ablation comparisons to one verdict per claim of the paper, with the evidence in one sentence.

A claim of the paper (the book's claims list) often bundles several comparisons: "Allegro+MLP predicts forces more
accurately than Allegro on every dataset" is three paired comparisons. Its verdict is `contradicted` when any of them
is contradicted (whatever the others), else `not testable at this scale` when any has fewer than two paired seeds,
`supported` when all are supported, and `inconclusive` otherwise. The evidence names each comparison's mean
difference and interval; `ours` gives them in short and `tally` counts the parts' verdicts (a claim not testable
as a whole may be supported on most of its parts).

The paper's "the energy results do not highlight any model to be strictly superior" compares every pair of heads
on every dataset's energy error (`energy_verdict`, by the rule `ENERGY_RULE`).

The claims about the studies and the final models (`study_claims`: trade-off, accuracy and speed of the final
models, hyperparameter significance, QDI's inference time) combine their tests by the same rule; their evidence
begins with the rule.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from qallegro import stats
from qallegro.campaign import words

# the book's claims (qallegro.report.claims keys) and the comparisons (qallegro.campaign.claims ids) behind each
BUNDLES: dict[str, tuple[str, ...]] = {
    "qdi-13": ("culi-f-qdi-mlp", "culi-f-qdi-allegro"),
    "mlp-forces": ("culi-f-mlp-allegro", "benzene-f-mlp-allegro", "aspirin-f-mlp-allegro"),
    "qdi-culi-energy": ("culi-e-qdi-mlp", "culi-e-qdi-allegro"),
    "qdi-benzene-energy": ("benzene-e-qdi-allegro", "benzene-e-qdi-mlp"),
    "transfer": ("benzene-f-qdi-competitive", "aspirin-f-qdi-competitive", "qm9-e-qdi-competitive"),
    "qm9-allegro-energy": ("qm9-e-allegro-mlp", "qm9-e-allegro-qdi"),
}


def combine(verdicts: Iterable[str]) -> str:
    """One verdict from the verdicts of a claim's comparisons (see the module docstring)."""
    vs = list(verdicts)
    if stats.CONTRADICTED in vs:
        return stats.CONTRADICTED
    if not vs or stats.NOT_TESTABLE in vs:
        return stats.NOT_TESTABLE
    if all(v == stats.SUPPORTED for v in vs):
        return stats.SUPPORTED
    return stats.INCONCLUSIVE


def tally(verdicts: Iterable[str]) -> str:
    """The parts' verdicts counted, in the order of `stats`' verdicts: "6 supported, 1 inconclusive of 9"."""
    vs = list(verdicts)
    counts = [f"{vs.count(v)} {'not testable' if v == stats.NOT_TESTABLE else v}" for v in stats.VERDICTS if v in vs]
    return f"{', '.join(counts)} of {len(vs)}" if vs else "no test"


def _short(row: Mapping[str, Any]) -> str:
    """A comparison in a table cell: "Allegro+QDI vs Allegro+MLP, Cu-Li forces: +3.9% [-2.4, +10.3], n = 5"."""
    head = (f"{words.variant(row['other'])} vs {words.variant(row['reference'])}, {words.dataset(row['dataset'])} "
            f"{'forces' if row['metric'].startswith('f_') else 'energies'}")
    if "percent" not in row:
        return f"{head}: not run"
    return f"{head}: {row['percent']:+.1f}% [{row['percent_low']:+.1f}, {row['percent_high']:+.1f}], n = {row['n']}"


def _sentence(row: Mapping[str, Any]) -> str:
    head = (f"{words.variant(row['other'])} vs {words.variant(row['reference'])} on {words.dataset(row['dataset'])} "
            f"({words.metric(row['metric'])}, {row['split']} split)")
    if "percent" not in row:
        return f"{head}: {row.get('reason') or 'not run'}"
    return f"{head}: {stats.percent_clause(row)}"


def _part_verdicts(rows: Mapping[str, Mapping[str, Any]], ids: Iterable[str]) -> list[str]:
    """The verdict of each comparison `ids` in `rows` (by claim id); not testable where a comparison is missing."""
    return [rows[i]["verdict"] if i in rows else stats.NOT_TESTABLE for i in ids]


def claim_verdicts(rows: Iterable[Mapping[str, Any]], split: str = "test", page: str = "ablation"
                   ) -> list[dict[str, Any]]:
    """The records of the book's claims page: one per bundle with its verdict on `split`, evidence and the
    comparisons; and, where the rows hold the validation split too (the split of the paper's Tables 4-5), the
    verdict the same rule gives on it (`verdict_val`), so that a page can say where the two differ."""
    rows = list(rows)
    by_id = {r["claim"]: r for r in rows if r["split"] == split}
    by_val = {r["claim"]: r for r in rows if r["split"] == "val"}
    out = []
    for key, ids in BUNDLES.items():
        parts = [by_id.get(i) for i in ids]
        found = [p for p in parts if p is not None]
        part_verdicts = _part_verdicts(by_id, ids)
        items = [_sentence(p) for p in found]
        rec = {"claim": key, "verdict": combine(part_verdicts), "evidence": "; ".join(items), "items": items,
               "ours": [_short(p) for p in found], "tally": tally(part_verdicts), "page": page,
               "comparisons": list(ids)}
        if split != "val" and any(i in by_val for i in ids):
            rec["verdict_val"] = combine(_part_verdicts(by_val, ids))
        out.append(rec)
    return out


ENERGY_RULE = ("a head is strictly superior when its test energy MAE is significantly below each other head's "
               "(95% interval of the paired difference) on every dataset; supported when every head is "
               "significantly above another somewhere, contradicted when one head is superior on every dataset")


def _energy_dataset(rows: list[Mapping[str, Any]]) -> tuple[str | None, set[str], str]:
    """One dataset's pairwise energy comparisons: the head significantly below both others (or None), the heads
    significantly above another, and the dataset's clause of the evidence."""
    below: dict[str, set[str]] = {}
    above: set[str] = set()
    pairs = []
    for r in rows:
        low, high = ((r["other"], r["reference"]) if r["verdict"] == stats.SUPPORTED else
                     (r["reference"], r["other"]) if r["verdict"] == stats.CONTRADICTED else (None, None))
        if low is not None:
            below.setdefault(low, set()).add(high)
            above.add(high)
            pairs.append(f"{words.variant(high)} above {words.variant(low)}")
    heads = {h for r in rows for h in (r["reference"], r["other"])}
    winner = next((h for h, hs in below.items() if hs == heads - {h}), None)
    means = {r["reference"]: r["reference_mean"] for r in rows} | {r["other"]: r["other_mean"] for r in rows}
    lowest = min(means, key=means.__getitem__)
    name = words.dataset(rows[0]["dataset"])
    n = min(r["n"] for r in rows)
    text = (f"{name}: {words.variant(winner)} significantly lowest" if winner else
            f"{name}: {words.variant(lowest)} lowest, not significantly below both others")
    return winner, above, f"{text} ({'; '.join(pairs) or 'no pair differs significantly'}; {n} seeds)"


def energy_verdict(rows: Iterable[Mapping[str, Any]], split: str = "test") -> dict[str, Any]:
    """The claims page's record of `energy-no-winner` ("the energy results do not highlight any model to be
    strictly superior") from the paired energy comparisons of every pair of heads (`claims.energy_pairs`) by the
    rule `ENERGY_RULE`; a dataset with a pair of fewer than two paired seeds is not tested."""
    by: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        if r["split"] == split:
            by.setdefault(r["dataset"], []).append(r)
    untested = [d for d, rs in by.items() if any("percent" not in r for r in rs)]
    tested = {d: _energy_dataset(rs) for d, rs in by.items() if d not in untested}
    heads = {h for rs in by.values() for r in rs for h in (r["reference"], r["other"])}
    above = set().union(*(a for _, a, _ in tested.values()))
    winners = {w for w, _, _ in tested.values()}
    if heads and above >= heads:
        verdict = stats.SUPPORTED
    elif untested or not tested:
        verdict = stats.NOT_TESTABLE
    elif len(winners) == 1 and None not in winners:
        verdict = stats.CONTRADICTED
    else:
        verdict = stats.INCONCLUSIVE
    items = [c for _, _, c in tested.values()] + [f"{words.dataset(d)}: not tested (fewer than two paired seeds)"
                                                  for d in untested]
    return {"claim": "energy-no-winner", "verdict": verdict, "evidence": f"Rule: {ENERGY_RULE}. {'; '.join(items)}",
            "rule": ENERGY_RULE, "items": items, "ours": items, "tally": f"{len(tested)} of {len(by)} datasets tested",
            "page": "ablation", "comparisons": [r["claim"] for rs in by.values() for r in rs]}


def study_claim_verdicts(by_claim: Mapping[str, Iterable[Mapping[str, Any]]]) -> list[dict[str, Any]]:
    """The records of the book's claims page for the study and final-model claims (`study_claims.tests`)."""
    from qallegro.campaign.study_claims import page, rule, sentence

    out = []
    for key, rows in by_claim.items():
        rows = list(rows)
        items = [sentence(r) for r in rows] or ["no study at this scale"]
        out.append({"claim": key, "verdict": combine(r["verdict"] for r in rows), "evidence":
                    f"Rule: {rule(key, rows)}. {'; '.join(items)}", "rule": rule(key, rows), "items": items,
                    "tally": tally(r["verdict"] for r in rows), "page": page(key, rows)})
    return out


def ablation_comparisons(scale: str, dataset: str | None = None, splits: Iterable[str] = ("test", "val", "ood"),
                         claims: Iterable[Any] | None = None) -> list[dict[str, Any]]:
    """The paired comparisons (`qallegro.campaign.claims.verdict_table`) of the finished ablation records at
    `scale` (of one dataset, or all); a comparison whose dataset's ablation the scale cuts (`plan.cuts`) gives
    the cut's reason."""
    from qallegro.campaign.claims import CLAIMS, verdict_table
    from qallegro.campaign.plan import ablation_records, cut_reason, cuts

    cut = cuts(scale)
    return [r if "percent" in r or not (why := cut_reason(cut, f"ablation:{r['dataset']}")) else {**r, "reason": why}
            for r in verdict_table(ablation_records(scale, dataset), splits, CLAIMS if claims is None else claims)]


def write_verdicts(scale: str, dataset: str | None = None) -> tuple[list[dict[str, Any]], Any]:
    """The paired comparisons of the finished ablation records at `scale` (of one dataset, or all) written to
    `results/<scale>/campaign/ablation/[<dataset>-]verdicts.json`; for all datasets also the book's claims file
    (`qallegro.report.claims.verdicts_path`) with the study and final-model claims, whose tests go to
    `results/<scale>/campaign/study-verdicts.json`. Returns the comparison rows and the path written."""
    from qallegro.campaign.claims import energy_pairs
    from qallegro.campaign.plan import campaign_root
    from qallegro.report.claims import verdicts_path
    from qallegro.utils import atomic_write_json

    rows = ablation_comparisons(scale, dataset)
    if dataset:
        rows = [r for r in rows if r["dataset"] == dataset]
    path = campaign_root(scale) / "ablation" / (f"{dataset}-verdicts.json" if dataset else "verdicts.json")
    atomic_write_json(path, rows)
    if not dataset:
        from qallegro.campaign.study_claims import study_claim_tests

        tests = study_claim_tests(scale)
        atomic_write_json(campaign_root(scale) / "study-verdicts.json", tests)
        energy = ablation_comparisons(scale, splits=("test",), claims=energy_pairs())
        verdicts = [*claim_verdicts(rows), energy_verdict(energy), *study_claim_verdicts(tests)]
        atomic_write_json(verdicts_path(scale), {"scale": scale, "verdicts": verdicts})
    return rows, path
