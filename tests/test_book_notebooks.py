"""Notebook hygiene (parameters cell with typed, commented defaults; kernelspec python3; no errors), the
registry against the table of contents, and every figure and table of the paper against its page."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import pytest
from qallegro.pipeline.build import toc_files
from qallegro.pipeline.execute import declared_parameters
from qallegro.pipeline.notebooks import NOTEBOOKS, PAPER_ITEMS, check_registry
from qallegro.pipeline.reproduce import plan
from qallegro.scales import BOOK_SCALE

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
NOTEBOOK_FILES = sorted(p for p in BOOK.rglob("*.ipynb")
                        if not p.name.startswith(".") and ".ipynb_checkpoints" not in p.parts)
TYPES = {"str", "int", "float", "bool"}
ITEMS = [f"Fig. {i}" for i in range(1, 8)] + [f"Table {i}" for i in range(1, 7)]


def parameters_cell(nb: nbformat.NotebookNode) -> str:
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    return cells[0].source


def rel(p: Path) -> str:
    return str(p.relative_to(BOOK))


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=rel)
def test_parameters_cell_has_typed_commented_defaults(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    source = parameters_cell(nb)
    lines = source.splitlines()
    names = {}
    for stmt in ast.parse(source).body:
        assert isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name), \
            f"{rel(path)}: parameters must be `name: type = value  # comment`, got {ast.unparse(stmt)!r}"
        assert isinstance(stmt.annotation, ast.Name) and stmt.annotation.id in TYPES, \
            f"{rel(path)}: {stmt.target.id} must be annotated with one of {sorted(TYPES)}"
        value = ast.literal_eval(stmt.value)
        assert type(value).__name__ == stmt.annotation.id, f"{rel(path)}: {stmt.target.id} default type"
        assert "#" in lines[stmt.lineno - 1], f"{rel(path)}: {stmt.target.id} needs a comment"
        names[stmt.target.id] = (value, lines[stmt.lineno - 1])
    assert names.get("scale", (None,))[0] == BOOK_SCALE and "smoke|quick|overnight|paper:" in names["scale"][1], \
        f"{rel(path)}: needs `scale: str = \"{BOOK_SCALE}\"  # smoke|quick|overnight|paper: ...`"
    assert isinstance(names.get("seed", (None,))[0], int), f"{rel(path)}: needs `seed: int = ...  # ...`"
    # what `papermill --help-notebook` shows: every parameter typed and documented
    for name, info in declared_parameters(path).items():
        assert info["inferred_type_name"] in TYPES and info["help"], f"{rel(path)}: {name}: {info}"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=rel)
def test_the_provenance_line_is_shown(path: Path) -> None:
    """`provenance(...)` returns the page's scale/date/commit/hardware line: it shows only as a cell's last
    expression or inside `display(...)` (eight pages once computed it and showed nothing)."""
    nb = nbformat.read(path, as_version=4)
    calls = []
    for cell in (c for c in nb.cells if c.cell_type == "code"):
        body = ast.parse(cell.source).body
        for k, stmt in enumerate(body):
            if isinstance(stmt, ast.Expr) and "provenance(" in ast.unparse(stmt):
                calls.append(ast.unparse(stmt))
                assert k == len(body) - 1 or ast.unparse(stmt).startswith("display(provenance("), \
                    f"{rel(path)}: `{ast.unparse(stmt)}` computes the provenance line and drops it"
    assert len(calls) == 1, f"{rel(path)}: one provenance line per page, found {calls}"


@pytest.mark.parametrize("path", NOTEBOOK_FILES, ids=rel)
def test_kernelspec_and_no_error_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", f"{rel(path)}: kernelspec must be python3"
    assert not nb.metadata.get("papermill", {}).get("exception"), f"{rel(path)}: stored from a failed run"
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            assert out.output_type != "error", f"{rel(path)}: cell {i} has an error output ({out.get('ename')})"


def test_registry_matches_the_book() -> None:
    """Every registered notebook has its source and declares the parameters it is given; every executed page
    is in the table of contents, and every notebook in the table of contents is executed by the pipeline."""
    nbs = check_registry(NOTEBOOKS)
    toc = set(toc_files(ROOT / "_toc.yml"))
    pages = {nb.page.removesuffix(".ipynb") for nb in nbs}
    for nb in nbs:
        declared = declared_parameters(BOOK / nb.source)
        for scale in ("smoke", "quick", "overnight", "paper"):
            assert set(nb.params(scale)) <= set(declared), f"{nb.name}: undeclared parameters at {scale}"
        assert nb.page.removesuffix(".ipynb") in toc, f"{nb.name}: book/{nb.page} is not in _toc.yml"
    toc_notebooks = {f for f in toc if (BOOK / f"{f}.ipynb").exists()}
    assert toc_notebooks <= pages, f"notebooks in the TOC that no pipeline step executes: {toc_notebooks - pages}"


def page_title(name: str) -> str:
    md, ipynb = BOOK / f"{name}.md", BOOK / f"{name}.ipynb"
    if md.exists():
        text = md.read_text()
    else:
        text = "\n".join(c.source for c in nbformat.read(ipynb, as_version=4).cells if c.cell_type == "markdown")
    match = re.search(r"^# (.+)$", text, re.MULTILINE)
    assert match, f"book/{name}: no title"
    return match.group(1)


def items_in(title: str) -> set[str]:
    """The paper items a title names: 'Figs. 1, 3 and 4', 'Tables 1-3', 'Fig. 7', 'Table 6' ..."""
    found = set()
    for kind, numbers in re.findall(r"\b(Figs?\.|Tables?)\s*((?:\d+[a-d]?(?:\s*(?:[-–,]|and)\s*)?)+)", title):
        label = "Fig." if kind.startswith("Fig") else "Table"
        for lo, hi in re.findall(r"(\d+)[a-d]?(?:\s*[-–]\s*(\d+))?", numbers):
            found.update(f"{label} {i}" for i in range(int(lo), int(hi or lo) + 1))
    return found


def test_items_in_titles_parser() -> None:
    assert items_in("The QDI layer (Figs. 1, 3 and 4)") == {"Fig. 1", "Fig. 3", "Fig. 4"}
    assert items_in("Fig. 2 and Tables 1-3: Pareto fronts") == {"Fig. 2", "Table 1", "Table 2", "Table 3"}
    assert items_in("Final training (Tables 4-5, Figs. 5-6)") == {"Table 4", "Table 5", "Fig. 5", "Fig. 6"}
    assert items_in("Fig. 2d and Table 6") == {"Fig. 2", "Table 6"}


def test_every_paper_item_is_mapped() -> None:
    assert sorted(PAPER_ITEMS) == sorted(ITEMS)


@pytest.mark.parametrize("item", ITEMS)
def test_paper_item_has_its_page(item: str) -> None:
    page = PAPER_ITEMS[item]
    assert page in toc_files(ROOT / "_toc.yml"), f"{item}: book/{page} is not in _toc.yml"
    assert item in items_in(page_title(page)), f"{item}: the title of book/{page} does not name it"


def test_committed_pages_are_current_at_the_book_scale() -> None:
    """The committed pages are the book-scale (overnight) runs of the current notebooks, presets and inputs, so
    that `make book` on a fresh clone builds the HTML without computing (the pipeline's own cache check)."""
    steps = plan(NOTEBOOKS, BOOK_SCALE, BOOK)
    stale = [f"{s.notebook.name} (book/{s.notebook.page})" for s in steps if not s.cached]
    assert not stale, (f"pages not executed at {BOOK_SCALE} scale with their current sources, presets or inputs; "
                       f"run `qallegro reproduce --scale {BOOK_SCALE}` and commit the pages and "
                       f"results/{BOOK_SCALE}: {stale}")
