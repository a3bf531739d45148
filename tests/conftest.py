"""Shared test set-up: the data mirror, a private results folder, and a deliberate thread count."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"

if not os.environ.get("QALLEGRO_DATA") and SHARED_DATA.is_dir():
    os.environ["QALLEGRO_DATA"] = str(SHARED_DATA)
os.environ.setdefault("QALLEGRO_THREADS", "1")


@pytest.fixture(scope="session", autouse=True)
def _threads() -> None:
    from qallegro.utils import set_threads

    set_threads()


@pytest.fixture()
def results_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private results root (QALLEGRO_RESULTS) for tests that run experiments."""
    out = tmp_path / "results"
    monkeypatch.setenv("QALLEGRO_RESULTS", str(out))
    return out


@pytest.fixture(scope="session")
def data_mirror() -> Path:
    path = Path(os.environ.get("QALLEGRO_DATA", ""))
    if not path.is_dir():
        pytest.fail("the data mirror is missing: set QALLEGRO_DATA or put ../shared/data beside the checkout")
    return path
