"""The tune result as a table: one block per setting, its evidence underneath."""

from __future__ import annotations

import sys

from rich.console import Console
from rich.table import Table

from modelpack.tune.recommend import TuneResult


def show(result: TuneResult) -> None:
    console = Console(width=None if sys.stdout.isatty() else 160)
    console.print(f"{result.function}: {result.requests} requests from {result.source}")
    table = Table(show_lines=True)
    for column in ("setting", "now", "recommended", "why / evidence"):
        table.add_column(column)
    for r in result.recommendations:
        evidence = "\n".join(f"• {e.name}: {e.value}{' ' + e.unit if e.unit else ''} ({e.source})" for e in r.evidence)
        marker = "" if r.write else " (not written)"
        table.add_row(r.setting, _show(r.current), f"{_show(r.recommended)}{marker}", f"{r.reason}\n{evidence}")
    console.print(table)
    for note in result.notes:
        console.print(f"note: {note}")


def _show(value) -> str:
    return "none" if value is None else str(value)
