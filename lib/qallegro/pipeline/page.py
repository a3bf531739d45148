"""What every page of the book states about its own run, called from the notebooks."""

from __future__ import annotations

import datetime as _dt
import re
from pathlib import Path
from typing import Any

import qallegro


def describe_hardware(hw: dict[str, Any]) -> str:
    """One line for a `qallegro.utils.hardware_info()` record: CPU, cores, memory, GPU."""
    parts = [str(hw.get("cpu") or "unknown CPU")]
    if hw.get("cpus_available"):
        parts.append(f"{hw['cpus_available']} cores")
    if hw.get("memory_gib"):
        parts.append(f"{hw['memory_gib']} GiB")
    parts.append(f"GPU {hw['gpu']}" if hw.get("gpu") else "no GPU")
    return ", ".join(parts)


def provenance(scale: str, seed: int | None = None) -> Any:
    """A Markdown line: the scale, date, code version and hardware this page was computed with."""
    from IPython.display import Markdown

    from qallegro.utils import git_commit, hardware_info

    commit = git_commit()
    today = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")
    text = (f"*Computed at the **{scale}** scale on {today} (UTC) with qallegro {qallegro.__version__}"
            f"{f' (commit {commit[:10]})' if commit else ''}"
            f"{f', seed {seed}' if seed is not None else ''}, on {describe_hardware(hardware_info())}.*")
    return Markdown(text)


def show(fig: Any, dpi: int = 110) -> Any:
    """A matplotlib figure as a PNG image for the page (independent of the matplotlib backend); closes it."""
    import io

    import matplotlib.pyplot as plt
    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return Image(data=buf.getvalue(), format="png")



PARAMETERS_TAG = "parameters"
INJECTED_TAG = "injected-parameters"


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: dict[str, Any]) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def assignments(source: str) -> dict[str, str]:
    """`name = value` / `name: type = value` statements of a parameters cell: name -> the value's source text."""
    import ast

    out = {}
    for stmt in ast.parse(source).body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            out[stmt.target.id] = ast.get_source_segment(source, stmt.value) or ast.unparse(stmt.value)
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            out[stmt.targets[0].id] = ast.get_source_segment(source, stmt.value) or ast.unparse(stmt.value)
    return out


def show_injected(nb: dict[str, Any]) -> dict[str, Any]:
    """A notebook (nbformat JSON) whose `parameters` cell shows the values papermill injected, so that the page
    shows (and a reader copies) the parameters it ran with; the hidden injected cell stays as it is. Each line
    `name: type = default  # comment` keeps its type and comment. Unchanged when nothing was injected."""
    cells = nb.get("cells", [])
    injected = [c for c in cells if INJECTED_TAG in _tags(c)]
    params = [c for c in cells if PARAMETERS_TAG in _tags(c)]
    if not injected or len(params) != 1:
        return nb
    values = assignments(_source(injected[0]))
    lines = []
    for line in _source(params[0]).splitlines():
        code, hash_, comment = line.partition("  #")
        name = code.split("=")[0].split(":")[0].strip()
        if name in values and "=" in code:
            code = f"{code.split('=')[0].rstrip()} = {values[name]}"
        lines.append(code + hash_ + comment)
    params[0]["source"] = "\n".join(lines)
    return nb


def result_files(patterns: list[str], root: Path) -> list[Path]:
    """The committed files matching `patterns` (globs relative to the repository `root`), sorted, no repeats."""
    return sorted({p for pattern in patterns for p in Path(root).glob(pattern) if p.is_file()})


