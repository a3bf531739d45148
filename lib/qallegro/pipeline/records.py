"""The run records of the book's pages (`metadata.qallegro` of each executed notebook), as a table."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from qallegro.pipeline.cache import stored_record
from qallegro.pipeline.notebooks import NOTEBOOKS, Notebook
from qallegro.pipeline.page import describe_hardware


def collect(book_dir: Path, notebooks: Iterable[Notebook] = NOTEBOOKS, exclude: Iterable[str] = ()):
    """A DataFrame with one row per executed page: name, page, scale, parameters, dates, duration, hardware."""
    import pandas as pd

    skip = set(exclude)
    rows: list[dict[str, Any]] = []
    for nb in notebooks:
        if nb.name in skip:
            continue
        rec = stored_record(Path(book_dir) / nb.page)
        if not rec:
            continue
        params = {k: v for k, v in rec.get("parameters", {}).items() if k != "scale"}
        rows.append({
            "notebook": nb.name,
            "page": nb.page,
            "scale": rec.get("scale"),
            "parameters": ", ".join(f"{k}={v}" for k, v in params.items()),
            "finished": rec.get("finished"),
            "duration_s": rec.get("duration_s"),
            "hardware": describe_hardware(rec.get("hardware", {})),
            "qallegro": rec.get("versions", {}).get("qallegro"),
            "commit": (rec.get("git_commit") or "")[:10],
        })
    columns = ["notebook", "page", "scale", "parameters", "finished", "duration_s", "hardware", "qallegro",
               "commit"]
    return pd.DataFrame(rows, columns=columns)


def summary(df) -> dict[str, Any]:
    """Scale(s), date range, hardware and total execution time of the records in `df` (from `collect`)."""
    if df.empty:
        return {"scale": "none yet", "dates": "never", "hardware": "none yet", "total_s": 0.0, "n": 0}
    days = sorted(str(d)[:10] for d in df["finished"].dropna())
    return {
        "scale": ", ".join(sorted(df["scale"].dropna().unique())),
        "dates": days[0] if days[0] == days[-1] else f"{days[0]} to {days[-1]}",
        "hardware": "; ".join(sorted(df["hardware"].unique())),
        "total_s": float(df["duration_s"].fillna(0).sum()),
        "n": len(df),
    }


def plan_table(df, plan: list[dict[str, Any]]):
    """The time plan (`presets/book.yaml[scale].plan`: pages pattern, minutes, what) beside the measured
    execution times of the matching records of `df` (from `collect`), with a total row. Notebooks that no
    plan row matches are added as a row of their own (planned: none)."""
    import fnmatch

    import pandas as pd

    rows, matched = [], set()
    for item in plan:
        names = [n for n in df["notebook"] if fnmatch.fnmatchcase(n, str(item["pages"]))]
        matched.update(names)
        sel = df[df["notebook"].isin(names)]
        rows.append({"pages": item["pages"], "what": item.get("what", ""), "notebooks": len(names),
                     "planned (min)": float(item["minutes"]),
                     "measured (min)": float(sel["duration_s"].fillna(0).sum()) / 60 if names else None})
    rest = df[~df["notebook"].isin(matched)]
    if len(rest):
        rows.append({"pages": ", ".join(rest["notebook"]), "what": "not in the plan", "notebooks": len(rest),
                     "planned (min)": None, "measured (min)": float(rest["duration_s"].fillna(0).sum()) / 60})
    table = pd.DataFrame(rows, columns=["pages", "what", "notebooks", "planned (min)", "measured (min)"])
    total = {"pages": "total", "what": "", "notebooks": int(table["notebooks"].sum()),
             "planned (min)": float(table["planned (min)"].fillna(0).sum()),
             "measured (min)": float(table["measured (min)"].fillna(0).sum())}
    return pd.concat([table, pd.DataFrame([total])], ignore_index=True).set_index("pages")
