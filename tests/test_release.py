"""Releases (`make release VERSION=X.Y.Z`, `.ci/release.py`) in a temporary clone of this repository: a version
that disagrees anywhere, a missing changelog heading, a dirty tree or an existing tag is a one-line error naming
the file; agreement creates the annotated tag vX.Y.Z on HEAD of the clone, and nothing reaches the origin."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / ".ci" / "release.py"
NEW = "9.8.7"  # a version this repository never had
DATE = "2031-02-03"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def bump(repo: Path, version: str, skip: str = "") -> None:
    """Write `version` into every metadata file but `skip`, as a release commit would."""
    edits = {
        "lib/qallegro/__init__.py": (r'^__version__ = "[^"]*"', f'__version__ = "{version}"'),
        "CITATION.cff": (r'^version: "[^"]*"', f'version: "{version}"'),
        ".zenodo.json": (r'"version": "[^"]*"', f'"version": "{version}"'),
        "CHANGELOG.md": (r"^## \[Unreleased\]", f"## [Unreleased]\n\n## [{version}] - {DATE}"),
    }
    for name, (pattern, text) in edits.items():
        if name != skip:
            path = repo / name
            new, count = re.subn(pattern, text, path.read_text(), count=1, flags=re.MULTILINE)
            assert count == 1, name
            path.write_text(new)
    if skip != "CITATION.cff":
        cff = repo / "CITATION.cff"
        cff.write_text(re.sub(r'^date-released: "[^"]*"', f'date-released: "{DATE}"', cff.read_text(), count=1,
                              flags=re.MULTILINE))


@pytest.fixture()
def clone(tmp_path: Path) -> Path:
    """A clone of this repository's HEAD, with a committer identity."""
    out = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", "--depth", "1", f"file://{ROOT}", str(out)], check=True, timeout=120)
    git(out, "config", "user.name", "test")
    git(out, "config", "user.email", "test@example.org")
    return out


def release(repo: Path, version: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), version, "--repo", str(repo)], capture_output=True,
                          text=True, timeout=120)


def commit(repo: Path, message: str) -> None:
    git(repo, "commit", "-qam", message)


def test_agreeing_versions_in_a_clean_tree_create_the_annotated_tag(clone: Path) -> None:
    bump(clone, NEW)
    commit(clone, f"release {NEW}")
    proc = subprocess.run(["make", "-s", "-C", str(clone), "release", f"VERSION={NEW}", f"VENV={ROOT / '.venv'}"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert f"tagged v{NEW}" in proc.stdout and "not pushed" in proc.stdout
    assert git(clone, "cat-file", "-t", f"v{NEW}").strip() == "tag"  # annotated, not lightweight
    assert git(clone, "rev-parse", f"v{NEW}^{{commit}}") == git(clone, "rev-parse", "HEAD")
    assert git(clone, "tag", "-l", "--format=%(contents)", f"v{NEW}").strip() == f"qallegro {NEW}"
    assert not git(clone, "ls-remote", "--tags", "origin", f"v{NEW}").strip()  # never pushed
    again = release(clone, NEW)
    assert again.returncode == 2 and f"tag v{NEW} exists already" in again.stderr


@pytest.mark.parametrize("skip", ["lib/qallegro/__init__.py", "CITATION.cff", ".zenodo.json", "CHANGELOG.md"])
def test_a_file_that_disagrees_is_named_and_nothing_is_tagged(clone: Path, skip: str) -> None:
    bump(clone, NEW, skip=skip)
    commit(clone, f"release {NEW}, but not in {skip}")
    proc = release(clone, NEW)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"release: {skip}: "), proc.stderr
    if skip == "CHANGELOG.md":
        assert f"no '## [{NEW}]' heading" in lines[0]
    else:
        assert f"not '{NEW}'" in lines[0]
    assert not git(clone, "tag", "-l", f"v{NEW}").strip()


def test_a_release_date_that_disagrees_or_is_missing_is_named(clone: Path) -> None:
    bump(clone, NEW)
    cff = clone / "CITATION.cff"
    cff.write_text(cff.read_text().replace(f'date-released: "{DATE}"', 'date-released: "2031-02-04"'))
    commit(clone, "a release date that disagrees")
    proc = release(clone, NEW)
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"release: CITATION.cff: date-released '2031-02-04', not the changelog's '{DATE}'"
    changelog = clone / "CHANGELOG.md"
    changelog.write_text(changelog.read_text().replace(f"## [{NEW}] - {DATE}", f"## [{NEW}]"))
    commit(clone, "no date in the heading")
    proc = release(clone, NEW)
    assert proc.returncode == 2 and "the '## [9.8.7]' heading has no ' - YYYY-MM-DD' date" in proc.stderr
    assert not git(clone, "tag", "-l", f"v{NEW}").strip()


def test_a_dirty_tree_and_a_bad_version_are_refused(clone: Path) -> None:
    bump(clone, NEW)
    commit(clone, f"release {NEW}")
    (clone / "README.md").write_text((clone / "README.md").read_text() + "\nuncommitted\n")
    proc = release(clone, NEW)
    assert proc.returncode == 2 and "the working tree is not clean (README.md)" in proc.stderr
    git(clone, "checkout", "README.md")
    (clone / "notes.txt").write_text("untracked\n")
    proc = release(clone, NEW)
    assert proc.returncode == 2 and "not clean (notes.txt)" in proc.stderr
    (clone / "notes.txt").unlink()
    proc = release(clone, "9.8")
    assert proc.returncode == 2 and proc.stderr.strip() == "release: VERSION '9.8' is not X.Y.Z"
    zenodo = json.loads((clone / ".zenodo.json").read_text())
    assert zenodo["version"] == NEW
    (clone / ".zenodo.json").write_text("{not json")
    commit(clone, "a broken .zenodo.json")
    proc = release(clone, NEW)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert proc.stderr.startswith("release: .zenodo.json: cannot be read (JSONDecodeError")
    assert not git(clone, "tag", "-l", f"v{NEW}").strip()
    proc = subprocess.run(["make", "-s", "-C", str(clone), "release", f"VENV={ROOT / '.venv'}"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0 and "usage: make release VERSION=X.Y.Z" in proc.stderr
