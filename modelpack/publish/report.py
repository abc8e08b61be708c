"""How `modelpack publish` tells the user what it did."""

from __future__ import annotations

from modelpack.publish.base import Echo, PublishResult


def print_result(result: PublishResult, dry_run: bool, echo: Echo) -> None:
    if dry_run:
        echo(f"dry run: no call was made; the calls above publish the {result.target} target.")
        return
    for key, value in result.resources.items():
        echo(f"{key}: {value}")
    for note in result.notes:
        echo(f"note: {note}")
    if result.target == "lambda":
        echo(f"endpoint: {result.endpoint}" if result.endpoint else "endpoint: none (the build has no function URL)")
