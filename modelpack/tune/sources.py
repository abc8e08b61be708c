"""Where observations come from: CloudWatch (metrics and Logs, through boto3) or an exported log file.

boto3 follows the usual AWS settings (credentials, AWS_ENDPOINT_URL, the region); percentiles a metrics
service does not answer are computed from the REPORT lines, which carry every invocation's duration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from modelpack.errors import UsageError
from modelpack.tune.logparse import HandlerLine, Invocation, parse_handler, parse_report

LAMBDA_NAMESPACE = "AWS/Lambda"
PERIOD_S = 60


@dataclass
class Minute:
    """Load in one minute: peak concurrent executions, time spent running, invocations."""

    concurrency: float = 0.0
    busy_ms: float = 0.0
    invocations: float = 0.0


@dataclass
class Observations:
    """Everything observed about one function over a window."""

    source: str
    start_ms: int
    end_ms: int
    invocations: list[Invocation] = field(default_factory=list)
    handler: list[HandlerLine] = field(default_factory=list)
    minutes: dict[int, Minute] = field(default_factory=dict)  # keyed by the minute's start, epoch ms
    load_source: str = "REPORT lines (overlapping invocations)"
    totals: dict[str, float] = field(default_factory=dict)  # Invocations, Errors, Throttles sums (metrics)
    metric_percentiles: dict[str, float] = field(default_factory=dict)  # Duration p50/p99, when answered
    pairs: list[tuple[Invocation, HandlerLine | None]] = field(default_factory=list)

    def add_message(self, message: str, stream: str, time_ms: int) -> None:
        if (inv := parse_report(message, stream, time_ms)) is not None:
            self.invocations.append(inv)
        elif (line := parse_handler(message, stream, time_ms)) is not None:
            self.handler.append(line)

    def finish(self) -> Observations:
        self.invocations.sort(key=lambda i: (i.end_ms, i.stream))
        self.handler.sort(key=lambda h: (h.time_ms, h.stream))
        if not self.minutes and self.invocations:
            self.minutes = minutes_from_invocations(self.invocations)
        self.pairs = pair_lines(self.invocations, self.handler)
        return self


def pair_lines(invocations: list[Invocation], handler: list[HandlerLine]) -> list[tuple[Invocation, HandlerLine | None]]:
    """Each REPORT line with the handler line logged before it in the same log stream (one environment runs
    one invocation at a time, and the handler logs before Lambda reports)."""
    events = sorted([(h.time_ms, 0, n, h.stream) for n, h in enumerate(handler)]
                    + [(i.end_ms, 1, n, i.stream) for n, i in enumerate(invocations)])
    pending: dict[str, HandlerLine] = {}
    pairs = []
    for _, kind, n, stream in events:
        if kind == 0:
            pending[stream] = handler[n]
        else:
            pairs.append((invocations[n], pending.pop(stream, None)))
    return pairs


def minutes_from_invocations(invocations: list[Invocation]) -> dict[int, Minute]:
    """Per-minute load from the invocations' start and end times (concurrency: most running at once)."""
    out: dict[int, Minute] = {}
    edges = sorted([(i.start_ms, 1) for i in invocations] + [(i.end_ms, -1) for i in invocations],
                   key=lambda e: (e[0], e[1]))
    running, last = 0, None
    for t, step in edges:
        minute = _minute(t)
        if last is not None and running > 0:  # what ran across the minutes between two edges
            for between in range(last + 60_000, minute + 60_000, 60_000):
                m = out.setdefault(between, Minute())
                m.concurrency = max(m.concurrency, running)
        running += step
        m = out.setdefault(minute, Minute())
        m.concurrency = max(m.concurrency, running)
        last = minute
    for i in invocations:
        m = out.setdefault(_minute(i.end_ms), Minute())
        m.busy_ms += i.duration_ms
        m.invocations += 1
    return out


