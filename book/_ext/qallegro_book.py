"""Sphinx tweaks for the qallegro book (loaded through `sphinx.local_extensions` in `_config.yml`).

- jupyter-book 1 adds every `.js` file under `book/_static` to every page. The vendored MathJax
  (`_static/mathjax/tex-mml-chtml.js`, made by `make mathjax`) must only be loaded by `sphinx.ext.mathjax`
  (`mathjax_path`, on pages with math, deferred after its configuration); a second, eager copy makes MathJax
  throw "Cannot set property Package" on every page with math.
- Every executed page shows the parameters it ran with in its `parameters` cell (papermill's injected values,
  `qallegro.pipeline.page.show_injected`), and ends with what computed it, whether it is still current, and
  download links to the result files it shows (`qallegro.pipeline.page.footer_markdown`); the stored pandas
  tables of pages computed before the book's table style are shown in that style, their displayed strings
  unchanged (`restyle_stored_tables`). Both are applied to
  the notebook text as Sphinx reads it; the committed notebooks are not changed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def _drop_vendored_mathjax(app: Any, config: Any) -> None:
    def name(entry: Any) -> str:
        return entry if isinstance(entry, str) else entry[0]

    config.html_js_files = [f for f in config.html_js_files if not name(f).startswith("mathjax/")]


def _theme_options(app: Any, config: Any) -> None:
    """An explicit colour mode: without one, pydata-sphinx-theme logs "Got invalid theme mode" as a console
    error on a reader's first visit."""
    config.html_context = {**config.html_context, "default_mode": "auto"}


class _Pages:
    """The pipeline's registry and cache status of the book's pages, computed once per build and scale."""

    def __init__(self, book_dir: Path) -> None:
        from qallegro.pipeline.notebooks import NOTEBOOKS
        from qallegro.utils import git_commit

        self.book_dir = book_dir
        self.root = book_dir.parent
        self.by_page = {nb.page: nb for nb in NOTEBOOKS}
        self.commit = git_commit()
        self._current: dict[str, dict[str, bool]] = {}

    def current(self, scale: str, name: str) -> bool | None:
        from qallegro.pipeline.notebooks import NOTEBOOKS
        from qallegro.pipeline.reproduce import plan

        if scale not in self._current:
            try:
                self._current[scale] = {s.notebook.name: s.cached for s in plan(NOTEBOOKS, scale, self.book_dir)}
            except (ValueError, FileNotFoundError):
                self._current[scale] = {}
        return self._current[scale].get(name)

    def rewrite(self, page: str, text: str) -> str:
        from qallegro.pipeline.page import footer_markdown, restyle_stored_tables, result_files, show_injected

        nb = self.by_page.get(page)
        if nb is None:
            return text
        data = restyle_stored_tables(show_injected(json.loads(text)))
        record = data.get("metadata", {}).get("qallegro")
        scale = (record or {}).get("scale") or "quick"
        patterns = nb.result_patterns(scale)
        files = result_files(patterns, self.root)
        footer = footer_markdown(record, self.current(scale, nb.name) if record else None, self.commit, files,
                                 self.root, self.book_dir, page, patterns)
        data["cells"].append({"cell_type": "markdown", "id": "qallegro-about-this-page", "metadata": {},
                              "source": footer})
        return json.dumps(data)


def _on_source_read(app: Any, docname: str, source: list[str]) -> None:
    path = Path(app.env.doc2path(docname))
    if path.suffix != ".ipynb":
        return
    pages = getattr(app, "_qallegro_pages", None)
    if pages is None:
        pages = app._qallegro_pages = _Pages(Path(app.srcdir))
    source[0] = pages.rewrite(path.relative_to(app.srcdir).as_posix(), source[0])


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _drop_vendored_mathjax)
    app.connect("config-inited", _theme_options)
    app.connect("source-read", _on_source_read)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
