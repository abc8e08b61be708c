"""Content-addressed cache of step outputs: written to a temporary name, renamed, verified on read."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from modelpack.jsonio import dumps_strict
from modelpack.output import sha256_file

META = "entry.json"


def cache_key(*parts: object) -> str:
    """Stable hash of the step name, its inputs' hashes, options and tool versions."""
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:32]


class Cache:
    """Directory of entries `<key>/` each holding the step's files and an `entry.json` of their hashes."""

    def __init__(self, root: Path, enabled: bool = True):
        self.root = root
        self.enabled = enabled

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
        """Copy the files of `source` into the cache under `key` and return the entry."""
        if not self.enabled:
            return source
        self.root.mkdir(parents=True, exist_ok=True)
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
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)
        try:
            os.replace(tmp, entry)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
        return entry
