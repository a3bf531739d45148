"""Issue 19 findings 3 and 11 on `qallegro reproduce`: prerequisites first, a failed or interrupted `--copy` run
keeps what it computed and leaves no temporary copy, no stray page files. Tiny notebooks in tmp repos."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from qallegro.errors import PipelineError
from qallegro.pipeline.notebooks import Notebook
from qallegro.pipeline.reproduce import reproduce, reproduce_in_copy
from test_pipeline import _git_repo, write_nb

ROOT = Path(__file__).resolve().parents[1]


def test_missing_mathjax_stops_before_any_notebook_runs(tmp_path: Path) -> None:
    """Finding 3: the build's prerequisites are checked first (here MathJax is not vendored)."""
    root = _git_repo(tmp_path / "repo")
    write_nb(root / "book" / "a.ipynb", "print('ran')")
    before = (root / "book" / "a.ipynb").read_bytes()
    for run in (lambda: reproduce("smoke", root=root, notebooks=[Notebook("a", "a.ipynb")], progress=False),
                lambda: reproduce_in_copy("smoke", root=root, notebooks=[Notebook("a", "a.ipynb")],
                                          progress=False)):
        with pytest.raises(PipelineError, match="MathJax is not vendored"):
            run()
    assert (root / "book" / "a.ipynb").read_bytes() == before  # nothing executed
    assert not (root / "_build" / "logs").exists() and not (root / "_build" / "copy-smoke").exists()


def test_failed_copy_run_keeps_the_pages_it_computed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = _git_repo(tmp_path / "repo")
    write_nb(root / "book" / "good.ipynb", "import os, pathlib\n"
             "pathlib.Path(os.environ['QALLEGRO_RESULTS'], 'smoke').mkdir(parents=True, exist_ok=True)\n"
             "pathlib.Path(os.environ['QALLEGRO_RESULTS'], 'smoke', 'good.txt').write_text('computed')\n"
             "print('good ran')")
    write_nb(root / "book" / "bad.ipynb", "raise RuntimeError('broken page')")
    nbs = [Notebook("good", "good.ipynb"), Notebook("bad", "bad.ipynb")]
    report = reproduce_in_copy("smoke", root=root, notebooks=nbs, build=False, progress=False)
    assert [s.status for s in report.steps] == ["ok", "failed"]
    back = root / "_build" / "copy-smoke"
    assert "good ran" in (back / "book" / "good.ipynb").read_text()
    assert (back / "results" / "smoke" / "good.txt").read_text() == "computed"
    assert f"{back}/book" in capsys.readouterr().err  # says where


def test_stale_page_in_progress_is_removed_and_ignored(tmp_path: Path) -> None:
    """Finding 11: a kill -9 leaves `.<page>.running.ipynb` (in any subfolder); git ignores it, the next run
    removes it."""
    stale = ROOT / "book" / "moo" / ".fig2.running.ipynb"
    ignored = subprocess.run(["git", "-C", str(ROOT), "check-ignore", "-q", str(stale)], check=False)
    assert ignored.returncode == 0
    root = _git_repo(tmp_path / "repo")
    write_nb(root / "book" / "sub" / "a.ipynb", "print('ran')")
    left = root / "book" / "sub" / ".a.running.ipynb"
    left.write_text("{}")
    report = reproduce("smoke", root=root, notebooks=[Notebook("a", "sub/a.ipynb")], build=False, progress=False)
    assert [s.status for s in report.steps] == ["ok"] and not left.exists()


def test_sigterm_of_a_copy_run_leaves_no_temporary_copy(tmp_path: Path) -> None:
    """Finding 11: SIGTERM stops `reproduce --copy` like Ctrl-C: what it computed comes back, the copy goes."""
    root = _git_repo(tmp_path / "repo")
    write_nb(root / "book" / "a.ipynb", "print('a done')")
    write_nb(root / "book" / "slow.ipynb", "import time\nprint('slow started', flush=True)\ntime.sleep(120)")
    tmpdir = tmp_path / "tmp"
    tmpdir.mkdir()
    script = textwrap.dedent(f"""
        from pathlib import Path
        from qallegro.pipeline.notebooks import Notebook
        from qallegro.pipeline.reproduce import reproduce_in_copy
        from qallegro.utils import sigterm_as_interrupt
        sigterm_as_interrupt()
        reproduce_in_copy("smoke", root=Path({str(root)!r}), build=False, progress=False,
                          notebooks=[Notebook("a", "a.ipynb"), Notebook("slow", "slow.ipynb")])
    """)
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    copies = lambda: list(tmpdir.glob("qallegro-smoke-*/repo/_build/logs/slow.log"))  # noqa: E731
    end = time.time() + 120
    while time.time() < end and not (copies() and "slow started" in copies()[0].read_text()):
        time.sleep(0.2)
    assert copies(), "the slow notebook did not start"
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0 and "KeyboardInterrupt" in out
    assert list(tmpdir.glob("qallegro-*")) == []
    back = root / "_build" / "copy-smoke"
    assert "a done" in (back / "book" / "a.ipynb").read_text()
    assert not list(root.rglob(".*.running.ipynb"))
