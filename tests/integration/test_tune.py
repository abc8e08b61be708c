"""`modelpack tune` end to end: the real handler's log lines, crafted load, CloudWatch on moto's server."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from tests.helpers import tune_traffic as tt
from tests.helpers.paths import DIGITS
from tests.helpers.processes import free_port, wait_for_port

pytestmark = pytest.mark.slow

REGION = "us-east-1"
AWS_ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
           "AWS_DEFAULT_REGION": REGION}


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """The digits example, one variant, with a two-point memory curve and a warmer (one build per module)."""
    tmp = tmp_path_factory.mktemp("tune-build")
    data = yaml.safe_load((DIGITS / "recipe.yaml").read_text())
    data["model"]["path"] = str(DIGITS / "model.keras")
    data["data"]["path"] = str(DIGITS / "digits.npz")
    data["optimize"] = {"variants": ["tflite-int8"]}
    data["measure"] = {"latency": {"warmup": 2, "runs": 10}, "cold_start": {"runs": 1},
                       "memory": {"sizes_mb": [256, 1769], "runs": 30, "cold_runs": 1}}
    data["targets"] = [{"kind": "lambda-layer", "python": "3.12"},
                       {"kind": "lambda-function", "memory_mb": "auto", "warmer_schedule": "rate(5 minutes)"}]
    recipe = tmp / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp / "dist"
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(out), "--cache-dir", str(tmp / "cache")])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def handler_lines(built, tmp_path_factory) -> dict[str, dict]:
    """EMF lines the generated handler printed under the Lambda emulator: a cold and a warm request, a warmer."""
    import numpy as np

    from modelpack.local.lambda_emulator import LambdaEmulator

    sample = np.load(DIGITS / "digits.npz")["x"][:2].tolist()
    emu = LambdaEmulator(built, tmp_path_factory.mktemp("tune-emu"))
    with emu:
        for event in ({"instances": [sample[0]]}, {"instances": [sample[1]]}, {"warmer": True}):
            emu.invoke(event)
    printed = [json.loads(line) for line in emu.logs().splitlines() if line.startswith("{") and '"_aws"' in line]
    assert [(p["event"], p["ColdStart"]) for p in printed] == [("direct", 1), ("direct", 0), ("warmer", 0)]
    assert printed[0]["ModelLoadMs"] > 0 and printed[1]["InferenceMs"] > 0
    return {"cold": printed[0], "warm": printed[1], "warmer": printed[2]}


@pytest.fixture(scope="module")
def moto_url():
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)


def publish(url: str, function: str, traffic: tt.Traffic) -> None:
    """What Lambda would have sent to CloudWatch: the log events and the per-minute metrics."""
    import boto3

    kw = {"endpoint_url": url, "region_name": REGION, "aws_access_key_id": "testing",
          "aws_secret_access_key": "testing"}
    logs, cw = boto3.client("logs", **kw), boto3.client("cloudwatch", **kw)
    group = f"/aws/lambda/{function}"
    logs.create_log_group(logGroupName=group)
    streams: dict[str, list] = {}
    for e in sorted(traffic.events, key=lambda e: e["timestamp"]):
        streams.setdefault(e["logStreamName"], []).append({"timestamp": e["timestamp"], "message": e["message"]})
    for stream, events in streams.items():
        logs.create_log_stream(logGroupName=group, logStreamName=stream)
        for i in range(0, len(events), 5000):
            logs.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events[i:i + 5000])
    data = []
    for minute, load in traffic.minutes.items():
        stamp = minute / 1000 + 1
        for metric, key, unit in (("ConcurrentExecutions", "concurrency", "Count"),
                                  ("Duration", "busy_ms", "Milliseconds"), ("Invocations", "invocations", "Count")):
            data.append({"MetricName": metric, "Dimensions": [{"Name": "FunctionName", "Value": function}],
                         "Timestamp": stamp, "Value": float(load[key]), "Unit": unit})
    for i in range(0, len(data), 1000):
        cw.put_metric_data(Namespace="AWS/Lambda", MetricData=data[i:i + 1000])


def run_tune(built: Path, function: str, *args: str, url: str | None = None) -> tuple[int, dict | str]:
    env = {**AWS_ENV, **({"AWS_ENDPOINT_URL": url} if url else {})}
    result = CliRunner().invoke(cli, ["tune", str(built), "--function", function, "--json", *args], env=env)
    if result.exit_code != 0:
        return result.exit_code, result.output
    return 0, json.loads(result.stdout)


def recs(answer: dict) -> dict[str, dict]:
    return {r["setting"]: r for r in answer["recommendations"]}


def now_hour() -> int:
    return int(time.time() * 1000) // tt.HOUR * tt.HOUR


def now_minute() -> int:
    return int(time.time() * 1000) // tt.MINUTE * tt.MINUTE


def test_steady_high_concurrency_is_provisioned(built, handler_lines, moto_url):
    publish(moto_url, "steady", tt.steady(handler_lines, now_hour() - 6 * tt.HOUR, 6, level=8))
    code, answer = run_tune(built, "steady", "--since", "7h", url=moto_url)
    assert code == 0, answer
    r = recs(answer)
    assert r["provisioned_concurrency"]["recommended"] == 8, r["provisioned_concurrency"]
    assert "CloudWatch" in r["provisioned_concurrency"]["evidence"][0]["source"]
    assert r["warmer_schedule"]["current"] == "rate(5 minutes)" and r["warmer_schedule"]["recommended"] is None
    # moto answers no Duration percentiles; the REPORT lines give them, and the notes say so.
    assert any("computed from the REPORT lines" in n for n in answer["notes"])


def test_daily_pattern_gets_a_schedule(built, handler_lines, moto_url):
    # The traffic runs up to the present minute: `--since 2d` ends now, and an hour of the day whose last
    # minutes held no data would rightly look idle (tests/unit/test_tune_units.py sweeps the time of day).
    publish(moto_url, "daily", tt.daily(handler_lines, now_minute() - 48 * tt.HOUR, 2, peak=6))
    code, answer = run_tune(built, "daily", "--since", "2d", url=moto_url)
    assert code == 0, answer
    pc = recs(answer)["provisioned_concurrency"]
    assert pc["recommended"] == "schedule (up to 6)" and pc["write"] is False and pc["changes"] is False
    schedule = {a["at_utc"]: a["provisioned_concurrency"] for a in pc["details"]["schedule"]}
    assert schedule == {"08:00": 6, "20:00": 0}
    assert pc["details"]["monthly_cost_schedule"] < pc["details"]["monthly_cost_fixed"]


def test_rare_spiky_traffic_keeps_the_warmer_and_provisions_nothing(built, handler_lines, moto_url):
    publish(moto_url, "spiky", tt.spiky(handler_lines, now_hour() - 24 * tt.HOUR, 24))
    code, answer = run_tune(built, "spiky", "--since", "25h", url=moto_url)
    assert code == 0, answer
    r = recs(answer)
    assert r["provisioned_concurrency"]["recommended"] is None
    assert "idle" in r["provisioned_concurrency"]["reason"]
    assert r["warmer_schedule"]["recommended"] == "rate(5 minutes)" and r["warmer_schedule"]["changes"] is False


def test_memory_near_the_limit_raises_the_floor(built, handler_lines, moto_url):
    publish(moto_url, "tight", tt.near_limit(handler_lines, now_hour() - tt.HOUR, memory_mb=256, used_mb=240))
    code, answer = run_tune(built, "tight", "--since", "2h", url=moto_url)
    assert code == 0, answer
    memory = recs(answer)["memory_mb"]
    assert memory["details"]["floor_mb"] == 240 + 64
    # 320 MB is the cheapest size above the floor, and its predicted p95 (about 2 ms) meets the 20 ms budget.
    assert memory["recommended"] == 320 and memory["details"]["strategies"]["cost"] == 320
    assert all(s["memory_mb"] >= 304 for s in memory["details"]["sizes"])


def test_p99_over_budget_buys_speed_and_the_tail_sets_the_timeout(built, handler_lines, moto_url):
    publish(moto_url, "slow", tt.slow_tail(handler_lines, now_hour() - tt.HOUR))
    code, answer = run_tune(built, "slow", "--since", "2h", url=moto_url)
    assert code == 0, answer
    r = recs(answer)
    memory = r["memory_mb"]
    assert memory["recommended"] == 1769 and "p95 meets the max_p95_ms budget of 20 ms" in memory["reason"]
    at = {s["memory_mb"]: s for s in memory["details"]["sizes"]}
    assert at[256]["predicted_p99_ms"] > 20 >= at[1769]["predicted_p99_ms"]
    assert set(at) == {192, 256, 1769}  # the floor rounded up, the deployed size, the measured curve
    assert r["timeout_s"]["recommended"] == 18  # twice the 9 s outlier


def test_from_logs_file(built, handler_lines, tmp_path):
    log = tmp_path / "export.jsonl"
    log.write_text(tt.spiky(handler_lines, now_hour() - 24 * tt.HOUR, 24).jsonl())
    code, answer = run_tune(built, "spiky", "--from-logs", str(log))
    assert code == 0, answer
    r = recs(answer)
    assert "REPORT lines" in r["provisioned_concurrency"]["evidence"][0]["source"]
    assert r["provisioned_concurrency"]["evidence"][1]["value"].endswith("/ 10")  # ten overlapping requests
    assert r["provisioned_concurrency"]["recommended"] is None
    assert r["warmer_schedule"]["recommended"] == "rate(5 minutes)"
    table = CliRunner().invoke(cli, ["tune", str(built), "--function", "spiky", "--from-logs", str(log)])
    assert table.exit_code == 0 and "max memory used" in table.output and "warmer_schedule" in table.output


def test_no_data_is_a_clear_exit_2(built, moto_url, tmp_path):
    code, message = run_tune(built, "never-deployed", "--since", "1d", url=moto_url)
    assert code == 2 and "no invocations of 'never-deployed'" in message and "Traceback" not in message
    log = tmp_path / "other.jsonl"
    log.write_text(json.dumps({"timestamp": now_minute(), "message": "START RequestId: x"}) + "\n")
    code, message = run_tune(built, "f", "--from-logs", str(log))
    assert code == 2 and "no REPORT lines" in message


COMMENTED = """\
# digits, as deployed
name: digits
model:
  path: model.keras   # the trained model
