"""`modelpack tune --from-logs` on real-world exports: hostile and malformed lines, lines copied from a console,
and `--write` on recipes with CRLF endings, behind a symbolic link, or sharing values through YAML anchors.
The dist is the one a build leaves for tune (report.json and the template the build's own code writes)."""

from __future__ import annotations

import json
import time
import tracemalloc

import pytest
from click.testing import CliRunner

from modelpack.cli.main import cli
from tests.helpers import tune_traffic as tt
from tests.helpers.sam import tiny_dist

LINES = {"cold": {"model": "tiny", "event": "direct", "status": 200, "cold": True, "ColdStart": 1,
                  "ModelLoadMs": 40.0, "InferenceMs": 2.0, "_aws": {}},
         "warm": {"model": "tiny", "event": "direct", "status": 200, "cold": False, "ColdStart": 0,
                  "InferenceMs": 2.0, "_aws": {}},
         "warmer": {"model": "tiny", "event": "warmer", "status": 200, "cold": False, "ColdStart": 0, "_aws": {}}}
REPORT = ("REPORT RequestId: 1\tDuration: {d} ms\tBilled Duration: 3 ms\tMemory Size: {m} MB\t"
          "Max Memory Used: 60 MB\t")


@pytest.fixture
def dist(tmp_path):
    return tiny_dist(tmp_path, timeout_s=30)


def hour_ago() -> int:
    return int(time.time() * 1000) // tt.HOUR * tt.HOUR - tt.HOUR


def steady(start: int, memory_mb: int = 1024, used: int = 60, n: int = 120) -> list[str]:
    em = tt.Emitter(LINES, memory_mb)
    em.invoke("env", start, 60.0, "cold", init_ms=180.0, max_used_mb=used)
    for i in range(1, n):
        em.invoke("env", start + i * 20_000, 4.0 + (i % 3) * 0.1, max_used_mb=used)
    return em.traffic.jsonl().splitlines()


