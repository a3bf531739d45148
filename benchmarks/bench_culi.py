"""Cu-Li generation speed: frames and labeller calls per second at smoke scale, against the bare labeller.

Generates the smoke-scale dataset in a temporary folder with SevenNet-0 (one thread) and counts every call of the
model. The reference, measured in the same run, is the bare SevenNet-0 calculator on the smoke MD interface
(42 atoms) called repeatedly. The printed ratio (generation atom-calls per second / bare atom-calls per second)
is the pipeline's efficiency: 1.0 means all time is spent in the labeller; planning, structure building,
relaxation/MD bookkeeping and file writes make it lower. Ratios are robust to the machine's load; the absolute
numbers are not.

    python benchmarks/bench_culi.py [--scale smoke] [--reference-calls 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

from qallegro.utils import atomic_write_json, environment_record, set_threads


class CountingSevenNet:
    """Wraps a SevenNetLabeler's calculator to count model calls and atoms per call."""

    def __init__(self, labeler) -> None:
        self.labeler = labeler
        self.calls = 0
        self.atom_calls = 0
        calc = labeler.calculator
        original = calc.calculate

        def counted(atoms=None, *args, **kwargs):
            self.calls += 1
            self.atom_calls += len(atoms)
            return original(atoms, *args, **kwargs)

        calc.calculate = counted


def bare_rate(labeler, atoms, calls: int) -> dict[str, float]:
    """Calls per second of the calculator alone on `atoms` (positions nudged so nothing is cached)."""
    work = atoms.copy()
    work.calc = labeler.calculator
    work.get_forces()
    start = time.perf_counter()
    for k in range(calls):
        work.positions[0, 0] += 1e-4 * (-1) ** k
        work.get_forces()
    seconds = time.perf_counter() - start
    return {"calls_per_s": calls / seconds, "atom_calls_per_s": calls * len(work) / seconds, "n_atoms": len(work)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="smoke")
    parser.add_argument("--reference-calls", type=int, default=20)
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    set_threads(1)

    from qallegro.culi.generate import Builder, generate
    from qallegro.culi.labelers import SevenNetLabeler
    from qallegro.scales import settings

    lab = SevenNetLabeler()
    counter = CountingSevenNet(lab)
    interface = Builder(settings("culi", args.scale)).interface((1, 0, 0))
    before = bare_rate(lab, interface, args.reference_calls)
    counter.calls = counter.atom_calls = 0
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        prov = generate(args.scale, labeler=lab, out=Path(tmp) / "culi", progress=False)
        wall = time.perf_counter() - start
    after = bare_rate(lab, interface, args.reference_calls)
    bare = (before["atom_calls_per_s"] + after["atom_calls_per_s"]) / 2
    result = {
        "scale": args.scale, "frames": prov["n_frames"], "wall_s": wall, "frames_per_s": prov["n_frames"] / wall,
        "labeller_calls": counter.calls, "labeller_calls_per_s": counter.calls / wall,
        "atom_calls_per_s": counter.atom_calls / wall, "bare_atom_calls_per_s": bare,
        "bare_calls_per_s_42_atoms": (before["calls_per_s"] + after["calls_per_s"]) / 2,
        "efficiency_ratio": counter.atom_calls / wall / bare, "counts": prov["counts"],
        "environment": environment_record(),
    }
    print(f"{args.scale}: {result['frames']} frames in {wall:.1f} s = {result['frames_per_s']:.3f} frames/s; "
          f"{counter.calls} labeller calls = {result['labeller_calls_per_s']:.2f} calls/s")
    print(f"bare SevenNet-0 on the {before['n_atoms']}-atom interface: {result['bare_calls_per_s_42_atoms']:.2f} "
          f"calls/s ({bare:.0f} atom-calls/s)")
    print(f"ratio generation / bare labeller (atom-calls per second): {result['efficiency_ratio']:.2f}")
    if args.json:
        atomic_write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
