"""Units of work that any number of workers pull from, on one machine or on a cluster's shared file system.

A unit is one training run, one sweep point, one study slice or one dataset generation, with the units it needs
first (`after`). Its folder `<root>/<unit id>/` holds `record.json` once it is done (the small, committed result) and,
while a worker runs it, `unit.claim` (host, pid, time; never committed), created with O_EXCL so that two workers never
run one unit. A claim whose worker is gone is taken over: at once when the worker ran on this host and its process is
dead, after `grace_s` without a heartbeat (the claim's mtime, touched every `heartbeat_s`) otherwise. A unit that
was interrupted resumes from its own checkpoints (training runs resume from their last epoch). Each heartbeat also
writes the unit's wall and CPU time so far over all its attempts to `unit-elapsed.json`, so that the record's
`unit_wall_s` and `unit_cpu_s` count interrupted attempts too (all but their last heartbeat interval). A worker
runs one thread, so `unit_cpu_s` is the time the unit takes on a core of its own: unlike the wall time it does not
grow while the worker shares its core or is stopped.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qallegro.utils import atomic_write_json, pid_alive

RECORD = "record.json"
CLAIM = "unit.claim"
ELAPSED = "unit-elapsed.json"


@dataclass(frozen=True)
class Unit:
    """One resumable piece of work: `kind` names its runner, `spec` its inputs (plain JSON values)."""

    id: str
    kind: str
    spec: Mapping[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()

    def root(self, folder: Path) -> Path:
        """The campaign root that holds this unit's `folder` (`<root>/<unit id>`)."""
        return folder.parents[len(Path(self.id).parts) - 1]


def read_record(root: Path, unit_id: str) -> dict[str, Any] | None:
    """The record of a finished unit, or None."""
    path = root / unit_id / RECORD
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except ValueError as err:
        raise ValueError(f"{path}: unreadable record ({err}); delete it to run the unit again") from err


class Claim:
    """A held claim on a unit, kept alive by a heartbeat thread until `release()`; `elapsed()` and `attempts` count
    the earlier, interrupted attempts of the unit too (from `unit-elapsed.json`)."""

    def __init__(self, path: Path, heartbeat_s: float) -> None:
        self.path = path
        self.elapsed_path = path.with_name(ELAPSED)
        try:
            before = json.loads(self.elapsed_path.read_text())
        except (FileNotFoundError, ValueError):
            before = {}
        self.before_s = float(before.get("elapsed_s", 0.0))
        self.before_cpu_s = float(before.get("cpu_s", 0.0))
        self.attempts = int(before.get("attempts", 0)) + 1
        self.t0, self.cpu0 = time.time(), time.process_time()
        self._save()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, args=(heartbeat_s,), daemon=True)
        self._thread.start()

    def elapsed(self) -> float:
        """Seconds spent on the unit over all its attempts so far."""
        return self.before_s + time.time() - self.t0

    def cpu(self) -> float:
        """CPU seconds of this process (all its threads) on the unit over all its attempts so far."""
        return self.before_cpu_s + time.process_time() - self.cpu0

    def _save(self) -> None:
        atomic_write_json(self.elapsed_path, {"elapsed_s": round(self.elapsed(), 1), "cpu_s": round(self.cpu(), 1),
                                              "attempts": self.attempts})

    def _beat(self, every: float) -> None:
        while not self._stop.wait(every):
            try:
                os.utime(self.path)
            except FileNotFoundError:
                return
            self._save()

    def release(self, finished: bool = False) -> None:
        """Stop the heartbeat and drop the claim (and, for a finished unit, its elapsed-time file)."""
        self._stop.set()
        self._thread.join()
        if finished:
            self.elapsed_path.unlink(missing_ok=True)
        else:
            self._save()
        self.path.unlink(missing_ok=True)


