"""Rich tables for the terminal: the same rows as report.md."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from modelpack.report.build_report import BuildReport
from modelpack.report.markdown import task_sentence
from modelpack.report.rows import failure_rows, headers, variant_rows


def print_variants(report: BuildReport, console: Console | None = None) -> None:
    doc = report.to_json()
    columns = headers(doc)
    table = Table(title=f"modelpack bench: {report.name}")
    for i, h in enumerate(columns):
        table.add_column(h, justify="left" if i in (0, len(columns) - 1) else "right")
    for row in variant_rows(doc):
        table.add_row(*row)
    # Full width in CI logs and pipes, where rich would otherwise cut columns at 80 characters.
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    console.print(table)
    if doc.get("task"):
        console.print(task_sentence(doc["task"]).replace("**", ""), markup=False)
    for name, error in failure_rows(doc):
        console.print(f"{name} failed: {error}", markup=False)
    console.print(f"selected: {report.selected or 'none'} ({report.selection_reason})")
