"""The book's display helpers: one table style, the claims and their verdicts, the page footer with its
downloads, the parameters a page shows, Table 6 per molecule and the project-site configuration."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from qallegro import paper
from qallegro.pipeline import compare, page
from qallegro.pipeline.build import publish, site_config
from qallegro.pipeline.notebooks import NOTEBOOKS
from qallegro.report import claims, tables
from qallegro.scales import BOOK_SCALE

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(("value", "digits", "text"), [
    (201.854, 3, "202"), (0.10812, 3, "0.108"), (12345.6, 3, "12,346"), (0.006, 3, "0.006"), (7.3, 3, "7.3"),
    (0.000123456, 2, "0.00012"), (1.5e-5, 3, "1.50e-05"), (-2.449, 2, "-2.4"), (0.0, 3, "0"),
    (3, 3, "3"), (123456, 3, "123,456"), (True, 3, "yes"), (None, 3, "–"), (float("nan"), 3, "–"),
    (pd.NA, 3, "–"), ("", 3, "–"), ("Cu-Li", 3, "Cu-Li"), (float("inf"), 3, "∞"),
])
def test_format_number(value: object, digits: int, text: str) -> None:
    assert tables.format_number(value, digits) == text


def test_format_number_keeps_the_significant_figures() -> None:
    """Reading a formatted number back agrees with the value to the requested significant figures (the integer
    part is never rounded away: 271.8 to 2 figures reads 272)."""
    for x in (3.14159, 271.828, 0.0161803, 6.02214, 1234.5678, 0.99951):
        for digits in (2, 3, 4):
            back = float(tables.format_number(x, digits).replace(",", ""))
            expected = float(f"{x:.{digits - 1}e}") if abs(x) < 10 ** (digits - 1) else float(round(x))
            assert math.isclose(back, expected, rel_tol=1e-12), (x, digits, back)


def test_display_frame_headers_index_and_missing() -> None:
    df = pd.DataFrame({"dataset": ["Cu-Li", "QM9"], "ours": [0.0431, None], "paper": [37.8, float("nan")]})
    df = df.set_index("dataset")
    out = tables.display_frame(df, units={"ours": "meV/Å", "paper": "meV/Å"}, paper=["paper", "ours"])
    assert list(out.columns) == ["dataset", "ours (paper) [meV/Å]", "paper [meV/Å]"]  # 'paper' already says so
    assert out.iloc[1].tolist() == ["QM9", "–", "–"]
    assert out.iloc[0].tolist() == ["Cu-Li", "0.0431", "37.8"]
    plain = tables.display_frame(pd.DataFrame({"a": [1, 2]}))
    assert list(plain.columns) == ["a"]  # a default 0..N-1 index is not shown


def test_display_table_splits_wide_tables_and_repeats_the_keys() -> None:
    df = pd.DataFrame([[i * 10 + j for j in range(12)] for i in range(3)], columns=[f"c{j}" for j in range(12)])
    df.index = pd.Index(["a", "b", "c"], name="row")
    table = tables.display_table(df, max_columns=5)
    assert [len(f.columns) for f in table.frames] == [5, 5, 5]
    assert all(f.columns[0] == "row" for f in table.frames)
    shown = [c for f in table.frames for c in f.columns[1:]]
    assert shown == [f"c{j}" for j in range(12)]
    html = table._repr_html_()
    assert html.count("<table") == 3 and "NaN" not in html and "None" not in html
    assert '<td class="num">31</td>' in html and "<td>b</td>" in html
    assert "&lt;b&gt;" in tables.to_html(pd.DataFrame({"x": ["<b>"]}))
    with pytest.raises(ValueError, match="must exceed"):
        tables.split_columns(["a", "b"], keys=2, max_columns=2)


def _write(path: Path, data: object) -> Path:
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_verdicts_default_to_not_tested_and_are_read_from_the_records_file(tmp_path: Path) -> None:
    assert claims.read_verdicts(tmp_path / "missing.json") == {}
    table = claims.verdict_table({}, short=True)
    assert list(table.columns) == ["claim", "verdict"] and len(table) == len(claims.CLAIMS)
    assert set(table["verdict"]) == {claims.NOT_TESTED}
    path = _write(tmp_path / "v.json", {"scale": "quick", "verdicts": [
        {"claim": "qdi-13", "verdict": "contradicted", "evidence": "3 seeds", "page": "final_training"}]})
    verdicts = claims.read_verdicts(path)
    full = claims.verdict_table(verdicts).set_index("claim")
    row = full.loc[claims.CLAIMS["qdi-13"].text]
    assert row["verdict"] == "contradicted" and row["our evidence"] == "3 seeds"
    assert claims.verdict_counts(verdicts)[claims.NOT_TESTED] == len(claims.CLAIMS) - 1
    assert claims.n_tested(verdicts) == 1
    assert claims.n_tested({**verdicts, "qm9-allegro-energy": {"verdict": "not testable at this scale"}}) == 1
    short = claims.verdict_table(verdicts, evidence=False)
    assert "our evidence" not in short.columns
    ours = {**verdicts["qdi-13"], "ours": ["QDI vs MLP: +3.9% [-2.4, +10.3], n = 5"], "tally": "1 inconclusive of 1"}
    cell = claims.verdict_table({"qdi-13": ours}, evidence=False).set_index("claim").loc[
        claims.CLAIMS["qdi-13"].text, "ours (95% CI, seeds)"]
    assert cell == "QDI vs MLP: +3.9% [-2.4, +10.3], n = 5; parts: 1 inconclusive of 1"
    # where the validation split (the paper's) judges otherwise, the verdict says so; where it agrees, nothing
    split = {"qdi-13": {**verdicts["qdi-13"], "verdict_val": "inconclusive"}}
    assert claims.verdict_table(split, short=True)["verdict"].iloc[0] == \
        "contradicted (validation split: inconclusive)"
    assert "*contradicted*; on the validation split, the paper's: *inconclusive*" in claims.evidence_markdown(split)
    same = {"qdi-13": {**verdicts["qdi-13"], "verdict_val": "contradicted"}}
    assert claims.verdict_table(same, short=True)["verdict"].iloc[0] == "contradicted"
    from qallegro.report.tables import display_table

    html = display_table(full.reset_index()[["claim", "page"]])._repr_html_()
    assert '<td><a href="final_training.html">Tables 4-5</a></td>' in html and '<td class="num">–</td>' in html


def test_evidence_claim_by_claim() -> None:
    """The evidence section: the rule and one bullet per item where the record has them, else its sentence; a
    claim without a record reads not tested."""
    md = claims.evidence_markdown({
        "trade-off": {"verdict": "inconclusive", "evidence": "x", "rule": "two members differ", "page": "moo_summary",
                      "items": ["Cu-Li Allegro: inconclusive (a; b)", "QM9 Allegro: supported"]},
        "qdi-13": {"verdict": "contradicted", "evidence": "+5% over 3 seeds"}})
    blocks = {b.split("**")[1]: b for b in re.split(r"\n\n(?=\*\*)", md)}
    trade = blocks[claims.CLAIMS["trade-off"].text]
    assert "*inconclusive* (shown on [Fig. 2 and Tables 1-3](moo_summary.ipynb))" in trade
    assert "How the verdict is computed: two members differ." in trade
    assert trade.endswith("- Cu-Li Allegro: inconclusive (a; b)\n- QM9 Allegro: supported")
    assert blocks[claims.CLAIMS["qdi-13"].text].endswith("*contradicted*.\n\n- +5% over 3 seeds")
    assert blocks[claims.CLAIMS["transfer"].text].endswith(f"*{claims.NOT_TESTED}*.")
    assert len(blocks) == len(claims.CLAIMS)
    # on the page that shows the evidence: only its claims, without a link to itself
    own = claims.evidence_markdown({"trade-off": {"verdict": "inconclusive", "page": "moo_summary", "items": ["a"]},
                                    "qdi-13": {"verdict": "contradicted", "page": "ablation"}}, page="moo_summary")
    assert own == f"**{claims.CLAIMS['trade-off'].text}**: *inconclusive*.\n\n- a"


@pytest.mark.parametrize(("records", "message"), [
    ({"verdicts": [{"claim": "nope", "verdict": "supported"}]}, r"verdicts\[0\]\.claim 'nope' is not a known"),
    ({"verdicts": [{"claim": "qdi-13", "verdict": "true"}]}, r"verdicts\[0\]\.verdict 'true' must be one of"),
    ({"verdicts": [{"claim": "qdi-13", "verdict": "supported"}] * 2}, r"verdicts\[1\]: a second verdict"),
    ({"claims": []}, "expected an object with a list 'verdicts'"),
])
def test_bad_verdict_files_are_named_with_the_problem(tmp_path: Path, records: dict, message: str) -> None:
    path = _write(tmp_path / "verdicts.json", records)
    with pytest.raises(ValueError, match=message) as err:
        claims.read_verdicts(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(ValueError, match=r"bad\.json: not valid JSON"):
        claims.read_verdicts(tmp_path / "bad.json")


def test_paper_evidence_numbers_come_from_the_paper_values() -> None:
    t4 = paper.values()["table4_val_force_mae_meV_per_A"]
    text = claims.paper_evidence(claims.CLAIMS["qdi-13"])
    assert f"{t4['culi']['qdi']} vs {t4['culi']['mlp']} meV/Å" in text
    for claim in claims.CLAIMS.values():
        assert "{" not in claims.paper_evidence(claim), claim.key


def test_parameters_cell_shows_the_injected_values() -> None:
    nb = {"cells": [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]},
         "source": 'scale: str = "quick"  # smoke|quick|paper\n'
                   'dataset: str = "culi"  # which data = yes\nseed: int = 0'},
        {"cell_type": "code", "metadata": {"tags": ["injected-parameters"]},
         "source": '# Parameters\nscale = "quick"\ndataset = "qm9"\nseed = 3\n'}]}
    shown = page.show_injected(nb)["cells"][0]["source"]
    assert shown.splitlines() == ['scale: str = "quick"  # smoke|quick|paper',
                                  'dataset: str = "qm9"  # which data = yes', "seed: int = 3"]
    assert page.assignments(shown) == page.assignments(nb["cells"][1]["source"])
    alone = {"cells": [{"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": "seed: int = 0  # s"}]}
    assert page.show_injected(alone)["cells"][0]["source"] == "seed: int = 0  # s"


def test_stored_pandas_tables_are_shown_in_the_book_style() -> None:
    """A table as pandas stored it (0..N-1 index, NaN and None, a record name, 10 columns) comes back split,
    with its displayed strings unchanged, "–" for missing values and the objective's label."""
    df = pd.DataFrame([[i, None if i else float("nan"), 0.123456789, *range(7)] for i in range(3)],
                      columns=["number", "val_f_mae", "r_max", *[f"p{k}" for k in range(7)]])
    nb = {"cells": [{"cell_type": "code", "outputs": [{"output_type": "execute_result",
                                                       "data": {"text/html": df.to_html()}}]}]}
    html = page.restyle_stored_tables(nb, max_columns=6)["cells"][0]["outputs"][0]["data"]["text/html"]
    assert html.count('<table class="qallegro-table">') == 2 and "dataframe" not in html
    assert "NaN" not in html and "None" not in html and "<td class=\"num\">–</td>" in html
    assert "validation force MAE (eV/Å)" in html and "val_f_mae" not in html
    assert ">0.123457<" in html  # pandas' displayed string, not re-rounded
    back = page.stored_table(df.to_html())
    assert list(back.columns)[:2] == ["number", "validation force MAE (eV/Å)"] and len(back) == 3


