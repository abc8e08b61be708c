"""The build cache: content-addressed entries of step outputs (written to a temporary name, renamed, verified on
read), where the cache lives, and how it is kept small (`modelpack cache info|prune|clean`).

Default folder: one per user (`default_cache_dir`), the same for every recipe and working directory. Only what the cache wrote is ever
removed: entry folders (32 hex digits holding entry.json) and half-written `.<key>.*` folders it left.
A running build holds a shared lock on the folder (its `.modelpack-lock` file); `cache prune` and `cache clean`
take it exclusively and refuse, naming the folder, while any build uses it, so entries never vanish under one.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from modelpack.errors import UsageError
from modelpack.files.jsonio import dumps_strict
from modelpack.files.output import sha256_file

META = "entry.json"
LOCK = ".modelpack-lock"


class CacheBusy(UsageError):
    """A build is using the cache folder that prune or clean would change."""


def cache_key(*parts: object) -> str:
    """Stable hash of the step name, its inputs' hashes, options and tool versions."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


class Cache:
    """Directory of entries `<key>/` each holding the step's files and an `entry.json` of their hashes."""

    def __init__(self, root: Path, enabled: bool = True):
        self.root = root
        self.enabled = enabled

    @contextlib.contextmanager
    def in_use(self) -> Iterator[None]:
        """Held by a build for its whole run: `modelpack cache prune|clean` wait for no build (they refuse)."""
        if not self.enabled:
            yield
            return
        with locked(self.root, exclusive=False):
            yield

    def get(self, key: str) -> Path | None:
        """The entry directory if present and intact; a damaged entry is removed and reported missing."""
        if not self.enabled:
            return None
        entry = self.root / key
        meta = entry / META
        if not meta.is_file():
            return None
        try:
            files = json.loads(meta.read_text())["files"]
            intact = all(sha256_file(entry / name) == digest for name, digest in files.items())
        except (OSError, ValueError, KeyError, TypeError):
            intact = False
        if not intact:
            shutil.rmtree(entry, ignore_errors=True)
            return None
        try:
            os.utime(meta)  # last used now: `modelpack cache prune` removes the least recently used first
        except OSError:
            pass
        return entry

    def put(self, key: str, source: Path) -> Path:
        """Copy the files of `source` into the cache under `key` and return the entry. The copy is written to a
        temporary folder in the cache and renamed into place; an entry already there is kept, never replaced,
        so two builds putting the same key at once never remove what the other is writing or reading."""
        if not self.enabled:
            return source
        make_folder(self.root)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}.", dir=self.root))
        try:
            files = {}
            for f in sorted(p for p in source.rglob("*") if p.is_file()):
                rel = f.relative_to(source).as_posix()
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(f, tmp / rel)
                files[rel] = sha256_file(tmp / rel)
            (tmp / META).write_text(dumps_strict({"files": files}, indent=1, sort_keys=True))
        except BaseException:  # a full disk or a stopped build leaves no half-written entry behind
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        entry = self.root / key
        try:
            os.rename(tmp, entry)  # atomic; refused when another build put the same key first
        except OSError:
            # Another build (sharing this per-user cache) got there first and may be reading its entry right
            # now: it stays as it is and only our own temporary copy goes.
            shutil.rmtree(tmp, ignore_errors=True)
            return entry if (entry / META).is_file() else source
        return entry

DEFAULT_MAX_BYTES = 2 * 1024**3
ENTRY = re.compile(r"^[0-9a-f]{32}$")
PARTIAL = re.compile(r"^\.[0-9a-f]{32}\..+$")
UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}


def default_cache_dir() -> Path:
    """The one step cache every command uses unless told otherwise: $MODELPACK_CACHE_DIR, else
    $XDG_CACHE_HOME/modelpack/builds, else ~/.cache/modelpack/builds. It does not depend on the recipe or the
    current folder, so `modelpack cache info` finds what `modelpack build` wrote wherever either runs."""
    if explicit := os.environ.get("MODELPACK_CACHE_DIR"):
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "modelpack" / "builds"


def parse_size(text: str) -> int:
    """'500MB', '2GB', '1.5GiB', '0' → bytes; a sentence naming the allowed units otherwise."""
    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*", text)
    unit = match.group(2).upper() if match else None
    if not match or unit not in UNITS:
        raise UsageError(f"size '{text}' is not understood; write a number with B, KB, MB, GB, KiB, MiB or GiB "
                         "(for example 500MB or 2GB).")
    return int(float(match.group(1)) * UNITS[unit])


