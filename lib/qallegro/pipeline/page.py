"""What every page of the book states about its own run, called from the notebooks."""

from __future__ import annotations

import datetime as _dt
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

