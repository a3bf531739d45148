"""The paper's claims about its results, and the verdicts of our experiments on them.

`CLAIMS` lists what the paper states (abstract, results and discussion; see the paper notes, section 7). The
verdicts come from a records file written by the experiments that test them,
`results/<scale>/claims/verdicts.json`:

    {"scale": "quick", "verdicts": [{"claim": "qdi-13", "verdict": "contradicted",
                                      "evidence": "3 seeds: QDI 8% worse than MLP (95% CI -15% to -1%)",
                                      "page": "final_training"}, ...]}

`claim` is a key of `CLAIMS`, `verdict` one of `VERDICTS`; `evidence` (one sentence with the numbers), `rule`
(how the verdict is computed), `items` (the evidence as one clause per comparison or study), `ours` (the
comparisons in short: difference, interval, seeds), `tally` (the parts' verdicts counted) and `page` (the book page
that shows them, without suffix) are optional. A claim without a record reads "not tested at this scale".
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from qallegro.report.tables import Link
from qallegro.stats import VERDICTS

# a claim without a verdict record (the verdicts are `qallegro.stats.VERDICTS`; a claim with too few paired seeds
# is "not testable at this scale")
NOT_TESTED = "not tested at this scale"
# the pages that show a claim's evidence (a verdict record's `page`: the page's file name in `book/`)
PAGE_LABELS = {"ablation": "the head ablation", "moo_summary": "Fig. 2 and Tables 1-3",
               "final_training": "Tables 4-5"}


def page_link(page: str) -> Link:
    """A link to the book page `page` (a file name in `book/`, beside the claims page)."""
    return Link(PAGE_LABELS.get(page, page), f"{page}.html")


@dataclass(frozen=True)
class Claim:
    """One claim of the paper: what it says, where, and the paper's own evidence (a template whose numbers come
    from the paper's values file, see `paper_evidence`)."""

    key: str
    text: str
    where: str
    paper_evidence: str


CLAIMS: dict[str, Claim] = {c.key: c for c in (
    Claim("qdi-13", "Allegro+QDI is the most accurate variant on Cu-Li: almost 13% lower validation force error "
          "than Allegro+MLP", "abstract, section 4",
          "Table 4: {t4[culi][qdi]} vs {t4[culi][mlp]} meV/Å, one training run each"),
    Claim("mlp-forces", "Allegro+MLP predicts forces more accurately than Allegro on every dataset",
          "discussion", "Table 4 (Allegro+MLP vs Allegro, meV/Å): aspirin {t4[rmd17-aspirin][mlp]} vs "
          "{t4[rmd17-aspirin][allegro]}, benzene {t4[rmd17-benzene][mlp]} vs {t4[rmd17-benzene][allegro]}, "
          "Cu-Li {t4[culi][mlp]} vs {t4[culi][allegro]}"),
    Claim("trade-off", "Every dataset shows a trade-off between accuracy and inference time",
          "section 4, Fig. 2", "Fig. 2: the front of every study spans a range of errors and times"),
    Claim("qdi-time", "On Cu-Li, Allegro+QDI is slightly slower at inference than Allegro+MLP",
          "section 4, Fig. 2d", "Fig. 2d (digitised from a raster image, about ±0.02 s): fastest point Allegro+QDI "
          "{f2[culi][qdi][time]:.2f} s vs Allegro+MLP {f2[culi][mlp][time]:.2f} s"),
    Claim("mlp-accuracy-allegro-speed", "On rMD17-aspirin and rMD17-benzene Allegro+MLP is more accurate and "
          "Allegro faster at inference; on QM9 the opposite", "section 4, Fig. 2",
          "Fig. 2 (digitised; lowest error and shortest time of each front, Allegro+MLP vs Allegro): aspirin "
          "{f2[rmd17-aspirin][mlp][error]:.4f} vs {f2[rmd17-aspirin][allegro][error]:.4f} eV/Å, "
          "{f2[rmd17-aspirin][mlp][time]:.1f} vs {f2[rmd17-aspirin][allegro][time]:.1f} s; benzene "
          "{f2[rmd17-benzene][mlp][error]:.4f} vs {f2[rmd17-benzene][allegro][error]:.4f} eV/Å, "
          "{f2[rmd17-benzene][mlp][time]:.1f} vs {f2[rmd17-benzene][allegro][time]:.1f} s; QM9 "
          "{f2[qm9][mlp][error]:.3f} vs {f2[qm9][allegro][error]:.3f} (energy), "
          "{f2[qm9][mlp][time]:.1f} vs {f2[qm9][allegro][time]:.1f} s"),
    Claim("hyperparameter-significance", "Hyperparameters such as P (PolynomialCutoff_p) and the edge-MLP width "
          "are not significant", "section 4, Tables 1-3",
          "Tables 1-3 (Allegro / Allegro+MLP / Allegro+QDI), no statistical test: P on aspirin "
          "{t1[rmd17-aspirin][P]} / {t2[rmd17-aspirin][P]} / {t3[rmd17-aspirin][P]}, on Cu-Li {t1[culi][P]} / "
          "{t2[culi][P]} / {t3[culi][P]}; edge-MLP width on Cu-Li {t1[culi][edge_mlp]} / {t2[culi][edge_mlp]} / "
          "{t3[culi][edge_mlp]}, on QM9 {t1[qm9][edge_mlp]} / {t2[qm9][edge_mlp]} / {t3[qm9][edge_mlp]}"),
    Claim("qdi-benzene-energy", "Allegro+QDI has the best energy error on rMD17-benzene", "discussion",
          "Table 5 (meV/atom as printed): {t5[rmd17-benzene][qdi]} vs {t5[rmd17-benzene][allegro]} (Allegro) "
          "and {t5[rmd17-benzene][mlp]} (Allegro+MLP)"),
    Claim("qdi-culi-energy", "Allegro+QDI has the lowest Cu-Li energy error", "Table 5",
          "Table 5 (meV/atom as printed): {t5[culi][qdi]} vs {t5[culi][mlp]} (Allegro+MLP) and {t5[culi][allegro]} "
          "(Allegro)"),
    Claim("qm9-allegro-energy", "Allegro has the lowest QM9 energy error", "section 4, Table 5",
          "Table 5 (as printed): {t5[qm9][allegro]} vs {t5[qm9][mlp]} (Allegro+MLP) and {t5[qm9][qdi]} "
          "(Allegro+QDI)"),
    Claim("energy-no-winner", "Regarding energies, no model is strictly superior", "section 4, Table 5",
          "Table 5 (as printed; Allegro / Allegro+MLP / Allegro+QDI): aspirin {t5[rmd17-aspirin][allegro]} / "
          "{t5[rmd17-aspirin][mlp]} / {t5[rmd17-aspirin][qdi]}, benzene {t5[rmd17-benzene][allegro]} / "
          "{t5[rmd17-benzene][mlp]} / {t5[rmd17-benzene][qdi]}, QM9 {t5[qm9][allegro]} / {t5[qm9][mlp]} / "
          "{t5[qm9][qdi]}, Cu-Li {t5[culi][allegro]} / {t5[culi][mlp]} / {t5[culi][qdi]}; one training run each"),
    Claim("transfer", "QDI hyperparameters transferred from Cu-Li give models competitive with Allegro on "
          "aspirin, benzene and QM9", "section 5, Tables 4-6",
          "Allegro+QDI vs Allegro: force MAE aspirin {t4[rmd17-aspirin][qdi]} vs {t4[rmd17-aspirin][allegro]}, "
          "benzene {t4[rmd17-benzene][qdi]} vs {t4[rmd17-benzene][allegro]} meV/Å; QM9 energy MAE "
          "{t5[qm9][qdi]} vs {t5[qm9][allegro]} (as printed)"),
)}


