"""The pipeline behind `qallegro reproduce`: dependency order, cache hits and misses, failures that keep the good
page and name the notebook and the cell, and the temporary copy. Uses tiny throwaway notebooks in tmp dirs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook
from qallegro.pipeline.cache import cache_key, source_hash, stored_record
from qallegro.pipeline.notebooks import Notebook, check_registry, select
from qallegro.pipeline.reproduce import copy_repo, plan, reproduce, reproduce_in_copy, run


def write_nb(path: Path, body: str, params: str = 'scale: str = "quick"  # smoke|quick|paper\n'
             'x: int = 1  # a number') -> Path:
    nb = new_notebook(cells=[new_markdown_cell("# A page"),
                             new_code_cell(params, metadata={"tags": ["parameters"]}),
                             new_code_cell(body)],
                      metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                               "language": "python"}})
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def outputs_text(path: Path) -> str:
    nb = nbformat.read(path, as_version=4)
    return "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


# ---- registry and order (no kernels) ----

def test_dependency_order_and_selection() -> None:
    nbs = [Notebook("c", "c.ipynb", depends=("b",)), Notebook("a", "a.ipynb"),
           Notebook("b", "b.ipynb", depends=("a",)), Notebook("d", "d.ipynb")]
    assert [n.name for n in check_registry(nbs)] == ["a", "d", "b", "c"]
    assert [n.name for n in select(nbs, ["c"])] == ["a", "b", "c"]
    assert [n.name for n in select(nbs, ["?"])] == ["a", "d", "b", "c"]
    with pytest.raises(ValueError, match="no notebook matches 'zz'"):
        select(nbs, ["zz"])


@pytest.mark.parametrize("nbs, message", [
    ([Notebook("a", "a.ipynb", depends=("b",)), Notebook("b", "b.ipynb", depends=("a",))], "cycle"),
    ([Notebook("a", "a.ipynb", depends=("nope",))], "unknown notebook"),
    ([Notebook("a", "a.ipynb"), Notebook("a", "b.ipynb")], "duplicate name"),
    ([Notebook("a", "t.ipynb", output="p.ipynb"), Notebook("b", "p.ipynb")], "both write p.ipynb"),
])
def test_bad_registries_are_rejected(nbs: list[Notebook], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_registry(nbs)


def test_source_hash_ignores_outputs_and_injected_parameters(tmp_path: Path) -> None:
    path = write_nb(tmp_path / "a.ipynb", "print(x)")
    before = source_hash(path)
    nb = nbformat.read(path, as_version=4)
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="1\n")]
    nb.cells.insert(2, new_code_cell("x = 2", metadata={"tags": ["injected-parameters"]}))
    nb.cells[0].source = "# Another title"
    nbformat.write(nb, path)
    assert source_hash(path) == before
    assert source_hash(path, include_markdown=True) != before
    write_nb(path, "print(x + 1)")
    assert source_hash(path) != before


def test_cache_key_changes_with_what_matters(tmp_path: Path) -> None:
    write_nb(tmp_path / "a.ipynb", "print(x)")
    nb = Notebook("a", "a.ipynb", parameters={"x": 1})
    key = cache_key(nb, "quick", tmp_path, {})
    assert key == cache_key(nb, "quick", tmp_path, {})
    assert key != cache_key(nb, "smoke", tmp_path, {})
    assert key != cache_key(Notebook("a", "a.ipynb", parameters={"x": 2}), "quick", tmp_path, {})
    assert key != cache_key(Notebook("a", "a.ipynb", parameters={"x": 1}, per_scale={"quick": {"x": 3}}),
                            "quick", tmp_path, {})
    dep = Notebook("a", "a.ipynb", parameters={"x": 1}, depends=("z",))
    assert cache_key(dep, "quick", tmp_path, {"z": "k1"}) != cache_key(dep, "quick", tmp_path, {"z": "k2"})
    import qallegro

    old = qallegro.__version__
    try:
        qallegro.__version__ = "99.0"
        assert cache_key(nb, "quick", tmp_path, {}) != key
    finally:
        qallegro.__version__ = old


# ---- execution with papermill (real kernels) ----

@pytest.fixture()
def book(tmp_path: Path) -> Path:
    book = tmp_path / "book"
    write_nb(book / "a.ipynb", 'print(f"a ran with x={x} at {scale}")')
    write_nb(book / "b.ipynb", 'print(f"b ran with x={x}")')
    return book


def test_run_caches_and_reruns_on_change(book: Path, tmp_path: Path) -> None:
    build = tmp_path / "_build"
    nbs = [Notebook("b", "b.ipynb", depends=("a",)), Notebook("a", "a.ipynb", parameters={"x": 5})]
    steps = plan(nbs, "smoke", book)
    assert [s.notebook.name for s in steps] == ["a", "b"] and not any(s.cached for s in steps)
    report = run(steps, "smoke", book, build, progress=False)
    assert [s.status for s in report.steps] == ["ok", "ok"]
    assert "a ran with x=5 at smoke" in outputs_text(book / "a.ipynb")
    record = stored_record(book / "a.ipynb")
    assert record["cache_key"] == steps[0].key and record["scale"] == "smoke" and record["duration_s"] > 0
    assert record["parameters"] == {"scale": "smoke", "x": 5}
    assert (build / "logs" / "a.log").read_text().count("a ran with x=5") == 1  # the log has the output
    nb = nbformat.read(book / "a.ipynb", as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    assert not any("papermill" in c.metadata or "execution" in c.metadata for c in nb.cells)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "hide-input" in injected[0].metadata.tags

    # unchanged: nothing runs
    again = plan(nbs, "smoke", book)
    assert all(s.cached for s in again)
    assert [s.status for s in run(again, "smoke", book, build, progress=False).steps] == ["cached", "cached"]
    # a changed parameter re-runs a, and b too because its input changed
    changed = [nbs[0], Notebook("a", "a.ipynb", parameters={"x": 6})]
    assert [s.cached for s in plan(changed, "smoke", book)] == [False, False]
    # another scale misses; --force re-runs only what --only names
    assert not any(s.cached for s in plan(nbs, "quick", book))
    forced = plan(nbs, "smoke", book, only=["b"], force=True)
    assert [(s.notebook.name, s.cached) for s in forced] == [("a", True), ("b", False)]
    # a change in the notebook's code re-runs it
    write_nb(book / "b.ipynb", 'print("b changed")')
    assert [s.cached for s in plan(nbs, "smoke", book)] == [True, False]


def test_failure_keeps_the_good_page_and_names_the_cell(book: Path, tmp_path: Path) -> None:
    build = tmp_path / "_build"
    nbs = [Notebook("a", "a.ipynb"), Notebook("b", "b.ipynb", depends=("a",)), Notebook("c", "c.ipynb")]
    write_nb(book / "c.ipynb", 'print("c ran")')
    run(plan(nbs, "smoke", book), "smoke", book, build, progress=False)
    good = (book / "a.ipynb").read_bytes()
    # break a: its source now raises in the third cell
    nb = nbformat.read(book / "a.ipynb", as_version=4)
    nb.cells[-1].source = 'y = 1\nraise ValueError("boom")'
    nbformat.write(nb, book / "a.ipynb")
    broken = (book / "a.ipynb").read_bytes()
    write_nb(book / "c.ipynb", 'print("c ran again")')
    report = run(plan(nbs, "smoke", book), "smoke", book, build, progress=False)
    status = {s.notebook.name: s for s in report.steps}
    assert status["a"].status == "failed"
    err = status["a"].error
    assert "'a'" in err and "a.ipynb" in err and "cell 3 (counted from 0, In [3])" in err and "ValueError: boom" in err
    assert "y = 1" in err  # the cell's first line
    assert status["b"].status == "skipped" and "a" in status["b"].error
    assert status["c"].status == "ok" and "c ran again" in outputs_text(book / "c.ipynb")
    assert (book / "a.ipynb").read_bytes() == broken != good  # the page was not overwritten
    assert (build / "failed" / "a.ipynb").exists()
    assert not list(book.glob(".*.running.ipynb"))
    assert "boom" in (build / "logs" / "a.log").read_text()
    assert report.failed


def test_unknown_parameter_is_an_error(book: Path, tmp_path: Path) -> None:
    steps = plan([Notebook("a", "a.ipynb", parameters={"nope": 1})], "smoke", book)
    with pytest.raises(ValueError, match=r"a.ipynb.*\['nope'\]"):
        run(steps, "smoke", book, tmp_path / "_build", progress=False)


def test_templated_page_runs_once_per_instance(tmp_path: Path) -> None:
    book = tmp_path / "book"
    write_nb(book / "templates" / "study.ipynb", 'print(f"study of {dataset}")',
             params='scale: str = "quick"  # smoke|quick|paper\ndataset: str = "qm9"  # dataset')
    nbs = [Notebook(f"study-{d}", "templates/study.ipynb", output=f"study/{d}.ipynb", parameters={"dataset": d},
                    title=f"The {d} study") for d in ("qm9", "culi")]
    run(plan(nbs, "smoke", book), "smoke", book, tmp_path / "_build", progress=False)
    assert "study of culi" in outputs_text(book / "study" / "culi.ipynb")
    assert nbformat.read(book / "study" / "culi.ipynb", as_version=4).cells[0].source == "# The culi study"
    assert nbformat.read(book / "templates" / "study.ipynb", as_version=4).cells[0].source == "# A page"
    assert "study of qm9" in outputs_text(book / "study" / "qm9.ipynb")
    assert all(s.cached for s in plan(nbs, "smoke", book))
    # the template's text is part of the instance pages: editing it makes them stale
    tpl = nbformat.read(book / "templates" / "study.ipynb", as_version=4)
    tpl.cells[0].source = "# A better title"
    nbformat.write(tpl, book / "templates" / "study.ipynb")
    assert not any(s.cached for s in plan(nbs, "smoke", book))


# ---- the temporary copy ----

def _git_repo(root: Path) -> Path:
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".gitignore").write_text("ignored.txt\n_build/\n")
    (root / "ignored.txt").write_text("no")
    (root / "tracked.txt").write_text("yes")
    (root / "_toc.yml").write_text("format: jb-book\nroot: a\n")
    (root / "book").mkdir()
    (root / "book" / "_toc.yml").symlink_to("../_toc.yml")
    subprocess.run(["git", "-C", str(root), "add", "."], check=True)
    (root / "untracked.txt").write_text("also")
    return root


def test_copy_repo_takes_the_working_tree(tmp_path: Path) -> None:
    src = _git_repo(tmp_path / "src")
    dest = copy_repo(src, tmp_path / "dest")
    assert (dest / "tracked.txt").read_text() == "yes" and (dest / "untracked.txt").exists()
    assert not (dest / "ignored.txt").exists()
    assert (dest / "book" / "_toc.yml").is_symlink()


def test_reproduce_in_copy_leaves_the_repo_alone(tmp_path: Path) -> None:
    root = _git_repo(tmp_path / "repo")
    (root / "lib" / "qallegro").mkdir(parents=True)
    (root / "lib" / "qallegro" / "__init__.py").write_text("__version__ = 'copy'\n")
    write_nb(root / "book" / "a.ipynb",
             "import os, qallegro\nprint('results', os.environ['QALLEGRO_RESULTS'])\nprint('lib', qallegro.__file__)")
    original = (root / "book" / "a.ipynb").read_bytes()
    report = reproduce_in_copy("smoke", root=root, notebooks=[Notebook("a", "a.ipynb")], build=False,
                               progress=False)
    assert [s.status for s in report.steps] == ["ok"]
    assert (root / "book" / "a.ipynb").read_bytes() == original
    log = (root / "_build" / "copy-smoke" / "logs" / "a.log").read_text()
    copy_root = log.split("results ", 1)[1].split()[0].removesuffix("/results")
    assert copy_root != str(root) and not Path(copy_root).exists()  # ran in the copy, which is gone
    assert f"lib {copy_root}/lib/qallegro/__init__.py" in log  # the kernel imported the copy's lib


def test_the_campaign_runs_first_and_in_the_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """At a `run_with_book` scale the pages wait for the campaign's units; with --copy those run in the copy (they
    write to the copy's results), and while units are left no page runs."""
    import qallegro.pipeline.campaign as campaign
    from qallegro.errors import PipelineError
    from qallegro.paths import results_root

    root = _git_repo(tmp_path / "repo")
    write_nb(root / "book" / "a.ipynb", "print('page ran')")
    seen: list[Path] = []
    monkeypatch.setattr(campaign, "run_campaign", lambda scale: seen.append(results_root()) or None)
    report = reproduce_in_copy("smoke", root=root, notebooks=[Notebook("a", "a.ipynb")], build=False,
                               progress=False, campaign=True)
    assert [s.status for s in report.steps] == ["ok"]
    assert len(seen) == 1 and seen[0].name == "results" and seen[0].parent != root  # the copy's results
    monkeypatch.setattr(campaign, "run_campaign", lambda scale: "3 of 9 campaign units done")
    with pytest.raises(PipelineError, match="3 of 9 campaign units done"):
        reproduce("smoke", root=root, notebooks=[Notebook("a", "a.ipynb")], build=False, progress=False,
                  campaign=True)
    assert not (root / "_build" / "logs" / "a.log").exists()


