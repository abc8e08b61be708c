"""`modelpack tune --from-logs FILE`: a function's log lines from a file, as exported or as copied.

Three shapes are read: CloudWatch Logs events as JSON lines (`{"timestamp": <epoch ms>, "message": ...,
"logStreamName": ...}`), the JSON document `aws logs filter-log-events` prints (`{"events": [...]}`), and plain
text copied from the Lambda console, `sam logs` or `aws logs tail` (REPORT lines and the handler's JSON lines,
with or without a leading timestamp). A line that is malformed, or whose timestamp or numbers are outside what
Lambda writes (a timestamp in seconds, before Lambda existed or in the future; a duration past the 15-minute
limit), is skipped and counted, never trusted: one such line must not stretch the analysis window to 1970.
The window is the span of the usable events, at most --since back from the last one.
"""

from __future__ import annotations

import json
import re
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from modelpack.errors import UsageError
from modelpack.tune.logparse import MARK, BadLine, emf_time, handler_record
from modelpack.tune.sources import Observations, Skipped

FIRST_MS = 1_415_750_400_000  # 2014-11-12: no Lambda function logged before this
FUTURE_MS = 86_400_000  # a day of clock skew at most
_ISO = re.compile(r"(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}:\d{2})(?:[.,](\d{1,9}))?\s*(Z|[+-]\d{2}:?\d{2})?")
_STREAM = re.compile(r"\d{4}/\d{2}/\d{2}/\[[^\]\s]*\][0-9A-Za-z]+")
_GROUP_KEYS = ("logGroupName", "logGroup", "@log")
_NOT_JSON = object()

Entry = tuple[str, object, str, int | None]  # where, message (text or an EMF record), stream, epoch ms


def from_log_file(path: Path, since: timedelta) -> Observations:
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the log file ({exc}).") from None
    skipped = Skipped()
    groups: set[str] = set()
    entries = _entries(text, skipped, groups)
    timed = any(stamp is not None for _, _, _, stamp in entries)
    if timed:
        kept = []
        for entry in entries:
            if entry[3] is None:
                skipped.add(entry[0], "no timestamp, while other lines have one")
            else:
                kept.append(entry)
        entries = kept
    else:  # copied from the console: the order of the lines is all there is
        entries = [(where, message, stream, n) for n, (where, message, stream, _) in enumerate(entries)]
    if not entries:
        raise UsageError(f"{path}: no usable log events in the file{_why(skipped)}. Export the function's log group "
                         "as JSON lines (one object with timestamp and message per line), or paste its REPORT lines.")
    last = max(stamp for *_, stamp in entries)
    if timed:
        first_allowed = last - int(since.total_seconds() * 1000)
        skipped.older = sum(1 for *_, stamp in entries if stamp < first_allowed)
        entries = [e for e in entries if e[3] >= first_allowed]
    obs = Observations(f"log file {path.name}", min(stamp for *_, stamp in entries), last, timed=timed,
                       skipped=skipped, log_group=next(iter(groups)) if len(groups) == 1 else None)
    for where, message, stream, stamp in entries:
        try:
            if isinstance(message, str):
                obs.add_message(message, stream, stamp)
            elif (line := handler_record(message, stream, stamp)) is not None:
                obs.handler.append(line)
        except BadLine as exc:
            skipped.add(where, str(exc))
    return obs.finish()


def _why(skipped: Skipped) -> str:
    return f" ({'; '.join(skipped.examples)})" if skipped.examples else ""


def _entries(text: str, skipped: Skipped, groups: set[str]) -> list[Entry]:
    stripped = text.lstrip()
    if stripped.startswith("{") and '"events"' in stripped[:200]:
        try:
            doc = json.loads(text)
        except (ValueError, RecursionError):
            doc = None
        if isinstance(doc, dict) and isinstance(doc.get("events"), list):
            return [e for n, item in enumerate(doc["events"], 1)
                    if (e := _event(item, f"event {n}", skipped, groups)) is not None]
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line.startswith(("{", "[")):
            try:
                item = json.loads(line)
            except RecursionError:
                skipped.add(f"line {n}", "JSON nested too deeply")
                continue
            except ValueError:
                item = _NOT_JSON
            if item is not _NOT_JSON:
                out += [e] if (e := _event(item, f"line {n}", skipped, groups)) is not None else []
                continue
            if line.startswith("{"):
                skipped.add(f"line {n}", "not a JSON object")
                continue
        entry = _text_line(line, f"line {n}", skipped)  # text such as "[INFO] ..." from a console
        if entry is not None:
            out.append(entry)
    return out


def _event(item: object, where: str, skipped: Skipped, groups: set[str]) -> Entry | None:
    """A CloudWatch Logs event, or an EMF record copied on its own."""
    if isinstance(item, dict) and isinstance(item.get("message"), str):
        stamp = _stamp(item.get("timestamp"))
        if stamp is None:
            skipped.add(where, f"timestamp {str(item.get('timestamp'))[:24]!r} is not epoch milliseconds of a time "
                               "Lambda could have logged")
            return None
        group = next((item[k] for k in _GROUP_KEYS if isinstance(item.get(k), str)), None)
        if group:
            groups.add(group.rsplit(":", 1)[-1] if group.count(":") else group)
        return where, item["message"], str(item.get("logStreamName", ""))[:200], stamp
    if isinstance(item, dict) and "_aws" in item and "ColdStart" in item:
        stamp = emf_time(item)
        return where, item, "", _stamp(stamp) if stamp is not None else None
    skipped.add(where, "not a CloudWatch Logs event (needs timestamp and message)")
    return None


def _text_line(line: str, where: str, skipped: Skipped) -> Entry | None:
    """A line copied from a console or a terminal: a REPORT line or a handler JSON line, maybe after a
    timestamp and a log stream name. Other text (START, END, the application's own lines) is not counted."""
    at, brace = line.find(MARK), line.find("{")
    if at < 0 and (brace < 0 or '"_aws"' not in line):
        return None
    prefix = line[:at if at >= 0 else brace]
    stream = _STREAM.search(prefix)
    stamp = None
    if (iso := _ISO.search(prefix)) is not None:
        stamp = _stamp(_iso_ms(iso))
        if stamp is None:
            skipped.add(where, f"timestamp {iso.group(0)!r} is not a time Lambda could have logged")
            return None
    if at >= 0:
        return where, line[at:], stream.group(0) if stream else "", stamp
    try:
        record = json.loads(line[brace:])
    except (ValueError, RecursionError):
        skipped.add(where, "a handler line that is not valid JSON")
        return None
    if stamp is None and (emf := emf_time(record)) is not None:
        stamp = _stamp(emf)
    return where, record, stream.group(0) if stream else "", stamp


def _iso_ms(match: re.Match) -> int | None:
    day, clock, fraction, zone = match.groups()
    zone = zone or "+00:00"
    if zone == "Z":
        zone = "+00:00"
    elif ":" not in zone:
        zone = zone[:3] + ":" + zone[3:]
    try:
        moment = datetime.fromisoformat(f"{day}T{clock}.{(fraction or '0')[:6]:0<6}{zone}")
    except ValueError:
        return None
    return int(moment.astimezone(timezone.utc).timestamp() * 1000)


def _stamp(value: object) -> int | None:
    """Epoch milliseconds, when `value` is a whole number between Lambda's launch and tomorrow."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, float) and not value.is_integer():
        return None
    if not FIRST_MS <= value <= time.time() * 1000 + FUTURE_MS:
        return None
    return int(value)
