"""Atomic output directories, deterministic zips, checksums and the manifest."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from modelpack.errors import ModelpackError, UsageError
from modelpack.files.guard import kept_entries, refusal, replace_problem
from modelpack.files.jsonio import dumps_strict

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_bytes(path: Path) -> int:
    """Total size of a file or of every file below a directory."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_zip(source: Path, dest: Path, *, prefix: str = "", exclude: tuple[str, ...] = ()) -> Path:
    """Zip a file or a directory tree so the same input always gives the same bytes.

    Entries are sorted, timestamps fixed, permissions normalised (0755 for executables, 0644 otherwise);
    no absolute paths or build-machine names get in. `exclude` names paths (relative to `source`) left out.
    """
    files = [source] if source.is_file() else sorted(
        p for p in source.rglob("*") if p.is_file() and p.relative_to(source).as_posix() not in exclude
    )
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for f in files:
            rel = f.name if source.is_file() else f.relative_to(source).as_posix()
            info = zipfile.ZipInfo(prefix + rel, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o755 if f.stat().st_mode & stat.S_IXUSR else 0o644
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.create_system = 3
            info.file_size = f.stat().st_size  # lets zipfile choose ZIP64 up front for entries over 2 GiB
            with open(f, "rb") as src, zf.open(info, "w") as out:  # streamed: memory stays flat for big models
                shutil.copyfileobj(src, out, CHUNK)
    os.replace(tmp, dest)
    return dest


class _Counter:
    """A seekable write-only file that keeps only its length (zipfile seeks back to patch local headers, as
    it does in a real file, so the count equals the real zip's size)."""

    def __init__(self) -> None:
        self.size = self.pos = 0

    def write(self, data: bytes) -> int:
        self.pos += len(data)
        self.size = max(self.size, self.pos)
        return len(data)

    def seekable(self) -> bool:
        return True

    def seek(self, pos: int, whence: int = 0) -> int:
        self.pos = pos if whence == 0 else (self.pos + pos if whence == 1 else self.size + pos)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def flush(self) -> None:
        pass


def zipped_size(path: Path) -> int:
    """Bytes of `path` zipped with deflate, as it would ship; the zip is counted as it is made, never stored."""
    counter = _Counter()
    with zipfile.ZipFile(counter, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:  # type: ignore[arg-type]
        files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
        for f in files:
            rel = f.name if path.is_file() else f.relative_to(path).as_posix()
            info = zipfile.ZipInfo(rel, date_time=ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.file_size = f.stat().st_size
            with open(f, "rb") as src, zf.open(info, "w") as out:
                shutil.copyfileobj(src, out, CHUNK)
    return counter.size


@contextlib.contextmanager
def atomic_output_dir(final: Path) -> Iterator[Path]:
    """Yield a temporary sibling of `final`; on success it replaces `final`, on failure it is removed.

    `final` must be absent, empty, or a folder modelpack wrote (outguard.replace_problem); that is checked on
    entry and again just before the replacement, so files added meanwhile are never deleted either.
    """
    final = final.resolve()
    _check_replaceable(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned(final)
        staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.{os.getpid()}.", suffix=".building", dir=final.parent))
    except OSError as exc:
        raise ModelpackError(
            f"cannot create the output directory {final}: {exc.strerror}. Choose a writable --out.",
        ) from None
    try:
        yield staging
        _check_replaceable(final, built=True)
        if final.exists():
            _carry_over(final, staging)
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(staging, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _carry_over(final: Path, staging: Path) -> None:
    """Move what sam and publish wrote into the old folder (guard.KEPT) into the new one, unless the build
    wrote a file of that name itself."""
    for rel in kept_entries(final):
        dest = staging / rel
        if not os.path.lexists(dest):
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(final / rel, dest)


def _check_replaceable(final: Path, built: bool = False) -> None:
    why = replace_problem(final)
    if why:
        raise UsageError(refusal(final, why, built=built))


def _remove_abandoned(final: Path) -> None:
    """Delete staging directories of builds that were killed (their process is gone)."""
    for old in final.parent.glob(f".{final.name}.*.building"):
        pid = old.name[len(final.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(old, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def normalize_modes(root: Path) -> None:
    """Make `root` and everything below it readable by everyone: directories 0755, files 0644, or 0755 when
    their owner may execute them. Trees copied from temporary or cache folders arrive 0700, and Lambda runs
    container images as a non-root user, so nothing modelpack publishes may keep owner-only modes.
    Symbolic links are left alone (chmod would follow them)."""
    os.chmod(root, 0o755)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                continue
            # Directories first of all, so that the walk can enter them even without read permission.
            os.chmod(path, 0o755 if stat.S_ISDIR(mode) or mode & stat.S_IXUSR else 0o644)


def write_manifest(out_dir: Path) -> Path:
    """manifest.json: sha256 and size of every file in the output directory."""
    entries = {}
    for f in sorted(p for p in out_dir.rglob("*") if p.is_file()):
        rel = f.relative_to(out_dir).as_posix()
        if rel != "manifest.json":
            entries[rel] = {"sha256": sha256_file(f), "size_bytes": f.stat().st_size}
    path = out_dir / "manifest.json"
    path.write_text(dumps_strict({"files": entries}, indent=2, sort_keys=True) + "\n")
    return path
