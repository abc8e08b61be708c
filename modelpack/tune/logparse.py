"""Lambda log lines as typed records: the platform's REPORT line and the handler's Embedded Metric Format line."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# REPORT RequestId: <id>\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 1024 MB\t
# Max Memory Used: 80 MB\tInit Duration: 250.10 ms   (Init Duration only after a cold start)
_FIELD = re.compile(r"(Duration|Billed Duration|Memory Size|Max Memory Used|Init Duration): ([0-9.]+) (ms|MB)")
_STATUS = re.compile(r"Status: (\w+)")


@dataclass(frozen=True)
class Invocation:
    """One REPORT line: what Lambda measured and billed for one invocation."""

    stream: str
    end_ms: int
    duration_ms: float
    billed_ms: float
    memory_size_mb: int
    max_memory_mb: int
    init_ms: float | None
    status: str  # success, timeout, error (from the optional `Status:` field)

    @property
    def start_ms(self) -> float:
        return self.end_ms - self.duration_ms


@dataclass(frozen=True)
class HandlerLine:
    """One invocation line of a modelpack handler (also an EMF record)."""

    stream: str
    time_ms: int  # when the line was logged (the log event's timestamp)
    kind: str  # http, direct, warmer, invalid
    status: int
    cold: bool
    model_load_ms: float | None
    inference_ms: float | None


def parse_report(message: str, stream: str, time_ms: int) -> Invocation | None:
    if not message.startswith("REPORT "):
        return None
    fields = {name: float(value) for name, value, _ in _FIELD.findall(message)}
    if "Duration" not in fields or "Memory Size" not in fields:
        return None
    status = _STATUS.search(message)
    return Invocation(stream, int(time_ms), fields["Duration"], fields.get("Billed Duration", fields["Duration"]),
                      int(fields["Memory Size"]), int(fields.get("Max Memory Used", 0)), fields.get("Init Duration"),
                      status.group(1).lower() if status else "success")


def parse_handler(message: str, stream: str, time_ms: int) -> HandlerLine | None:
    text = message.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return None
    try:
        record = json.loads(text)
    except ValueError:
        return None
    if not isinstance(record, dict) or "ColdStart" not in record:
        return None
    return HandlerLine(stream, int(time_ms), str(record.get("event", "direct")), int(record.get("status", 200)),
                       bool(record["ColdStart"]), _num(record.get("ModelLoadMs")), _num(record.get("InferenceMs")))


def _num(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