def test_reproduce_without_build(book: Path) -> None:
    report = reproduce("smoke", root=book.parent, notebooks=[Notebook("a", "a.ipynb")], build=False,
                       progress=False)
    assert [s.status for s in report.steps] == ["ok"] and report.html is None


def test_cli_dry_run_lists_the_registry() -> None:
    out = subprocess.run([sys.executable, "-m", "qallegro", "reproduce", "--scale", "smoke", "--dry-run"],
                         capture_output=True, text=True, check=True).stdout
    assert "reproducibility" in out and "book/reproducibility.ipynb" in out


def test_data_checksums_enter_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from qallegro.data import registry
    from qallegro.pipeline.cache import data_checksums

    sums = data_checksums(["rmd17-benzene"])
    assert sums["rmd17-benzene"]["rmd17/benzene_train_01"] == registry.SOURCES["rmd17/benzene_train_01"].sha256
    with pytest.raises(ValueError, match="no data registry entry"):
        data_checksums(["nope"])
    write_nb(tmp_path / "a.ipynb", "print(x)")
    nb = Notebook("a", "a.ipynb", datasets=("rmd17-benzene",))
    key = cache_key(nb, "quick", tmp_path, {})
    src = registry.SOURCES["rmd17/benzene_train_01"]
    monkeypatch.setitem(registry.SOURCES, src.name, type(src)(**{**src.__dict__, "sha256": "0" * 64}))
    assert cache_key(nb, "quick", tmp_path, {}) != key


