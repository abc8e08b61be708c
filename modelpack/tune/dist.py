"""What the build knows about a function: its measured memory curve, its settings and its latency budget."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from modelpack.errors import UsageError
from modelpack.files.guard import PUBLISH_RECORD


@dataclass(frozen=True)
class CurvePoint:
    memory_mb: int
    duration_ms: float
    cold_start_ms: float | None


@dataclass(frozen=True)
class BuildFacts:
    """The parts of a build's report.json and template.yaml that tuning needs."""

    name: str
    curve: tuple[CurvePoint, ...]
    headroom_mb: int
    balanced_weight: float
    prices: dict
    arch: str
    memory_mb: int | None
    timeout_s: int | None
    provisioned_concurrency: int | None
    warmer_schedule: str | None
    latency_budget_ms: float | None
    latency_budget_name: str | None
    latency_budget_q: int = 99  # the percentile the budget bounds
    snapstart: bool = False
    python: str = "3.12"  # the function's runtime, "3.12" for python3.12


def read_build(dist: Path) -> BuildFacts:
    path = dist / "report.json"
    try:
        report = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise UsageError(f"{path}: not a modelpack build's report ({exc}); pass the folder `modelpack build` "
                         "wrote (dist/<name>).") from None
    memory = report.get("memory") or {}
    curve = tuple(CurvePoint(int(r["memory_mb"]), float(r["duration_ms"]), r.get("cold_start_ms"))
                  for r in memory.get("rows", []) if r.get("duration_ms") is not None)
    fn = _template_function(dist / "lambda" / "template.yaml")
    events = fn.get("Events") or {}
    warmer = next((e["Properties"].get("Schedule") for e in events.values()
                   if isinstance(e, dict) and e.get("Type") == "Schedule"), None)
    budget = next(((b["name"], float(b["limit"])) for name in ("max_p99_ms", "max_p95_ms", "max_p50_ms")
                   for b in report.get("budgets", []) if b.get("name") == name and b.get("limit") is not None),
                  (None, None))
    return BuildFacts(
        name=report.get("name", dist.name), curve=tuple(sorted(curve, key=lambda p: p.memory_mb)),
        headroom_mb=int(memory.get("headroom_mb", 64)), balanced_weight=float(memory.get("balanced_weight", 0.5)),
        prices=dict(memory.get("prices") or {}), arch=(fn.get("Architectures") or ["x86_64"])[0],
        memory_mb=fn.get("MemorySize"), timeout_s=fn.get("Timeout"),
        provisioned_concurrency=(fn.get("ProvisionedConcurrencyConfig") or {}).get("ProvisionedConcurrentExecutions"),
        warmer_schedule=warmer, latency_budget_name=budget[0], latency_budget_ms=budget[1],
        latency_budget_q=int(budget[0][len("max_p"):-len("_ms")]) if budget[0] else 99,
        snapstart=(fn.get("SnapStart") or {}).get("ApplyOn") == "PublishedVersions",
        python=str(fn.get("Runtime") or "python3.12").removeprefix("python"))


def _template_function(path: Path) -> dict:
    """The function's properties in the SAM template; empty when the build wrote none."""
    if not path.is_file():
        return {}
    resources = (yaml.safe_load(path.read_text()) or {}).get("Resources") or {}
    fn = resources.get("ModelFunction") or {}
    return fn.get("Properties") or {}


def publish_record_function(dist: Path) -> str | None:
    """The function `modelpack publish` created or updated from this dist, from its record, if any."""
    try:
        record = json.loads((dist / PUBLISH_RECORD).read_text())
    except (OSError, ValueError):
        return None
    name = record.get("function_name") if isinstance(record, dict) else None
    return name if isinstance(name, str) and name else None
