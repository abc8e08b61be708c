"""The recommendations, in the order they depend on each other, and the checks before any of them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from modelpack import limits
from modelpack.errors import UsageError
from modelpack.tune.concurrency import MONTH_S, recommend_provisioned
from modelpack.tune.dist import BuildFacts
from modelpack.tune.memory_size import recommend_memory
from modelpack.tune.records import Evidence, Recommendation, percentile, rounded
from modelpack.tune.snapstart import recommend_snapstart
from modelpack.tune.sources import Observations

IDLE_MS = 5 * 60_000  # an environment idle this long may be reclaimed (Lambda keeps them for minutes, unstated)
WARMER = "rate(5 minutes)"
WARMER_WORTH = 0.01  # keep a warmer when this share of requests arrives after an idle gap
TIMEOUT_TAIL = 2.0  # the timeout leaves this factor over the slowest observed invocation (init included)
MIN_TIMEOUT_S = 3  # Lambda's default


@dataclass(frozen=True)
class TuneResult:
    function: str
    source: str
    requests: int
    recommendations: tuple[Recommendation, ...]
    notes: tuple[str, ...]
    skipped: dict = field(default_factory=dict)  # count and first examples of the input lines left out

    def to_json(self) -> dict:
        return {"function": self.function, "source": self.source, "requests": self.requests,
                "recommendations": [r.to_json() for r in self.recommendations], "notes": list(self.notes),
                "skipped": self.skipped}


def untimed(setting: str, current: int | str | None) -> Recommendation:
    """What cannot be judged without timestamps: load over time, idle gaps."""
    return Recommendation(setting, current, current, "the log lines carry no timestamps (copied from a console), so "
                          "load over time is unknown; left as it is. Export the log group with timestamps to "
                          "judge it.", (), write=False)


def check_data(obs: Observations, function: str) -> None:
    """No REPORT lines means nothing to base a recommendation on: say so, never guess."""
    if not obs.invocations:
        raise UsageError(
            f"no invocations of '{function}' found in {obs.source}: no REPORT lines to learn from. Check the function "
            "name (its log group is /aws/lambda/<name>), the region and --since, or export its logs and pass "
            "--from-logs FILE. Nothing was recommended.")


def recommend_timeout(obs: Observations, facts: BuildFacts) -> Recommendation:
    totals = [inv.duration_ms + (inv.init_ms or 0) for inv in obs.invocations]
    timed_out = sum(inv.status == "timeout" for inv in obs.invocations)
    tail, worst = percentile(totals, 99.9), max(totals)
    if timed_out and facts.timeout_s:
        value = min(limits.LAMBDA_TIMEOUT_S, facts.timeout_s * 2)
        why = f"{timed_out} invocation(s) ran into the timeout: their real length is unknown, so it doubles"
    else:
        value = max(MIN_TIMEOUT_S, min(limits.LAMBDA_TIMEOUT_S, math.ceil(TIMEOUT_TAIL * worst / 1000)))
        why = f"{TIMEOUT_TAIL:g}× the slowest invocation (init included), at least {MIN_TIMEOUT_S} s"
    evidence = (Evidence("invocations", len(totals), "", "REPORT lines"),
                Evidence("duration + init p99.9 / max", f"{tail:.0f} / {worst:.0f}", "ms", "REPORT lines"),
                Evidence("timed out", timed_out, "", "REPORT Status: timeout"))
    return Recommendation("timeout_s", facts.timeout_s, value, why, evidence)


def recommend_warmer(obs: Observations, facts: BuildFacts, provisioned: Recommendation, memory_mb: int) -> Recommendation:
    current = facts.warmer_schedule
    warmers = [(inv, h) for inv, h in obs.pairs if h is not None and h.kind == "warmer"]
    requests = [inv for inv, h in obs.pairs if h is None or h.kind != "warmer"]
    starts = sorted(inv.start_ms for inv in requests)
    after_idle = sum(1 for a, b in zip(starts, starts[1:]) if b - a >= IDLE_MS) + (1 if starts else 0)
    share = after_idle / len(starts) if starts else 0.0
    warm_ms = percentile([inv.billed_ms for inv, _ in warmers], 50) or 1.0
    per_month = MONTH_S / 300 * (limits.LAMBDA_PRICE_PER_REQUEST
                                 + warm_ms / 1000 * memory_mb / 1024 * limits.LAMBDA_PRICE_PER_GB_S[facts.arch])
    evidence = (Evidence("requests after 5+ idle minutes", f"{after_idle} of {len(starts)}", "", "REPORT lines"),
                Evidence("warmer invocations seen", len(warmers), "", "handler lines (event: warmer)"),
                Evidence(f"a {WARMER} warmer costs", rounded(per_month, 3), "USD per month",
                         f"{warm_ms:g} ms billed per warm call"))
    if not starts:
        return Recommendation("warmer_schedule", current, current,
                              "no requests in the window, only warmer calls: nothing shows whether it helps", evidence,
                              write=False)
    if provisioned.recommended is not None:
        return Recommendation("warmer_schedule", current, None,
                              "provisioned concurrency keeps environments initialized; a warmer adds nothing", evidence)
    if share >= WARMER_WORTH:
        return Recommendation("warmer_schedule", current, current or WARMER,
                              f"{share:.0%} of requests arrive after the function sat idle long enough to lose its "
                              f"environment; a warmer keeps one ready for ${per_month:.2f} a month", evidence)
    return Recommendation("warmer_schedule", current, None,
                          f"traffic keeps the function warm by itself (only {share:.1%} of requests follow an idle gap)",
                          evidence)


def recommend_all(obs: Observations, facts: BuildFacts, function: str, named: str | None = None) -> TuneResult:
    check_data(obs, function)
    memory = recommend_memory(obs, facts)
    size = memory.recommended if isinstance(memory.recommended, int) else (facts.memory_mb or 1024)
    if obs.timed:
        provisioned = recommend_provisioned(obs, facts, size)
        snapstart = recommend_snapstart(obs, facts, provisioned, size)
        warmer = recommend_warmer(obs, facts, provisioned, size)
    else:
        provisioned = untimed("provisioned_concurrency", facts.provisioned_concurrency)
        snapstart = untimed("snapstart", facts.snapstart)
        warmer = untimed("warmer_schedule", facts.warmer_schedule)
    recs = (memory, provisioned, snapstart, recommend_timeout(obs, facts), warmer)
    notes = [f"function: {function} (from {named}; pass --function to name another)"] if named else []
    notes += obs.skipped.notes()
    if obs.totals.get("Throttles"):
        notes.append(f"{obs.totals['Throttles']:g} throttled invocations: the account or reserved concurrency limit "
                     "was reached; raise it or provision concurrency.")
    if obs.totals.get("Errors"):
        notes.append(f"{obs.totals['Errors']:g} invocation errors (the handler answers errors as JSON, so these are "
                     "crashes or timeouts): read the log group.")
    server = sum(1 for h in obs.handler if h.status >= 500)
    if server:
        notes.append(f"{server} requests answered 5xx (the handler's log lines name the cause).")
    if not obs.handler:
        notes.append("no modelpack handler lines (EMF) were found: cold starts come from REPORT lines alone and "
                     "inference time could not be separated from handler time.")
    if obs.metric_percentiles:
        notes.append("CloudWatch Duration percentiles: " + ", ".join(
            f"{k} {v:.1f} ms" for k, v in sorted(obs.metric_percentiles.items())))
    elif obs.source.startswith("CloudWatch"):
        notes.append("CloudWatch answered no Duration percentiles; they were computed from the REPORT lines.")
    requests = sum(1 for _, h in obs.pairs if h is None or h.kind != "warmer")
    skipped = {"count": obs.skipped.count, "examples": obs.skipped.examples, "older_than_since": obs.skipped.older}
    return TuneResult(function, obs.source, requests, recs, tuple(notes), skipped)
