"""Citable releases: LICENSE, CITATION.cff, .zenodo.json, the changelog and `qallegro --version` agree."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from qallegro import __version__

ROOT = Path(__file__).resolve().parents[1]


def test_citation_metadata_carries_the_version_license_and_the_paper() -> None:
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    zenodo = json.loads((ROOT / ".zenodo.json").read_text())
    license_ = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    assert cff["cff-version"] == "1.2.0" and cff["version"] == zenodo["version"] == __version__
    assert cff["license"] == zenodo["license"] == license_ == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    paper = cff["preferred-citation"]
    assert paper["doi"] == "10.1016/j.commatsci.2026.114742" and paper["year"] == 2026
    assert paper["authors"][0]["family-names"] == "Laskaris" and len(paper["authors"]) == 9
    related = {r["identifier"] for r in zenodo["related_identifiers"]}
    assert paper["doi"] in related


def test_changelog_has_the_current_release_and_the_cli_prints_the_version() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    released = yaml.safe_load((ROOT / "CITATION.cff").read_text())["date-released"]
    assert f"## [{__version__}] - {released}\n" in changelog
    out = subprocess.run([sys.executable, "-m", "qallegro.cli", "--version"], capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT / "lib")}, timeout=120, check=True)
    assert out.stdout.strip() == f"qallegro {__version__}"
