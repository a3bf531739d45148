"""Every data file the project reads: public URL, sha256, licence, and where it is looked for.

A file `relpath` is looked for, in order, under
  1. the `data_dir=` argument of a loader,
  2. the local mirror `$QALLEGRO_DATA` (default: `../shared/data` beside the checkout when it exists),
  3. the download cache `$QALLEGRO_CACHE` (default: `<repo>/data/downloads`).
Every file read is checked against its sha256. The hash is cached per path, inode, size, mtime and ctime (the
ctime cannot be set back by a program, so a file rewritten at the same size with its old mtime is hashed again);
`qallegro data verify --full` always re-hashes.
Nothing is downloaded unless asked (`qallegro data fetch NAME`, or `download=True` in a loader).

Downloads go through pooch (`pooch.retrieve`): it streams the file to a temporary file beside its destination,
checks the sha256 (deleting a bad download) and only then moves it into place, and on `--force` hashes an
existing copy in full and downloads it again only if it differs. What stays here, because pooch does not do it:
- the lookup in `data_dir`, the mirror and the cache, in that order (pooch knows one cache folder and, offline,
  only its own URL-named files);
- resuming an interrupted download (`_ResumingDownload`: pooch's downloaders start again from byte 0 and delete
  the partial file; the QM9 files are 86 and 104 MB);
- the hash cache keyed by inode, size, mtime and ctime (pooch hashes the whole file at every `retrieve` of an
  existing file: 0.5 s per large file at every load);
- unpacking the rMD17 archive (`_extract_members`: atomic per file, the `data` filter, an error naming the
  members an archive lacks; `pooch.Untar` extracts in place and does not check).
"""

from __future__ import annotations

import json
import logging
import os
import tarfile
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qallegro.data.errors import (
    ChecksumError,
    CorruptFileError,
    DataError,
    MissingDataError,
    UnknownDatasetError,
)
from qallegro.paths import REPO_ROOT
from qallegro.utils import atomic_write_text, get_logger, sha256_file

RMD17_COMMIT = "4f6bb0a186822c90d47cd98b7a27991fe0b3173b"
_RMD17_RAW = f"https://raw.githubusercontent.com/andersx/rmd17-npz/{RMD17_COMMIT}/rmd17-npz"
_FIGSHARE = "https://ndownloader.figshare.com/files"
UNKNOWN_SHA = "sha256 unknown offline: the loader verifies this file by its structure instead"
MIRROR_ONLY = "no public URL: mirror only"


@dataclass(frozen=True)
class Source:
    """One file. `relpath` is relative to a data root (or, with `in_package`, to site-packages)."""

    name: str
    relpath: str
    url: str | None
    sha256: str | None
    licence: str
    size: int | None = None
    note: str = ""
    provided_by: str | None = None  # the archive source that contains this file, when it has no own URL
    in_package: bool = False


