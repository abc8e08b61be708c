"""Pick the winning variant among those that pass every budget; the float baseline is never picked."""

from __future__ import annotations

from collections.abc import Callable

INF = float("inf")


def _num(x: float | None, default: float = INF) -> float:
    return default if x is None else x


# policy -> sort key (smaller is better); ties fall back to the variant name so the choice is stable.
POLICIES: dict[str, Callable[[dict], tuple]] = {
    "smallest": lambda v: (_num(v.get("zipped_bytes")), _num((v.get("latency_ms") or {}).get("p50"))),
    "fastest": lambda v: (_num((v.get("latency_ms") or {}).get("p50")), _num(v.get("zipped_bytes"))),
    "coldest-start": lambda v: (_num((v.get("cold_start_ms") or {}).get("p50")), _num(v.get("zipped_bytes"))),
    "most-accurate": lambda v: (
        -_num(v.get("accuracy"), -INF),
        -_num((v.get("fidelity") or {}).get("agreement"), -INF),
        _num((v.get("fidelity") or {}).get("max_abs_err")),
        _num(v.get("zipped_bytes")),
    ),
}
REASONS = {
    "smallest": "smallest zipped size",
    "fastest": "lowest median warm latency",
    "coldest-start": "lowest median cold start",
    "most-accurate": "highest accuracy",
}


def select(variants: list[dict], policy: str) -> tuple[str | None, str, str | None]:
    """Return (selected name or None, reason sentence, closest name when nothing passed)."""
    candidates = [v for v in variants if v["name"] != "keras" and v["status"] == "ok"]
    key = POLICIES[policy]
    passing = [v for v in candidates if v["budgets_passed"]]
    if passing:
        best = min(passing, key=lambda v: (*key(v), v["name"]))
        return best["name"], f"{best['name']}: {REASONS[policy]} of {len(passing)} variant(s) within every budget", None
    if not candidates:
        return None, "no variant was built successfully", None
    closest = min(
        candidates, key=lambda v: (sum(not b["passed"] for b in v["budgets"]), *key(v), v["name"])
    )
    return None, "no variant meets every budget", closest["name"]
