"""How `modelpack publish` tells the user what it did (or, in a dry run, would do)."""

from __future__ import annotations

from modelpack.publish.base import Echo, PublishResult


def print_result(result: PublishResult, dry_run: bool, echo: Echo) -> None:
    if dry_run:
        for note in result.notes:
            echo(f"note: {note}")
        echo(f"dry run: no call was made; the calls above publish the {result.target} target.")
        return
    for key, value in result.resources.items():
        echo(f"{key}: {value}")
    for note in result.notes:
        echo(f"note: {note}")
    if result.target == "lambda":
        echo(f"endpoint: {result.endpoint}" if result.endpoint else "endpoint: none (the build has no function URL)")


def print_deleted(result: PublishResult, dry_run: bool, echo: Echo) -> None:
    for what, outcome in result.resources.items():
        echo(f"{outcome}: {what}")
    for note in result.notes:
        echo(f"note: {note}")
    echo("dry run: no call was made; the calls above remove what the publish record lists." if dry_run else
         "removed everything the publish record listed; the record is gone too.")
