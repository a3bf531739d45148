#!/usr/bin/env python3
"""The small records of the campaign's finished work, one path per line (`make records` commits them).

- every finished unit's folder (`results/<scale>/campaign/**/record.json`; a unit writes it last);
- for each HPO study a finished unit ran (a `study/` slice or a `compare/` study): the study's own files and the
  folders of its finished trials only: a trial is finished when it wrote `trial.json` or the study's `trials.csv`
  lists it in a final state (COMPLETE, PRUNED, FAIL). The trial another worker is training in a later slice stays
  out until it finishes;
- the Cu-Li provenance, the verdict files and the sampler comparison's hypervolume table.
Only files git would commit are listed (new or modified, not ignored: checkpoints, models and logs stay out).
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FINAL_STATES = {"COMPLETE", "PRUNED", "FAIL"}
STUDY_UNIT = re.compile(r"results/([^/]+)/campaign/(?:study|compare)/([^/]+)/")
SINGLE_FILES = ("results/*/culi/provenance.json", "results/*/claims/verdicts.json",
                "results/*/campaign/ablation/*verdicts.json", "results/*/campaign/study-verdicts.json",
                "results/*/hpo/compare-*/hypervolume.csv")


def finished_trials(study: Path) -> set[str]:
    """The trial folder names of `study` that no worker is still writing."""
    done = {p.parent.name for p in study.glob("trials/*/trial.json")}
    table = study / "trials.csv"
    if table.exists():
        with table.open(newline="") as f:
            done |= {Path(row["trial_dir"]).name for row in csv.DictReader(f)
                     if row.get("state") in FINAL_STATES and row.get("trial_dir")}
    return done


def changed_files(root: Path) -> list[str]:
    """Files under results/ that git would commit (new or modified, not ignored), relative to `root`."""
    out = subprocess.run(["git", "ls-files", "-z", "--others", "--modified", "--exclude-standard", "--", "results"],
                         cwd=root, check=True, capture_output=True, text=True).stdout
    return sorted({p for p in out.split("\0") if p})


def record_paths(root: Path = ROOT) -> list[str]:
    """The files (relative to `root`) of finished work that are new or changed since the last commit."""
    units = {p.parent.relative_to(root).as_posix() for p in root.glob("results/*/campaign/**/record.json")}
    studies = {f"results/{m[1]}/hpo/{m[2]}" for u in units if (m := STUDY_UNIT.match(u + "/"))}
    done = {s: finished_trials(root / s) for s in studies}
    singles = {p.relative_to(root).as_posix() for pattern in SINGLE_FILES for p in root.glob(pattern)}

    def keep(path: str) -> bool:
        if path in singles or any(path.startswith(u + "/") for u in units):
            return True
        study = next((s for s in studies if path.startswith(s + "/")), None)
        if study is None:
            return False
        rest = path[len(study) + 1:].split("/")
        return rest[0] != "trials" or (len(rest) > 2 and rest[1] in done[study])

    return [p for p in changed_files(root) if keep(p)]


def main() -> int:
    for path in record_paths(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else ROOT):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
