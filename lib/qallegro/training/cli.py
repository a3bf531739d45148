"""`qallegro train`: train a model from a config file, presets and `--set key=value` overrides."""

from __future__ import annotations

import argparse
import json

from qallegro.data.datasets import DATASETS
from qallegro.models.variants import variant_names
from qallegro.scales import SCALES


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "train", help="train a model (Allegro, Allegro+MLP, Allegro+QDI) and evaluate it on the test split",
        description="Train a model. Config resolution: defaults <- presets/train.yaml[scale][dataset] <- "
                    "--config FILE <- --set overrides. Results go to --run-dir or "
                    "results/<scale>/train/<dataset>-<variant>-<hash>/.")
    p.add_argument("--config", metavar="FILE", help="YAML file with config keys (legacy Allegro names)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one key; YAML-typed value, e.g. --set edge_eng_mlp_latent_dimensions=[32] "
                        "or --set loss_coeffs.forces=0 (repeatable)")
    p.add_argument("--dataset", help=f"dataset name ({', '.join(DATASETS)}) or a structure file (extxyz, ...)")
    p.add_argument("--variant", choices=variant_names(), help="model variant (default allegro)")
    p.add_argument("--scale", choices=SCALES, help="preset scale (default quick)")
    p.add_argument("--run-dir", metavar="DIR", help="run directory (default under $QALLEGRO_RESULTS)")
    p.add_argument("--resume", action="store_true", help="continue the run in the run directory")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--print-config", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=_train)


def _train(args: argparse.Namespace) -> int:
    import yaml

    from qallegro.training.config import resolve_config

    cfg = resolve_config(args.dataset, args.variant, args.scale, args.config, args.overrides)
    if args.print_config:
        print(yaml.safe_dump(cfg, sort_keys=True), end="")
        return 0
    from qallegro.training.trainer import train

    result = train(cfg, run_dir=args.run_dir, resume=args.resume, progress=not args.no_progress)
    summary = {k: result[k] for k in ("run_dir", "epochs", "best_epoch", "stop_reason", "wall_s", "val_f_mae",
                                      "val_e_mae")}
    summary["test"] = result["test"]
    print(json.dumps(summary, indent=2, default=str))
    return 0