targets:
  - {kind: lambda-layer, python: "3.12"}   # runtime layer
  # the serving function
  - kind: lambda-function
    memory_mb: auto    # build-time pick
    top_k: 3
"""


def test_write_round_trips_a_commented_recipe(built, handler_lines, tmp_path):
    log = tmp_path / "export.jsonl"
    log.write_text(tt.slow_tail(handler_lines, now_hour() - tt.HOUR).jsonl())
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(COMMENTED)
    args = ["tune", str(built), "--function", "f", "--from-logs", str(log), "--write", "--recipe", str(recipe)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    text = recipe.read_text()
    assert text == COMMENTED.replace("memory_mb: auto    #", "memory_mb: 1769    #").replace(
        "  - kind: lambda-function\n", "  - kind: lambda-function\n    timeout_s: 18\n")
    target = yaml.safe_load(text)["targets"][1]
    assert target == {"kind": "lambda-function", "memory_mb": 1769, "timeout_s": 18, "top_k": 3}
    assert f"{recipe}: memory_mb = 1769 (replaces auto, the size the build picked" in result.output
    assert "timeout_s = 18" in result.output
    again = CliRunner().invoke(cli, args)  # the recipe now says what production asks for
    assert again.exit_code == 0 and recipe.read_text() == text, again.output
    assert "nothing to change" in again.output


def test_write_refuses_another_builds_recipe(built, handler_lines, tmp_path):
    log = tmp_path / "export.jsonl"
    log.write_text(tt.slow_tail(handler_lines, now_hour() - tt.HOUR).jsonl())
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(COMMENTED.replace("name: digits", "name: other"))
    result = CliRunner().invoke(cli, ["tune", str(built), "--function", "f", "--from-logs", str(log), "--write",
                                      "--recipe", str(recipe)])
    assert result.exit_code == 2 and "not the one the build 'digits' came from" in result.output
    assert recipe.read_text() == COMMENTED.replace("name: digits", "name: other")


def test_only_warmer_calls_change_nothing(built, handler_lines, tmp_path):
    em = tt.Emitter(handler_lines, 256)
    for i in range(24):
        em.invoke("warm-env", now_hour() - tt.HOUR * 2 + i * 300_000, 2.0, "warmer")
    log = tmp_path / "warmers.jsonl"
    log.write_text(em.traffic.jsonl())
    code, answer = run_tune(built, "f", "--from-logs", str(log))
    assert code == 0, answer
    r = recs(answer)
    assert answer["requests"] == 0
    assert r["warmer_schedule"]["recommended"] == "rate(5 minutes)" and r["warmer_schedule"]["changes"] is False
    assert r["memory_mb"]["changes"] is False and "no warm request" in r["memory_mb"]["reason"]
