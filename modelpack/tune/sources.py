"""Where observations come from: CloudWatch (metrics and Logs, through boto3) or an exported log file.

boto3 follows the usual AWS settings (credentials, AWS_ENDPOINT_URL, the region); percentiles a metrics
service does not answer are computed from the REPORT lines, which carry every invocation's duration.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

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
class Skipped:
    """Input lines left out of the analysis, and why (the first few, by line number)."""

    count: int = 0
    examples: list[str] = field(default_factory=list)
    older: int = 0  # well-formed events before the --since window

    def add(self, where: str, why: str) -> None:
        self.count += 1
        if len(self.examples) < 5:
            self.examples.append(f"{where}: {why}")

    def notes(self) -> list[str]:
        out = []
        if self.count:
            out.append(f"skipped {self.count} malformed or implausible log line(s) ({'; '.join(self.examples)}"
                       f"{'; ...' if self.count > len(self.examples) else ''})")
        if self.older:
            out.append(f"left out {self.older} log event(s) older than the --since window (before the last event "
                       "minus --since); widen --since to include them")
        return out


@dataclass
class Observations:
    """Everything observed about one function over a window."""

    source: str
    start_ms: int
    end_ms: int
    timed: bool = True  # False when the input had no timestamps (lines copied from the console)
    skipped: Skipped = field(default_factory=Skipped)
    log_group: str | None = None  # the function's log group, when the input names it
    invocations: list[Invocation] = field(default_factory=list)
    handler: list[HandlerLine] = field(default_factory=list)
    minutes: dict[int, Minute] = field(default_factory=dict)  # keyed by the minute's start, epoch ms
    load_source: str = "REPORT lines (overlapping invocations)"
    totals: dict[str, float] = field(default_factory=dict)  # Invocations, Errors, Throttles sums (metrics)
    metric_percentiles: dict[str, float] = field(default_factory=dict)  # Duration p50/p99, when answered
    pairs: list[tuple[Invocation, HandlerLine | None]] = field(default_factory=list)

    def add_message(self, message: str, stream: str, time_ms: int) -> None:
        """Record a REPORT or handler line; BadLine (for the caller to skip) when it is malformed."""
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


MAX_SINCE = timedelta(days=455)  # CloudWatch keeps per-minute metrics for 15 months


def parse_since(text: str) -> timedelta:
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isascii() or not text[:-1].isdigit() \
            or int(text[:-1]) <= 0 or len(text) > 9:
        raise UsageError(f"--since {text!r}: write a whole number of minutes, hours or days, e.g. 90m, 12h or 7d.")
    window = timedelta(**{units[text[-1]]: int(text[:-1])})
    if window > MAX_SINCE:
        raise UsageError(f"--since {text!r} is longer than the {MAX_SINCE.days} days CloudWatch keeps per-minute "
                         "metrics; write a shorter window, e.g. 90d.")
    return window


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