def footer_markdown(record: dict[str, Any] | None, current: bool | None, build_commit: str | None,
                    files: list[Path], root: Path, book_dir: Path, page: str, patterns: list[str] = ()) -> str:
    """The MyST text closing every executed page: the commit and date that computed it, whether its cache key
    still matches the code and inputs of the commit the HTML was built from, and a download link for every
    result file it shows (`files`, under the repository `root`; links relative to the page `page` in
    `book_dir`), or the `patterns` of those it would show when none exists yet."""
    import os

    lines = ["## About this page", ""]
    if record:
        commit = (record.get("git_commit") or "")[:10] or "an uncommitted tree"
        version = record.get("versions", {}).get("qallegro")
        lines.append(f"Computed at the **{record.get('scale')}** scale at commit `{commit}` on "
                     f"{str(record.get('finished') or '')[:10]} (qallegro {version}).")
    else:
        lines.append("This page has no run record: it was not executed by `qallegro reproduce`.")
    built = f"commit `{build_commit[:10]}`" if build_commit else "this build"
    if current is True:
        lines.append(f"Its cache key matches the notebook, parameters, presets, data and inputs at {built}, from "
                     "which this HTML was built: re-running it would recompute nothing.")
    elif current is False:
        lines.append(f"**Out of date:** its notebook, parameters, presets, data or inputs changed after it was "
                     f"computed (cache key checked at {built}); `qallegro reproduce` recomputes it.")
    lines.append("")
    if files:
        here = (Path(book_dir) / page).parent
        lines.append(f"The result files this page shows ({len(files)}, committed in the repository), for download:")
        lines.append("")
        for f in files:
            rel = os.path.relpath(f, here)
            lines.append(f"- {{download}}`{Path(f).relative_to(root)} <{rel}>`")
    elif patterns:
        lines.append("None of its result files exists at this scale (it reads " + ", ".join(f"`{p}`" for p in patterns)
                     + " where they exist).")
    else:
        lines.append("This page reads no committed result file (only the datasets or the code itself).")
    return "\n".join(lines) + "\n"


_STORED_TABLE = re.compile(r"<table[^>]*class=\"dataframe\".*?</table>", re.DOTALL)
_PANDAS_MISSING = {"NaN", "nan", "None", "<NA>", "NaT"}
# the objectives' record names in a stored table, in words with the units the records hold
RECORD_NAMES = {"val_f_mae": "validation force MAE (eV/Å)", "val_e_mae": "validation energy MAE (eV/atom)",
                "inference_total_s": "inference time of the timed test structures (CPU s)"}


def stored_table(html: str):
    """A pandas HTML table (as a notebook stored it) as a DataFrame of its displayed strings: the header levels
    joined, the objectives' record names in words with their recorded units (`RECORD_NAMES`), a 0..N-1 index
    column dropped, pandas' missing values as "–", rows with nothing in them dropped."""
    from io import StringIO

    import pandas as pd

    from qallegro.report.tables import MISSING

    ncols = pd.read_html(StringIO(html))[0].shape[1]
    df = pd.read_html(StringIO(html), converters=dict.fromkeys(range(ncols), str), keep_default_na=False)[0]
    names = []
    for col in df.columns:
        parts = col if isinstance(col, tuple) else (col,)
        kept = [str(p) for p in parts if not str(p).startswith("Unnamed:")]
        name = " ".join(dict.fromkeys(kept))
        names.append(RECORD_NAMES.get(name, name))
    df.columns = names
    first = df.columns[0]
    if first == "" and list(df[first]) == [str(i) for i in range(len(df))]:
        df = df.drop(columns=first)
    df = df.map(lambda v: MISSING if str(v).strip() in _PANDAS_MISSING or not str(v).strip() else v)
    return df[(df != MISSING).any(axis=1)].reset_index(drop=True)  # no empty rows (pandas' index-name row)


def restyle_stored_tables(nb: dict[str, Any], max_columns: int = 8) -> dict[str, Any]:
    """A notebook (nbformat JSON) whose stored pandas tables are shown in the book's table style
    (`qallegro.report.tables`: "–" for missing values, no 0..N-1 index, tables wider than `max_columns` split);
    for pages computed before that style. The displayed strings are kept as the notebook stored them."""
    from qallegro.report.tables import Table, split_columns

    def restyle(match: re.Match) -> str:
        try:
            df = stored_table(match.group(0))
        except ValueError:  # not a table pandas can read back: leave it
            return match.group(0)
        groups = split_columns(list(df.columns), 1, max_columns) if df.shape[1] > max_columns else [list(df.columns)]
        return Table([df[g] for g in groups])._repr_html_()

    for cell in nb.get("cells", []):
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if "text/html" in data:
                text = "".join(data["text/html"]) if isinstance(data["text/html"], list) else data["text/html"]
                data["text/html"] = _STORED_TABLE.sub(restyle, text)
    return nb
