"""Lambda log lines as typed records: the platform's REPORT line and the handler's Embedded Metric Format line.

Every value is checked against what Lambda can report (a duration within the 15-minute limit, a memory size
Lambda offers, a status code), so a damaged or hostile line is refused (`BadLine`) instead of skewing the
analysis; the caller skips and counts it.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

from modelpack import limits

# REPORT RequestId: <id>\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 1024 MB\t
# Max Memory Used: 80 MB\tInit Duration: 250.10 ms   (Init Duration only after a cold start; after a SnapStart
# restore instead: Restore Duration: 300.43 ms\tBilled Restore Duration: 208 ms)
_FIELD = re.compile(r"(Duration|Billed Duration|Memory Size|Max Memory Used|Init Duration|Billed Restore Duration|"
                    r"Restore Duration):\s*(\S+)\s+(ms|MB)\b")
_NUMBER = re.compile(r"\d{1,9}(?:\.\d{1,6})?")
_STATUS = re.compile(r"Status: (\w+)")
MARK = "REPORT RequestId:"
MAX_MS = limits.LAMBDA_TIMEOUT_S * 1000 + 60_000  # a little over the longest invocation Lambda allows


class BadLine(ValueError):
    """A log line that claims to be a REPORT or handler line but holds values Lambda never reports."""


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
    restore_ms: float | None = None  # a SnapStart restore's Restore Duration (instead of an init)

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
    """The REPORT line in `message` (also one copied from the console, after a timestamp), None when there is
    none; BadLine when its numbers are malformed or outside what Lambda reports."""
    at = message.find(MARK)
    if at < 0:
        return None
    fields: dict[str, float] = {}
    for name, value, _ in _FIELD.findall(message[at:]):
        if not _NUMBER.fullmatch(value):
            raise BadLine(f"{name} is {value[:20]!r}, not a number")
        fields[name] = float(value)
    if "Duration" not in fields or "Memory Size" not in fields:
        raise BadLine("a REPORT line without Duration and Memory Size")
    size = fields["Memory Size"]
    if not limits.LAMBDA_MEMORY_MB[0] <= size <= limits.LAMBDA_MEMORY_MB[1]:
        raise BadLine(f"Memory Size {size:g} MB is not a size Lambda offers")
    for name in ("Duration", "Billed Duration", "Init Duration", "Restore Duration", "Billed Restore Duration"):
        if name in fields and fields[name] > MAX_MS:
            raise BadLine(f"{name} {fields[name]:g} ms is longer than Lambda lets an invocation run")
    if fields.get("Max Memory Used", 0) > size:
        raise BadLine(f"Max Memory Used {fields['Max Memory Used']:g} MB is over the Memory Size")
    status = _STATUS.search(message[at:])
    return Invocation(stream, int(time_ms), fields["Duration"], fields.get("Billed Duration", fields["Duration"]),
                      int(size), int(fields.get("Max Memory Used", 0)), fields.get("Init Duration"),
                      status.group(1).lower() if status else "success", fields.get("Restore Duration"))


def parse_handler(message: str, stream: str, time_ms: int) -> HandlerLine | None:
    """The handler's EMF line, None when `message` is not one; BadLine when its values are not the handler's."""
    text = message.strip()
    if not text.startswith("{") or '"_aws"' not in text:
        return None
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):
        raise BadLine("a handler line that is not valid JSON") from None
    return handler_record(record, stream, time_ms)


def handler_record(record: object, stream: str, time_ms: int) -> HandlerLine | None:
    if not isinstance(record, dict) or "ColdStart" not in record:
        return None
    cold, status = record["ColdStart"], record.get("status", 200)
    if cold not in (0, 1) or isinstance(cold, float):
        raise BadLine(f"ColdStart is {str(cold)[:20]!r}, not 0 or 1")
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
        raise BadLine(f"status is {str(status)[:20]!r}, not an HTTP status code")
    kind = record.get("event", "direct")
    return HandlerLine(stream, int(time_ms), kind if isinstance(kind, str) else "direct", status, bool(cold),
                       _ms(record.get("ModelLoadMs")), _ms(record.get("InferenceMs")))


def emf_time(record: object) -> int | None:
    """The timestamp an EMF record carries (`_aws.Timestamp`, epoch ms), for lines copied without one."""
    meta = record.get("_aws") if isinstance(record, dict) else None
    stamp = meta.get("Timestamp") if isinstance(meta, dict) else None
    return stamp if isinstance(stamp, int) and not isinstance(stamp, bool) else None


def _ms(value) -> float | None:
    """A duration the handler logged, or None when it is not one (absent, not a number, negative, absurd)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) and 0 <= value <= MAX_MS else None
