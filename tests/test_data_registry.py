"""The source registry: the table itself, lookup order, checksum cache, downloads (local HTTP server), CLI."""

from __future__ import annotations

import dataclasses
import http.server
import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest
from qallegro.cli import main
from qallegro.data import ChecksumError, MissingDataError, UnknownDatasetError, load_dataset, registry


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    out = tmp_path / "cache"
    monkeypatch.setenv("QALLEGRO_CACHE", str(out))
    return out


def test_every_source_has_url_and_sha256_or_says_why_not() -> None:
    relpaths = [s.relpath for s in registry.SOURCES.values()]
    assert len(relpaths) == len(set(relpaths))
    for s in registry.SOURCES.values():
        assert s.url is None or s.url.startswith("https://"), s.name
        assert s.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", s.sha256), s.name
        if s.sha256 is None:
            assert "sha256 unknown" in s.note, s.name
        if s.url is None:
            assert s.provided_by or "no public URL" in s.note or s.in_package, s.name
        assert s.licence, s.name
    assert all(registry.RMD17_COMMIT in registry.SOURCES[n].url for n in registry.GROUPS["rmd17-aspirin"])
    assert len(registry.GROUPS["rmd17-aspirin"]) == len(registry.GROUPS["rmd17-benzene"]) == 10
    assert registry.SOURCES["qm9/qm9pack-wheel"].sha256 == (
        "1d88c2988007c6778e717ee3224cf511bd60e10732ebe3b7ed500ea5af05c9f0"
    )


def test_data_readme_names_every_public_url() -> None:
    readme = (Path(__file__).resolve().parents[1] / "data" / "README.md").read_text()
    for s in registry.SOURCES.values():
        if s.url and s.name not in registry.GROUPS["rmd17-aspirin"] + registry.GROUPS["rmd17-benzene"]:
            assert s.url in readme, s.name
    assert registry.RMD17_COMMIT in readme


def test_registry_agrees_with_the_mirror_sha256sums(data_mirror: Path) -> None:
    by_rel = {s.relpath: s for s in registry.SOURCES.values()}
    checked = 0
    for sums in sorted(data_mirror.glob("*/SHA256SUMS")):
        for line in sums.read_text().splitlines():
            digest, name = line.split()
            rel = (sums.parent.name + "/" + os.path.normpath(name)).replace("\\", "/")
            if rel.endswith(".py"):
                continue  # the conversion script is not data
            assert rel in by_rel, f"{rel} is in the mirror but not in the registry"
            assert by_rel[rel].sha256 == digest, rel
            checked += 1
    assert checked == 20 + 2 + 4