def _rmd17_split_sources() -> list[Source]:
    sums = {
        "aspirin_test_01": "a3c3b61e782d01e6dd649a126004903f7873e8e7ee5034135abfdb8873be711d",
        "aspirin_test_02": "445e26aa2253dcf7e8d9386785c4a9cea69f1e196f54fbd69a969c53177a1a9c",
        "aspirin_test_03": "818d5bbb8c8ff17bd049ab09e2614354b0a8a21a1cd5667bc13e934247162a36",
        "aspirin_test_04": "724b808f3ed9eb542b864e14982aa2246a4c5098165b86ec8b22e893cd9271c5",
        "aspirin_test_05": "03e1e6673698867c73e3be38a37a19b062ed49a4961aee21e67702db869f3d9d",
        "aspirin_train_01": "d460f0e43a1a9411b55cdcd9cdbeb9466ae62851ac91392516ab88e4ebc68143",
        "aspirin_train_02": "8a5699756e1a9c2bc30c22985cff03b45cb1eb36550941d742d8ce5abfac2d01",
        "aspirin_train_03": "9153827bb89e26d43e9e590d35d5572dd0b535a190a3486c320c75494aa94a7c",
        "aspirin_train_04": "c086ab96170e5bdc0363674d1e5d6ea9786a7a76fca286eb87f35850b5e21c13",
        "aspirin_train_05": "25cc9584b5cd79f63d56d051bab326e18077b3719f8f45807747fbfa6a55e7ed",
        "benzene_test_01": "4aad4aa2f5ae6aa78d2d9f5da7cb285c97864cfbdf054b67de12a1429b249534",
        "benzene_test_02": "a6e4243266892db8877157e9aeee04a685869aab22dfa9b2da34a4947cc2ddca",
        "benzene_test_03": "ca3f8d62e0b1bf9416dbcce4d8898adef4dd6251a820705c844d79cf6a670b1a",
        "benzene_test_04": "795ec0c6c6511fbc543653d58d6a2250dc18ef39a0bb06a3ca29dba307d90d10",
        "benzene_test_05": "9824b627d03ec61924f3df027d6eb37e4edbeb6eac6e9db08cc004acd4e2836a",
        "benzene_train_01": "6e69deb5dc8663c2d2461cc50e522c74742acea7b4185da348fc08585a15cdc7",
        "benzene_train_02": "baa8b8448dbe2f9e9bd5958de9f89f46a63c6504c0c0c24f0e4ac0c0e76524fc",
        "benzene_train_03": "dcff45304807aba6666afeae17fdbc2e6833e720b111fb01e42a71b06e6e50f6",
        "benzene_train_04": "0eb0b571ae4c8fcf7fac2f90ad0d2aaf0820d031ee191f5508172b2a8a43f731",
        "benzene_train_05": "3bb6c8bb7650cf4768e740d9839d01f2f162c0c3fc3223598aeb4fcbb6c8500a",
    }
    return [
        Source(f"rmd17/{k}", f"rmd17/rmd17_{k}.npz", f"{_RMD17_RAW}/rmd17_{k}.npz", v, "CC0-1.0")
        for k, v in sums.items()
    ]


def _rmd17_archive_sources() -> list[Source]:
    out = [
        Source(
            "rmd17/archive",
            "rmd17.tar.bz2",
            f"{_FIGSHARE}/23950376",
            None,
            "as on figshare 12672038 (not checked offline)",
            note=UNKNOWN_SHA,
        )
    ]
    for mol in ("aspirin", "benzene"):
        out.append(
            Source(
                f"rmd17/full_{mol}",
                f"rmd17/npz_data/rmd17_{mol}.npz",
                None,
                None,
                "as rmd17/archive",
                note=UNKNOWN_SHA,
                provided_by="rmd17/archive",
            )
        )
    for kind in ("train", "test"):
        for k in range(1, 6):
            out.append(
                Source(
                    f"rmd17/index_{kind}_{k:02d}",
                    f"rmd17/splits/index_{kind}_{k:02d}.csv",
                    None,
                    None,
                    "as rmd17/archive",
                    note=UNKNOWN_SHA,
                    provided_by="rmd17/archive",
                )
            )
    return out


