"""`modelpack invoke`: read the events, send them through the built artifact, and describe each answer.

One `Answer` per event: whether the handler answered or raised, how long it took, whether it was the cold
(first) request of the process, the response, and the log lines written meanwhile. The CLI prints answers
for people or as JSON lines (`--json`, one object per event, for jq).
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from modelpack.errors import UsageError


@dataclass
class Event:
    name: str  # file name, or "stdin" / "stdin:<line>"
    payload: object


@dataclass
class Answer:
    event: str
    status: str  # "ok", or "raised" when the handler raised (the runtime's error object is the response)
    ms: float | None  # round trip through the emulator / app, None when not measured
    cold: bool  # the first request this process served: it loads the model
    response: object
    http_status: int | None = None  # Azure only: the HTTP status the app answered
    logs: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        d = asdict(self)
        del d["logs"]
        return d


def read_events(paths: tuple[str, ...], stdin=None) -> list[Event]:
    """Every --event: a JSON file, or `-` for standard input (one JSON document, or one per line)."""
    events: list[Event] = []
    for path in paths:
        if path == "-":
            events += _stdin_events((stdin or sys.stdin).read())
            continue
        try:
            events.append(Event(Path(path).name, json.loads(Path(path).read_text())))
        except ValueError as exc:
            raise UsageError(f"{path}: not valid JSON ({exc}).") from None
    return events


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


def downloads(dist: Path, platform: str) -> list[str]:
    """What running this artifact will download first (nothing once the tools are cached)."""
    from modelpack.local.tools import tools_to_fetch

    if platform == "azure":
        return []
    try:
        report = json.loads((dist / "report.json").read_text())
    except (OSError, ValueError):
        return []  # the runner names the problem
    layer = next((a for a in report.get("artifacts", []) if a.get("target") == "lambda-layer"), None)
    details = (layer or {}).get("details") or {}
    if not details.get("python") or not details.get("arch"):
        return []
    return tools_to_fetch(details["python"], details["arch"])


def run(dist: Path, events: list[Event], platform: str, announce: Callable[[str], None]) -> Iterator[Answer]:
    """Send `events` in order to one process of the artifact; yield each answer as it comes."""
    with tempfile.TemporaryDirectory(prefix="modelpack-invoke-") as tmp:
        if platform == "azure":
            yield from _azure(dist, Path(tmp), events)
        else:
            yield from _lambda(dist, Path(tmp), events, platform, announce)


def _lambda(dist: Path, tmp: Path, events: list[Event], platform: str,
            announce: Callable[[str], None]) -> Iterator[Answer]:
    from modelpack.local.lambda_emulator import LambdaEmulator, raised
    from modelpack.local.split_chain import SplitChain

    runner = (SplitChain if platform == "lambda-split" else LambdaEmulator)(dist, tmp)  # checks the artifact
    for item in downloads(dist, platform):
        announce(f"first run: downloading {item}")
    with runner as emu:
        for i, event in enumerate(events):
            response, ms = emu.invoke(event.payload)
            logs = _log_lines(emu)
            yield Answer(event.name, "raised" if raised(response) else "ok", round(ms, 3), _cold(logs, i == 0),
                         response, logs=logs)


def _log_lines(emu) -> list[str]:
    if hasattr(emu, "new_log_lines"):
        return emu.new_log_lines()
    return [line for part in emu.emulators.values() for line in part.new_log_lines(0.02)]


def _cold(logs: list[str], first: bool) -> bool:
    """The handler's own word (its metric log line has `cold`), else whether this was the first request."""
    for line in logs:
        if line.startswith("{"):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and isinstance(entry.get("cold"), bool):
                return entry["cold"]
    return first


def _azure(dist: Path, tmp: Path, events: list[Event]) -> Iterator[Answer]:
    from modelpack.local.azure_app import AzureApp

    app = AzureApp(dist, tmp)
    out = app.call([{"route": "predict", "body": e.payload} for e in events])
    logs = [line for line in app.stderr.splitlines() if line.strip()]
    for i, (event, result) in enumerate(zip(events, out["results"])):
        ms = result.get("ms")
        yield Answer(event.name, "raised" if result.get("raised") else "ok", None if ms is None else round(ms, 3),
                     i == 0, result["body"], http_status=result["status"], logs=logs if i == len(events) - 1 else [])


def failure_text(answer: Answer) -> str:
    body = answer.response if isinstance(answer.response, dict) else {}
    return f"{answer.event}: {body.get('errorType', 'error')}: {body.get('errorMessage', '')}"[:300]
