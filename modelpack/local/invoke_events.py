"""What `modelpack invoke` sends: events read from files or standard input, as the platform would deliver them.

An event is either a direct Lambda event (any JSON document; on Azure, the body of a POST to the predict
route) or an HTTP request: a method, a path, a content type and a body. Requests come from binary files
(.npy, .npz, PNG, JPEG, recognised by their first bytes), from Open Inference Protocol bodies (sent to
`/v2/models/<name>/infer`, as the shipped events/oip.json is), or from `--path`/`--method`. On Lambda a
request travels as a Function URL event (binary bodies base64-encoded, as Lambda delivers them).
"""

from __future__ import annotations

import base64
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from modelpack.errors import UsageError

# first bytes -> media type of the binary request bodies the handlers take
MAGIC = ((b"\x93NUMPY", "application/x-npy"), (b"PK\x03\x04", "application/x-npz"),
         (b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"))
SAMPLE = Path("events") / "predict.json"  # what every build writes; sent when no --event is given


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    content_type: str
    body: bytes


@dataclass
class Event:
    name: str  # file name, or "stdin" / "stdin:<line>"
    payload: object = None  # a direct event (JSON), when `request` is None
    request: HttpRequest | None = None
    why: str = ""  # how the event became an HTTP request, shown to the user

    def lambda_event(self) -> object:
        """The event as Lambda hands it to the handler."""
        if self.request is None:
            return self.payload
        r = self.request
        try:
            text, encoded = r.body.decode("utf-8"), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(r.body).decode("ascii"), True
        return {"version": "2.0", "routeKey": "$default", "rawPath": r.path, "rawQueryString": "",
                "headers": {"content-type": r.content_type, "accept": "application/json"},
                "requestContext": {"http": {"method": r.method, "path": r.path}},
                "isBase64Encoded": encoded, "body": text}

    def azure_call(self) -> dict:
        """The request the local Azure app routes as the Functions host does (azure_app.ROUTING): a direct event,
        or a request without --path (path "/"), goes to the app's own route, any other path must match a route."""
        r = self.request or HttpRequest("POST", "/", "application/json", json.dumps(self.payload).encode())
        return {"path": None if r.path == "/" else r.path, "method": r.method,
                "headers": {"content-type": r.content_type}, "body_b64": base64.b64encode(r.body).decode("ascii")}


@dataclass(frozen=True)
class Routing:
    """--path and --method, and the model's name for Open Inference Protocol bodies."""

    model: str
    path: str | None = None
    method: str | None = None


def read_events(paths: tuple[str, ...], stdin=None, routing: Routing | None = None) -> list[Event]:
    """Every --event: a JSON or binary file, or `-` for standard input (one JSON document, or one per line)."""
    routing = routing or Routing("model")
    events: list[Event] = []
    for path in paths:
        if path == "-":
            events += [_route(e, routing) for e in _stdin_events((stdin or sys.stdin).read())]
            continue
        events.append(_route(_file_event(Path(path)), routing))
    return events


def default_events(dist: Path, routing: Routing) -> list[Event]:
    """The package's own sample request, or for a GET with --path, one request without a body."""
    if routing.method == "GET":
        return [_route(Event("(no body)", request=HttpRequest("GET", "/", "application/json", b"")), routing)]
    sample = dist / SAMPLE
    if not sample.is_file():
        raise UsageError(f"{dist} has no {SAMPLE} to send; pass an event with -e EVENT (a JSON event, or a .npy, "
                         ".npz or image file).")
    return [_route(_file_event(sample), routing)]


def _file_event(path: Path) -> Event:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the event ({exc.strerror}).") from None
    for magic, media in MAGIC:
        if raw.startswith(magic):
            return Event(path.name, request=HttpRequest("POST", "/", media, raw), why=f"a {media} body")
    try:
        return Event(path.name, json.loads(raw.decode("utf-8")))
    except (UnicodeDecodeError, ValueError) as exc:
        raise UsageError(
            f"{path}: not valid JSON ({exc}), nor a binary request the handlers take (.npy, .npz, PNG or JPEG, "
            "recognised by their first bytes). Send a JSON event (events/predict.json of the build is one), or a "
            "binary tensor or image file: invoke sends it with its content type, as curl --data-binary would."
        ) from None


def _is_oip(payload: object) -> bool:
    """An Open Inference Protocol request body: named inputs, each with a datatype and a shape."""
    inputs = payload.get("inputs") if isinstance(payload, dict) else None
    return bool(inputs) and isinstance(inputs, list) and all(
        isinstance(i, dict) and {"name", "datatype", "shape"} <= set(i) for i in inputs)


def _is_http_event(payload: object) -> bool:
    return isinstance(payload, dict) and any(k in payload for k in ("requestContext", "httpMethod", "rawPath"))


def _route(event: Event, routing: Routing) -> Event:
    """Apply --path/--method, or give an Open Inference Protocol body its path."""
    if event.request is None and routing.path is None and _is_oip(event.payload):
        path = f"/v2/models/{routing.model}/infer"
        body = json.dumps(event.payload).encode()
        return Event(event.name, request=HttpRequest("POST", path, "application/json", body),
                     why=f"an Open Inference Protocol body, so POST {path}")
    if routing.path is None and routing.method is None:
        return event
    if event.request is None and _is_http_event(event.payload):
        raise UsageError(f"{event.name} is already an HTTP event (it names its own path and method); send it "
                         "without --path and --method.")
    base = event.request or HttpRequest("POST", "/", "application/json", json.dumps(event.payload).encode())
    method = routing.method or base.method
    path = routing.path if routing.path is not None else base.path
    request = HttpRequest(method, path if path.startswith("/") else "/" + path, base.content_type,
                          b"" if method == "GET" else base.body)
    return Event(event.name, request=request, why=f"{request.method} {request.path}")


def _stdin_events(text: str) -> list[Event]:
    try:
        return [Event("stdin", json.loads(text))]
    except ValueError:
        pass
    events = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            events.append(Event(f"stdin:{number}", json.loads(line)))
        except ValueError as exc:
            raise UsageError(f"standard input, line {number}: not valid JSON ({exc}); --event - reads one JSON "
                             "document or one JSON event per line.") from None
    if not events:
        raise UsageError("standard input is empty; --event - reads one JSON document or one JSON event per line.")
    return events
