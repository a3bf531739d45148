"""requirements.txt, pyproject.toml and environment.yml agree, pin Python 3.11 and match what is installed.

The checks are functions of a folder, so the tests also run them on a modified copy and see them fail.
"""

from __future__ import annotations

import re
import shutil
import sys
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
FILES = ("requirements.txt", "pyproject.toml", "environment.yml")


def parse_requirements(lines: list[str], where: str) -> dict[str, Requirement]:
    out: dict[str, Requirement] = {}
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as err:
            raise AssertionError(f"{where}: bad requirement {line!r}: {err}") from err
        name = canonicalize_name(req.name)
        assert name not in out, f"{where}: {req.name} listed twice"
        out[name] = req
    return out


def requirements(root: Path) -> dict[str, Requirement]:
    return parse_requirements((root / "requirements.txt").read_text().splitlines(), "requirements.txt")


def environment(root: Path) -> tuple[str | None, list[str]]:
    """(the conda python spec, the pip section) of environment.yml."""
    env = yaml.safe_load((root / "environment.yml").read_text())
    conda: list[str] = []
    pip: list[str] = []
    for dep in env.get("dependencies", []):
        if isinstance(dep, dict):
            pip.extend(str(p) for p in dep.get("pip", []))
        else:
            conda.append(str(dep))
    return next((d for d in conda if re.match(r"^python\b", d)), None), pip


def problems(root: Path) -> list[str]:
    """Every disagreement between the three environment files of `root` (empty when they agree)."""
    out: list[str] = []
    req = requirements(root)
    for r in req.values():
        spec = list(r.specifier)
        if len(spec) != 1 or spec[0].operator != "==" or "*" in spec[0].version:
            out.append(f"requirements.txt: {r} is not an exact pin (==)")
    python, pip = environment(root)
    if not any(p.strip() in ("-r requirements.txt", "--requirement requirements.txt") for p in pip):
        env = parse_requirements(pip, "environment.yml")
        for name in sorted(set(req) - set(env)):
            out.append(f"environment.yml lacks {req[name]}")
        for name in sorted(set(env) - set(req)):
            out.append(f"environment.yml has {env[name]} which requirements.txt lacks")
        for name in sorted(set(req) & set(env)):
            if env[name].specifier != req[name].specifier:
                out.append(
                    f"{name}: environment.yml {env[name].specifier} vs requirements.txt {req[name].specifier}"
                )
    project = tomllib.loads((root / "pyproject.toml").read_text())
    requires = project["project"].get("requires-python", "")
    m = re.fullmatch(r"python\s*=+\s*(\d+\.\d+)(\.\*)?", (python or "").strip())
    if not m:
        out.append(f"environment.yml must pin python=3.11, got {python!r}")
    elif m.group(1) != "3.11":
        out.append(f"environment.yml pins python {m.group(1)}, expected 3.11")
    spec = SpecifierSet(requires)
    if Version("3.11.0") not in spec or Version("3.12.0") in spec or Version("3.10.99") in spec:
        out.append(f"pyproject.toml requires-python {requires!r} must allow 3.11 only")
    if "dependencies" in project["project"].get("dynamic", []):
        files = project.get("tool", {}).get("setuptools", {}).get("dynamic", {}).get("dependencies", {})
        if files.get("file") != ["requirements.txt"]:
            out.append(
                f"pyproject.toml reads its dependencies from {files.get('file')}, not requirements.txt"
            )
    else:
        deps = parse_requirements(project["project"].get("dependencies", []), "pyproject.toml")
        if {n: str(r.specifier) for n, r in deps.items()} != {n: str(r.specifier) for n, r in req.items()}:
            out.append("pyproject.toml dependencies differ from requirements.txt")
    return out


def test_environment_files_agree() -> None:
    assert problems(ROOT) == []


@pytest.fixture()
def copy(tmp_path: Path) -> Path:
    for f in FILES:
        shutil.copy(ROOT / f, tmp_path / f)
    return tmp_path


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert re.search(old, text, flags=re.MULTILINE), f"{old!r} not in {path.name}"
    path.write_text(re.sub(old, new, text, count=1, flags=re.MULTILINE))


@pytest.mark.parametrize(
    "file,old,new,expected",
    [
        (
            "environment.yml",
            r"optuna==5\.0\.0",
            "optuna==4.9.0",
            "optuna: environment.yml ==4.9.0 vs requirements.txt ==5.0.0",
        ),
        ("requirements.txt", r"^seaborn==0\.13\.2$", "seaborn==0.13.1", "seaborn: environment.yml ==0.13.2"),
        ("environment.yml", r"^\s*- vesin==0\.6\.2\n", "", "environment.yml lacks vesin==0.6.2"),
        (
            "environment.yml",
            r"(- zipp==4\.1\.2)",
            r"\1\n      - rich==13.0.0",
            "environment.yml has rich==13.0.0",
        ),
        ("requirements.txt", r"^ase==3\.29\.0$", "ase>=3.29", "ase>=3.29 is not an exact pin"),
        ("environment.yml", r"python=3\.11", "python=3.12", "pins python 3.12, expected 3.11"),
        ("environment.yml", r"^\s*- python=3\.11\n", "", "must pin python=3.11"),
        (
            "pyproject.toml",
            r'requires-python = "[^"]*"',
            'requires-python = ">=3.10"',
            "must allow 3.11 only",
        ),
        (
            "pyproject.toml",
            r'file = \["requirements.txt"\]',
            'file = ["requirements-dev.txt"]',
            "not requirements.txt",
        ),
    ],
)
def test_a_deliberate_mismatch_is_caught(copy: Path, file: str, old: str, new: str, expected: str) -> None:
    assert problems(copy) == []
    _edit(copy / file, old, new)
    found = problems(copy)
    assert any(expected in p for p in found), found


def test_pip_requirement_include_style_is_accepted(copy: Path) -> None:
    env = copy / "environment.yml"
    head = env.read_text().split("  - pip:\n")[0]
    env.write_text(head + "  - pip:\n      - -r requirements.txt\n")
    assert problems(copy) == []


def test_running_python_is_3_11() -> None:
    assert sys.version_info[:2] == (3, 11)


@pytest.mark.parametrize("name", sorted(requirements(ROOT)))
def test_installed_versions_satisfy_pins(name: str) -> None:
    req = requirements(ROOT)[name]
    try:
        installed = version(name)
    except PackageNotFoundError:
        pytest.fail(f"{req} is pinned but not installed (run `make install`)")
    assert req.specifier.contains(installed, prereleases=True), f"{name}: installed {installed}, pinned {req}"


def test_make_lock_pins_the_installed_versions(copy: Path) -> None:
    """`.ci/lock.py` (`make lock`) repins a stale pin and a bare new name to the installed versions and rewrites
    environment.yml's pip section so that the files agree again."""
    import subprocess

    _edit(copy / "requirements.txt", f"ase=={version('ase')}", "ase==0.0.1")
    text = (copy / "requirements.txt").read_text().replace(f"pooch=={version('pooch')}\n", "pooch\n")
    (copy / "requirements.txt").write_text(text)
    assert problems(copy) != []
    subprocess.run([sys.executable, str(ROOT / ".ci" / "lock.py"), str(copy)], check=True, capture_output=True)
    assert problems(copy) == []
    pins = requirements(copy)
    assert str(pins["ase"].specifier) == f"=={version('ase')}"
    assert str(pins["pooch"].specifier) == f"=={version('pooch')}"
    assert (copy / "requirements.txt").read_text().splitlines()[0].startswith("#")
