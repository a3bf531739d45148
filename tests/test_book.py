"""The book builds strictly from its stored outputs, and every page reads right in a real browser, offline.

The book is built once per session from a copy of `_config.yml`, `_toc.yml` and `book/` (the working tree is
not touched; the committed result files are linked into the copy) with `-W --keep-going --all`; then Debian's
chromium, driven by Playwright, opens every page from a server on localhost, at the root and under a sub-path
as a project site is served, and checks what a reader sees: the page loads with no console error, its images
decode, its math is typeset by the vendored MathJax, no glue or MyST role shows as literal text, no table cell
reads NaN or None, no table is wider than the content column, no figure is shrunk below 600 px, the parameters
cell shows the values the page ran with, every link (downloads included) resolves, search finds pages, and no
request leaves localhost. A screenshot of every page is saved under `_build/screenshots/` for a person to read.
"""

from __future__ import annotations

import ast
import functools
import http.server
import json
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest
import yaml
from qallegro.pipeline.build import build_book, site_config, toc_files
from qallegro.pipeline.notebooks import NOTEBOOKS
from qallegro.pipeline.page import assignments, result_files
from qallegro.scales import BOOK_SCALE

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "_build" / "screenshots"
# pydata-sphinx-theme 0.17's theme.css imports ../basic.css, which Sphinx 7.4 no longer writes for this theme
KNOWN_MISSING = {"_static/basic.css"}
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}
MIN_FIGURE_PX = 600
SUB_PATH = "qallegro"
PLACEHOLDER_URL = "https://github.com/example-org/qallegro"
# the repository's committed files a page links for download (linked, not copied, into the build copy)
LINKED = ("results", "data", "benchmarks", "lib")


def copy_book(dest: Path) -> Path:
    """A copy of the book's sources in `dest`, with the committed result files linked in; returns its book/."""
    shutil.copy2(ROOT / "_config.yml", dest / "_config.yml")
    shutil.copy2(ROOT / "_toc.yml", dest / "_toc.yml")
    shutil.copytree(ROOT / "book", dest / "book", symlinks=True,
                    ignore=shutil.ignore_patterns(".*.running.ipynb", ".ipynb_checkpoints"))
    for name in LINKED:
        (dest / name).symlink_to(ROOT / name, target_is_directory=True)
    return dest / "book"