def test_preset_settings_and_inputs_enter_the_key(tmp_path: Path) -> None:
    """A changed preset section (or key) that a notebook reads, or a changed committed input file, changes its
    key; a change elsewhere in the preset does not."""
    book = tmp_path / "book"
    write_nb(book / "a.ipynb", "print(x)")
    presets = tmp_path / "lib" / "qallegro" / "presets"
    presets.mkdir(parents=True)
    table = ("smoke: {md: {steps: 2}, plan: [1]}\nquick: {md: {steps: 5}, plan: [1]}\novernight: {md: {steps: 7}}\n"
             "paper: {md: {steps: 9}}\n")
    (presets / "book.yaml").write_text(table)
    nb = Notebook("a", "a.ipynb", presets=("book.md",), inputs=("data/*.json",))
    key = cache_key(nb, "quick", book, {})
    whole = cache_key(Notebook("a", "a.ipynb", presets=("book",)), "quick", book, {})
    (presets / "book.yaml").write_text(table.replace("plan: [1]}\novernight", "plan: [2]}\novernight"))
    assert cache_key(nb, "quick", book, {}) == key  # only book.quick.plan changed
    assert cache_key(Notebook("a", "a.ipynb", presets=("book",)), "quick", book, {}) != whole
    (presets / "book.yaml").write_text(table.replace("steps: 2", "steps: 3"))
    assert cache_key(nb, "quick", book, {}) == key  # the smoke section changed
    (presets / "book.yaml").write_text(table.replace("steps: 5", "steps: 6"))
    changed = cache_key(nb, "quick", book, {})
    assert changed != key
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "r.json").write_text("{}")
    with_file = cache_key(nb, "quick", book, {})
    assert with_file != changed  # a file appeared
    (tmp_path / "data" / "r.json").write_text('{"a": 1}')
    assert cache_key(nb, "quick", book, {}) != with_file
    with pytest.raises(ValueError, match=r"book.yaml: no quick.nope settings"):
        cache_key(Notebook("a", "a.ipynb", presets=("book.nope",)), "quick", book, {})
    with pytest.raises(ValueError, match="no preset file"):
        cache_key(Notebook("a", "a.ipynb", presets=("nope",)), "quick", book, {})


