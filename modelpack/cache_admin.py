"""Where the build cache lives and how it is kept small: `modelpack cache info|prune|clean`.

Default folder: `$XDG_CACHE_HOME/modelpack/builds` when XDG_CACHE_HOME is set, else `.modelpack-cache` next to
the recipe (so a build finds its cache wherever it is started from). Only what the cache wrote is ever
removed: entry folders (32 hex digits holding entry.json) and half-written `.<key>.*` folders it left.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from modelpack.cache import META
from modelpack.errors import UsageError

DEFAULT_MAX_BYTES = 2 * 1024**3
ENTRY = re.compile(r"^[0-9a-f]{32}$")
PARTIAL = re.compile(r"^\.[0-9a-f]{32}\..+$")
UNITS = {"": 1, "B": 1, "KB": 1000, "MB": 1000**2, "GB": 1000**3, "KIB": 1024, "MIB": 1024**2, "GIB": 1024**3}


def default_cache_dir(near: Path | None = None) -> Path:
    """The cache folder for a recipe (or model) at `near`; the current folder's when `near` is None."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg:
        return Path(xdg) / "modelpack" / "builds"
    base = near.resolve().parent if near is not None else Path.cwd()
    return base / ".modelpack-cache"


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


def info(root: Path) -> Summary:
    found = entries(root)
    return Summary(root, sum(e.kind == "entry" for e in found), sum(e.bytes for e in found))


def prune(root: Path, max_bytes: int, keep_partial_s: float = 3600) -> Summary:
    """Remove least recently used entries until the cache holds at most `max_bytes`; half-written folders
    older than `keep_partial_s` (left by a killed build) go first."""
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
    try:
        root.rmdir()
    except OSError:
        pass  # not empty (files modelpack did not write stay) or not there
    return summary
