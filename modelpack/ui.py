"""Progress output: a live status line on a terminal, plain timestamped log lines in CI logs."""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator

from rich.console import Console


class Reporter:
    """Tells the user what the build is doing. Quiet reporters print nothing (library use, tests)."""

    def __init__(self, console: Console | None = None, quiet: bool = False):
        self.console = console or Console(file=sys.stderr, highlight=False)
        self.quiet = quiet
        self._t0 = time.perf_counter()

    def info(self, message: str) -> None:
        if not self.quiet:
            self.console.print(f"[dim]{self._stamp()}[/] {message}", markup=True)

    def _stamp(self) -> str:
        return f"[{time.perf_counter() - self._t0:6.1f}s]"

    @contextlib.contextmanager
    def step(self, message: str) -> Iterator[None]:
        """Show a step while it runs; report how long it took."""
        if self.quiet:
            yield
            return
        t = time.perf_counter()
        if self.console.is_terminal:
            with self.console.status(message):
                yield
        else:
            self.info(f"{message} ...")
            yield
        self.info(f"{message}: done in {time.perf_counter() - t:.1f} s")

    @contextlib.contextmanager
    def stage(self, index: int, total: int, name: str, purpose: str) -> Iterator[None]:
        """One stage of the build (1-based `index` of `total`); `purpose` is what the user reads."""
        from modelpack import gha  # a log group per stage in GitHub Actions

        with gha.group(f"[{index}/{total}] {purpose}") if not self.quiet else contextlib.nullcontext(), \
                self.step(f"[{index}/{total}] {purpose}"):
            yield
