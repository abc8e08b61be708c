"""`modelpack tune` pieces that need no build: log parsing, the recipe editor, argument checks."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelpack.errors import UsageError
from modelpack.tune import sources
from modelpack.tune.logparse import parse_handler, parse_report
from modelpack.tune.write import edit

REPORT = ("REPORT RequestId: 3f9c\tDuration: 102.25 ms\tBilled Duration: 103 ms\tMemory Size: 512 MB\t"
          "Max Memory Used: 88 MB\tInit Duration: 231.40 ms\t")


def test_report_line_fields():
    inv = parse_report(REPORT, "s", 10_000)
    assert (inv.duration_ms, inv.billed_ms, inv.memory_size_mb, inv.max_memory_mb, inv.init_ms) == (
        102.25, 103, 512, 88, 231.4)
    assert inv.start_ms == 10_000 - 102.25 and inv.status == "success"
    assert parse_report(REPORT.replace("Init Duration: 231.40 ms\t", "") + "Status: timeout", "s", 1).status == "timeout"
    assert parse_report("START RequestId: 3f9c Version: $LATEST", "s", 1) is None


def test_handler_line_needs_emf_and_coldstart():
    line = parse_handler('{"event": "warmer", "status": 200, "ColdStart": 0, "_aws": {}}', "s", 5)
    assert line.kind == "warmer" and line.cold is False and line.inference_ms is None and line.time_ms == 5
    assert parse_handler('{"level": "ERROR", "_aws": {}}', "s", 5) is None
    assert parse_handler("{not json _aws", "s", 5) is None


def test_concurrency_from_overlapping_invocations():
    invs = [parse_report(REPORT.replace("102.25", d), "s", end) for d, end in
            (("30000", 60_000), ("10000", 50_000), ("5000", 120_000), ("200000", 400_000))]
    minutes = sources.minutes_from_invocations(invs)
    assert (minutes[0].concurrency, minutes[0].invocations, minutes[0].busy_ms) == (2, 1, 10_000)
    assert (minutes[60_000].concurrency, minutes[60_000].invocations) == (1, 1)
    # a 200 s invocation keeps one execution running through the minutes it spans, with no edge in them
    assert [minutes[t].concurrency for t in (240_000, 300_000, 360_000)] == [1, 1, 1]


@pytest.mark.parametrize("text", ["7", "0d", "3w", "-1h", "h"])
def test_since_must_be_a_duration(text):
    with pytest.raises(UsageError, match="--since"):
        sources.parse_since(text)


BLOCK = """\
name: x   # top
targets:
  - kind: lambda-layer
  - kind: lambda-function   # serving
    # memory picked by the build
    memory_mb: auto
    top_k: 3
"""

FLOW = """\
name: x
targets:
  - {kind: lambda-layer, python: "3.12"}   # layer
  - {kind: lambda-function, top_k: 3, memory_mb: auto}   # function