def test_footer_links_every_result_file_relative_to_the_page(tmp_path: Path) -> None:
    book = tmp_path / "book"
    (book / "moo").mkdir(parents=True)
    result = tmp_path / "results" / "quick" / "hpo" / "s" / "trials.csv"
    result.parent.mkdir(parents=True)
    result.write_text("a\n1\n")
    files = page.result_files(["results/{scale}/hpo/*/trials.csv".format(scale="quick"), "nothing/*"], tmp_path)
    assert files == [result]
    record = {"scale": "quick", "git_commit": "0123456789abcdef", "finished": "2026-11-25T21:00:00+00:00",
              "versions": {"qallegro": "0.1.0"}}
    text = page.footer_markdown(record, True, "fedcba9876543210", files, tmp_path, book, "moo/x.ipynb")
    assert "commit `0123456789`" in text and "2026-11-25" in text and "`fedcba9876`" in text
    link = text.split("<")[-1].split(">")[0]
    assert (book / "moo" / link).resolve() == result.resolve()
    stale = page.footer_markdown(record, False, None, [], tmp_path, book, "x.ipynb")
    assert "Out of date" in stale and "reads no committed result file" in stale
    missing = page.footer_markdown(record, True, None, [], tmp_path, book, "x.ipynb", ["results/q/v.json"])
    assert "None of its result files exists at this scale (it reads `results/q/v.json`" in missing


