"""The jupyter-book build of `book/` (rendered from the stored notebook outputs; nothing is executed)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

MATHJAX = Path("_static") / "mathjax" / "tex-mml-chtml.js"


def toc_files(toc_path: Path) -> list[str]:
    """Every page of a jupyter-book table of contents (the root first), relative to book/ without suffix."""
    import yaml

    toc = yaml.safe_load(Path(toc_path).read_text())
    if not isinstance(toc, dict) or "root" not in toc:
        raise ValueError(f"{toc_path}: not a jupyter-book table of contents (no 'root')")
    files = [toc["root"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                files.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return files


class BuildFailed(RuntimeError):
    """jupyter-book returned non-zero (with `strict`, any Sphinx warning does)."""


def jupyter_book() -> str:
    """The jupyter-book executable of this environment."""
    beside = Path(sys.executable).with_name("jupyter-book")
    found = str(beside) if beside.exists() else shutil.which("jupyter-book")
    if not found:
        raise FileNotFoundError("jupyter-book is not installed in this environment (make install)")
    return found


BINDER = "https://mybinder.org"
COLAB = "https://colab.research.google.com"


def site_config(config_path: Path, repository_url: str, dest: Path) -> Path:
    """A copy of the book's `_config.yml` at `dest` for the project's site: `repository.url` set and its
    repository, issue and launch (Binder, Colab) buttons on; they are links only. Local extension paths are
    made absolute (they are relative to the config file)."""
    import yaml

    if not repository_url.startswith("https://"):
        raise ValueError(f"repository URL must start with https://, got {repository_url!r}")
    config_path = Path(config_path).resolve()
    cfg = yaml.safe_load(config_path.read_text())
    cfg["repository"] = {**cfg.get("repository", {}), "url": repository_url.rstrip("/")}
    cfg["html"] = {**cfg.get("html", {}), "use_repository_button": True, "use_issues_button": True}
    cfg["launch_buttons"] = {**cfg.get("launch_buttons", {}), "binderhub_url": BINDER, "colab_url": COLAB}
    local = cfg.get("sphinx", {}).get("local_extensions") or {}
    for name, path in local.items():
        local[name] = str((config_path.parent / path).resolve())
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(yaml.safe_dump(cfg, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return dest


def build_book(book_dir: Path, log_path: Path, strict: bool = False, config: Path | None = None) -> Path:
    """Build the HTML book of `book_dir` into `<repo>/_build/html`; return that folder.

    `strict` rebuilds every page and fails on any warning (`-W --keep-going --all`), as CI does; `config`
    replaces `<repo>/_config.yml` (e.g. a `site_config`). The output of jupyter-book goes to `log_path`; its
    tail is in the error when the build fails.
    """
    book_dir = Path(book_dir).resolve()
    if not (book_dir / MATHJAX).exists():
        raise FileNotFoundError(f"MathJax is not vendored: {book_dir / MATHJAX} is missing, so math would not "
                                "render offline; run `make mathjax` (bash .ci/install-mathjax.sh)")
    cmd = [jupyter_book(), "build", str(book_dir)]
    if strict:
        cmd += ["-W", "--keep-going", "--all"]
    if config is not None:
        cmd += ["--config", str(Path(config).resolve())]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", encoding="utf-8") as log:
        log.write("$ " + " ".join(cmd) + "\n")
        log.flush()
        proc = subprocess.run(cmd, check=False, stdout=log, stderr=subprocess.STDOUT, cwd=book_dir.parent)
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-25:])
        raise BuildFailed(f"jupyter-book build failed (rc {proc.returncode}); log: {log_path}\n{tail}")
    return book_dir.parent / "_build" / "html"