class UnitQueue:
    """Claims on the units under `root` (see the module docstring)."""

    def __init__(self, root: Path, grace_s: float = 900.0, heartbeat_s: float = 60.0) -> None:
        self.root = Path(root)
        self.grace_s, self.heartbeat_s = grace_s, heartbeat_s
        self.host = socket.gethostname()

    def done(self, unit: Unit) -> bool:
        return (self.root / unit.id / RECORD).is_file()

    def _stale(self, path: Path) -> bool:
        try:
            owner = json.loads(path.read_text() or "{}")
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return False
        except ValueError:  # a claim being written right now, or a corrupt one: stale only when old
            return time.time() - path.stat().st_mtime > self.grace_s
        if owner.get("host") == self.host and isinstance(owner.get("pid"), int):
            return not pid_alive(owner["pid"])
        return age > self.grace_s

    def claim(self, unit: Unit) -> Claim | None:
        """A claim on `unit`, or None when another live worker holds it."""
        folder = self.root / unit.id
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / CLAIM
        if path.exists() and self._stale(path):
            try:  # exactly one of several workers that saw the stale claim wins this rename
                os.rename(path, folder / f".stale-{os.getpid()}.claim")
                (folder / f".stale-{os.getpid()}.claim").unlink()
            except FileNotFoundError:
                pass
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return None
        with os.fdopen(fd, "w") as fh:
            json.dump({"host": self.host, "pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")}, fh)
        return Claim(path, self.heartbeat_s)

    def claimed(self, unit: Unit) -> bool:
        path = self.root / unit.id / CLAIM
        return path.exists() and not self._stale(path)


Runner = Callable[[Unit, Path], dict[str, Any]]


def status(units: Iterable[Unit], queue: UnitQueue) -> dict[str, list[str]]:
    """Unit ids by state: done, running (claimed by a live worker), ready (all `after` done), waiting. A unit's
    `after` may name units outside `units` (a worker given a subset, `--only`): those count when their record
    exists."""
    units = list(units)
    finished = {u.id for u in units if queue.done(u)}
    listed = {u.id for u in units}
    finished |= {a for u in units for a in u.after if a not in listed and (queue.root / a / RECORD).is_file()}
    out: dict[str, list[str]] = {"done": [], "running": [], "ready": [], "waiting": []}
    for u in units:
        if u.id in finished:
            out["done"].append(u.id)
        elif queue.claimed(u):
            out["running"].append(u.id)
        elif all(a in finished for a in u.after):
            out["ready"].append(u.id)
        else:
            out["waiting"].append(u.id)
    return out


def work(units: list[Unit], queue: UnitQueue, runners: Mapping[str, Runner], *, max_units: int | None = None,
         log: Callable[[str], None] = print, poll_s: float = 30.0, stop_at: float | None = None) -> int:
    """Run ready units in list order until none is left that this worker could run; returns how many it ran.

    A unit becomes ready when the units it names in `after` are done. While other workers hold claims that ready
    units wait on, the worker polls every `poll_s`; it stops when everything is done or claimed by live workers
    and nothing else can become ready, or when the time `stop_at` (seconds since the epoch) has passed: it starts
    no unit after that (a session that ends at a known time leaves no half-run unit behind).
    """
    unknown = sorted({u.kind for u in units} - set(runners))
    if unknown:
        raise ValueError(f"no runner for unit kind(s) {unknown}; known: {sorted(runners)}")
    ran = 0
    while max_units is None or ran < max_units:
        if stop_at is not None and time.time() >= stop_at:
            log(f"stop time reached; {ran} unit(s) run")
            return ran
        state = status(units, queue)
        if not state["ready"]:
            if state["waiting"] and state["running"]:
                time.sleep(poll_s)
                continue
            if state["waiting"] and not state["running"]:
                blocked = state["waiting"][:3]
                log(f"{len(state['waiting'])} unit(s) wait on units that are neither done nor running, e.g. {blocked}")
            return ran
        by_id = {u.id: u for u in units}
        for uid in state["ready"]:
            unit = by_id[uid]
            claim = queue.claim(unit)
            if claim is None:
                continue
            finished = False
            try:
                if queue.done(unit):  # finished by another worker between the status and the claim
                    finished = True
                    continue
                folder = queue.root / unit.id
                t0 = time.time()
                log(f"[{time.strftime('%H:%M:%S')}] start {unit.id}"
                    + (f" (attempt {claim.attempts})" if claim.attempts > 1 else ""))
                record = runners[unit.kind](unit, folder)
                record = {**record, "unit": unit.id, "kind": unit.kind, "unit_wall_s": round(claim.elapsed(), 1),
                          "unit_cpu_s": round(claim.cpu(), 1), "unit_attempts": claim.attempts}
                atomic_write_json(folder / RECORD, record)
                finished = True
                log(f"[{time.strftime('%H:%M:%S')}] done {unit.id} in {time.time() - t0:.0f} s")
                ran += 1
            finally:
                claim.release(finished)
            break
    return ran
