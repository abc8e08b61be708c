"""Crafted production traffic for `modelpack tune` tests: log events (REPORT lines plus the handler's real
EMF lines) and per-minute Lambda metrics, for a few load patterns."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field

MINUTE = 60_000
HOUR = 60 * MINUTE


@dataclass
class Traffic:
    """What a function would have logged and what CloudWatch would have counted."""

    events: list[dict] = field(default_factory=list)  # CloudWatch Logs events
    minutes: dict[int, dict] = field(default_factory=dict)  # minute start -> concurrency, busy_ms, invocations

    def jsonl(self) -> str:
        return "".join(json.dumps(e) + "\n" for e in sorted(self.events, key=lambda e: e["timestamp"]))


class Emitter:
    """Turns invocations into log events, reusing handler lines that a real run of the handler printed."""

    def __init__(self, handler_lines: dict[str, dict], memory_mb: int):
        self.lines = handler_lines  # "cold", "warm", "warmer" -> parsed handler line
        self.memory_mb = memory_mb
        self.traffic = Traffic()
        self.n = 0

    def invoke(self, stream: str, start_ms: int, duration_ms: float, kind: str = "warm", max_used_mb: int = 90,
               init_ms: float | None = None, inference_ms: float | None = None, count_load: bool = True) -> None:
        self.n += 1
        line = dict(self.lines[kind])
        if inference_ms is not None and "InferenceMs" in line:
            line["InferenceMs"] = inference_ms
        end = int(start_ms + duration_ms)
        self.traffic.events.append({"timestamp": end - 1, "message": json.dumps(line), "logStreamName": stream})
        init = f"Init Duration: {init_ms:.2f} ms\t" if init_ms is not None else ""
        report = (f"REPORT RequestId: 00000000-0000-0000-0000-{self.n:012d}\t{init}Duration: {duration_ms:.2f} ms\t"
                  f"Billed Duration: {int(duration_ms) + 1} ms\tMemory Size: {self.memory_mb} MB\t"
                  f"Max Memory Used: {max_used_mb} MB\t")
        self.traffic.events.append({"timestamp": end, "message": report, "logStreamName": stream})
        if count_load:
            self.load(end // MINUTE * MINUTE, busy_ms=duration_ms, invocations=1)

    def load(self, minute: int, concurrency: float = 0, busy_ms: float = 0, invocations: float = 0) -> None:
        m = self.traffic.minutes.setdefault(minute, {"concurrency": 0, "busy_ms": 0.0, "invocations": 0})
        m["concurrency"] = max(m["concurrency"], concurrency)
        m["busy_ms"] += busy_ms
        m["invocations"] += invocations


def steady(lines: dict, start: int, hours: int, level: int, memory_mb: int = 256) -> Traffic:
    """`level` environments kept busy 90 % of the time; the logs hold a sample of the requests."""
    em = Emitter(lines, memory_mb)
    rng = random.Random(1)
    for env in range(level):
        em.invoke(f"env{env}", start + env * 10, 60.0, "cold", init_ms=180.0, count_load=False)
    for minute in range(hours * 60):
        t = start + minute * MINUTE
        em.load(t, concurrency=level, busy_ms=level * MINUTE * 0.9, invocations=level * MINUTE * 0.9 / 45)
        em.invoke(f"env{minute % level}", t + 1000, rng.uniform(40, 50), count_load=False)
    return em.traffic


def daily(lines: dict, start: int, days: int, peak: int, memory_mb: int = 256) -> Traffic:
    """`peak` busy environments from 08:00 to 20:00 UTC, almost nothing at night."""
    em = Emitter(lines, memory_mb)
    for minute in range(days * 24 * 60):
        t = start + minute * MINUTE
        hour = t // HOUR % 24
        level = peak if 8 <= hour < 20 else 0
        if level:
            em.load(t, concurrency=level, busy_ms=level * MINUTE * 0.9, invocations=level * MINUTE * 0.9 / 45)
        if minute % 10 == 0 and level:
            em.invoke("day", t + 500, 45.0, count_load=False)
        if minute % 60 == 0 and not level:
            em.invoke("night", t + 500, 45.0, "cold", init_ms=180.0)
    return em.traffic


def spiky(lines: dict, start: int, hours: int, burst: int = 10, every_h: int = 3, memory_mb: int = 256,
          warmer: bool = True) -> Traffic:
    """Idle most of the time; every few hours a burst of `burst` requests at once, each in a fresh environment
    but the one a warmer keeps ready."""
    em = Emitter(lines, memory_mb)
    for minute in range(0, hours * 60, 5):
        if warmer:
            em.invoke("warm-env", start + minute * MINUTE, 2.0, "warmer")
    for b in range(hours // every_h):
        t = start + b * every_h * HOUR + 30_000
        em.load(t // MINUTE * MINUTE, concurrency=burst)
        for i in range(burst):
            if i == 0 and warmer:
                em.invoke("warm-env", t, 48.0)
            else:
                em.invoke(f"burst{b}-{i}", t, 60.0, "cold", init_ms=180.0)
    return em.traffic


def near_limit(lines: dict, start: int, memory_mb: int = 256, used_mb: int = 240) -> Traffic:
    """Light steady traffic whose Max Memory Used is close to the memory size."""
    em = Emitter(lines, memory_mb)
    em.invoke("env", start, 60.0, "cold", init_ms=180.0, max_used_mb=used_mb - 5)
    for i in range(1, 200):
        em.invoke("env", start + i * 20_000, 2.0 + (i % 5) * 0.1, max_used_mb=used_mb)
    return em.traffic


def slow_tail(lines: dict, start: int, memory_mb: int = 256) -> Traffic:
    """Warm requests whose p99 (tens of ms, all handler time) is over the latency budget; one 9 s outlier."""
    em = Emitter(lines, memory_mb)
    em.invoke("env", start, 60.0, "cold", init_ms=180.0)
    for i in range(1, 300):
        duration = 70.0 if i % 20 == 0 else 25.0
        em.invoke("env", start + i * 10_000, 9000.0 if i == 150 else duration, inference_ms=0.05)
    return em.traffic
