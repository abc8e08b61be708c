"""Zipped sizes deflated in the background while the build goes on.

Deflating a large model's file takes seconds per hundred MB (14 s for 388 MB here). A converter leaves one core
idle, so the convert stage starts on each file as soon as it exists, and the measure stage only collects what is
already done, instead of deflating every file after the last conversion, when nothing else runs.
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from modelpack.files.output import zipped_size


class ZippedSizes:
    """zipped_size() of files started early; one thread, since converters use the other core."""

    def __init__(self) -> None:
        self._pool: ThreadPoolExecutor | None = None
        self._started: dict[Path, Future] = {}

    def start(self, path: Path | str) -> None:
        """Begin deflating `path` (a file or a folder) unless it was begun already."""
        path = Path(path)
        if path in self._started or not path.exists():
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zipped-size")
        self._started[path] = self._pool.submit(zipped_size, path)

    def take(self, path: Path | str) -> int | None:
        """The zipped size of `path` if it was started (waiting for it to finish), else None."""
        future = self._started.pop(Path(path), None)
        return None if future is None else future.result()

    def close(self) -> None:
        """Drop what nobody collected, waiting for a file being deflated (probes must not share the machine)."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        self._started.clear()
