"""Issue 19 finding 5: the sha256 cache cannot be fooled by a file rewritten at the same size with its old mtime;
`data verify` says which files it took from the cache, and `--full` hashes every file."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest
from qallegro.cli import main
from qallegro.data import load_dataset, registry
from qallegro.data.errors import ChecksumError

NAME = "rmd17/benzene_test_01"
FILE = Path("rmd17") / "rmd17_benzene_test_01.npz"


@pytest.fixture()
def mirror(tmp_path: Path, data_mirror: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A writable mirror holding one rMD17 file, and an empty hash cache."""
    monkeypatch.setenv("QALLEGRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "_VERIFIED", {})
    monkeypatch.setattr(registry, "_DISK_CACHE_LOADED", set())
    out = tmp_path / "mirror"
    (out / "rmd17").mkdir(parents=True)
    shutil.copyfile(data_mirror / FILE, out / FILE)
    monkeypatch.setenv("QALLEGRO_DATA", str(out))
    return out


def _rewrite_keeping_size_and_mtime(path: Path) -> None:
    time.sleep(0.05)  # past the file system's timestamp granularity (a kernel tick)
    st = path.stat()
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    with open(path, "r+b") as fh:  # in place: same inode, same size
        fh.write(bytes(data))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_rewritten_file_with_old_mtime_is_hashed_again(mirror: Path) -> None:
    path = mirror / FILE
    registry.verify_file(path, NAME)
    assert registry.hash_is_cached(path)
    _rewrite_keeping_size_and_mtime(path)
    assert not registry.hash_is_cached(path)  # the ctime moved
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        registry.verify_file(path, NAME)
    with pytest.raises(ChecksumError):
        load_dataset("rmd17-benzene", split="test", data_dir=mirror)


def test_cli_verify_says_what_came_from_the_cache(mirror: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["data", "verify", NAME, "--data-dir", str(mirror)]
    assert main(args) == 0
    assert "not re-hashed" not in capsys.readouterr().out  # the first check hashes
    assert main(args) == 0
    assert "1 unchanged since hashed" in capsys.readouterr().out
    assert main([*args, "--full"]) == 0
    assert "not re-hashed" not in capsys.readouterr().out
    _rewrite_keeping_size_and_mtime(mirror / FILE)
    assert main(args) == 1
    assert "sha256 mismatch" in capsys.readouterr().out
