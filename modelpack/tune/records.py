"""Typed results of tuning: each recommendation with the evidence it rests on."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

# A change of a setting is recommended only when it gains at least this share of the cost or of the duration
# (memory size), or of the monthly cost (provisioned concurrency): smaller gains are within what the
# predictions can tell apart, and churn in the recipe for nothing.
CHANGE_WORTH = 0.05


def usd_pair(a: float, b: float) -> tuple[str, str]:
    """Two prices with enough decimals to tell them apart (never "$0.22 → $0.22" for different numbers)."""
    digits = 2
    while digits < 6 and a != b and round(a, digits) == round(b, digits):
        digits += 1
    return f"${a:.{digits}f}", f"${b:.{digits}f}"


@dataclass(frozen=True)
class Evidence:
    """One observed or derived figure behind a recommendation, and where it came from."""

    name: str
    value: float | int | str | None
    unit: str
    source: str


@dataclass(frozen=True)
class Recommendation:
    """A recipe setting of the lambda-function target: what it is, what it should be, and why.

    `write` is False when the recommendation cannot be expressed in the recipe (a provisioned-concurrency
    schedule) or when there is nothing to change; `--write` then leaves the setting alone.
    """

    setting: str
    current: int | str | None
    recommended: int | str | None
    reason: str
    evidence: tuple[Evidence, ...]
    details: dict = field(default_factory=dict)
    write: bool = True

    @property
    def changes(self) -> bool:
        return self.write and self.recommended != self.current

    def to_json(self) -> dict:
        return {**asdict(self), "evidence": [asdict(e) for e in self.evidence], "changes": self.changes}


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (linear interpolation) or None for no values."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else None


def rounded(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)
