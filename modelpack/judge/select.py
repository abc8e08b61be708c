"""Pick the winning variant among those that pass every budget; the float baseline is never picked.

Variants tied on the policy's measure (timings within measurement noise of the best, or equal sizes) are told
apart by fidelity to the Keras model first (top-1 agreement, then the largest output error), then by size; the
reason sentence says which of these decided.
"""

from __future__ import annotations

from collections.abc import Callable

INF = float("inf")
TIE = 0.05  # timings within 5 % of the best are noise: among those, fidelity and then size decide


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
UNITS = {"smallest": " bytes", "fastest": " ms", "coldest-start": " ms"}


def fidelity_key(v: dict) -> tuple[float, float]:
    """Closer to the Keras model first: higher top-1 agreement, then smaller largest output error."""
    fid = v.get("fidelity") or {}
    return -_num(fid.get("agreement"), 0.0), _num(fid.get("max_abs_err"))


def tied(policy: str, value: float, best: float) -> bool:
    """Whether `value` ties with the best on the policy's measure: within TIE for timings, equal otherwise."""
    if policy in TIMED:
        return value <= best * (1 + TIE)
    return value == best


def _fidelity_text(v: dict) -> str:
    fid = v.get("fidelity") or {}
    parts = []
    if fid.get("agreement") is not None:
        parts.append(f"agreement {fid['agreement']:.4f}")
    if fid.get("max_abs_err") is not None:
        parts.append(f"max abs error {fid['max_abs_err']:.2e}")
    return ", ".join(parts) or "fidelity unknown"


def tie_reason(policy: str, winner: dict, fastest: dict, close: list[dict]) -> str:
    """Why `winner` won among the `close` variants tied on the policy's measure."""
    value = POLICIES[policy](fastest)[0]
    within = (f"within {TIE:.0%} of the {REASONS[policy]} ({fastest['name']}, {value:.3g}{UNITS[policy]}), a "
              "difference within measurement noise" if policy in TIMED else f"tied on the {REASONS[policy]}")
    others = [v for v in close if v is not winner]
    runner = min(others, key=lambda v: (*fidelity_key(v), _num(v.get("zipped_bytes")), v["name"]))
    if fidelity_key(winner) < fidelity_key(runner):
        why = (f"of those it is the closest to the Keras model ({_fidelity_text(winner)}; next: {runner['name']}, "
               f"{_fidelity_text(runner)})")
    else:
        why = (f"of those closest to the Keras model ({_fidelity_text(winner)}), it is the smallest "
               f"({_num(winner.get('zipped_bytes')) / 1e6:.3f} MB zipped)")
    return f"{winner['name']}: {len(close)} variant(s) within every budget are {within}; {why}"


def select(variants: list[dict], policy: str) -> tuple[str | None, str, str | None]:
    """Return (selected name or None, reason sentence, closest name when nothing passed)."""
    candidates = [v for v in variants if v["name"] != "keras" and v["status"] == "ok"]
    key = POLICIES[policy]
    passing = [v for v in candidates if v["budgets_passed"]]
    if passing:
        best = min(passing, key=lambda v: (*key(v), v["name"]))
        close = [v for v in passing if tied(policy, key(v)[0], key(best)[0])] if policy != "most-accurate" else [best]
        if len(close) == 1:
            return best["name"], f"{best['name']}: {REASONS[policy]} of {len(passing)} variant(s) within every budget", None
        winner = min(close, key=lambda v: (*fidelity_key(v), _num(v.get("zipped_bytes")), key(v)[0], v["name"]))
        return winner["name"], tie_reason(policy, winner, best, close), None
    if not candidates:
        return None, "no variant was built successfully", None
    closest = min(
        candidates, key=lambda v: (sum(not b["passed"] for b in v["budgets"]), *key(v), v["name"])
    )
    return None, "no variant meets every budget", closest["name"]