def test_registry_keys_read_the_real_presets() -> None:
    """Every preset entry of the registry exists at every scale (a typo would fail `qallegro reproduce`)."""
    from qallegro.pipeline.notebooks import NOTEBOOKS

    root = Path(__file__).resolve().parents[1]
    for nb in check_registry(NOTEBOOKS):
        for scale in ("smoke", "quick", "paper"):
            assert cache_key(nb, scale, root / "book", dict.fromkeys(nb.depends, "k"))


def test_copy_reads_this_checkouts_data(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A copy elsewhere has no `../shared/data` beside it: the copy's kernels get this checkout's mirror and
    download cache, unless the variables are set already."""
    from qallegro.data.registry import cache_dir, mirror_dir
    from qallegro.pipeline.reproduce import _data_locations

    mirror = mirror_dir()
    monkeypatch.delenv("QALLEGRO_DATA", raising=False)
    monkeypatch.delenv("QALLEGRO_CACHE", raising=False)
    found = _data_locations()
    assert found.get("QALLEGRO_CACHE") == str(cache_dir().resolve())
    if mirror_dir() is not None:  # ../shared/data beside the checkout
        assert found["QALLEGRO_DATA"] == str(mirror_dir().resolve())
    monkeypatch.setenv("QALLEGRO_DATA", str(tmp_path))
    monkeypatch.setenv("QALLEGRO_CACHE", str(tmp_path))
    assert _data_locations() == {}
    assert mirror is not None


def test_scale_inputs_ignore_other_scales(tmp_path: Path) -> None:
    """`{scale}` in an input pattern is the scale being run: another scale's results leave the key alone."""
    book = tmp_path / "book"
    write_nb(book / "a.ipynb", "print(x)")
    nb = Notebook("a", "a.ipynb", inputs=("results/{scale}/r/*.json",))
    key = cache_key(nb, "quick", book, {})
    (tmp_path / "results" / "overnight" / "r").mkdir(parents=True)
    (tmp_path / "results" / "overnight" / "r" / "x.json").write_text("{}")
    assert cache_key(nb, "quick", book, {}) == key
    (tmp_path / "results" / "quick" / "r").mkdir(parents=True)
    (tmp_path / "results" / "quick" / "r" / "x.json").write_text("{}")
    assert cache_key(nb, "quick", book, {}) != key


def test_status_names_pages_built_by_other_library_code(tmp_path: Path) -> None:
    from qallegro.pipeline.cache import built_by_other_code

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    lib = tmp_path / "lib" / "qallegro"
    (lib / "presets").mkdir(parents=True)
    (lib / "model.py").write_text("A = 1\n")
    (lib / "presets" / "x.yaml").write_text("quick: {a: 1}\n")
    git("init", "-q")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one", "--allow-empty")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "two")
    built = git("rev-parse", "HEAD")
    pages = {}
    for name, commit in (("here", built), ("old", git("rev-parse", "HEAD~1")), ("nowhere", "0" * 40),
                         ("none", None)):
        nb = new_notebook()
        nb.metadata["qallegro"] = {"status": "ok", "git_commit": commit}
        pages[name] = tmp_path / f"{name}.ipynb"
        nbformat.write(nb, pages[name])
    assert built_by_other_code(pages, tmp_path) == {"old": git("rev-parse", "HEAD~1")[:12],
                                                    "nowhere": "0" * 12, "none": "unknown"}
    (lib / "presets" / "x.yaml").write_text("quick: {a: 2}\n")   # presets count in the cache key instead
    assert "here" not in built_by_other_code(pages, tmp_path)
    (lib / "model.py").write_text("A = 2\n")                     # an uncommitted change of the code
    assert "here" in built_by_other_code(pages, tmp_path)