def test_every_page_with_results_finds_its_committed_files() -> None:
    """The registry's result globs match committed files (a renamed result file would leave a page's
    download list silently empty)."""
    for nb in NOTEBOOKS:
        for pattern in nb.result_patterns(BOOK_SCALE):
            assert page.result_files([pattern], ROOT), f"{nb.name}: no file matches {pattern}"


def test_best_points_and_hyperparameters_per_column() -> None:
    points = paper.fig2_points()
    chosen = {("culi", "qdi"): {"val_f_mae": 0.05, "inference_total_s": 1.0},
              ("qm9", "allegro"): {"val_e_mae": 0.02, "inference_total_s": 0.5}}
    forces = compare.best_points(chosen, points, forces=True)
    culi = points[(points["dataset"] == "culi") & (points["variant"] == "qdi")]
    assert forces.iloc[0]["ours: lowest error"] == pytest.approx(50.0)
    assert forces.iloc[0]["paper: lowest error"] == pytest.approx(1e3 * culi["val_mae"].min())
    energy = compare.best_points(chosen, points, forces=False)
    assert list(energy["dataset"]) == ["QM9"] and energy.iloc[0]["ours: lowest error"] == pytest.approx(20.0)
    table = compare.hyperparameter_table({("culi", "mlp"): {"r_max": 5.5}, ("qm9", "mlp"): {"r_max": 6.5}}, "mlp")
    wide = compare.per_hyperparameter(table)
    assert wide.loc["r_max [Å]", "QM9: ours"] == 6.5
    assert wide.loc["r_max [Å]", "QM9: paper (Table 2)"] == paper.best_hyperparameters("qm9", "mlp")["r_max"]