_QM9_LICENCE = "CC0-1.0 per figshare 978904 (not re-checked offline)"
_QM9PACK_WHEEL = (
    "https://files.pythonhosted.org/packages/fd/8f/ce586cc7801ebd0880483904127b1e50a81d31d3af287379"
    "edfe1af10fc7/qm9pack-1.0.3-py3-none-any.whl"
)
# sha256 of the three figshare files: tensorflow/datasets, tensorflow_datasets/datasets/qm9/checksums.tsv
_QM9 = [
    Source(
        "qm9/xyz-archive",
        "qm9/dsgdb9nsd.xyz.tar.bz2",
        f"{_FIGSHARE}/3195389",
        "3a63848ac80691bdb8d41834b575afad345b9300d7a2db0c38adb7f6eaa8360c",
        _QM9_LICENCE,
        size=86144227,
    ),
    Source(
        "qm9/uncharacterized",
        "qm9/uncharacterized.txt",
        f"{_FIGSHARE}/3195404",
        "3aa5115d540b356de94791d4a74c3bf1ed91c469ecf52a4f5d7cc0506fe02e24",
        _QM9_LICENCE,
        size=486752,
    ),
    Source(
        "qm9/atomref-txt",
        "qm9/atomref.txt",
        f"{_FIGSHARE}/3195395",
        "af739d4a0fbe894a56f346ad6045ee1b74c58f8a8c9ef3fbfed920c9ad8b00f9",
        _QM9_LICENCE,
        size=964,
    ),
    Source(
        "qm9/atomref-json",
        "qm9/atomref_b3lyp_631G2dfp.json",
        None,
        "b146b67c4393653a9c38ecbfcf38683040db48311e1374399f3d87e13addf391",
        "CC0-1.0",
        note=f"{MIRROR_ONLY} (the values of atomref.txt as JSON; qm9/atomref-txt is the public file)",
    ),
    Source(
        "qm9/npz",
        "qm9/qm9_qm9pack.npz",
        None,
        "975d1db298b61b25f3cee2efe52b5e472173bacd090bfb37999d18790356cb2f",
        "MIT (qm9pack) / CC0-1.0 (QM9)",
        note=f"{MIRROR_ONLY} (convert_qm9pack.py applied to the qm9pack 1.0.3 CSVs; the public routes are "
        "qm9/qm9pack-wheel and qm9/xyz-archive)",
    ),
    Source(
        "qm9/qm9pack-wheel",
        "qm9/qm9pack-1.0.3-py3-none-any.whl",
        _QM9PACK_WHEEL,
        "1d88c2988007c6778e717ee3224cf511bd60e10732ebe3b7ed500ea5af05c9f0",
        "MIT",
        size=103712597,
    ),
    Source(
        "qm9/qm9pack-part1",
        "qm9pack/data/qm9_part1.csv",
        None,
        "19f0a5d595462d52cd82eef3370f3e9eb55a1f52cb14985657200349568deff3",
        "MIT",
        size=69693764,
        note="inside the qm9pack 1.0.3 wheel or installed package",
        provided_by="qm9/qm9pack-wheel",
        in_package=True,
    ),
    Source(
        "qm9/qm9pack-part2",
        "qm9pack/data/qm9_part2.csv",
        None,
        "2bca113fdc0b28a13563c80ed9b240e934f3da6c64c64fe74ddb4f0f36036e61",
        "MIT",
        size=76868612,
        note="inside the qm9pack 1.0.3 wheel or installed package",
        provided_by="qm9/qm9pack-wheel",
        in_package=True,
    ),
    Source(
        "qm9/qm9pack-part3",
        "qm9pack/data/qm9_part3.csv",
        None,
        "9c5efb5733d2af149db8d95d36ff198b4ffed12d9f7b344220a1e5877d5c6a43",
        "MIT",
        size=79083002,
        note="inside the qm9pack 1.0.3 wheel or installed package",
        provided_by="qm9/qm9pack-wheel",
        in_package=True,
    ),
]
_CULI_NOTE = f"{MIRROR_ONLY}: GPAW PBE labels computed for this project (../shared/data/culi/PROVENANCE.md)"
_CULI = [
    Source(f"culi/{Path(p).stem}", f"culi/validation/{p}", None, s, "project data", note=_CULI_NOTE)
    for p, s in {
        "culi_cfg2_gpaw_pw500.extxyz": "cfc270faddc65747b13ba91b1db643b9ae87ce86477c28caa1276380969d4488",
        "culi_test3.extxyz": "ac20e0f8f58aae7abdadb3accc19329c9138227f2f25befa7a34a6556e4e9a74",
        "culi_test3_gpaw_pw350.extxyz": "0cbd706ffa7870e9387a93ed069ac021c615b21b00c0c8eccc85a8046c64e5e3",
        "refs_gpaw_pw350.extxyz": "cc5fb5acce7048486d5b1d49712042504c8f47ba3fc1ee140a97b12fbedf88b3",
    }.items()
]

#: The one table of every source file, by name.
SOURCES: dict[str, Source] = {
    s.name: s for s in [*_rmd17_split_sources(), *_rmd17_archive_sources(), *_QM9, *_CULI]
}

#: Names accepted by `fetch`/`verify`/`info` besides single source names: a dataset or a route.
GROUPS: dict[str, tuple[str, ...]] = {
    "rmd17-aspirin": tuple(n for n in SOURCES if n.startswith("rmd17/aspirin_")),
    "rmd17-benzene": tuple(n for n in SOURCES if n.startswith("rmd17/benzene_")),
    "rmd17-archive": tuple(
        n for n in SOURCES if SOURCES[n].provided_by == "rmd17/archive" or n == "rmd17/archive"
    ),
    "qm9": ("qm9/npz", "qm9/atomref-json", "qm9/xyz-archive", "qm9/uncharacterized", "qm9/atomref-txt"),
    "qm9pack": ("qm9/qm9pack-wheel", "qm9/atomref-txt"),
    "culi": tuple(n for n in SOURCES if n.startswith("culi/")),
}

