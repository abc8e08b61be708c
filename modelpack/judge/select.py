"""Pick the winning variant among those that pass every budget; the float baseline is never picked."""

from __future__ import annotations

from collections.abc import Callable

INF = float("inf")
TIE = 0.05  # timings within 5 % of the best are noise: among those, the smallest variant wins


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
TIMED = ("fastest", "coldest-start")
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
        reason = f"{best['name']}: {REASONS[policy]} of {len(passing)} variant(s) within every budget"
        if policy in TIMED:
            limit = key(best)[0] * (1 + TIE)
            close = [v for v in passing if key(v)[0] <= limit]
            smallest = min(close, key=lambda v: (_num(v.get("zipped_bytes")), key(v)[0], v["name"]))
            if smallest is not best:
                reason = (f"{smallest['name']}: smallest of {len(close)} variant(s) within {TIE:.0%} of the "
                          f"{REASONS[policy]} ({best['name']}), a difference within measurement noise")
                best = smallest
        return best["name"], reason, None
    if not candidates:
        return None, "no variant was built successfully", None
    closest = min(
        candidates, key=lambda v: (sum(not b["passed"] for b in v["budgets"]), *key(v), v["name"])
    )
    return None, "no variant meets every budget", closest["name"]