def test_table6_per_molecule_puts_each_energy_in_its_unit() -> None:
    finals = {("rmd17-aspirin", "allegro"): {"test": {"f_mae": 0.02, "e_mae": 0.001, "etot_mae": 0.021}},
              ("qm9", "mlp"): {"test": {"e_mae": 0.002, "etot_mae": 0.036}}}
    lit = paper.values()["table6_literature"]["rows"]
    asp = compare.table6_molecule(finals, "aspirin")
    assert asp.loc["MACE (literature)", "energy MAE per molecule"] == lit["MACE"][1]
    assert pd.isna(asp.loc["MACE (literature)", "energy MAE per atom"])
    assert asp.loc["Allegro (paper)", "energy MAE as printed"] == lit["Allegro (paper)"][1]
    ours = asp.loc["Allegro (ours, test)"]
    assert ours["force MAE"] == pytest.approx(20.0) and ours["energy MAE per atom"] == pytest.approx(1.0)
    assert ours["energy MAE per molecule"] == pytest.approx(21.0)
    assert "Allegro+MLP (ours, test)" not in asp.index  # no such model: no empty row
    qm9 = compare.table6_molecule(finals, "QM9")
    assert "force MAE" not in qm9.columns and "NequIP (literature)" not in qm9.index
    assert qm9.loc["Allegro (literature, the paper's ref. 12)", "energy MAE as printed"] == lit["Allegro [12]"][4]
    assert qm9.loc["Allegro+MLP (ours, test)", "energy MAE per molecule"] == pytest.approx(36.0)


