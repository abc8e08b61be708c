"""Unpack a built zip the way Lambda would accept it: no entry outside the folder, no more bytes than the
platform's unzipped limit, counted by what the archive declares and by what it really unpacks."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path
from typing import BinaryIO

from modelpack import limits
from modelpack.errors import UsageError


class UnzipBudget:
    """Bytes that may still be unpacked for one function: its archives count together, as Lambda counts a
    function and its layers against one unzipped limit."""

    def __init__(self, limit: int = limits.LAMBDA_UNZIPPED_TOTAL_BYTES,
                 why: str = "Lambda refuses a function and its layers that large"):
        self.limit, self.used, self.why = limit, 0, why

    def refuse(self, archive: Path, what: str) -> UsageError:
        return UsageError(
            f"{archive}: {what} more than {self.limit} bytes ({self.limit / limits.MIB:.0f} MiB) unzipped, "
            f"counting the archives unpacked before it for the same function; {self.why}, so modelpack invoke "
            "does not unpack it. Rebuild the package with `modelpack build`, or check where this archive came from.")

    def copy(self, src: BinaryIO, dst: BinaryIO, archive: Path) -> None:
        """Copy one entry, counting its real bytes: a zip's declared sizes can lie."""
        while chunk := src.read(1 << 20):
            self.used += len(chunk)
            if self.used > self.limit:
                raise self.refuse(archive, "unpacks to")
            dst.write(chunk)


def safe_extract(archive: Path, dest: Path, budget: UnzipBudget | None = None) -> None:
    """Extract a zip, refusing absolute paths and `..` (zip-slip) and more bytes than `budget` allows
    (default: Lambda's unzipped limit), by the sizes it declares and by the bytes it really unpacks."""
    budget = budget or UnzipBudget()
    root = dest.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            for info in infos:
                name = info.filename
                if name.startswith("/") or ".." in Path(name).parts or not (root / name).resolve().is_relative_to(root):
                    raise UsageError(f"{archive}: entry '{name}' would be written outside the extraction directory; "
                                     "refused.")
            if budget.used + sum(i.file_size for i in infos) > budget.limit:
                raise budget.refuse(archive, "declares")
            for info in infos:
                target = root / info.filename
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    budget.copy(src, dst, archive)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise UsageError(f"{archive}: not a readable zip ({exc}); rebuild it with `modelpack build`.") from None

