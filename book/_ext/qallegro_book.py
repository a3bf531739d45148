"""Sphinx tweaks for the qallegro book (loaded through `sphinx.local_extensions` in `_config.yml`).

jupyter-book 1 adds every `.js` file under `book/_static` to every page. The vendored MathJax
(`_static/mathjax/tex-mml-chtml.js`, made by `make mathjax`) must only be loaded by `sphinx.ext.mathjax`
(`mathjax_path`, on pages with math, deferred after its configuration); a second, eager copy makes MathJax
throw "Cannot set property Package" on every page with math.
"""

from __future__ import annotations

from typing import Any


def _drop_vendored_mathjax(app: Any, config: Any) -> None:
    def name(entry: Any) -> str:
        return entry if isinstance(entry, str) else entry[0]

    config.html_js_files = [f for f in config.html_js_files if not name(f).startswith("mathjax/")]


def setup(app: Any) -> dict[str, Any]:
    app.connect("config-inited", _drop_vendored_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