def fig2_extremes() -> dict[str, dict[str, dict[str, float]]]:
    """Per dataset and variant, the lowest validation error (`error`) and the shortest inference time (`time`, s)
    of the paper's digitised Fig. 2 front (`qallegro.paper.fig2_points`)."""
    from qallegro.paper import fig2_points

    out: dict[str, dict[str, dict[str, float]]] = {}
    for (dataset, variant), g in fig2_points().groupby(["dataset", "variant"]):
        out.setdefault(dataset, {})[variant] = {"error": float(g["val_mae"].min()),
                                                "time": float(g["inference_time_s"].min())}
    return out


def paper_evidence(claim: Claim) -> str:
    """The paper's evidence of `claim` with its numbers filled in from the paper's values (`qallegro.paper`:
    `t1`-`t3` = Tables 1-3, `t4` = Table 4, `t5` = Table 5, `f2` = `fig2_extremes`)."""
    from qallegro.paper import values

    v = values()
    return claim.paper_evidence.format(t1=v["table1_allegro"], t2=v["table2_mlp"], t3=v["table3_qdi"],
                                       t4=v["table4_val_force_mae_meV_per_A"],
                                       t5=v["table5_val_energy_mae_meV_per_atom"], f2=fig2_extremes())


def verdicts_path(scale: str) -> Path:
    """Where the verdicts of `scale` are recorded: `<results>/<scale>/claims/verdicts.json`."""
    from qallegro.paths import results_root

    return results_root() / scale / "claims" / "verdicts.json"


