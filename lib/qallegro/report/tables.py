"""One table style for the whole book: a record table (a DataFrame) as a display table.

Units go into the headers, missing values show as "–", numbers get a fixed number of significant figures per
column, the paper's columns are labelled as the paper's, there is no index column and nothing is truncated.
Tables wider than `max_columns` are split into several tables that repeat the key columns, so none is wider
than the page's content column.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

MISSING = "–"
TABLE_CLASS = "qallegro-table"


class Link(str):
    """A cell's text with the page it links to (`href`, relative to the page that shows the table)."""

    href: str

    def __new__(cls, text: str, href: str) -> Link:
        out = super().__new__(cls, text)
        out.href = href
        return out


def is_missing(value: Any) -> bool:
    """None, NaN, NA and empty strings."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):  # lists, dicts: never missing
        return False


def format_number(value: Any, digits: int = 3) -> str:
    """`value` as text: floats rounded to `digits` significant figures (the integer part is never rounded) in
    plain decimal notation without trailing zeros (scientific only below 1e-4 or from 1e9 on), integers as they
    are (thousands separated from 10,000), booleans as yes/no, missing values as "–", anything else as `str`."""
    if is_missing(value):
        return MISSING
    if isinstance(value, Link):
        return value
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") in "iu"):
        value = int(value)
        return f"{value:,}" if abs(value) >= 10_000 else str(value)
    if isinstance(value, float) or (hasattr(value, "dtype") and getattr(value.dtype, "kind", "") == "f"):
        x = float(value)
        if not math.isfinite(x):
            return "∞" if x > 0 else "−∞" if x < 0 else MISSING
        if x == 0:
            return "0"
        if abs(x) < 1e-4 or abs(x) >= 1e9:
            return f"{x:.{digits - 1}e}"
        decimals = max(digits - 1 - math.floor(math.log10(abs(x))), 0)
        text = f"{round(x, decimals):,.{decimals}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text if abs(x) >= 10_000 else text.replace(",", "")
    return str(value)


def header(name: Any, units: Mapping[str, str], paper: Iterable[str]) -> str:
    """A column's header: its name, " (paper)" when it is one of the paper's columns (unless the name says so
    already), and its unit in brackets."""
    text = " ".join(str(n) for n in name if str(n)) if isinstance(name, tuple) else str(name)
    if name in set(paper) and "paper" not in text.lower():
        text += " (paper)"
    unit = units.get(name) if not isinstance(name, tuple) else units.get(name) or units.get(name[0])
    return f"{text} [{unit}]" if unit else text


def display_frame(df: pd.DataFrame, units: Mapping[str, str] | None = None,
                  digits: int | Mapping[str, int] = 3, paper: Iterable[str] = (),
                  rename: Mapping[str, str] | None = None) -> pd.DataFrame:
    """The text of the display table: the index as leading columns (unless it is the default 0..N-1), every
    cell formatted (`format_number`), headers with units and paper labels (`header`). A DataFrame of strings."""
    units, paper, rename = dict(units or {}), list(paper), dict(rename or {})
    if _keeps_index(df):
        df = df.rename_axis([n if n is not None else "" for n in df.index.names])
        flat = df.reset_index()
    else:
        flat = df.reset_index(drop=True)
    out = {}
    for col in flat.columns:
        n = digits.get(col, 3) if isinstance(digits, Mapping) else digits
        label = header(col, units, paper)
        out[rename.get(col, label)] = [format_number(v, n) for v in flat[col]]
    return pd.DataFrame(out, columns=list(out))


def _keeps_index(df: pd.DataFrame) -> bool:
    """Whether the index carries information (is named, or is not the default 0..N-1)."""
    default = isinstance(df.index, pd.RangeIndex) and df.index.start == 0 and df.index.step == 1
    return any(name is not None for name in df.index.names) or not default


def split_columns(columns: Sequence[str], keys: int, max_columns: int) -> list[list[str]]:
    """Column groups of at most `max_columns` columns, each starting with the first `keys` columns."""
    if max_columns <= keys:
        raise ValueError(f"max_columns ({max_columns}) must exceed the {keys} key column(s)")
    head, rest = list(columns[:keys]), list(columns[keys:])
    step = max_columns - keys
    return [head + rest[i:i + step] for i in range(0, len(rest), step)] or [head]


_NUMBER = re.compile(r"^[−-]?[\d,]*\.?\d+(e[+-]\d+)?%?$|^–$")


def _td(value: Any) -> str:
    """A cell: numbers (and "–") right-aligned, text left-aligned, a `Link` as a link."""
    if isinstance(value, Link):
        return f'<td><a href="{html.escape(value.href)}">{html.escape(value)}</a></td>'
    text = str(value)
    cls = ' class="num"' if _NUMBER.match(text) else ""
    return f"<td{cls}>{html.escape(text)}</td>"


def to_html(frame: pd.DataFrame, caption: str = "") -> str:
    """One HTML table of a `display_frame` (escaped text, no index, the book's table class); headers may break
    after underscores (record names such as `force_mae_meV_A`)."""
    head = "".join(f"<th>{html.escape(str(c)).replace('_', '_<wbr>')}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(_td(v) for v in row) + "</tr>" for row in frame.itertuples(index=False))
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f'<table class="{TABLE_CLASS}">{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


class Table:
    """A display table for a notebook cell (rendered as HTML, and as plain text outside a notebook)."""

    def __init__(self, frames: list[pd.DataFrame], caption: str = "") -> None:
        self.frames = frames
        self.caption = caption

    def _repr_html_(self) -> str:
        return "".join(to_html(f, self.caption if i == 0 else "") for i, f in enumerate(self.frames))

    def __repr__(self) -> str:
        return "\n\n".join(f.to_string(index=False) for f in self.frames)


def display_table(df: pd.DataFrame, units: Mapping[str, str] | None = None,
                  digits: int | Mapping[str, int] = 3, paper: Iterable[str] = (),
                  rename: Mapping[str, str] | None = None, max_columns: int = 8, caption: str = "") -> Table:
    """`df` as the book shows a table (see the module docstring). The named index levels become the key
    columns repeated by each part when the table has more than `max_columns` columns."""
    frame = display_frame(df, units, digits, paper, rename)
    keys = len(df.index.names) if _keeps_index(df) else 1
    groups = split_columns(list(frame.columns), keys, max_columns) if frame.shape[1] > max_columns else \
        [list(frame.columns)]
    return Table([frame[g] for g in groups], caption)