def human(n: int) -> str:
    for unit, size in (("GB", 1000**3), ("MB", 1000**2), ("kB", 1000)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


@dataclass
class Entry:
    path: Path
    bytes: int
    last_used: float  # entry.json's mtime: written on put, touched on every hit

    @property
    def kind(self) -> str:
        return "partial" if self.path.name.startswith(".") else "entry"


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def entries(root: Path) -> list[Entry]:
    """The cache's own folders under `root`, oldest use first; anything else there is not listed."""
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        if child.is_symlink() or not child.is_dir():
            continue
        if ENTRY.match(child.name) and (child / META).is_file():
            found.append(Entry(child, _size(child), (child / META).stat().st_mtime))
        elif PARTIAL.match(child.name):
            found.append(Entry(child, _size(child), child.stat().st_mtime))
    return sorted(found, key=lambda e: (e.last_used, e.path.name))


@dataclass
class Summary:
    root: Path
    entries: int
    bytes: int
    removed: int = 0
    freed: int = 0

    def to_json(self) -> dict:
        return {"path": str(self.root), "entries": self.entries, "bytes": self.bytes, "removed": self.removed,
                "freed_bytes": self.freed}


def not_a_folder(root: Path) -> UsageError:
    return UsageError(f"the step cache {root} is not a folder (it, or a folder above it, is a file). Point "
                      "MODELPACK_CACHE_DIR or --cache-dir at a folder, or unset MODELPACK_CACHE_DIR for the default "
                      "($XDG_CACHE_HOME or ~/.cache, then modelpack/builds).")


def make_folder(root: Path) -> None:
    """Create the cache folder; a file where it (or a folder above it) should be is the user's to fix."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise not_a_folder(root) from None


def info(root: Path) -> Summary:
    if root.exists() and not root.is_dir():
        raise not_a_folder(root)
    found = entries(root)
    return Summary(root, sum(e.kind == "entry" for e in found), sum(e.bytes for e in found))


def prune(root: Path, max_bytes: int, keep_partial_s: float = 3600) -> Summary:
    """Remove least recently used entries until the cache holds at most `max_bytes`; half-written folders
    older than `keep_partial_s` (left by a killed build) go first."""
    if root.exists() and not root.is_dir():
        raise not_a_folder(root)
    if not root.is_dir():
        return Summary(root, 0, 0)
    with locked(root, exclusive=True):
        return _prune(root, max_bytes, keep_partial_s)


def _prune(root: Path, max_bytes: int, keep_partial_s: float) -> Summary:
    found = entries(root)
    now = time.time()
    removed = freed = 0
    total = sum(e.bytes for e in found)
    for e in found:
        stale_partial = e.kind == "partial" and now - e.last_used > keep_partial_s
        if stale_partial or (total > max_bytes and e.kind == "entry"):
            shutil.rmtree(e.path, ignore_errors=True)
            removed, freed, total = removed + 1, freed + e.bytes, total - e.bytes
    after = info(root)
    return Summary(root, after.entries, after.bytes, removed, freed)


def clean(root: Path) -> Summary:
    """Remove every entry (and the folder itself when nothing else is left in it)."""
    summary = prune(root, 0, keep_partial_s=0)
    if root.is_dir():
        with locked(root, exclusive=True):
            with contextlib.suppress(OSError):
                (root / LOCK).unlink()  # a build starting meanwhile finds it gone and takes a new one
            with contextlib.suppress(OSError):
                root.rmdir()  # not empty: files modelpack did not write stay
    return summary


@contextlib.contextmanager
def locked(root: Path, exclusive: bool) -> Iterator[None]:
    """The cache folder's lock: shared for builds (they wait for a prune or clean to finish), exclusive and
    refused at once (CacheBusy, exit 2) for prune and clean while a build holds it."""
    make_folder(root)
    while True:
        fd = os.open(root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX | fcntl.LOCK_NB) if exclusive else fcntl.LOCK_SH)
        except BlockingIOError:
            os.close(fd)
            raise CacheBusy(f"the cache {root} is in use by a running build (modelpack build or bench); its "
                            "entries are left as they are. Run the command again when the build has finished.") from None
        try:
            current = os.stat(root / LOCK).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            current = False
        if current:
            break
        os.close(fd)  # a clean removed the lock file while we waited: lock the new one
        make_folder(root)
    try:
        yield
    finally:
        os.close(fd)
