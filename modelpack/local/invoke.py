"""`modelpack invoke`: read the events, send them through the built artifact, and describe each answer.

One `Answer` per event: whether the handler answered or raised, how long it took, whether it was the cold
(first) request of the process, the response, and the log lines written meanwhile. The CLI prints answers
for people or as JSON lines (`--json`, one object per event, for jq).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from modelpack.local.invoke_events import Event


@dataclass
class Answer:
    event: str
    status: str  # "ok"; "error" when the handler answered 4xx/5xx; "raised" when it raised (the runtime's error)
    ms: float | None  # round trip through the emulator / app, None when not measured
    cold: bool  # the first request this process served: it loads the model
    response: object
    http_status: int | None = None  # the status the handler answered (a direct event's `statusCode`, else 200)
    sent_as: str | None = None  # how invoke turned the event into an HTTP request, when it did
    logs: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        d = asdict(self)
        del d["logs"]
        return d

    @property
    def body(self) -> object:
        """What the handler answered: the decoded body of an HTTP response, else the response itself."""
        r = self.response
        if isinstance(r, dict) and "statusCode" in r and isinstance(r.get("body"), str) and not r.get("isBase64Encoded"):
            try:
                return json.loads(r["body"])
            except ValueError:
                return r["body"]
        return r


def _status(http_status: int | None, raised_: bool) -> str:
    if raised_:
        return "raised"
    return "error" if http_status is not None and http_status >= 400 else "ok"


def _lambda_status(event: Event, response: object) -> int | None:
    """The handler's status: an HTTP response's statusCode; a direct event's answer carries one only on errors."""
    if not isinstance(response, dict):
        return None
    code = response.get("statusCode", None if event.request is not None else 200)
    return code if isinstance(code, int) and not isinstance(code, bool) else None


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
            response, ms = emu.invoke(event.lambda_event())
            logs = _log_lines(emu)
            failed = bool(raised(response))
            code = None if failed else _lambda_status(event, response)
            yield Answer(event.name, _status(code, failed), round(ms, 3), _cold(logs, i == 0), response, code,
                         event.why or None, logs=logs)


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
    out = app.call([e.azure_call() for e in events])
    logs = [line for line in app.stderr.splitlines() if line.strip()]
    for i, (event, result) in enumerate(zip(events, out["results"])):
        ms = result.get("ms")
        yield Answer(event.name, _status(result["status"], bool(result.get("raised"))),
                     None if ms is None else round(ms, 3), i == 0, result["body"], http_status=result["status"],
                     sent_as=event.why or None, logs=logs if i == len(events) - 1 else [])


def failure_text(answer: Answer) -> str:
    """One line naming the event and what went wrong: the raised error, or the status and the error message."""
    body = answer.body if isinstance(answer.body, dict) else {}
    if answer.status == "raised":
        return f"{answer.event}: {body.get('errorType', 'error')}: {body.get('errorMessage', '')}"[:300]
    return f"{answer.event}: HTTP {answer.http_status}: {body.get('error', answer.body)}"[:300]