def test_site_config_turns_the_buttons_on_with_the_url(tmp_path: Path) -> None:
    out = site_config(ROOT / "_config.yml", "https://github.com/o/qallegro/", tmp_path / "site" / "_config.yml")
    cfg = yaml.safe_load(out.read_text())
    assert cfg["repository"]["url"] == "https://github.com/o/qallegro"
    assert cfg["html"]["use_repository_button"] and cfg["html"]["use_issues_button"]
    assert cfg["launch_buttons"]["binderhub_url"].startswith("https://mybinder.org")
    ext = Path(cfg["sphinx"]["local_extensions"]["qallegro_book"])
    assert ext.is_absolute() and (ext / "qallegro_book.py").is_file()
    committed = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert committed["repository"]["url"] == "" and not committed["html"]["use_repository_button"]
    with pytest.raises(ValueError, match="must start with https://"):
        site_config(ROOT / "_config.yml", "github.com/o/q", tmp_path / "c.yml")
    assert os.path.basename(out) == "_config.yml"


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def test_publish_pushes_the_html_to_a_gh_pages_branch(tmp_path: Path) -> None:
    """`make publish`'s last step against a local bare repository: the branch holds exactly the built files."""
    remote = tmp_path / "remote.git"
    _git("init", "--bare", "-q", str(remote), cwd=tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    _git("init", "-q", cwd=repo)
    for key, value in (("user.name", "t"), ("user.email", "t@example.org")):
        _git("config", key, value, cwd=repo)
    (repo / "README.md").write_text("x\n")
    _git("add", "README.md", cwd=repo)
    _git("commit", "-qm", "first", cwd=repo)
    _git("remote", "add", "origin", str(remote), cwd=repo)
    html = repo / "_build" / "html"
    (html / "_static").mkdir(parents=True)
    (html / "index.html").write_text("<html>book</html>")
    (html / "_static" / "qallegro.css").write_text("p {}")
    publish(html, repo, "origin", "gh-pages", "book at test")
    files = set(_git("ls-tree", "-r", "--name-only", "gh-pages", cwd=remote).split())
    assert files == {".nojekyll", "index.html", "_static/qallegro.css"}
    assert _git("log", "-1", "--format=%s", "gh-pages", cwd=remote).strip() == "book at test"
    assert _git("show", "gh-pages:index.html", cwd=remote) == "<html>book</html>"
    with pytest.raises(FileNotFoundError, match=r"index\.html is missing"):
        publish(tmp_path, repo)


def test_ci_workflow_builds_the_committed_pages_and_deploys_them() -> None:
    """The site workflow builds with this module (no computation) for this repository's URL and deploys the
    HTML folder that `build_book` writes; `make publish` calls the same module."""
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    steps = [s for job in flow["jobs"].values() for s in job["steps"]]
    runs = " ".join(s.get("run", "") for s in steps)
    assert "python -m qallegro.pipeline.build --site-url" in runs and "make mathjax" in runs
    assert "reproduce" not in runs  # nothing is computed
    uses = {s.get("uses", "").split("@")[0]: s for s in steps}
    assert uses["actions/upload-pages-artifact"]["with"]["path"] == "_build/html"
    assert "actions/deploy-pages" in uses
    assert "python -m qallegro.pipeline.build" in (ROOT / "Makefile").read_text()


def test_spread_gadgets_moves_only_the_gadgets_apart() -> None:
    import pyzx as zx
    from qallegro.report.figures import spread_gadgets

    g = zx.Graph()
    a = g.add_vertex(zx.VertexType.Z, qubit=0, row=1)
    b = g.add_vertex(zx.VertexType.Z, qubit=0, row=2)
    t1 = g.add_vertex(zx.VertexType.Z, qubit=-1, row=3)
    t2 = g.add_vertex(zx.VertexType.Z, qubit=-1, row=4)
    g.add_edges([(a, b), (a, t1), (b, t2)])
    out = spread_gadgets(g, 2.0)
    assert [out.row(v) for v in (a, b)] == [1, 2] and [out.row(v) for v in (t1, t2)] == [2.5, 4.5]
    assert g.row(t1) == 3 and out.num_edges() == g.num_edges()  # the input is left alone


def test_culi_split_summary_and_tables_from_provenance() -> None:
    from qallegro.report import culi

    v1 = {"n_frames": 1494}
    assert "single frames at random (split version 1)" in culi.split_summary(v1)
    assert culi.split_counts(v1).empty and culi.decorrelation_table(v1).empty
    v2 = {"n_frames": 100, "split": {"split_version": 2, "block_fs": 150.0, "buffer_fs": 42.0, "n_dropped": 7,
                                     "n_ood": 20, "ood_groups": ["Li/Cu(111)"],
                                     "force_decorrelation_fs": {"md:Li/Cu(110)": 38.5, "md:Li/Cu(111)": 41.2},
                                     "counts": {"train": {"md": 50, "slab": 10}, "val": {"md": 8},
                                                "test": {"md": 5, "slab": 1}, "ood": {"md": 20},
                                                "dropped": {"md": 6}}}}
    text = culi.split_summary(v2)
    assert "blocks of 150 fs" in text and "41.2 fs" in text and "42 fs" in text and "Li/Cu(111) (20 frames)" in text
    counts = culi.split_counts(v2)
    assert counts.loc["all", "training"] == 60 and counts.loc["slab", "validation"] == 0
    assert counts.loc["melt-quench MD", "held-out interface"] == 20 and counts.loc["all", "dropped (buffers)"] == 6
    table = culi.decorrelation_table(v2)
    assert table.set_index("trajectory")["held out"].to_dict() == {"Li/Cu(110)": False, "Li/Cu(111)": True}
    v2["split"]["force_decorrelation_fs"]["md:Li/Cu(110)#1"] = 30.0  # a second run of one orientation
    table = culi.decorrelation_table(v2)
    assert list(table["trajectory"]) == ["Li/Cu(110), run 1", "Li/Cu(111)", "Li/Cu(110), run 2"]


def test_ablation_setting_note_reads_the_presets() -> None:
    from qallegro import scales
    from qallegro.report.ablation import setting_note

    note = setting_note("overnight")
    over = scales.settings("campaign", "overnight")["ablation"]["overrides"]
    assert f"{over['n_train']} training structures" in note and f"{over['max_epochs']} epochs" in note
    assert "3000 for rMD17" in note and "QDI: 4 input features, depth 3" in note
    assert "(QM9: 1,000; the paper" in note and "(rMD17-aspirin and QM9: 30; the paper" in note
    cut = setting_note("overnight", {"ablation:qm9": "cut for the budget", "compare": "cut too"})
    assert "(QM9: 1,000" not in cut and "(rMD17-aspirin: 30; the paper" in cut
    assert cut.endswith(" The QM9 head ablation is not run at this scale: cut for the budget.")


def test_culi_split_sentence() -> None:
    from qallegro.report.culi import split_sentence

    random = split_sentence({"train": 80, "val": 10, "test": 10}, {"n_frames": 100})
    assert "at random" in random and "80 / 10 / 10" in random
    group = split_sentence({"train": 1130, "val": 158, "test": 150, "ood": 661},
                           {"n_frames": 2227, "split": {"split_version": 2}})
    assert "by group" in group and "1,130 / 158 / 150" in group and "661 frames of the held-out interface" in group
    assert "(128 frames of the buffers are in no split)" in group


def test_resolution_table_per_dataset() -> None:
    from qallegro.report.ablation import resolution_table

    def row(dataset: str, metric: str, split: str, n: int, low: float, high: float, need: int) -> dict:
        return {"dataset": dataset, "metric": metric, "split": split, "n": n, "percent": (low + high) / 2,
                "percent_low": low, "percent_high": high, "seeds_for_10_percent": need}

    rows = [row("culi", "f_mae", "test", 5, -2.0, 10.0, 4), row("culi", "f_mae", "test", 5, -8.0, 8.0, 5),
            row("culi", "e_mae", "test", 5, -40.0, 40.0, 90), row("culi", "f_mae", "val", 5, -30.0, 30.0, 50),
            row("qm9", "e_mae", "test", 3, -20.0, 10.0, 9),
            {"dataset": "rmd17-aspirin", "metric": "f_mae", "split": "test", "n": 0}]  # no paired seeds yet
    table = resolution_table(rows).set_index(["dataset", "error"])
    assert table.loc["Cu-Li", "forces"].to_dict() == {"seeds": 5, "95% CI half-width": 8.0, "seeds for 10%": 5,
                                                      "10% resolved": True}
    assert table.loc["Cu-Li", "energies"].to_dict() == {"seeds": 5, "95% CI half-width": 40.0, "seeds for 10%": 90,
                                                        "10% resolved": False}
    qm9 = table.loc["QM9", "energies"]
    assert qm9["95% CI half-width"] == 15.0 and not qm9["10% resolved"]
    assert "rMD17-aspirin" not in table.index.get_level_values(0)


def test_outlier_runs_are_named_and_kept() -> None:
    from qallegro.report.ablation import outlier_sentence

    def rec(variant: str, seed: int, e: float, f: float = 0.05) -> dict:
        return {"dataset": "rmd17-benzene", "variant": variant, "seed": seed, "test": {"e_mae": e, "f_mae": f}}

    records = [rec("qdi", s, e) for s, e in enumerate([0.0010, 0.0012, 0.0009, 0.0060])] + [
        rec("allegro", s, 0.0030) for s in range(4)]
    text = outlier_sentence(records)
    assert "Allegro+QDI seed 3 on rMD17-benzene (energies: 6.00 meV/atom, against a median of 1.00" in text
    assert "3 other seeds" in text and "Allegro seed" not in text and "no seed is dropped" in text
    assert outlier_sentence(records[:3]).startswith("No run's test error")


def test_sweep_table_marks_a_chosen_rate_at_the_grid_edge() -> None:
    from qallegro.report.ablation import sweep_table

    def rec(dataset: str, lr: float, f: float) -> dict:
        return {"dataset": dataset, "protocol": {"learning_rate": lr, "batch_size": 2}, "val": {"f_mae": f}}

    qm9 = [{"dataset": "qm9", "protocol": {"learning_rate": lr, "batch_size": 2}, "val": {"f_mae": None, "e_mae": e}}
           for lr, e in ((0.01, 0.008), (0.02, 0.009))]   # no forces: chosen by its energy error
    table = sweep_table([rec("rmd17-aspirin", 0.02, 0.05), rec("rmd17-aspirin", 0.04, 0.04),
                         rec("rmd17-benzene", 0.01, 0.05), rec("rmd17-benzene", 0.02, 0.03),
                         rec("rmd17-benzene", 0.04, 0.04), *qm9])
    chosen = table[table["chosen"]].set_index("dataset")["learning rate at the edge"].to_dict()
    assert chosen == {"rMD17-aspirin": "largest tried", "rMD17-benzene": "", "QM9": "smallest tried"}


def test_intervals_below_minus_100_percent_are_named() -> None:
    from qallegro.report.ablation import interval_note

    rows = [{"dataset": "rmd17-benzene", "metric": "e_mae", "percent": 100.0, "percent_low": -201.0,
             "percent_high": 401.0}, {"dataset": "culi", "metric": "f_mae", "percent": 4.0, "percent_low": -2.0,
                                      "percent_high": 10.0}, {"dataset": "qm9", "metric": "e_mae"}]
    assert interval_note(rows).startswith("1 interval(s) reach below -100% (rMD17-benzene energies)")
    assert interval_note(rows[1:]) == ""


def test_sampler_pairs_are_told_apart_only_beyond_both_seed_ranges() -> None:
    from qallegro.report.optimisers import sampler_ranking, separated_pairs

    hv = pd.DataFrame([{"sampler": s, "seed": k, "n_complete": 30, "hypervolume": v}
                       for s, vals in (("tpe", (1.200, 1.198)), ("samo-cobra", (1.180, 1.176)),
                                       ("random", (1.15, 1.19))) for k, v in enumerate(vals)])
    apart, pairs = separated_pairs(sampler_ranking(hv))
    # tpe - samo-cobra 0.021 beyond both ranges (0.002, 0.004); random's range 0.04 covers its gaps to both
    assert len(pairs) == 3 and apart == [("tpe", "samo-cobra")]


def test_result_globs_apply_where_their_files_can_exist(monkeypatch: pytest.MonkeyPatch) -> None:
    """A page lists for download only the files its scale can produce: the HPO finals where the pages train
    them, the campaign's finals where the scale runs some (overnight: rMD17's; none where it cuts every
    dataset's), the sampler comparison where the scale does not cut it."""
    from qallegro.campaign import studies
    from qallegro.pipeline.notebooks import result_applies

    hpo_final, campaign_final = "results/{scale}/hpo/*-x-s*/final-lowest_error.json", "results/{scale}/campaign/final/*"
    compare = "results/{scale}/hpo/compare-*/hypervolume.csv"
    assert result_applies(campaign_final, "overnight") and result_applies(compare, "overnight")
    real = studies._settings("overnight")
    with monkeypatch.context() as m:
        m.setattr(studies, "_settings", lambda scale: {**real, "cut": {"finals": "cut for time"}})
        assert not result_applies(campaign_final, "overnight")
    from qallegro.pipeline import notebooks

    with monkeypatch.context() as m:
        m.setattr(notebooks, "settings", lambda kind, scale: {**real, "cut": {"compare": "cut for time"}})
        assert not result_applies(compare, "overnight")
    assert not result_applies(hpo_final, "overnight") and not result_applies(hpo_final, "smoke")
    assert result_applies(campaign_final, "smoke") and result_applies(compare, "smoke")
    assert result_applies(hpo_final, "paper") and not result_applies(campaign_final, "paper")
    assert result_applies("results/{scale}/claims/verdicts.json", "overnight")


def test_relative_figure_shows_qm9_once_and_outlying_ratios_on_a_labelled_log_axis() -> None:
    import matplotlib.pyplot as plt
    from qallegro.report.ablation import relative_figure

    def rec(dataset: str, variant: str, seed: int, f: float | None, e: float) -> dict:
        return {"dataset": dataset, "variant": variant, "seed": seed, "test": {"f_mae": f, "e_mae": e}}

    records = [rec("rmd17-benzene", v, s, 0.01, {"allegro": 0.001, "mlp": 0.0011, "qdi": 0.001}[v]
                   * (14 if (v, s) == ("qdi", 3) else 1 + 0.05 * s)) for v in ("allegro", "mlp", "qdi")
               for s in range(4)]
    records += [rec("qm9", v, s, None, 0.01) for v in ("allegro", "mlp", "qdi") for s in range(2)]
    forces = [ax for ax in relative_figure(records).axes if ax.get_visible()]
    energies = [ax for ax in relative_figure(records, energy=True).axes if ax.get_visible()]
    assert sorted(ax.get_title() for ax in forces) == ["QM9", "rMD17-benzene"]
    assert [ax.get_title() for ax in energies] == ["rMD17-benzene"]   # QM9's energies are in the forces block
    ax = energies[0]
    assert ax.get_yscale() == "log" and forces[0].get_yscale() == "linear"
    ax.figure.canvas.draw()
    labels = [t.get_text() for t in ax.get_yticklabels() if t.get_text()]
    assert len(labels) >= 4 and "10" in labels and "1" in labels, labels
    plt.close("all")


def test_gpaw_subset_tables_put_energies_in_mev_per_atom_and_agree_with_the_frames() -> None:
    """The committed GPAW subset: per-frame errors and per-category MAEs in one unit (meV/atom), the categories'
    MAE recomputed from the frames' signed errors."""
    from qallegro.report.culi import gpaw_subset

    root = Path(__file__).resolve().parents[1]
    subset = gpaw_subset(root / "data" / "culi" / "gpaw_subset_overnight.csv")
    raw = pd.read_csv(root / "data" / "culi" / "gpaw_subset_overnight.csv")
    frames, categories = subset["frames"], subset["categories"]
    assert frames["formation-energy error"].tolist() == pytest.approx((1000 * raw["e_form_error_eV_atom"]).tolist())
    by_category = frames.groupby("category")["formation-energy error"].apply(lambda e: e.abs().mean())
    for category, mae in by_category.items():
        assert categories.loc[category, "formation-energy MAE"] == pytest.approx(mae, rel=1e-4)
    assert categories.loc["all", "formation-energy MAE"] == pytest.approx(
        frames["formation-energy error"].abs().mean(), rel=1e-4)
