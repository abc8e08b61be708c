"""`modelpack serve`: a built package behind a local HTTP server."""

from __future__ import annotations

from pathlib import Path

import click

from modelpack.cli.common import handle_errors
from modelpack.cli.help import examples


@click.command(epilog=examples(
    "modelpack serve dist/digits                    # http://127.0.0.1:8080",
    "modelpack serve dist/digits --target azure --port 7071",
    "curl -d @dist/digits/events/predict.json -H 'content-type: application/json' http://127.0.0.1:8080/predict"))
@click.argument("dist", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--target", type=click.Choice(["lambda", "azure"]), default="lambda", show_default=True,
              help="Which built package answers the requests (lambda: the function, or a split model's "
                   "chaining function when no lambda-function was built).")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="Port to listen on (0: any free port).")
@click.option("--function-key", metavar="KEY", help="Azure apps with auth_level function or admin: the key requests "
              "must send (x-functions-key header or code parameter); default: a new random key, printed.")
@handle_errors
def serve(dist: Path, target: str, host: str, port: int, function_key: str | None) -> None:
    """Serve DIST's built package over HTTP on this machine (TF Serving JSON, .npy/.npz, images, the Open
    Inference Protocol under /v2/), its handler running in a child process that sees only the package's files
    and is restarted if it dies. The banner lists every route with a curl line; GET / describes them as JSON.

    \b
    Example:
      modelpack serve dist/digits
      curl -s localhost:8080/predict -H 'content-type: application/json' -d @dist/digits/events/predict.json
    """
    from modelpack.local.server import serve as run

    run(dist, target, host, port, echo=click.echo, warn=lambda line: click.echo(line, err=True),
        function_key=function_key)
