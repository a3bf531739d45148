#!/usr/bin/env python3
"""Tag a release: `make release VERSION=X.Y.Z` (or `.ci/release.py X.Y.Z [--repo DIR]`).

Checks that `qallegro.__version__` (lib/qallegro/__init__.py), `CITATION.cff`, `.zenodo.json` and a
`## [X.Y.Z] - YYYY-MM-DD` heading of CHANGELOG.md agree with X.Y.Z, that CITATION.cff's `date-released` is that
heading's date, that the working tree is clean (no change, no untracked
file) and that the tag does not exist yet; then creates the annotated tag `vX.Y.Z` on HEAD. It never pushes:
`git push origin vX.Y.Z` publishes the release (Zenodo archives it from `.zenodo.json`).
A failed check is one line naming the file and the problem, exit status 2.
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lib"))
from qallegro.errors import EXIT_USER_ERROR, QallegroError  # noqa: E402

SEMVER = re.compile(r"\d+\.\d+\.\d+")


class ReleaseError(QallegroError):
    """A release check that failed."""


def package_version(repo: Path) -> str:
    """`__version__` of lib/qallegro/__init__.py, read without importing it."""
    init = repo / "lib" / "qallegro" / "__init__.py"
    for node in ast.parse(init.read_text()).body:
        if (isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "__version__" for t in node.targets)
                and isinstance(node.value, ast.Constant)):
            return str(node.value.value)
    raise ReleaseError(f"{init.relative_to(repo)}: no __version__ = '...' assignment")


def versions(repo: Path) -> dict[str, str]:
    """The version each metadata file states, by file (relative path)."""
    out = {"lib/qallegro/__init__.py": package_version(repo)}
    for name, parse in (("CITATION.cff", yaml.safe_load), (".zenodo.json", json.loads)):
        try:
            meta = parse((repo / name).read_text())
        except (OSError, ValueError, yaml.YAMLError) as err:
            raise ReleaseError(f"{name}: cannot be read ({type(err).__name__}: {err})") from err
        out[name] = str(meta.get("version")) if isinstance(meta, dict) else "none"
    return out


def git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        said = (proc.stderr.strip().splitlines() or ["no message"])[0]
        raise ReleaseError(f"{repo}: git {args[0]} failed: {said}")
    return proc.stdout


def check(repo: Path, version: str) -> None:
    """Raise `ReleaseError` unless `repo` is ready to be tagged `v{version}`."""
    if not SEMVER.fullmatch(version):
        raise ReleaseError(f"VERSION {version!r} is not X.Y.Z")
    for name, found in versions(repo).items():
        if found != version:
            raise ReleaseError(f"{name}: version {found!r}, not {version!r}")
    changelog = (repo / "CHANGELOG.md").read_text()
    heading = re.compile(rf"^## \[{re.escape(version)}\](.*)$", re.MULTILINE).search(changelog)
    if not heading:
        raise ReleaseError(f"CHANGELOG.md: no '## [{version}]' heading")
    date = re.fullmatch(r" - (\d{4}-\d{2}-\d{2})\s*", heading.group(1))
    if not date:
        raise ReleaseError(f"CHANGELOG.md: the '## [{version}]' heading has no ' - YYYY-MM-DD' date")
    released = str(yaml.safe_load((repo / "CITATION.cff").read_text()).get("date-released"))
    if released != date.group(1):
        raise ReleaseError(f"CITATION.cff: date-released {released!r}, not the changelog's {date.group(1)!r}")
    dirty = git(repo, "status", "--porcelain").splitlines()
    if dirty:
        shown = ", ".join(line[3:] for line in dirty[:5]) + (f" and {len(dirty) - 5} more" if len(dirty) > 5 else "")
        raise ReleaseError(f"{repo}: the working tree is not clean ({shown}): commit or remove first")
    if git(repo, "tag", "--list", f"v{version}").strip():
        raise ReleaseError(f"{repo}: tag v{version} exists already")


def release(repo: Path, version: str) -> None:
    """Check `repo`, then create the annotated tag `v{version}` on HEAD (not pushed)."""
    check(repo, version)
    git(repo, "tag", "-a", f"v{version}", "-m", f"qallegro {version}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", metavar="X.Y.Z")
    parser.add_argument("--repo", type=Path, default=ROOT, help="the checkout to tag (default: this one)")
    args = parser.parse_args(argv)
    try:
        release(args.repo.resolve(), args.version)
    except (ReleaseError, OSError, SyntaxError) as err:  # SyntaxError: an unparsable __init__.py
        print(f"release: {err}".replace("\n", " "), file=sys.stderr)
        return EXIT_USER_ERROR
    print(f"tagged v{args.version} on {git(args.repo, 'rev-parse', '--short', 'HEAD').strip()} "
          f"(not pushed: git push origin v{args.version})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
