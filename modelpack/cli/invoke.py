"""`modelpack invoke`: run a build's artifacts as the platform would and send events to them."""

from __future__ import annotations

from pathlib import Path

import click

from modelpack.cli.common import handle_errors, settings
from modelpack.cli.help import examples
from modelpack.files.jsonio import dumps_strict


@click.command(epilog=examples(
    "modelpack invoke dist/digits                                   # the package's own events/predict.json",
    "modelpack invoke dist/digits -e dist/digits/events/oip.json     # POST /v2/models/digits/infer",
    "modelpack invoke dist/digits -e dist/digits/events/predict.npy  # sent as application/x-npy",
    "modelpack invoke dist/digits --path /v2/health/ready --method GET",
    "modelpack invoke dist/digits --target azure -e events.json --json | jq .http_status"))
@click.argument("dist", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-e", "--event", "events", multiple=True,
              type=click.Path(exists=True, dir_okay=False, allow_dash=True),
              help="JSON event (Azure: the request body), a .npy/.npz/PNG/JPEG body, or - for standard input (one "
                   "JSON document, or one event per line); repeat to send several in one process "
                   "[DIST/events/predict.json].")
@click.option("--path", help="Send each event's body as an HTTP request to this path, e.g. /v2/models/NAME/infer.")
@click.option("--method", type=click.Choice(["POST", "GET"], case_sensitive=False),
              help="HTTP method of the request (with --path; GET sends no body) [POST].")
@click.option("--target", "platform", type=click.Choice(["lambda", "azure", "lambda-split"]), default="lambda",
              show_default=True, help="Which built artifact to run.")
@click.option("--json", is_flag=True,
              help="One JSON object per event and line: event, status, http_status, ms, cold, response.")
@click.option("--logs", is_flag=True, help="Show the handler's log lines on stderr.")
@handle_errors
def invoke(dist: Path, events: tuple[str, ...], path: str | None, method: str | None, platform: str, json: bool,
           logs: bool) -> None:
    """Run DIST's artifacts as the platform would and send events to them.

    lambda: the layer and function under the Lambda Runtime Interface Emulator with awslambdaric.
    azure: the function app in a clean interpreter, called through azure.functions.HttpRequest.
    lambda-split: a split model's chaining function, or its part functions driven by the state machine.
    Every response is printed with the status the handler answered; the exit code is 1 when the handler
    raised or answered 4xx/5xx on any event. The first run downloads the emulator and runtime client once
    and says so.
    """
    from modelpack.errors import HandlerFailedError, HandlerRaisedError
    from modelpack.local.invoke import failure_text, run
    from modelpack.local.invoke_events import Routing, default_events, read_events

    routing = Routing(_model_name(dist), path, method.upper() if method else None)
    payloads = read_events(events, routing=routing) if events else default_events(dist, routing)
    quiet = settings().quiet
    raised, failed = [], []
    for answer in run(dist, payloads, platform, announce=lambda m: None if quiet else click.echo(m, err=True)):
        if logs:
            for line in answer.logs:
                click.echo(f"log: {line}", err=True)
        if json:
            click.echo(dumps_strict(answer.to_json(), sort_keys=True))
        else:
            status = "raised" if answer.http_status is None else f"HTTP {answer.http_status}"
            timing = "" if answer.ms is None else f", {answer.ms:.1f} ms"
            sent = f" (sent as {answer.sent_as})" if answer.sent_as else ""
            click.echo(f"# {answer.event}: {status}{timing}{' (cold)' if answer.cold else ''}{sent}")
            # A request invoke wrapped itself is shown as the body the handler answered, not the Lambda envelope.
            click.echo(dumps_strict(answer.body if answer.sent_as else answer.response, indent=1))
        if answer.status == "raised":
            raised.append(failure_text(answer))
        elif answer.status == "error":
            failed.append(failure_text(answer))
    if raised:
        raise HandlerRaisedError(f"the handler raised on {len(raised)} of {len(payloads)} event(s): "
                                 + "; ".join(raised + failed))
    if failed:
        raise HandlerFailedError(f"the handler answered an error status to {len(failed)} of {len(payloads)} "
                                 "event(s): " + "; ".join(failed))


def _model_name(dist: Path) -> str:
    """The build's name, which the Open Inference Protocol's paths carry."""
    import json as jsonlib

    try:
        return str(jsonlib.loads((dist / "report.json").read_text())["name"])
    except (OSError, ValueError, KeyError, TypeError):
        return dist.name
