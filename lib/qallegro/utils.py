"""Small shared helpers: atomic writes, hashing, thread control, logging and run provenance."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import yaml

from qallegro.paths import REPO_ROOT

PathLike = str | os.PathLike
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write_bytes(path: PathLike, data: bytes) -> Path:
    """Write `data` to `path` through a temporary file in the same folder, then rename (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def atomic_write_yaml(path: PathLike, obj: Any) -> Path:
    return atomic_write_text(path, yaml.safe_dump(_plain(obj), sort_keys=True))


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if isinstance(o, Mapping):  # a record (qallegro.records) or a registry view
        return dict(o)
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def _plain(obj: Any) -> Any:
    """Convert numpy scalars/arrays and tuples into plain YAML/JSON types."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def pid_alive(pid: int) -> bool:
    """Whether process `pid` runs on this machine (a process of another user counts as running)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def config_hash(*parts: Any, length: int = 12) -> str:
    """A short stable hash of JSON-serialisable parts (dict keys sorted)."""
    blob = json.dumps(_plain(list(parts)), sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads (default: the CPUs this process may use) and return the number.

    Oversubscription is 5-10x slower on small machines, so every entry point calls this once.
    """
    import torch

    if n is None:
        n = int(os.environ.get("QALLEGRO_THREADS", 0)) or len(os.sched_getaffinity(0))
    torch.set_num_threads(n)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set once in this process
        pass
    return n


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with `n` torch intra-op threads (None: as they are), then give the caller's count back."""
    import torch

    before = torch.get_num_threads()
    try:
        if n is not None:
            torch.set_num_threads(int(n))
        yield
    finally:
        torch.set_num_threads(before)


def get_logger(name: str = "qallegro", logfile: PathLike | None = None) -> logging.Logger:
    """A logger that writes to stderr and, when given, appends to `logfile`."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.INFO)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.FileHandler)
               for h in logger.handlers):
        sh = logging.StreamHandler(sys.stderr)
        sh.setFormatter(fmt)
        sh.setLevel(logging.WARNING)
        logger.addHandler(sh)
    if logfile is not None:
        logfile = Path(logfile).resolve()
        if not any(isinstance(h, logging.FileHandler) and Path(h.baseFilename) == logfile
                   for h in logger.handlers):
            logfile.parent.mkdir(parents=True, exist_ok=True)
            fh = logging.FileHandler(logfile)
            fh.setFormatter(fmt)
            logger.addHandler(fh)
    return logger


def git_commit(root: PathLike | None = None) -> str | None:
    root = Path(root or REPO_ROOT)
    try:
        out = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def hardware_info() -> dict[str, Any]:
    """CPU model, core count, memory, torch threads and GPU (if any): recorded beside every timing."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu": cpu,
        "cpus_available": len(os.sched_getaffinity(0)),
        "memory_gib": mem_gib,
        "torch_threads": torch.get_num_threads(),
        "platform": platform.platform(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    return info


def package_versions(names: tuple[str, ...] = ("qallegro", "torch", "e3nn", "pennylane", "optuna", "ase",
                                                "numpy", "vesin")) -> dict[str, str | None]:
    """Python's and each package's version; qallegro's from the code itself (an editable install's metadata keeps
    the version it was installed at)."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for n in names:
        if n == "qallegro":
            from qallegro import __version__

            out[n] = __version__
            continue
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def environment_record() -> dict[str, Any]:
    """Everything saved beside a result: versions, git commit, hardware."""
    return {"versions": package_versions(), "git_commit": git_commit(), "hardware": hardware_info()}


class FieldView(Mapping[str, Any]):
    """A read-only mapping name -> one attribute of each entry of a registry dict, always current."""

    def __init__(self, registry: Mapping[str, Any], attr: str) -> None:
        self._registry, self._attr = registry, attr

    def __getitem__(self, name: str) -> Any:
        return getattr(self._registry[name], self._attr)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._registry))

    def __len__(self) -> int:
        return len(self._registry)


def sigterm_as_interrupt() -> None:
    """SIGTERM (a job scheduler's time limit, `kill`) stops like Ctrl-C: `KeyboardInterrupt` is raised, so that
    clean-up code runs and completed work is kept."""
    import signal

    def handler(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