@pytest.fixture(scope="module")
def built_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTML of a strict build of a copy of the book."""
    book = copy_book(tmp_path_factory.mktemp("book-copy"))
    return build_book(book, book.parent / "_build" / "logs" / "jupyter-book.log", strict=True)


def test_toc_link_and_pages_exist() -> None:
    link = ROOT / "book" / "_toc.yml"
    assert link.is_symlink() and link.resolve() == (ROOT / "_toc.yml").resolve(), \
        "book/_toc.yml must be a link to ../_toc.yml (so `jupyter-book build book/` needs no flags)"
    for name in toc_files(ROOT / "_toc.yml"):
        found = [p for p in (ROOT / "book" / f"{name}.md", ROOT / "book" / f"{name}.ipynb") if p.exists()]
        assert found, f"_toc.yml lists {name!r} but neither book/{name}.md nor book/{name}.ipynb exists"


def test_book_builds_strictly_with_every_toc_page(built_book: Path) -> None:
    assert (built_book / "index.html").exists()
    for name in toc_files(ROOT / "_toc.yml"):
        assert (built_book / f"{name}.html").exists(), f"{name}.html missing from the build"


def test_every_executed_page_states_its_commit_and_links_its_result_files(built_book: Path) -> None:
    """Each page of the pipeline ends with the commit that computed it, whether it is current, and a download
    link (copied into the build) for every committed result file it shows."""
    for nb in NOTEBOOKS:
        html = (built_book / nb.page.replace(".ipynb", ".html")).read_text(encoding="utf-8")
        assert 'id="about-this-page"' in html, f"{nb.page}: no 'About this page' section"
        assert re.search(r"at commit <code[^>]*><span class=\"pre\">[0-9a-f]{10}</span>", html), \
            f"{nb.page}: no commit stated"
        assert "re-running it would recompute nothing" in html, f"{nb.page}: not stated as current"
        files = result_files(nb.result_patterns(BOOK_SCALE), ROOT)
        links = re.findall(r'href="([^"]*_downloads/[^"]+)"', html)
        assert len(links) == len(files), f"{nb.page}: {len(links)} download links for {len(files)} result files"
        for link in links:
            target = (built_book / nb.page).parent / link
            assert target.resolve().is_file(), f"{nb.page}: download {link} missing from the build"


def test_captions_say_tested_not_reproduced() -> None:
    """No heading of the table of contents or the intro claims that results are reproduced (the claims page
    says which are)."""
    toc = (ROOT / "_toc.yml").read_text()
    captions = re.findall(r"caption:\s*(.+)", toc)
    assert captions and not [c for c in captions if "reproduced" in c.lower()], captions
    intro = (ROOT / "book" / "intro.md").read_text()
    headings = re.findall(r"^#+ (.+)$", intro, re.MULTILINE)
    assert not [h for h in headings if "reproduced" in h.lower()], headings


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@functools.cache
def _chromium_or_fail() -> None:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser test needs Debian's chromium. Install it with "
                    "`make sysdeps` (bash .ci/install-system.sh) or `apt-get install chromium`.")


def serve(folder: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


@pytest.fixture(scope="module")
def served(built_book: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The book served at the root of one server and under `/<SUB_PATH>/` of another (as a project site)."""
    site = tmp_path_factory.mktemp("site")
    (site / SUB_PATH).symlink_to(built_book, target_is_directory=True)
    servers = {"root": serve(built_book), "sub-path": serve(site)}
    try:
        yield {"root": servers["root"][1] + "/", "sub-path": f"{servers['sub-path'][1]}/{SUB_PATH}/"}
    finally:
        for server, _ in servers.values():
            server.shutdown()
            server.server_close()


def _pages(html: Path) -> list[str]:
    skip = {"_static", "_sources", "_images", "_downloads"}
    return sorted(str(p.relative_to(html)) for p in html.rglob("*.html") if not skip & set(p.relative_to(html).parts))


# What a reader sees, measured in the page: literal roles, bad cells, clipped tables, shrunk figures, the
# parameters cells, and the page's own links.
READER_JS = r"""
() => {
  const article = document.querySelector('article.bd-article') || document.querySelector('main');
  const clone = article.cloneNode(true);
  clone.querySelectorAll('pre, div.highlight, script, style').forEach(e => e.remove());
  const text = clone.textContent;
  const roles = Array.from(new Set((text.match(/\{[a-z][\w:.-]*\}`?[^`\s]{0,30}/g) || [])));
  const column = article.getBoundingClientRect().width;
  const tables = Array.from(article.querySelectorAll('table')).map((t, i) => ({
      i, width: Math.round(t.getBoundingClientRect().width), scroll: t.scrollWidth,
      head: (t.querySelector('th') || {textContent: ''}).textContent.trim().slice(0, 40)}));
  const badCells = Array.from(article.querySelectorAll('td, th')).map(c => c.textContent.trim())
      .filter(t => /^(nan|none|<na>|nat)$/i.test(t) || t.includes('…'));
  const figures = Array.from(article.querySelectorAll('div.cell_output img, figure img')).map(im => ({
      src: im.src.split('/').pop(), natural: im.naturalWidth,
      shown: Math.round(im.getBoundingClientRect().width)}));
  const cellText = tag => Array.from(document.querySelectorAll('div.cell.tag_' + tag + ' div.cell_input pre'))
      .map(p => p.textContent);
  const links = Array.from(article.querySelectorAll('a[href]')).map(a => a.getAttribute('href'))
      .filter(h => h && !h.startsWith('#') && !/^(https?:|mailto:)/.test(h));
  return {roles, column: Math.round(column), tables, badCells, figures, links,
          parameters: cellText('parameters'), injected: cellText('injected-parameters')};
}
"""