def test_lookup_order_data_dir_then_mirror_then_cache(
    tmp_path: Path, data_mirror: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rel = registry.SOURCES["rmd17/benzene_test_01"].relpath
    assert registry.find("rmd17/benzene_test_01") == data_mirror / rel
    mine = tmp_path / "mine"
    (mine / "rmd17").mkdir(parents=True)
    shutil.copy(data_mirror / rel, mine / rel)
    assert registry.find("rmd17/benzene_test_01", mine) == mine / rel
    (cache / "rmd17").mkdir(parents=True)
    shutil.copy(data_mirror / rel, cache / rel)
    assert registry.find("rmd17/benzene_test_01") == data_mirror / rel
    monkeypatch.setenv("QALLEGRO_DATA", str(tmp_path / "no-mirror"))
    assert registry.find("rmd17/benzene_test_01") == cache / rel
    assert [label.split()[0] for label, _ in registry.data_roots(mine)] == ["data_dir", "mirror", "cache"]


def test_sha256_is_cached_per_path_size_and_mtime(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(b"abc")
    calls = []
    real = registry.sha256_file
    monkeypatch.setattr(registry, "sha256_file", lambda p: calls.append(p) or real(p))
    h = registry.file_sha256(f)
    assert registry.file_sha256(f) == h and len(calls) == 1
    assert (cache / "sha256-cache.json").is_file()
    registry._VERIFIED.clear()  # a new process: the cache file answers
    registry._DISK_CACHE_LOADED.clear()
    assert registry.file_sha256(f) == h and len(calls) == 1
    f.write_bytes(b"abd")  # new content and mtime: hashed again
    os.utime(f, ns=(1, 1))
    assert registry.file_sha256(f) != h and len(calls) == 2


def test_missing_file_error_names_file_places_url_and_command(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QALLEGRO_DATA", str(tmp_path / "empty"))
    with pytest.raises(MissingDataError) as err:
        load_dataset("rmd17-aspirin", data_dir=tmp_path / "mine")
    msg = str(err.value)
    assert "rmd17/rmd17_aspirin_train_01.npz" in msg
    assert str(tmp_path / "mine" / "rmd17") in msg and str(tmp_path / "empty" / "rmd17") in msg
    assert str(cache / "rmd17") in msg
    assert registry.SOURCES["rmd17/aspirin_train_01"].url in msg
    assert "qallegro data fetch rmd17-aspirin" in msg
    with pytest.raises(MissingDataError, match="qallegro data fetch qm9"):
        load_dataset("qm9")
    with pytest.raises(MissingDataError, match="no public URL"):
        registry.fetch("culi")


class _RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Serves files and honours `Range: bytes=N-` (enough to test resumed downloads)."""

    ranges: ClassVar[list[str]] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        rng = self.headers.get("Range")
        self.ranges.append(rng or "")
        start = int(rng.split("=")[1].rstrip("-")) if rng else 0
        self.send_response(206 if rng else 200)
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        self.wfile.write(data[start:])


@pytest.fixture()
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    root = tmp_path / "www"
    root.mkdir()
    def handler(*a, **k):
        return _RangeHandler(*a, directory=str(root), **k)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()


def _serve(
    monkeypatch: pytest.MonkeyPatch,
    server: tuple[str, Path],
    name: str,
    src_file: Path,
    sha256: str | None = None,
) -> None:
    url, root = server
    shutil.copy(src_file, root / src_file.name)
    entry = registry.SOURCES[name]
    patched = dataclasses.replace(entry, url=f"{url}/{src_file.name}", sha256=sha256 or entry.sha256)
    monkeypatch.setitem(registry.SOURCES, name, patched)


def test_fetch_downloads_verifies_and_moves(
    server: tuple[str, Path], data_mirror: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QALLEGRO_DATA", str(tmp_path / "empty"))
    name = "rmd17/benzene_test_02"
    _serve(monkeypatch, server, name, data_mirror / "rmd17" / "rmd17_benzene_test_02.npz")
    dest = cache / "rmd17" / "rmd17_benzene_test_02.npz"
    half = (data_mirror / "rmd17" / "rmd17_benzene_test_02.npz").read_bytes()[:5000]
    dest.parent.mkdir(parents=True)
    dest.with_name(dest.name + ".part").write_bytes(half)  # an interrupted earlier download: resumed
    _RangeHandler.ranges.clear()
    assert registry.fetch(name) == [dest]
    assert _RangeHandler.ranges == ["bytes=5000-"]
    assert registry.sha256_file(dest) == registry.SOURCES[name].sha256
    assert not dest.with_name(dest.name + ".part").exists()
    assert registry.fetch(name) == [dest]  # already there: no second download


def test_force_downloads_again_only_a_cached_copy_that_differs(
    server: tuple[str, Path], data_mirror: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`fetch(force=True)` (pooch's update rule): the cached copy is hashed in full, kept when it matches and
    downloaded again when it does not, even when the hash cache still vouches for it; a download is not hashed
    again when it is first read."""
    monkeypatch.setenv("QALLEGRO_DATA", str(tmp_path / "empty"))
    monkeypatch.setattr(registry, "_VERIFIED", {})
    monkeypatch.setattr(registry, "_DISK_CACHE_LOADED", set())
    name = "rmd17/benzene_test_04"
    original = data_mirror / "rmd17" / "rmd17_benzene_test_04.npz"
    _serve(monkeypatch, server, name, original)
    dest = cache / "rmd17" / original.name
    _RangeHandler.ranges.clear()
    assert registry.fetch(name) == [dest] and len(_RangeHandler.ranges) == 1
    assert registry.hash_is_cached(dest)  # pooch verified it: loading it does not hash it again
    assert registry.fetch(name, force=True) == [dest] and len(_RangeHandler.ranges) == 1  # it matches: kept
    st = dest.stat()
    data = bytearray(dest.read_bytes())
    data[-100] ^= 0xFF
    with open(dest, "r+b") as fh:
        fh.write(bytes(data))
    os.utime(dest, ns=(st.st_atime_ns, st.st_mtime_ns))
    registry._VERIFIED[registry._stat_key(dest)] = registry.SOURCES[name].sha256  # a stale cache entry
    assert registry.fetch(name, force=True) == [dest] and len(_RangeHandler.ranges) == 2  # downloaded again
    assert dest.read_bytes() == original.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]  # no temporary or .part file left


def test_fetch_rejects_a_checksum_mismatch_and_leaves_nothing(
    server: tuple[str, Path], data_mirror: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QALLEGRO_DATA", str(tmp_path / "empty"))
    name = "rmd17/benzene_test_03"
    _serve(monkeypatch, server, name, data_mirror / "rmd17" / "rmd17_benzene_test_03.npz", sha256="0" * 64)
    with pytest.raises(ChecksumError, match="expected 0000") as err:
        registry.fetch(name)
    assert len(str(err.value).splitlines()) == 1 and "rmd17_benzene_test_03.npz" in str(err.value)
    assert not any((cache / "rmd17").iterdir())


def test_load_with_download_fetches_into_the_cache(
    server: tuple[str, Path], data_mirror: Path, cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QALLEGRO_DATA", str(tmp_path / "empty"))
    _serve(monkeypatch, server, "rmd17/aspirin_test_04", data_mirror / "rmd17" / "rmd17_aspirin_test_04.npz")
    with pytest.raises(MissingDataError):
        load_dataset("rmd17-aspirin", "test", split_index=4)  # nothing is downloaded unless asked
    frames = load_dataset("rmd17-aspirin", "test", split_index=4, download=True)
    assert len(frames) == 1000 and (cache / "rmd17" / "rmd17_aspirin_test_04.npz").is_file()


def test_rmd17_archive_fetch_extracts_members(
    server: tuple[str, Path], tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tarfile

    src = tmp_path / "src"
    members = registry.ARCHIVE_MEMBERS["rmd17/archive"]
    for m in members:
        p = src / registry.SOURCES[m].relpath
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(m)
    archive = tmp_path / "rmd17.tar.bz2"
    with tarfile.open(archive, "w:bz2") as tar:
        tar.add(src / "rmd17", arcname="rmd17")
    _serve(monkeypatch, server, "rmd17/archive", archive)
    monkeypatch.setenv("QALLEGRO_DATA", str(tmp_path / "empty"))
    got = registry.fetch("rmd17-archive")
    for m in members:
        assert (cache / registry.SOURCES[m].relpath).read_text() == m
    assert cache / "rmd17.tar.bz2" in got


def test_import_downloads_and_writes_nothing(tmp_path: Path) -> None:
    code = (
        "import urllib.request as u\n"
        "def refuse(*a, **k): raise SystemExit('network used at import')\n"
        "u.urlopen = refuse\n"
        "import qallegro.data, qallegro.data.qm9, qallegro.data.rmd17, qallegro.data.cli, qallegro.cli\n"
        "qallegro.cli.build_parser()\n"
    )
    env = {**os.environ, "QALLEGRO_CACHE": str(tmp_path / "cache")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert not (tmp_path / "cache").exists()


def test_unknown_names() -> None:
    with pytest.raises(UnknownDatasetError, match="rmd17-aspirin, rmd17-benzene, qm9, culi"):
        load_dataset("md17-aspirin")
    with pytest.raises(UnknownDatasetError, match="datasets and routes"):
        registry.fetch("nope")


def test_cli_verify_info_fetch(
    tmp_path: Path,
    data_mirror: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    cache: Path,
) -> None:
    assert main(["data", "verify", "rmd17-benzene"]) == 0
    out = capsys.readouterr().out
    assert out.count("ok ") == 10 and "10 of 10 files present, 0 bad" in out
    bad = tmp_path / "bad"
    (bad / "rmd17").mkdir(parents=True)
    data = bytearray((data_mirror / "rmd17" / "rmd17_benzene_test_01.npz").read_bytes())
    data[-100] ^= 0xFF
    (bad / "rmd17" / "rmd17_benzene_test_01.npz").write_bytes(bytes(data))
    assert main(["data", "verify", "rmd17-benzene", "--data-dir", str(bad)]) == 1
    assert "sha256 mismatch" in capsys.readouterr().out
    assert main(["data", "info", "rmd17-benzene"]) == 0
    out = capsys.readouterr().out
    assert "train: 950" in out and "val: 50" in out and "test: 1000" in out and "eV/Å" in out
    assert main(["data", "info", "qm9"]) == 0
    out = capsys.readouterr().out
    assert "molecules: 130831" in out and "test: 10831" in out
    assert main(["data", "fetch", "rmd17-benzene"]) == 0  # present in the mirror: nothing to download
    assert len(capsys.readouterr().out.splitlines()) == 10
    assert main(["data", "fetch", "culi"]) == 0  # mirror-only files that are present
    monkeypatch.setenv("QALLEGRO_DATA", str(tmp_path / "empty"))
    assert main(["data", "fetch", "culi"]) == 2
    assert "no public URL" in capsys.readouterr().err
