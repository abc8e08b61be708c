"""Progress output: a live progress bar on a terminal, plain timestamped log lines in CI logs and pipes.

On a terminal a build shows one rich progress line: the current stage as `[N/M] purpose`, the step running
inside it, a bar over the stages, time elapsed and an estimate of the time left (from the stages done so
far). Anywhere else every stage and step is a timestamped line, which is what a CI log wants. `-q` prints
nothing, `-v` prints the timestamped lines on a terminal too.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

COLOR_CHOICES = ("auto", "always", "never")
BAR_WIDTH = 10
# spinner, bar, "10/11", elapsed, "left ~", remaining and the spaces between the eight columns
FIXED_WIDTH = 1 + BAR_WIDTH + 5 + 7 + 6 + 7 + 7
MIN_TEXT = 16


def escape(text: str) -> str:
    from rich.markup import escape as rich_escape

    return rich_escape(text)


def make_console(color: str = "auto", file=None) -> Console:
    """A console for stderr (or `file`) honouring --color and NO_COLOR (https://no-color.org)."""
    from rich.console import Console
    if color == "auto" and os.environ.get("NO_COLOR"):
        color = "never"
    if color == "always":
        return Console(file=file or sys.stderr, highlight=False, force_terminal=True, color_system="standard",
                       no_color=False)
    if color == "never":
        return Console(file=file or sys.stderr, highlight=False, no_color=True, color_system=None)
    return Console(file=file or sys.stderr, highlight=False)


class Reporter:
    """Tells the user what the build is doing. Quiet reporters print nothing (library use, tests)."""

    def __init__(self, console: Console | None = None, quiet: bool = False, verbose: bool = False):
        self.console = console or make_console()
        self.quiet = quiet
        self.verbose = verbose
        self._t0 = time.perf_counter()
        self._progress = None  # rich.progress.Progress while stages run on a terminal
        self._task = None

    @property
    def live(self) -> bool:
        """Whether progress is drawn as a live line (a terminal, not -q, not -v)."""
        return self.console.is_terminal and not self.quiet and not self.verbose

    def info(self, message: str) -> None:
        if self.quiet:
            return
        console = self._progress.console if self._progress is not None else self.console
        console.print(f"[dim]{self._stamp()}[/] {escape(message)}", markup=True, soft_wrap=True)

    def warn(self, message: str) -> None:
        """Something the numbers of this build depend on that the user must know; printed unless -q."""
        if self.quiet:
            return
        console = self._progress.console if self._progress is not None else self.console
        console.print(f"[dim]{self._stamp()}[/] [bold yellow]warning:[/] {escape(message)}", markup=True,
                      soft_wrap=True)

    def debug(self, message: str) -> None:
        """Detail only -v users want (what was reused, where files went)."""
        if self.verbose:
            self.info(message)

    def _stamp(self) -> str:
        return f"[{time.perf_counter() - self._t0:6.1f}s]"

    @contextlib.contextmanager
    def step(self, message: str) -> Iterator[None]:
        """Show a step while it runs; report how long it took."""
        if self.quiet:
            yield
            return
        t = time.perf_counter()
        if self._progress is not None:  # inside a stage: the step is the progress line's second part
            self._progress.update(self._task, step=escape(message))
            self._progress.refresh()
            yield
            self._progress.update(self._task, step="")
            return
        if self.live:  # a step outside any stage: spinner and elapsed time, so a long one visibly runs
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                          console=self.console, transient=True) as progress:
                progress.add_task(escape(message), total=None)
                progress.refresh()
                yield
        else:
            self.info(f"{message} ...")
            yield
        self.info(f"{message}: done in {time.perf_counter() - t:.1f} s")

    def step_status(self, message: str) -> None:
        """Replace the running step's text on the live progress line (what a long step says it is at)."""
        if self._progress is not None and not self.quiet:
            self._progress.update(self._task, step=escape(message))

    @contextlib.contextmanager
    def stage(self, index: int, total: int, name: str, purpose: str) -> Iterator[None]:
        """One stage of the build (1-based `index` of `total`); `purpose` is what the user reads."""
        label = f"[{index}/{total}] {purpose}"
        if not self.live:
            from modelpack.console import github  # a log group per stage in GitHub Actions

            with github.group(label) if not self.quiet else contextlib.nullcontext(), self.step(label):
                yield
            return
        progress = self._start_progress(total)
        progress.update(self._task, description=escape(label), completed=index - 1)
        t = time.perf_counter()
        try:
            yield
        except BaseException:
            self._stop_progress()
            raise
        progress.console.print(f"[dim]{self._stamp()}[/] {escape(label)}: done in {time.perf_counter() - t:.1f} s",
                               soft_wrap=True)
        progress.update(self._task, completed=index)
        if index >= total:
            self._stop_progress()

    def _start_progress(self, total: int):
        if self._progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.table import Column

            # Counts and times keep their width; the stage and step texts share the rest of the terminal and end
            # in an ellipsis, so a 100-column terminal shows "6/11 0:00:12 left ~ 0:00:20" whole, never "10/… 0:0…".
            room = max(MIN_TEXT, self.console.width - FIXED_WIDTH)
            whole = lambda: Column(no_wrap=True)  # noqa: E731
            cut = lambda width: Column(no_wrap=True, overflow="ellipsis", max_width=width)  # noqa: E731
            self._progress = Progress(SpinnerColumn(table_column=whole()),
                                      TextColumn("{task.description}", table_column=cut(room * 3 // 5)),
                                      TextColumn("[dim]{task.fields[step]}", table_column=cut(room - room * 3 // 5)),
                                      BarColumn(bar_width=BAR_WIDTH, table_column=whole()),
                                      MofNCompleteColumn(table_column=whole()), TimeElapsedColumn(table_column=whole()),
                                      TextColumn("left ~", table_column=whole()),
                                      TimeRemainingColumn(table_column=whole()),
                                      console=self.console, transient=True)
            self._task = self._progress.add_task("", total=total, step="")
            self._progress.start()
        return self._progress

    def _stop_progress(self) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