def hostile(now: int) -> list[str]:
    report = REPORT.format(d="5.0", m=1024)
    event = lambda stamp, message=report: json.dumps({"timestamp": stamp, "message": message})  # noqa: E731
    emf = lambda **kw: json.dumps({"timestamp": now, "message": json.dumps({**LINES["warm"], **kw})})  # noqa: E731
    return [
        event(now // 1000),  # seconds where milliseconds belong: 1970
        event(0), event(-5), event(1e30), event(True), event("yesterday"), event(float("nan")),
        event(now, REPORT.format(d="99999999999", m=1024)),  # an absurd duration
        event(now, REPORT.format(d="1.2.3", m=1024)),
        event(now, REPORT.format(d="5.0", m=0)),
        emf(status="abc"), emf(ColdStart="yes"), emf(status=True),
        "[" * 100_000,  # nested past any parser's recursion limit
        json.dumps({"timestamp": now, "message": "{" + '"_aws": ' + "[" * 50_000}),
        "{not json",
        json.dumps(["a", "list"]),
    ]


def tune(*args: str):
    return CliRunner().invoke(cli, ["tune", *args])


def test_hostile_lines_are_skipped_counted_and_bounded(dist, tmp_path):
    start = hour_ago()
    good = steady(start)
    bad = hostile(start + 30 * tt.MINUTE)
    lines = good[:10] + bad + good[10:]
    log = tmp_path / "export.jsonl"
    log.write_text("\n".join(lines) + "\n")
    tracemalloc.start()
    try:
        result = tune(str(dist), "--from-logs", str(log), "--json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["skipped"]["count"] == len(bad), answer["skipped"]
    assert [e.split(":")[0] for e in answer["skipped"]["examples"]] == [f"line {n}" for n in range(11, 16)]
    assert "is not epoch milliseconds of a time Lambda could have logged" in answer["skipped"]["examples"][0]
    assert any(note.startswith(f"skipped {len(bad)} malformed") for note in answer["notes"])
    window = next(r for r in answer["recommendations"] if r["setting"] == "provisioned_concurrency")["evidence"][0]
    assert window["name"] == "window" and window["value"] <= 1.0  # the span of the usable lines, not since 1970
    assert peak < 64 * 2**20, peak
    assert answer["function"] == "tiny" and any("the build's name" in n for n in answer["notes"])


def test_only_hostile_lines_is_exit_2(dist, tmp_path):
    log = tmp_path / "bad.jsonl"
    log.write_text("\n".join(hostile(hour_ago())) + "\n")
    result = tune(str(dist), "--from-logs", str(log))
    assert result.exit_code == 2, result.output
    assert "no usable log events" in result.output or "no REPORT lines" in result.output
    assert "Traceback" not in result.output and "modelpack bug" not in result.output


CONSOLE = """\
START RequestId: 6d1 Version: $LATEST
{"model": "tiny", "event": "direct", "status": 200, "cold": true, "ColdStart": 1, "ModelLoadMs": 40.0, "InferenceMs": 2.0, "_aws": {}}
END RequestId: 6d1
REPORT RequestId: 6d1  Duration: 61.20 ms  Billed Duration: 62 ms  Memory Size: 1024 MB  Max Memory Used: 61 MB  Init Duration: 180.10 ms
START RequestId: 6d2 Version: $LATEST
{"model": "tiny", "event": "direct", "status": 200, "cold": false, "ColdStart": 0, "InferenceMs": 2.0, "_aws": {}}
END RequestId: 6d2
REPORT RequestId: 6d2\tDuration: 4.10 ms\tBilled Duration: 5 ms\tMemory Size: 1024 MB\tMax Memory Used: 61 MB\t
REPORT RequestId: 6d3\tDuration: 4.30 ms\tBilled Duration: 5 ms\tMemory Size: 1024 MB\tMax Memory Used: 61 MB\t
"""


def test_report_lines_copied_from_the_console(dist, tmp_path):
    log = tmp_path / "console.txt"
    log.write_text(CONSOLE)
    result = tune(str(dist), "--from-logs", str(log), "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    recs = {r["setting"]: r for r in answer["recommendations"]}
    assert answer["requests"] == 3 and answer["skipped"]["count"] == 0
    assert recs["memory_mb"]["evidence"][1]["value"] == 2  # two warm requests
    assert recs["timeout_s"]["recommended"] == 3
    assert "no timestamps" in recs["provisioned_concurrency"]["reason"]
    assert recs["provisioned_concurrency"]["changes"] is False and recs["warmer_schedule"]["changes"] is False

    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() - 600))
    tail = tmp_path / "tail.txt"  # `aws logs tail` prints a timestamp and the log stream before each message
    tail.write_text("".join(f"{stamp}.{n:03d}000+00:00 2024/01/01/[$LATEST]abc {line}\n"
                            for n, line in enumerate(CONSOLE.splitlines())))
    timed = tune(str(dist), "--from-logs", str(tail), "--json")
    assert timed.exit_code == 0, timed.output
    recs = {r["setting"]: r for r in json.loads(timed.stdout)["recommendations"]}
    assert "no timestamps" not in recs["provisioned_concurrency"]["reason"]


RECIPE = "name: tiny\r\nmodel: {path: model.keras}\r\ntargets:\r\n  - kind: lambda-function\r\n    memory_mb: auto\r\n"


def test_write_keeps_crlf_writes_through_a_symlink_and_names_auto(dist, tmp_path):
    log = tmp_path / "export.jsonl"
    log.write_text("\n".join(steady(hour_ago(), used=1000)) + "\n")  # needs more than 1024 MB with headroom
    real = tmp_path / "project" / "recipe.yaml"
    real.parent.mkdir()
    real.write_bytes(RECIPE.encode())
    link = tmp_path / "recipe.yaml"
    link.symlink_to(real)
    result = tune(str(dist), "--from-logs", str(log), "--write", "--recipe", str(link))
    assert result.exit_code == 0, result.output
    assert "memory_mb = 1088 (replaces auto" in result.output
    assert link.is_symlink() and link.resolve() == real
    text = real.read_bytes().decode()
    assert "memory_mb: 1088\r\n" in text and "timeout_s: 3\r\n" in text
    assert text.count("\n") == text.count("\r\n")


@pytest.mark.parametrize("recipe", [
    "name: tiny\nfn: &fn {kind: lambda-function, memory_mb: 1024}\ntargets:\n  - *fn\n",
    "name: tiny\nsize: &m 1024\ntargets:\n  - {kind: lambda-function, memory_mb: *m}\n",
    "name: tiny\ntargets:\n  - {kind: lambda-function, memory_mb: &m 1024}\nother: *m\n",
])
def test_write_refuses_anchored_or_aliased_values(dist, tmp_path, recipe):
    log = tmp_path / "export.jsonl"
    log.write_text("\n".join(steady(hour_ago(), used=1000)) + "\n")
    path = tmp_path / "recipe.yaml"
    path.write_text(recipe)
    result = tune(str(dist), "--from-logs", str(log), "--write", "--recipe", str(path))
    assert result.exit_code == 2, result.output
    assert "anchors or aliases" in result.output and "memory_mb: 1088" in result.output
    assert path.read_text() == recipe


def test_a_change_worth_less_than_the_threshold_is_not_recommended(tmp_path):
    """512 → 256 MB would save 3 % per request and slow nothing down much: under the 5 % a change must gain."""
    rows = [{"memory_mb": 256, "duration_ms": 1.0}, {"memory_mb": 1769, "duration_ms": 0.9}]
    dist = tiny_dist(tmp_path, memory_mb=512, report={"memory": {"rows": rows, "headroom_mb": 64}})
    em = tt.Emitter(LINES, 512)
    for i in range(100):
        em.invoke("env", hour_ago() + i * 20_000, 1.0 + (i % 3) * 0.1, inference_ms=0.9)
    log = tmp_path / "export.jsonl"
    log.write_text(em.traffic.jsonl())
    result = tune(str(dist), "--from-logs", str(log), "--json")
    assert result.exit_code == 0, result.output
    memory = next(r for r in json.loads(result.stdout)["recommendations"] if r["setting"] == "memory_mb")
    assert memory["recommended"] == 512 and memory["changes"] is False, memory
    assert memory["reason"].startswith("keep 512 MB: 256 MB") and "under the 5% a change must gain" in memory["reason"]
