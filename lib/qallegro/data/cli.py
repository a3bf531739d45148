"""`qallegro data fetch|verify|info`: download, check and describe the datasets."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "data",
        help="fetch, verify and describe datasets",
        description="Datasets: fetch (download into the cache), verify (sha256), info.",
    )
    sub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    f = sub.add_parser("fetch", help="download a dataset (or route, or single file) into the cache")
    f.add_argument(
        "name", help="rmd17-aspirin, rmd17-benzene, rmd17-archive, qm9, qm9pack, culi, or a file name"
    )
    f.add_argument("--force", action="store_true",
                   help="hash a downloaded copy again in full and download it again unless it matches")
    f.set_defaults(func=_fetch)
    v = sub.add_parser("verify", help="check the sha256 of every data file present (all, or those of NAME)")
    v.add_argument("name", nargs="?", default=None)
    v.add_argument("--data-dir", default=None, help="also look in this folder (first)")
    v.add_argument("--full", action="store_true",
                   help="hash every file (by default a file whose inode, size, mtime and ctime are those it had "
                        "when it was last hashed is taken from the hash cache, and the summary says how many)")
    v.set_defaults(func=_verify)
    i = sub.add_parser("info", help="counts, units and file locations of a dataset")
    i.add_argument("name")
    i.add_argument("--data-dir", default=None, help="also look in this folder (first)")
    i.add_argument("--json", action="store_true", help="print JSON")
    i.set_defaults(func=_info)


def _fetch(args: argparse.Namespace) -> int:
    from qallegro.data import registry

    paths = registry.fetch(args.name, force=args.force)
    for p in paths:
        print(p)
    return 0


def verify_report(name: str | None, data_dir: str | None = None, full: bool = False) -> list[dict[str, str]]:
    """One row per registry file of `name` (all when None): status ok/bad/unverified/missing, path, detail
    ("cached" for an ok file whose hash came from the cache; `full` hashes every file)."""
    from qallegro.data import registry
    from qallegro.data.errors import DataError

    names = registry.resolve_names(name) if name else tuple(registry.SOURCES)
    rows = []
    for n in names:
        src = registry.get_source(n)
        if src.in_package:
            continue  # checked when the qm9pack route reads them
        path = registry.find(n, data_dir)
        row = {"name": n, "path": str(path) if path else "", "status": "missing", "detail": ""}
        if path is not None:
            if src.sha256 is None:
                row.update(
                    status="unverified", detail="no published sha256; checked by structure when loaded"
                )
            else:
                try:
                    cached = not full and registry.hash_is_cached(path)
                    registry.verify_file(path, n, full)
                    row.update(status="ok", detail="cached" if cached else "hashed")
                except DataError as err:
                    row.update(status="bad", detail=str(err))
        rows.append(row)
    return rows


def _verify(args: argparse.Namespace) -> int:
    rows = verify_report(args.name, args.data_dir, args.full)
    for r in rows:
        print(
            f"{r['status']:<10} {r['name']:<28} {r['path']}"
            + (f"\n           {r['detail']}" if r["status"] == "bad" else "")
        )
    bad = sum(r["status"] == "bad" for r in rows)
    present = sum(r["status"] != "missing" for r in rows)
    cached = sum(r["detail"] == "cached" for r in rows)
    print(f"{present} of {len(rows)} files present, {bad} bad"
          + (f"; {cached} unchanged since hashed (same inode, size, mtime and ctime), not re-hashed: --full "
             "hashes them" if cached else ""))
    return 1 if bad or (args.name and not present) else 0


def describe(name: str, data_dir: str | None = None) -> dict[str, Any]:
    """Counts per split, units and the files found for dataset `name` (reads arrays, builds no Atoms)."""
    from qallegro.data import registry
    from qallegro.data.datasets import DATASETS
    from qallegro.data.errors import UnknownDatasetError

    if name not in DATASETS:
        raise UnknownDatasetError(f"unknown dataset {name!r}; available: {', '.join(DATASETS)}")
    spec = DATASETS[name]
    out: dict[str, Any] = {
        "name": name, "label": spec.label, "description": spec.description,
        "units": {**spec.units, **({} if spec.has_forces else {"forces": "none"}), "source": spec.source_units},
        "periodic": spec.periodic, "splits": spec.split_rule,
        **({"split groups": f"info[{spec.group_key!r}]"} if spec.group_key else {}),
    }
    if name.startswith("rmd17-"):
        from qallegro.data.rmd17 import read_rmd17_npz
        from qallegro.data.splits import RMD17_N_VAL

        mol = name.removeprefix("rmd17-")
        train = read_rmd17_npz(registry.locate(f"rmd17/{mol}_train_01", data_dir))
        test = read_rmd17_npz(registry.locate(f"rmd17/{mol}_test_01", data_dir))
        out["counts (split_index 1)"] = {
            "train": len(train["E"]) - RMD17_N_VAL,
            "val": RMD17_N_VAL,
            "test": len(test["E"]),
        }
        out["atoms per structure"] = len(train["Z"])
    elif name == "qm9":
        from qallegro.data.qm9 import DEFAULT_N_TRAIN, DEFAULT_N_VAL, qm9_table

        table = qm9_table(data_dir)
        n = len(table["index"])
        out["molecules"] = n
        out["atoms"] = int(table["offsets"][-1])
        out["counts (defaults)"] = {
            "train": DEFAULT_N_TRAIN,
            "val": DEFAULT_N_VAL,
            "test": n - DEFAULT_N_TRAIN - DEFAULT_N_VAL,
        }
    out["files"] = {
        r["name"]: f"{r['status']}: {r['path']}"
        for r in verify_report(name, data_dir)
        if r["status"] != "missing"
    }
    out["looked in"] = [f"{label}: {root}" for label, root in registry.data_roots(data_dir)]
    return out


def _info(args: argparse.Namespace) -> int:
    info = describe(args.name, args.data_dir)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    for key, value in info.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for k, v in value.items():
                print(f"  {k}: {v}")
        elif isinstance(value, list):
            print(f"{key}:")
            for v in value:
                print(f"  {v}")
        else:
            print(f"{key}: {value}")
    return 0