"""


def test_edit_block_mapping_keeps_comments():
    out = edit(BLOCK, {"memory_mb": 512, "timeout_s": 9, "warmer_schedule": "rate(5 minutes)"}, Path("r.yaml"))
    assert out == BLOCK.replace("memory_mb: auto", "memory_mb: 512").replace(
        "lambda-function   # serving\n", 'lambda-function   # serving\n    timeout_s: 9\n'
        '    warmer_schedule: "rate(5 minutes)"\n')
    assert yaml.safe_load(out)["targets"][1]["warmer_schedule"] == "rate(5 minutes)"


def test_edit_flow_mapping_keeps_comments():
    out = edit(FLOW, {"memory_mb": 320, "provisioned_concurrency": None}, Path("r.yaml"))
    assert out == FLOW.replace("memory_mb: auto}", "memory_mb: 320, provisioned_concurrency: null}")


def test_edit_needs_a_lambda_function_target():
    with pytest.raises(UsageError, match="no `targets` entry with `kind: lambda-function`"):
        edit("name: x\ntargets: []\n", {"memory_mb": 512}, Path("r.yaml"))


def test_write_needs_the_recipe(tmp_path):
    from click.testing import CliRunner

    from modelpack.cli.main import cli

    result = CliRunner().invoke(cli, ["tune", str(tmp_path), "--function", "f", "--write"])
    assert result.exit_code == 2 and "--write needs --recipe RECIPE" in result.output


def test_a_file_without_usable_events_names_its_lines(tmp_path):
    from datetime import timedelta

    from modelpack.tune.logfile import from_log_file

    log = tmp_path / "x.jsonl"
    log.write_text('{"timestamp": 1, "message": "a"}\n{not json\n')
    with pytest.raises(UsageError, match=r"x.jsonl: no usable log events in the file \(line 1: timestamp '1' .*; "
                                         r"line 2: not a JSON object\)"):
        from_log_file(log, timedelta(days=7))


@pytest.mark.parametrize("hour", range(0, 24, 1))
def test_daily_schedule_does_not_depend_on_the_hour_tune_runs(hour):
    """Two days of 08:00-20:00 UTC load, read at hh:59 of any hour, give the same two scheduled actions."""
    from modelpack.tune.concurrency import recommend_provisioned
    from modelpack.tune.dist import BuildFacts
    from tests.helpers import tune_traffic as tt

    lines = {k: {"event": "direct", "status": 200, "ColdStart": int(k == "cold"), "_aws": {}}
             for k in ("cold", "warm", "warmer")}
    now = 20 * 365 * 24 * tt.HOUR + hour * tt.HOUR + 59 * tt.MINUTE
    traffic = tt.daily(lines, now - 48 * tt.HOUR, 2, peak=6)
    end = now + tt.MINUTE  # as from_cloudwatch sets it: the present minute included
    obs = sources.Observations("metrics", end - 48 * tt.HOUR, end)
    obs.minutes = {t: sources.Minute(**m) for t, m in traffic.minutes.items() if t >= obs.start_ms}
    facts = BuildFacts(name="f", curve=(), headroom_mb=64, balanced_weight=0.5, prices={}, arch="x86_64",
                       memory_mb=256, timeout_s=None, provisioned_concurrency=None, warmer_schedule=None,
                       latency_budget_ms=None, latency_budget_name=None)
    rec = recommend_provisioned(obs.finish(), facts, 256)
    assert rec.recommended == "schedule (up to 6)"
    assert {a["at_utc"]: a["provisioned_concurrency"] for a in rec.details["schedule"]} == {"08:00": 6, "20:00": 0}


def test_restore_duration_is_read_apart_from_its_billed_figure():
    line = REPORT.replace("Init Duration: 231.40 ms\t", "Restore Duration: 300.43 ms\tBilled Restore Duration: 208 ms\t")
    inv = parse_report(line, "s", 10_000)
    assert inv.init_ms is None and inv.restore_ms == 300.43


def _snapstart_case(init_ms: float, cold_every: int, python: str = "3.12", provisioned=None):
    """An hour of requests every 30 s, one in `cold_every` of them cold with an init of `init_ms`."""
    from modelpack.tune.dist import BuildFacts
    from modelpack.tune.records import Recommendation
    from modelpack.tune.snapstart import recommend_snapstart

    obs = sources.Observations("file", 0, 3_600_000)
    for i in range(120):
        end = 30_000 * (i + 1)
        line = REPORT if i % cold_every == 0 else REPORT.replace("Init Duration: 231.40 ms\t", "")
        obs.add_message(line.replace("231.40", f"{init_ms:.2f}"), f"env{i}", end)
    facts = BuildFacts(name="f", curve=(), headroom_mb=64, balanced_weight=0.5, prices={}, arch="x86_64",
                       memory_mb=1024, timeout_s=None, provisioned_concurrency=None, warmer_schedule=None,
                       latency_budget_ms=None, latency_budget_name=None, python=python)
    pc = Recommendation("provisioned_concurrency", None, provisioned, "", (),
                        {"monthly_extra_one_environment": 12.0})
    return recommend_snapstart(obs.finish(), facts, pc, 1024)


def test_snapstart_is_weighed_against_init_time_share_and_provisioned_concurrency():
    long_init = _snapstart_case(2500, cold_every=4)
    assert long_init.recommended is True and long_init.changes
    cost = long_init.details["monthly_cost"]
    # one live version cached all month at 1 GB, plus 30 restores an hour of 1 GB each, less their init
    assert cost["cache"] == pytest.approx(30 * 86_400 * 0.0000015046, rel=1e-3)
    assert cost["restores"] == pytest.approx(30 * 24 * 30 * 0.0001397998, rel=1e-3)
    assert cost["extra"] == pytest.approx(cost["cache"] + cost["restores"] - cost["init_saved"], abs=1e-3)
    short = _snapstart_case(180, cold_every=4)
    assert short.recommended is False and "reliably beats" in short.reason
    rare = _snapstart_case(2500, cold_every=200)
    assert rare.recommended is False and "under the 1%" in rare.reason  # 1 cold start of 120 requests
    assert _snapstart_case(2500, 4, provisioned=3).recommended is False
    old = _snapstart_case(2500, 4, python="3.11")
    assert old.recommended is False and old.write is False and "python3.11" in old.reason
