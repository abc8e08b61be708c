"""Peak resident memory of the whole build: this process and every process it started, per stage.

A thread samples the process tree from /proc (resident set sizes summed, pages shared between processes counted
in each, so the figure errs high, never low) and keeps each stage's peak. A child too short-lived to be sampled
still counts: the kernel's largest-finished-child figure (getrusage) is folded into the stage it finished in.
On a machine without /proc the record stays empty rather than wrong.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

PROC = Path("/proc")
MIB = 1024 * 1024


def _children_of() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.scandir(PROC):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
            ppid = int(stat[stat.rindex(b")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile
        kids.setdefault(ppid, []).append(int(entry.name))
    return kids


def _rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def tree_rss_bytes(root: int | None = None) -> int:
    """Resident bytes of `root` (this process) and all its descendants right now."""
    kids = _children_of()
    todo, total = [root or os.getpid()], 0
    while todo:
        pid = todo.pop()
        total += _rss_bytes(pid)
        todo.extend(kids.get(pid, ()))
    return total


def _finished_child_peak() -> int:
    """The largest resident size any finished child reached (Linux reports it in KiB)."""
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


class TreeMemory:
    """Samples the process tree every `interval_s` while running; `stage(name)` attributes what it sees."""

    def __init__(self, interval_s: float = 0.2):
        self.interval_s = interval_s
        self.enabled = PROC.joinpath("self", "statm").exists()
        self.peaks: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self._current: str | None = None
        self._started = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _note(self, value: int) -> None:
        with self._lock:
            if self._current is not None:
                self.peaks[self._current] = max(self.peaks.get(self._current, 0), value)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._note(tree_rss_bytes())

    @contextmanager
    def running(self) -> Iterator[TreeMemory]:
        if self.enabled:
            self._thread = threading.Thread(target=self._run, name="modelpack-memory", daemon=True)
            self._thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(5)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        before = _finished_child_peak() if self.enabled else 0
        with self._lock:
            self._current = name
        self._started = t = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(time.perf_counter() - t, 3)
            if self.enabled:
                self._note(tree_rss_bytes())
                after = _finished_child_peak()
                if after > before:  # a child that finished during this stage peaked at `after`
                    self._note(after + _rss_bytes(os.getpid()))

    def record(self) -> dict:
        """report.json's `build` section: per-stage peak tree RSS (MiB) and wall time (s); a stage still running
        (the package stage writes the report) counts up to now."""
        seconds = dict(self.seconds)
        if self._current is not None and self._current not in seconds:
            seconds[self._current] = round(time.perf_counter() - self._started, 3)
            if self.enabled:  # the running stage may be younger than one sampling interval
                self._note(tree_rss_bytes())
        return {"peak_rss_mb": {k: round(v / MIB) for k, v in self.peaks.items()},
                "peak_rss_mb_max": round(max(self.peaks.values(), default=0) / MIB) if self.peaks else None,
                "seconds": seconds}