def reader_problems(seen: dict) -> list[str]:
    """What is wrong on a page, from READER_JS's measurements."""
    problems = []
    if seen["roles"]:
        problems.append(f"literal roles in the text: {seen['roles']}")
    if seen["badCells"]:
        problems.append(f"table cells reading {sorted(set(seen['badCells']))}")
    for t in seen["tables"]:
        if max(t["width"], t["scroll"]) > seen["column"] + 1:
            problems.append(f"table {t['i']} ({t['head']!r}...) is {max(t['width'], t['scroll'])} px wide, "
                            f"wider than the {seen['column']} px content column")
    for f in seen["figures"]:
        if f["natural"] > MIN_FIGURE_PX and f["shown"] < MIN_FIGURE_PX:
            problems.append(f"figure {f['src']} shown {f['shown']} px wide (natural {f['natural']} px)")
    if seen["injected"]:
        if len(seen["parameters"]) != 1:
            problems.append(f"{len(seen['parameters'])} parameters cells beside an injected one")
        else:
            shown, ran = assignments(seen["parameters"][0]), assignments(seen["injected"][0])
            differ = {k: (shown.get(k), v) for k, v in ran.items()
                      if k not in shown or ast.literal_eval(shown[k]) != ast.literal_eval(v)}
            if differ:
                problems.append(f"the parameters cell shows other values than the page ran with "
                                f"(shown, injected): {differ}")
    return problems


def browse(base: str, pages: list[str], screenshots: Path | None = None) -> tuple[list[str], list[str]]:
    """Open every page under `base`; returns (problems, requests that left localhost)."""
    from playwright.sync_api import sync_playwright

    _chromium_or_fail()
    outside: list[str] = []
    problems: list[str] = []
    checked_links: dict[str, int] = {}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport=VIEWPORT)

        def route(r) -> None:  # every request: allow localhost, record and block the rest
            host = urlparse(r.request.url).hostname
            if r.request.url.startswith(("data:", "blob:")) or host in ("127.0.0.1", "localhost"):
                r.continue_()
            else:
                outside.append(r.request.url)
                r.abort()

        context.route("**/*", route)
        page = context.new_page()
        errors: list[str] = []
        missing: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda m: errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        page.on("response", lambda r: missing.append(r.url) if r.status >= 400 and not any(
            urlparse(r.url).path.endswith(k) for k in KNOWN_MISSING) and not r.url.endswith("favicon.ico")
            else None)
        for rel in pages:
            errors.clear()
            missing.clear()
            url = urljoin(base, rel)
            response = page.goto(url, wait_until="networkidle")
            if response is None or not response.ok:
                problems.append(f"{rel}: HTTP {response.status if response else 'no response'}")
                continue
            broken = page.evaluate("Array.from(document.images)"
                                   ".filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
            if broken:
                problems.append(f"{rel}: images that did not decode: {broken}")
            n_math = page.evaluate("document.querySelectorAll('.math').length")
            if n_math:
                page.wait_for_function("window.MathJax && MathJax.startup && MathJax.startup.promise", timeout=15000)
                page.evaluate("MathJax.startup.promise")
                typeset = page.evaluate("document.querySelectorAll('mjx-container').length")
                if typeset < n_math:
                    problems.append(f"{rel}: {n_math} math elements but {typeset} typeset by MathJax")
            seen = page.evaluate(READER_JS)
            problems += [f"{rel}: {p}" for p in reader_problems(seen)]
            for href in seen["links"]:
                target = urljoin(url, href).split("#")[0]
                if target not in checked_links:
                    checked_links[target] = context.request.get(target).status
                if checked_links[target] >= 400:
                    problems.append(f"{rel}: link {href} -> HTTP {checked_links[target]}")
            if screenshots is not None:
                screenshots.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(screenshots / (rel.replace("/", "_").removesuffix(".html") + ".png")),
                                full_page=True)
            if errors:
                problems.append(f"{rel}: JavaScript errors {errors}")
            if missing:
                problems.append(f"{rel}: files not found {missing}")
        page.goto(urljoin(base, "search.html?q=Pareto"), wait_until="networkidle")
        page.wait_for_selector("#search-results ul.search li", timeout=15000)
        browser.close()
    return problems, outside


