"""The package's floors (DEVELOPERS.md): every module imports only from its own floor or below, no import cycle,
and each module imports on its own (in a fresh set of qallegro modules, so no import order hides a cycle)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parents[1] / "lib"
# module prefix -> floor; the longest matching prefix wins. 0: shared by all.
FLOORS = {
    "qallegro": 0, "qallegro.utils": 0, "qallegro.scales": 0, "qallegro.paths": 0,
    "qallegro.data": 1,
    "qallegro.models": 2, "qallegro.quantum": 2,
    "qallegro.training": 3, "qallegro.timing": 3, "qallegro.calculator": 3, "qallegro.paper": 3,
    "qallegro.deploy": 3,
    "qallegro.hpo": 4, "qallegro.culi": 4,
    "qallegro.campaign": 5, "qallegro.report": 5, "qallegro.pipeline": 5, "qallegro.cli": 5, "qallegro.__main__": 5,
}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted((LIB / "qallegro").rglob("*.py")):
        name = ".".join(path.relative_to(LIB).with_suffix("").parts)
        out[name.removesuffix(".__init__")] = path
    return out


def floor(module: str) -> int:
    parts = module.split(".")
    return next(FLOORS[p] for k in range(len(parts), 0, -1) if (p := ".".join(parts[:k])) in FLOORS)


def imports(path: Path, known: set[str]) -> set[str]:
    """The qallegro modules `path` imports, at its top or inside functions (`from a import b` counts as a.b
    when that is a module, else as a)."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("qallegro")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("qallegro"):
            out |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in known else node.module
                    for a in node.names}
    return out


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {m: {t for t in imports(p, set(mods)) if t != m} for m, p in mods.items()}


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                comp.append(w)
            if comp:
                out.append(sorted([v, *comp]))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_every_module_has_a_floor() -> None:
    assert all(floor(m) in range(6) for m in modules())
    assert len(modules()) > 80


def test_no_module_imports_from_a_floor_above() -> None:
    up = [f"{m} (floor {floor(m)}) -> {t} (floor {floor(t)})"
          for m, targets in graph().items() if m != "qallegro" for t in targets if floor(t) > floor(m)]
    assert up == []


def test_the_checks_see_an_upward_import_and_a_cycle() -> None:
    g = graph()
    assert "qallegro.data.splits" in g["qallegro.data.culi"]  # the graph holds real edges
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert floor("qallegro.culi.generate") > floor("qallegro.data.culi")


def test_no_import_cycle() -> None:
    assert cycles(graph()) == []


@pytest.mark.timeout(600)
def test_each_module_imports_alone() -> None:
    """Each module in turn, after removing every qallegro module from `sys.modules` (third-party packages stay
    loaded, so this takes seconds, not one interpreter per module)."""
    names = [m for m in modules() if m != "qallegro.__main__"]
    code = (
        "import importlib, json, sys, traceback\n"
        "failed = {}\n"
        f"for name in {names!r}:\n"
        "    for m in [m for m in sys.modules if m == 'qallegro' or m.startswith('qallegro.')]:\n"
        "        del sys.modules[m]\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception as err:\n"
        "        failed[name] = f'{type(err).__name__}: {err}'\n"
        "print(json.dumps(failed))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env={**os.environ, "PYTHONPATH": str(LIB)})
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads(out.stdout.strip().splitlines()[-1]) == {}
