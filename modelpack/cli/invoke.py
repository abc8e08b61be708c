"""`modelpack invoke`: run a build's artifacts as the platform would and send events to them."""

from __future__ import annotations

from pathlib import Path

import click

from modelpack.cli.common import handle_errors, settings
from modelpack.files.jsonio import dumps_strict


@click.command()
@click.argument("dist", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--event", "events", multiple=True, required=True,
              type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="JSON event file (Azure: the request body), or - for standard input (one JSON document, or "
                   "one event per line); repeat to send several in one process.")
@click.option("--target", "platform", type=click.Choice(["lambda", "azure", "lambda-split"]), default="lambda",
              show_default=True, help="Which built artifact to run.")
@click.option("--json", is_flag=True,
              help="One JSON object per event and line: event, status, ms, cold, response (http_status on Azure).")
@click.option("--logs", is_flag=True, help="Show the handler's log lines on stderr.")
@handle_errors
def invoke(dist: Path, events: tuple[str, ...], platform: str, json: bool, logs: bool) -> None:
    """Run DIST's artifacts as the platform would and send EVENT(s).

    lambda: the layer and function under the Lambda Runtime Interface Emulator with awslambdaric.
    azure: the function app in a clean interpreter, called through azure.functions.HttpRequest.
    lambda-split: a split model's chaining function, or its part functions driven by the state machine.
    Every response is printed; the exit code is 1 when the handler raised on any event. The first run
    downloads the emulator and runtime client once and says so.
    """
    from modelpack.errors import HandlerRaisedError
    from modelpack.local.invoke import failure_text, read_events, run

    payloads = read_events(events)
    quiet = settings().quiet
    failures = []
    for answer in run(dist, payloads, platform, announce=lambda m: None if quiet else click.echo(m, err=True)):
        if logs:
            for line in answer.logs:
                click.echo(f"log: {line}", err=True)
        if json:
            click.echo(dumps_strict(answer.to_json(), sort_keys=True))
        else:
            status = f"HTTP {answer.http_status}" if answer.http_status is not None else answer.status
            timing = "" if answer.ms is None else f", {answer.ms:.1f} ms"
            click.echo(f"# {answer.event}: {status}{timing}{' (cold)' if answer.cold else ''}")
            click.echo(dumps_strict(answer.response, indent=1))
        if answer.status == "raised":
            failures.append(failure_text(answer))
    if failures:
        raise HandlerRaisedError(f"the handler raised on {len(failures)} of {len(payloads)} event(s): "
                                 + "; ".join(failures))