@pytest.mark.browser
@pytest.mark.parametrize("where", ["root", "sub-path"])
def test_every_page_reads_right_in_a_real_browser(built_book: Path, served: dict[str, str], where: str) -> None:
    pages = _pages(built_book)
    assert {f"{name}.html" for name in toc_files(ROOT / "_toc.yml")} <= set(pages)
    problems, outside = browse(served[where], pages, SCREENSHOTS if where == "root" else None)
    assert not outside, f"requests left localhost: {sorted(set(outside))}"
    assert not problems, "\n".join(problems)


@pytest.mark.browser
def test_math_is_checked_somewhere(built_book: Path) -> None:
    """The math check above must have something to check: at least one page has math."""
    assert any('class="math' in (built_book / p).read_text(encoding="utf-8") for p in _pages(built_book))


def test_reader_checks_catch_what_a_reader_trips_over() -> None:
    """The measurements of a page with every defect make the checks fail, and a clean page passes."""
    clean = {"roles": [], "badCells": [], "column": 800, "links": [],
             "tables": [{"i": 0, "width": 700, "scroll": 700, "head": "dataset"}],
             "figures": [{"src": "a.png", "natural": 1200, "shown": 800}],
             "parameters": ['scale: str = "quick"  # smoke|quick|paper\ndataset: str = "qm9"  # which'],
             "injected": ['# Parameters\nscale = "quick"\ndataset = "qm9"\n']}
    assert reader_problems(clean) == []
    bad = {**clean, "roles": ["{glue:text}`sampler`"], "badCells": ["NaN", "None"],
           "tables": [{"i": 0, "width": 1200, "scroll": 1200, "head": "dataset"}],
           "figures": [{"src": "a.png", "natural": 1400, "shown": 560}],
           "parameters": ['scale: str = "quick"  # smoke|quick|paper\ndataset: str = "culi"  # which']}
    found = "\n".join(reader_problems(bad))
    for words in ("literal roles", "NaN", "wider than the 800 px", "shown 560 px", "shows other values"):
        assert words in found, (words, found)


@pytest.mark.browser
def test_placeholder_repository_url_adds_links_only(tmp_path: Path) -> None:
    """With `repository.url` set, the repository, issue and launch buttons are links to it, and no page loads
    anything from outside."""
    book = copy_book(tmp_path)
    config = site_config(book.parent / "_config.yml", PLACEHOLDER_URL, tmp_path / "site" / "_config.yml")
    html = build_book(book, tmp_path / "_build" / "logs" / "jupyter-book.log", strict=True, config=config)
    page = (html / "moo_summary.html").read_text(encoding="utf-8")
    hrefs = set(re.findall(r'href="([^"]+)"', page))
    assert PLACEHOLDER_URL in hrefs, "no repository button"
    assert any(h.startswith(f"{PLACEHOLDER_URL}/issues") for h in hrefs), "no issues button"
    assert any("mybinder.org" in h for h in hrefs) and any("colab.research.google.com" in h for h in hrefs), \
        "no Binder and Colab launch links"
    server, url = serve(html)
    try:
        problems, outside = browse(url + "/", ["intro.html", "moo_summary.html", "moo/culi-qdi.html"])
    finally:
        server.shutdown()
        server.server_close()
    assert not outside, f"requests left localhost: {sorted(set(outside))}"
    assert not problems, "\n".join(problems)


def test_config_keeps_every_outside_service_off() -> None:
    """The committed configuration loads nothing from outside: no thebe, comments, analytics; launch buttons
    are plain links that appear only when `repository.url` is set."""
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert cfg["launch_buttons"]["thebe"] is False
    assert not any(cfg["html"]["comments"].values())
    assert not any(cfg["html"]["analytics"].values())
    assert "sphinx_thebe" not in json.dumps(cfg["sphinx"]["config"]["extensions"])