def _minute(t_ms: float) -> int:
    return int(t_ms // 60_000 * 60_000)


def parse_since(text: str) -> timedelta:
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise UsageError(f"--since {text!r}: write a whole number of minutes, hours or days, e.g. 90m, 12h or 7d.")
    return timedelta(**{units[text[-1]]: int(text[:-1])})


def from_log_file(path: Path) -> Observations:
    """CloudWatch Logs events exported as JSON lines (one {timestamp, message, logStreamName} per line), or
    the JSON document `aws logs filter-log-events` prints ({"events": [...]})."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{path}: cannot read the log file ({exc}).") from None
    events = _events(text, path)
    if not events:
        raise UsageError(f"{path}: no log events in the file; export the function's log group as JSON lines "
                         "(one object with timestamp and message per line).")
    obs = Observations(f"log file {path.name}", min(e[2] for e in events), max(e[2] for e in events))
    for message, stream, stamp in events:
        obs.add_message(message, stream, stamp)
    return obs.finish()


def _events(text: str, path: Path) -> list[tuple[str, str, int]]:
    stripped = text.lstrip()
    if stripped.startswith("{") and '"events"' in stripped[:200]:
        try:
            doc = json.loads(text)
            if isinstance(doc, dict) and isinstance(doc.get("events"), list):
                return [_event(e, path, n) for n, e in enumerate(doc["events"], 1)]
        except ValueError:
            pass
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                out.append(_event(json.loads(line), path, n))
            except ValueError:
                raise UsageError(f"{path}:{n}: not a JSON object; each line must be one CloudWatch Logs event "
                                 '{"timestamp": <epoch ms>, "message": "..."}.') from None
    return out


def _event(e: object, path: Path, n: int) -> tuple[str, str, int]:
    if not isinstance(e, dict) or not isinstance(e.get("message"), str) or not isinstance(e.get("timestamp"), int):
        raise UsageError(f"{path}: event {n} needs an integer \"timestamp\" (epoch ms) and a string \"message\".")
    return e["message"], str(e.get("logStreamName", "")), e["timestamp"]


def from_cloudwatch(function: str, since: timedelta, region: str | None) -> Observations:
    """The function's Lambda metrics, modelpack's handler metrics and its log lines from CloudWatch."""
    import boto3

    end = datetime.now(timezone.utc).replace(second=0, microsecond=0) + timedelta(minutes=1)
    start = end - since
    session = boto3.session.Session(region_name=region)
    if session.region_name is None:
        raise UsageError("no AWS region: pass --region or set AWS_REGION / AWS_DEFAULT_REGION.")
    obs = Observations(f"CloudWatch ({session.region_name})", int(start.timestamp() * 1000), int(end.timestamp() * 1000))
    _read_logs(session.client("logs"), f"/aws/lambda/{function}", obs)
    _read_metrics(session.client("cloudwatch"), function, start, end, obs)
    return obs.finish()


def _read_logs(logs, group: str, obs: Observations) -> None:
    kwargs = {"logGroupName": group, "startTime": obs.start_ms, "endTime": obs.end_ms,
              "filterPattern": '?"REPORT RequestId" ?"_aws"'}
    try:
        while True:
            page = logs.filter_log_events(**kwargs)
            for e in page.get("events", []):
                obs.add_message(e["message"], e.get("logStreamName", ""), e["timestamp"])
            if not page.get("nextToken") or not page.get("events"):
                break
            kwargs["nextToken"] = page["nextToken"]
    except logs.exceptions.ResourceNotFoundException:
        obs.source += f"; no log group {group}"


def _read_metrics(cw, function: str, start: datetime, end: datetime, obs: Observations) -> None:
    dims = [{"Name": "FunctionName", "Value": function}]
    load = {"concurrency": ("ConcurrentExecutions", "Maximum"), "busy_ms": ("Duration", "Sum"),
            "invocations": ("Invocations", "Sum")}
    minutes: dict[int, Minute] = {}
    for attr, (metric, stat) in load.items():
        for t, v in _series(cw, metric, stat, dims, start, end):
            setattr(minutes.setdefault(_minute(t.timestamp() * 1000), Minute()), attr, v)
    if minutes:
        obs.minutes = minutes
        obs.load_source = "CloudWatch per minute: ConcurrentExecutions maximum, Duration sum, Invocations sum"
    for name in ("Invocations", "Errors", "Throttles"):
        if points := _series(cw, name, "Sum", dims, start, end):
            obs.totals[name] = sum(v for _, v in points)
    answer = cw.get_metric_statistics(Namespace=LAMBDA_NAMESPACE, MetricName="Duration", Dimensions=dims,
                                      StartTime=start, EndTime=end, Period=int((end - start).total_seconds()),
                                      ExtendedStatistics=["p50", "p99"])
    for point in answer.get("Datapoints", []):
        obs.metric_percentiles.update(point.get("ExtendedStatistics") or {})


def _series(cw, metric: str, stat: str, dims: list, start: datetime, end: datetime) -> list[tuple[datetime, float]]:
    query = {"Id": "m", "MetricStat": {"Metric": {"Namespace": LAMBDA_NAMESPACE, "MetricName": metric,
                                                  "Dimensions": dims}, "Period": PERIOD_S, "Stat": stat}}
    out: list[tuple[datetime, float]] = []
    kwargs: dict = {"MetricDataQueries": [query], "StartTime": start, "EndTime": end}
    while True:
        page = cw.get_metric_data(**kwargs)
        for result in page.get("MetricDataResults", []):
            out += list(zip(result.get("Timestamps", []), result.get("Values", [])))
        if not page.get("NextToken"):
            return sorted(out)
        kwargs["NextToken"] = page["NextToken"]
