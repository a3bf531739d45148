"""MD steps per second through `qallegro.Calculator`: the neighbour list rebuilt at every step (skin 0, before
issue 18) against pairs kept within a skin (default 1 Å), for the eager model and its `qallegro export` archive.

A rattled fcc Cu-Li cell (default 3x3x3 cubic cells, 108 atoms) with a quick-preset-size model (random weights:
the speed does not depend on them) runs NVE velocity Verlet from 300 K. The candidates run round-robin in blocks
of `--steps` steps, `--repeats` times, with one torch thread, timed with per-process CPU time; the medians and
their ratios are printed (> 1: faster than skin 0).

    python benchmarks/bench_md_skin.py [--reps 3] [--steps 50] [--repeats 5] [--skin 1.0] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from ase import units
from ase.build import bulk
from ase.md.velocitydistribution import thermalize_momenta
from ase.md.verlet import VelocityVerlet

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from qallegro import Calculator, scales
from qallegro.deploy.export import export_model, load_exported
from qallegro.models import build_model
from qallegro.utils import atomic_write_text, environment_record, set_threads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3, help="cubic fcc cells per axis (default 3: 108 atoms)")
    parser.add_argument("--steps", type=int, default=50, help="MD steps per timed block")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skin", type=float, default=1.0, help="neighbour-list skin (Å)")
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    set_threads(1)
    train = scales.settings("train", "quick")["all"]
    cfg = {k: train[k] for k in ("r_max", "l_max", "num_layers", "env_embed_multiplicity",
                                 "two_body_latent_mlp_latent_dimensions", "latent_mlp_latent_dimensions",
                                 "edge_eng_mlp_latent_dimensions")}
    model = build_model({**cfg, "avg_num_neighbors": 40.0, "default_dtype": "float32"}, [3, 29]).eval()
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True).repeat(args.reps)
    atoms.numbers[np.random.default_rng(0).choice(len(atoms), len(atoms) // 4, replace=False)] = 3
    atoms.rattle(0.05, seed=0)
    thermalize_momenta(atoms, temperature_K=300, rng=np.random.default_rng(0))
    with tempfile.TemporaryDirectory() as tmp:
        exported = load_exported(export_model(model, Path(tmp) / "model.pt2"))
    candidates = {"eager, skin 0": Calculator(model, skin=0.0), f"eager, skin {args.skin:g}": Calculator(
        model, skin=args.skin), f"exported, skin {args.skin:g}": Calculator(exported, skin=args.skin)}
    systems = {}
    for name, calc in candidates.items():
        a = atoms.copy()
        a.calc = calc
        systems[name] = VelocityVerlet(a, timestep=1.0 * units.fs)
        systems[name].run(2)  # warm-up
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.repeats):
        for name, dyn in systems.items():
            t0 = time.process_time()
            dyn.run(args.steps)
            times[name].append(time.process_time() - t0)
    base = float(np.median(times["eager, skin 0"]))
    out = {"n_atoms": len(atoms), "steps": args.steps, "repeats": args.repeats, "skin": args.skin,
           "steps_per_s": {}, "ratio": {}, "neighbour_list_builds": {}, "env": environment_record()}
    print(f"{len(atoms)} atoms, {args.steps} steps x {args.repeats} repeats, 1 thread, CPU time")
    for name, t in times.items():
        med = float(np.median(t))
        out["steps_per_s"][name] = args.steps / med
        out["ratio"][name] = base / med
        builds = candidates[name].neighbors.builds
        out["neighbour_list_builds"][name] = builds
        print(f"  {name:<22} {args.steps / med:8.2f} steps/s  speed-up vs skin 0: {base / med:5.2f}x  "
              f"(neighbour lists built: {builds})")
    if args.json:
        atomic_write_text(Path(args.json), json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
