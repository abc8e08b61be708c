"""CloudWatch alarms and a dashboard for a Lambda function, as template.yaml resources (opt-in: `monitoring`).

The platform's metrics live in AWS/Lambda by FunctionName; the handler's own (ColdStart, ModelLoadMs,
InferenceMs, one Embedded Metric Format line per invocation) in HANDLER_NAMESPACE by the model's name.
ColdStart is 1 or 0 per invocation, so its average over a period is the cold-start rate.
"""

from __future__ import annotations

import json
from typing import Any

HANDLER_NAMESPACE = "modelpack"  # what modelpack/serving/lambda/handler.py writes into `_aws`
HANDLER_DIMENSION = "model"
LAMBDA_NAMESPACE = "AWS/Lambda"


def _alarm(fn: str, description: str, metric: dict, threshold: float, periods: int, topic: str | None) -> dict:
    props = {"AlarmDescription": description, **metric, "Threshold": threshold, "EvaluationPeriods": periods,
             "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}
    if topic:
        props["AlarmActions"] = [topic]
        props["OKActions"] = [topic]
    return {"Type": "AWS::CloudWatch::Alarm", "Properties": props}


def _lambda_metric(fn: str, name: str, period: int, **stat: Any) -> dict:
    return {"Namespace": LAMBDA_NAMESPACE, "MetricName": name, "Period": period,
            "Dimensions": [{"Name": "FunctionName", "Value": {"Ref": fn}}], **stat}


def _handler_metric(model: str, name: str, period: int, **stat: Any) -> dict:
    return {"Namespace": HANDLER_NAMESPACE, "MetricName": name, "Period": period,
            "Dimensions": [{"Name": HANDLER_DIMENSION, "Value": model}], **stat}


def p99_threshold(ctx: Any, spec: Any) -> float | None:
    budgets = ctx.recipe.budgets
    return spec.monitoring.p99_ms or budgets.max_p99_ms or budgets.max_p95_ms


def alarms(ctx: Any, spec: Any, fn: str) -> dict:
    mon, model = spec.monitoring, ctx.recipe.name
    out = {
        "ErrorsAlarm": _alarm(fn, "The function raised or timed out", _lambda_metric(fn, "Errors", 60, Statistic="Sum"),
                              0, 1, mon.topic),
        "ThrottlesAlarm": _alarm(fn, "Invocations were throttled (concurrency limit reached)",
                                 _lambda_metric(fn, "Throttles", 60, Statistic="Sum"), 0, 1, mon.topic),
        "ColdStartRateAlarm": _alarm(fn, f"More than {mon.cold_start_rate:.0%} of invocations started cold",
                                     _handler_metric(model, "ColdStart", 900, Statistic="Average"),
                                     mon.cold_start_rate, 1, mon.topic),
        "ModelLoadAlarm": _alarm(fn, f"Loading the model took over {mon.model_load_ms:g} ms at a cold start",
                                 _handler_metric(model, "ModelLoadMs", 300, Statistic="Maximum", Unit="Milliseconds"),
                                 mon.model_load_ms, 1, mon.topic),
    }
    if (p99 := p99_threshold(ctx, spec)) is not None:
        out["DurationP99Alarm"] = _alarm(fn, f"p99 Duration over the {p99:g} ms latency budget for 15 minutes",
                                         _lambda_metric(fn, "Duration", 300, ExtendedStatistic="p99"), p99, 3,
                                         mon.topic)
    return out


def dashboard(ctx: Any, spec: Any, fn: str) -> dict:
    model, fn_ref = ctx.recipe.name, "${" + fn + "}"
    lam = [LAMBDA_NAMESPACE, None, "FunctionName", fn_ref]
    own = [HANDLER_NAMESPACE, None, HANDLER_DIMENSION, model]

    def metric(base: list, name: str, **opts: Any) -> list:
        return [base[0], name, *base[2:], *([opts] if opts else [])]

    def widget(x: int, y: int, title: str, metrics: list, **extra: Any) -> dict:
        return {"type": "metric", "x": x, "y": y, "width": 12, "height": 6,
                "properties": {"title": title, "region": "${AWS::Region}", "view": "timeSeries", "period": 60,
                               "metrics": metrics, **extra}}

    p99 = p99_threshold(ctx, spec)
    budget = {"annotations": {"horizontal": [{"label": "latency budget", "value": p99}]}} if p99 else {}
    widgets = [
        widget(0, 0, "Invocations, errors, throttles", [metric(lam, "Invocations", stat="Sum"),
                                                        metric(lam, "Errors", stat="Sum"),
                                                        metric(lam, "Throttles", stat="Sum")]),
        widget(12, 0, "Duration (ms)", [metric(lam, "Duration", stat="p50"), metric(lam, "Duration", stat="p99")],
               **budget),
        widget(0, 6, "Concurrent executions", [metric(lam, "ConcurrentExecutions", stat="Maximum")]),
        widget(12, 6, "Cold-start rate", [metric(own, "ColdStart", stat="Average")], period=900),
        widget(0, 12, "Model load and inference (ms)", [metric(own, "ModelLoadMs", stat="Maximum"),
                                                        metric(own, "InferenceMs", stat="p99")]),
    ]
    body = json.dumps({"widgets": widgets}, sort_keys=True, allow_nan=False)
    return {"ModelDashboard": {"Type": "AWS::CloudWatch::Dashboard",
                               "Properties": {"DashboardBody": {"Fn::Sub": body}}}}


def resources(ctx: Any, spec: Any, fn: str = "ModelFunction") -> dict:
    """The template resources `spec.monitoring` asks for (none when it is not given)."""
    mon = spec.monitoring
    if mon is None:
        return {}
    return {**(alarms(ctx, spec, fn) if mon.alarms else {}), **(dashboard(ctx, spec, fn) if mon.dashboard else {})}
