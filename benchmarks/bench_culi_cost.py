"""The Cu-Li generation's unit costs at a scale, from a small sample of its own structures (about 2 minutes).

Generates, with the scale's recipe, 3 slabs, one structure of each other relaxed category and a short melt-quench
(25 steps) of every interface the scale runs, into `--out`; prints the seconds per MD atom-step and per relaxed
structure (`qallegro.campaign.estimate.culi_rates`). The folder then feeds the campaign estimate:

    python benchmarks/bench_culi_cost.py --scale quick --out /tmp/culi-cost
    qallegro campaign estimate --scale quick --culi-folder /tmp/culi-cost

The costs move with the machine's load: run it idle, or under the load the campaign will run with.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time

from qallegro import scales
from qallegro.campaign.estimate import culi_rates
from qallegro.culi.generate import generate
from qallegro.utils import set_threads


def sample_settings(scale: str) -> dict:
    """The scale's Cu-Li settings on a sample: few relaxed structures, every MD interface for 25 steps."""
    s = copy.deepcopy(scales.settings("culi", scale))
    if not s.get("md_interfaces"):
        raise SystemExit(f"presets/culi.yaml[{scale}] lists no md_interfaces; this sample needs them")
    s["md_interfaces"] = [{"miller": r["miller"], "replicas": 1} for r in s["md_interfaces"]]
    s["md"].update(heat_ps=0.02, cooling_rate=(s["md"]["t_high"] - s["md"]["t_low"]) / 0.03, checkpoint_every=10)
    s["frames"] = {"slab": 3, "surface_vacancy": 2, "supercell_vacancy": 2, "adatom": 3,
                   "md": 20 * len(s["md_interfaces"])}
    s["max_structures"] = {"slab": 3, "surface_vacancy": 1, "supercell_vacancy": 1, "adatom": 1, "md": None}
    s["splits"] = {"train": 0.8, "val": 0.1, "test": 0.1}
    return s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", default="quick")
    ap.add_argument("--out", required=True, help="the sample's generation folder (resumed when it exists)")
    args = ap.parse_args()
    set_threads(1)
    t0 = time.time()
    generate(args.scale, settings=sample_settings(args.scale), out=args.out, progress=False)
    rates = culi_rates(args.out)
    print(json.dumps({"scale": args.scale, "wall_s": round(time.time() - t0, 1), **rates,
                      "load_average": os.getloadavg()}, indent=1))


if __name__ == "__main__":
    main()