# Files extracted from an archive when it is fetched (archive source -> its member sources).
ARCHIVE_MEMBERS: dict[str, tuple[str, ...]] = {
    "rmd17/archive": tuple(n for n in SOURCES if SOURCES[n].provided_by == "rmd17/archive"),
}

_log = get_logger("qallegro.data")


# ------------------------------------------------------------------------------------------------------ roots
def mirror_dir() -> Path | None:
    """The local mirror: `$QALLEGRO_DATA`, else `../shared/data` beside the checkout when it exists."""
    env = os.environ.get("QALLEGRO_DATA")
    if env:
        return Path(env).expanduser()
    default = REPO_ROOT.parent / "shared" / "data"
    return default if default.is_dir() else None


def cache_dir() -> Path:
    """The download cache: `$QALLEGRO_CACHE`, else `<repo>/data/downloads` (else `~/.cache/qallegro`)."""
    env = os.environ.get("QALLEGRO_CACHE")
    if env:
        return Path(env).expanduser()
    if (REPO_ROOT / "pyproject.toml").is_file():
        return REPO_ROOT / "data" / "downloads"
    return Path.home() / ".cache" / "qallegro"


def data_roots(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The folders searched, in order, each with a label for messages."""
    roots: list[tuple[str, Path]] = []
    if data_dir is not None:
        roots.append(("data_dir", Path(data_dir).expanduser()))
    mirror = mirror_dir()
    if mirror is not None:
        roots.append(("mirror ($QALLEGRO_DATA)", mirror))
    roots.append(("cache ($QALLEGRO_CACHE)", cache_dir()))
    return roots


def get_source(name: str) -> Source:
    try:
        return SOURCES[name]
    except KeyError:
        raise UnknownDatasetError(
            f"unknown data source {name!r}; known: {', '.join(sorted(SOURCES))}"
        ) from None


def resolve_names(name: str) -> tuple[str, ...]:
    """A group name (dataset or route) or a single source name -> source names."""
    if name in GROUPS:
        return GROUPS[name]
    if name in SOURCES:
        return (name,)
    raise UnknownDatasetError(
        f"unknown data name {name!r}; datasets and routes: {', '.join(GROUPS)}; "
        f"single files: {', '.join(sorted(SOURCES))}"
    )


def find(name: str, data_dir: str | os.PathLike | None = None) -> Path | None:
    """The first existing copy of a data-root source (not verified), or None."""
    src = get_source(name)
    for _, root in data_roots(data_dir):
        path = root / src.relpath
        if path.is_file():
            return path
    return None


def first_present(candidates: list[tuple[str, str]], data_dir: str | os.PathLike | None = None) -> str | None:
    """The label of the first (label, relpath) candidate present, scanning the roots in lookup order.

    Used to pick a layout: a copy in `data_dir` wins over a different layout in the mirror.
    """
    for _, root in data_roots(data_dir):
        for label, rel in candidates:
            if (root / rel).exists():
                return label
    return None


def fetch_command(name: str) -> str:
    """The command that fetches source `name` (through its archive when it has no URL of its own)."""
    src = get_source(name)
    group = next((g for g, members in GROUPS.items() if name in members and g not in ("qm9",)), None)
    target = src.provided_by or group or name
    return f"qallegro data fetch {target}"


def missing_message(name: str, data_dir: str | os.PathLike | None = None) -> str:
    """Where a source was looked for and how to get it."""
    src = get_source(name)
    places = "\n".join(f"  - {label}: {root / src.relpath}" for label, root in data_roots(data_dir))
    if src.url:
        how = f"download it from {src.url}\n  or run: {fetch_command(name)}"
    elif src.provided_by:
        parent = get_source(src.provided_by)
        how = (
            f"it comes inside {parent.relpath} ({parent.url}); run: qallegro data fetch {src.provided_by}"
            if parent.url
            else f"it comes inside {parent.relpath}"
        )
    else:
        how = f"{src.note}; point $QALLEGRO_DATA (or data_dir=) at a copy of the project's data mirror"
    return f"missing data file {src.relpath} ({name}). Looked in:\n{places}\nHow to get it: {how}"


# -------------------------------------------------------------------------------------------------- checksums
_VERIFIED: dict[tuple[str, int, int, int, int], str] = {}
_DISK_CACHE_LOADED: set[Path] = set()
_KEY_FIELDS = ("inode", "size", "mtime_ns", "ctime_ns")


def _cache_file() -> Path:
    return cache_dir() / "sha256-cache.json"


def _load_disk_cache() -> None:
    path = _cache_file()
    if path in _DISK_CACHE_LOADED:
        return
    _DISK_CACHE_LOADED.add(path)
    try:
        entries = json.loads(path.read_text())
        for p, e in entries.items():
            _VERIFIED[(p, *(int(e[k]) for k in _KEY_FIELDS))] = str(e["sha256"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return  # no cache, an unreadable one or an older format: hashes are simply recomputed


def _save_disk_cache() -> None:
    entries = {key[0]: {**dict(zip(_KEY_FIELDS, key[1:], strict=True)), "sha256": h}
               for key, h in _VERIFIED.items() if os.path.exists(key[0])}
    try:
        atomic_write_text(_cache_file(), json.dumps(entries, indent=1, sort_keys=True) + "\n")
    except OSError:
        pass  # a read-only cache folder only costs speed


def _stat_key(path: Path) -> tuple[str, int, int, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def hash_is_cached(path: str | os.PathLike) -> bool:
    """Whether `file_sha256(path)` would come from the cache (inode, size, mtime and ctime all unchanged)."""
    _load_disk_cache()
    return _stat_key(Path(path)) in _VERIFIED


def file_sha256(path: str | os.PathLike, full: bool = False) -> str:
    """sha256 of a file, memoised per (resolved path, inode, size, mtime, ctime) in memory and in the cache
    folder; `full` always hashes the file."""
    path = Path(path)
    key = _stat_key(path)
    _load_disk_cache()
    if full or key not in _VERIFIED:
        _VERIFIED[key] = sha256_file(path)
        _save_disk_cache()
    return _VERIFIED[key]


def verify_file(path: str | os.PathLike, name: str, full: bool = False) -> Path:
    """Check a file against the registry entry `name`; raise `ChecksumError` on a mismatch (`full`: hash it even
    when the cache knows it unchanged).

    Sources without a known sha256 pass here; their reader verifies them by structure.
    """
    src = get_source(name)
    path = Path(path)
    if src.sha256 is None:
        return path
    got = file_sha256(path, full)
    if got != src.sha256:
        raise ChecksumError(
            f"sha256 mismatch for {name}: expected {src.sha256}, got {got} (size {path.stat().st_size} bytes"
            + (f", expected {src.size}" if src.size else "")
            + "). The file is corrupt, truncated or a different version: delete it and run "
            + fetch_command(name),
            path,
        )
    return path


def locate(name: str, data_dir: str | os.PathLike | None = None, download: bool = False) -> Path:
    """The verified path of a data-root source; fetch it first when `download` is true and it is missing."""
    path = find(name, data_dir)
    if path is None and download:
        src = get_source(name)
        fetch(src.provided_by or name)
        path = find(name, data_dir)
    if path is None:
        raise MissingDataError(missing_message(name, data_dir))
    return verify_file(path, name)


# -------------------------------------------------------------------------------------------------- downloads
def _download(url: str, dest: Path, desc: str) -> None:
    """Stream `url` into `dest.part`, resuming a partial download; the caller verifies and renames it."""
    from tqdm.auto import tqdm

    part = dest.with_name(dest.name + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    have = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            append = have > 0 and getattr(resp, "status", 200) == 206
            total = resp.headers.get("Content-Length")
            total = int(total) + (have if append else 0) if total else None
            with (
                open(part, "ab" if append else "wb") as fh,
                tqdm(total=total, initial=have if append else 0, unit="B", unit_scale=True, desc=desc) as bar,
            ):
                while block := resp.read(1 << 20):
                    fh.write(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as err:
        if err.code == 416 and have:  # range past the end: the part file is complete already
            return
        raise DataError(f"download of {url} failed: HTTP {err.code} {err.reason}", dest) from err
    except (urllib.error.URLError, OSError) as err:
        raise DataError(f"download of {url} failed ({err}); rerun the same command to resume", dest) from err


def _extract_members(archive: Path, members: tuple[str, ...], root: Path) -> list[Path]:
    """Extract the files of the member sources from a tar archive into `root` (atomic per file)."""
    wanted = {get_source(m).relpath: m for m in members}
    out: list[Path] = []
    try:
        with tarfile.open(archive) as tar, tempfile.TemporaryDirectory(dir=root, prefix=".extract-") as tmp:
            for info in tar:
                if info.name in wanted and info.isfile():
                    tar.extract(info, tmp, filter="data")
                    final = root / info.name
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(Path(tmp) / info.name, final)
                    out.append(final)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise CorruptFileError(
            f"cannot read the archive ({err}); delete it and fetch again", archive
        ) from err
    found = {p.relative_to(root).as_posix() for p in out}
    lost = sorted(set(wanted) - found)
    if lost:
        raise CorruptFileError(f"the archive lacks {len(lost)} expected file(s): {', '.join(lost)}", archive)
    return out


def fetch(name: str, force: bool = False) -> list[Path]:
    """Download the files of a dataset, route or single source into the cache; return their paths.

    Files already present (in any root) and verified are skipped unless `force`. An archive is unpacked after
    its download. A file without a public URL cannot be fetched: when a name has nothing downloadable and such
    a file is missing, `MissingDataError` explains where it comes from.
    """
    root = cache_dir()
    done: list[Path] = []
    unavailable: list[str] = []
    members = resolve_names(name)
    for member in members:
        src = get_source(member)
        existing = find(member)
        if src.url is None:
            if existing is not None:
                done.append(verify_file(existing, member))
            elif src.provided_by is None:
                unavailable.append(member)
            continue  # files inside an archive arrive with it
        if existing is not None and not force:
            done.append(verify_file(existing, member))
        else:
            done.append(_download_verified(src, root / src.relpath))
        inner = ARCHIVE_MEMBERS.get(member, ())
        if inner and (force or any(find(m) is None for m in inner)):
            done.extend(_extract_members(done[-1], inner, root))
    if unavailable and not any(get_source(m).url for m in members):
        raise MissingDataError("\n".join(missing_message(m) for m in unavailable))
    return done


class _ResumingDownload:
    """A pooch downloader that keeps the partial download as `<dest>.part`, resumes it with a range request
    (`_download`), and hands the complete file to pooch, which verifies it and moves it into place."""

    def __init__(self, dest: Path, desc: str) -> None:
        self.dest, self.desc = dest, desc

    def __call__(self, url: str, output_file: str, pooch: Any, check_only: bool = False) -> None:
        _download(url, self.dest, self.desc)
        os.replace(self.dest.with_name(self.dest.name + ".part"), output_file)


def _download_verified(src: Source, dest: Path) -> Path:
    """Download `src` to `dest` with `pooch.retrieve` (verified before it is moved into place; a bad download is
    deleted). An existing `dest` is hashed in full and downloaded again only when it differs."""
    import pooch

    assert src.url is not None
    pooch.get_logger().setLevel(logging.WARNING)  # its info lines repeat ours
    _log.warning("downloading %s -> %s", src.url, dest)
    try:
        pooch.retrieve(src.url, known_hash=src.sha256, fname=dest.name, path=dest.parent,
                       downloader=_ResumingDownload(dest, src.name))
    except DataError:
        raise
    except ValueError as err:  # pooch's checksum mismatch; it has deleted the download
        raise ChecksumError(
            f"sha256 mismatch for {src.name} downloaded from {src.url}: {err}", dest
        ) from err
    if src.sha256 is None:
        _log.warning(
            "%s has no registered sha256; the download has sha256 %s (its reader checks the structure)",
            src.name,
            file_sha256(dest),
        )
    else:  # pooch has just checked the file against src.sha256: remember it as verified
        _load_disk_cache()
        _VERIFIED[_stat_key(dest)] = src.sha256
        _save_disk_cache()
    return dest
