"""How the commands' help reads: whole one-sentence summaries in command lists, and examples under each command."""

from __future__ import annotations

import click


class Commands(click.Group):
    """A group whose command list shows each command's first sentence whole, wrapped rather than cut off."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is not None and not command.hidden:
                rows.append((name, command.get_short_help_str(limit=10_000)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def examples(*lines: str) -> str:
    """An epilog of example command lines, printed as written (`\\b` keeps click from rewrapping them)."""
    return "\b\nExamples:\n" + "\n".join(f"  {line}" for line in lines)