def read_verdicts(path: Path) -> dict[str, dict[str, Any]]:
    """The verdict records of `path` (see the module docstring) by claim; {} when the file does not exist.
    A malformed file raises ValueError naming the file, the record and the problem."""
    path = Path(path)
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from None
    records = data.get("verdicts") if isinstance(data, dict) else None
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected an object with a list 'verdicts'")
    out: dict[str, dict[str, Any]] = {}
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            raise ValueError(f"{path}: verdicts[{i}] is not an object")
        claim, verdict = rec.get("claim"), rec.get("verdict")
        if claim not in CLAIMS:
            raise ValueError(f"{path}: verdicts[{i}].claim {claim!r} is not a known claim ({', '.join(CLAIMS)})")
        if verdict not in VERDICTS:
            raise ValueError(f"{path}: verdicts[{i}].verdict {verdict!r} must be one of {', '.join(VERDICTS)}")
        if claim in out:
            raise ValueError(f"{path}: verdicts[{i}]: a second verdict for claim {claim!r}")
        out[claim] = rec
    return out


def _val_differs(rec: Mapping[str, Any]) -> str | None:
    """The verdict on the validation split (the paper's) where the record has one that differs from its verdict."""
    val = rec.get("verdict_val")
    return val if val not in (None, rec.get("verdict")) else None


def verdict_table(verdicts: Mapping[str, Mapping[str, Any]], short: bool = False,
                  evidence: bool = True) -> pd.DataFrame:
    """One row per claim of `CLAIMS`: the claim, our verdict ("not tested at this scale" without a record; with
    the validation split's where that differs, `verdict_val`),
    and (unless `short`) where the paper says it, the paper's evidence, ours (the full evidence, or without
    `evidence` the short form: each comparison's difference, interval and seeds, and the parts' verdicts counted;
    `evidence_markdown` gives the rest) and the page that shows it."""
    rows = []
    for key, claim in CLAIMS.items():
        rec = verdicts.get(key, {})
        row = {"claim": claim.text, "verdict": rec.get("verdict", NOT_TESTED)}
        if val := _val_differs(rec):
            row["verdict"] += f" (validation split: {val})"
        if not short:
            row.update({"where in the paper": claim.where, "the paper's evidence": paper_evidence(claim)})
            if evidence:
                row["our evidence"] = rec.get("evidence")
            else:
                parts = [*(rec.get("ours") or []), *([f"parts: {rec['tally']}"] if rec.get("tally") else [])]
                row["ours (95% CI, seeds)"] = "; ".join(parts) or None
            row["page"] = page_link(rec["page"]) if rec.get("page") else None
        rows.append(row)
    return pd.DataFrame(rows)


def evidence_markdown(verdicts: Mapping[str, Mapping[str, Any]], page: str | None = None) -> str:
    """Our evidence claim by claim (Markdown): the claim in bold with its verdict and page, the rule that computes
    the verdict when the record has one, then one bullet per comparison or study (`items`, else `evidence`); with
    `page`, only the claims whose evidence that page shows (for the page itself, without the link to it)."""
    blocks = []
    for key, claim in CLAIMS.items():
        rec = verdicts.get(key)
        if page is not None and (rec is None or rec.get("page") != page):
            continue
        if rec is None:
            blocks.append(f"**{claim.text}**: *{NOT_TESTED}*.")
            continue
        link = page_link(rec["page"]) if rec.get("page") and page is None else None
        where = f" (shown on [{link}]({rec['page']}.ipynb))" if link else ""  # a MyST link to the notebook page
        val = f"; on the validation split, the paper's: *{other}*" if (other := _val_differs(rec)) else ""
        lines = [f"**{claim.text}**: *{rec['verdict']}*{val}{where}."]
        if rec.get("rule"):
            lines.append(f"How the verdict is computed: {rec['rule']}.")
        items = rec.get("items") or ([rec["evidence"]] if rec.get("evidence") else [])
        blocks.append("\n\n".join([*lines, "\n".join(f"- {item}" for item in items)] if items else lines))
    return "\n\n".join(blocks)


def n_tested(verdicts: Mapping[str, Mapping[str, Any]]) -> int:
    """How many claims have a verdict from a test (supported, contradicted or inconclusive): not those without a
    record or whose test could not run at the scale."""
    counts = verdict_counts(verdicts)
    return sum(counts[v] for v in VERDICTS[:3])


def verdict_counts(verdicts: Mapping[str, Mapping[str, Any]]) -> dict[str, int]:
    """How many claims have each verdict (and how many are not tested)."""
    counts = dict.fromkeys((*VERDICTS, NOT_TESTED), 0)
    for key in CLAIMS:
        counts[verdicts.get(key, {}).get("verdict", NOT_TESTED)] += 1
    return counts


def verdict_of(key: str, scale: str) -> dict[str, Any]:
    """Our verdict on claim `key` at `scale` from the verdicts file (`verdicts_path`): `verdict` (NOT_TESTED
    without a record, as on the claims page), `evidence` and `page` ("" where absent)."""
    if key not in CLAIMS:
        raise ValueError(f"unknown claim {key!r}; known: {', '.join(CLAIMS)}")
    rec = read_verdicts(verdicts_path(scale)).get(key, {})
    return {"verdict": rec.get("verdict", NOT_TESTED), "evidence": rec.get("evidence") or "",
            "page": rec.get("page") or ""}
