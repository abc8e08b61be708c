"""Provisioned concurrency: the level (or daily schedule) that the observed load pays for.

Provisioned environments cost money while idle and less per GB-s while busy, so a level is worth its
price when the load keeps it busy. For each level the minutes' load is split: the share `level /
concurrency` of the busy time runs on provisioned environments (their duration price), the rest on
demand. The cheapest level wins; with two days or more of data, each hour of the day gets its own
cheapest level, and a schedule is recommended when it costs clearly less than one fixed level.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone

from modelpack import limits
from modelpack.tune.dist import BuildFacts
from modelpack.tune.records import Evidence, Recommendation, percentile, rounded
from modelpack.tune.sources import Minute, Observations

MONTH_S = 30 * 86_400
DAILY_MIN_S = 2 * 86_400  # a daily pattern needs two days of data
SCHEDULE_GAIN = 0.10  # a schedule must save this fraction of the fixed level's monthly cost


def _minute_cost(m: Minute, level: int, gb: float, arch: str) -> float:
    """USD for one minute at `level` provisioned environments."""
    od, pc, pcd = (limits.LAMBDA_PRICE_PER_GB_S[arch], limits.LAMBDA_PROVISIONED_PER_GB_S[arch],
                   limits.LAMBDA_PROVISIONED_DURATION_PER_GB_S[arch])
    busy_s = m.busy_ms / 1000
    on_pc = busy_s * min(1.0, level / m.concurrency) if m.concurrency > 0 else 0.0
    return level * gb * 60 * pc + on_pc * gb * pcd + (busy_s - on_pc) * gb * od


def _cheapest(minutes: list[Minute], gb: float, arch: str) -> tuple[int, float]:
    top = math.ceil(max((m.concurrency for m in minutes), default=0))
    costs = {lv: sum(_minute_cost(m, lv, gb, arch) for m in minutes) for lv in range(top + 1)}
    best = min(costs, key=lambda lv: (costs[lv], lv))
    return best, costs[best]


def _all_minutes(obs: Observations) -> dict[int, Minute]:
    """Every minute of the window, idle ones included (an idle minute still pays for provisioned environments)."""
    first = min(obs.minutes, default=obs.start_ms // 60_000 * 60_000)
    last = max(obs.minutes, default=first)
    start = min(first, obs.start_ms // 60_000 * 60_000)
    end = max(last, (obs.end_ms - 1) // 60_000 * 60_000)
    return {t: obs.minutes.get(t, Minute()) for t in range(start, end + 60_000, 60_000)}


def _schedule(minutes: dict[int, Minute], gb: float, arch: str) -> tuple[list[dict], float]:
    """Cheapest level per UTC hour of the day, merged into scheduled actions."""
    by_hour: dict[int, list[Minute]] = {h: [] for h in range(24)}
    for t, m in minutes.items():
        by_hour[datetime.fromtimestamp(t / 1000, timezone.utc).hour].append(m)
    levels, total = {}, 0.0
    for h, ms in by_hour.items():
        levels[h], cost = _cheapest(ms, gb, arch)
        total += cost
    actions = [{"at_utc": f"{h:02d}:00", "cron": f"cron(0 {h} * * ? *)", "provisioned_concurrency": levels[h]}
               for h in range(24) if levels[h] != levels[(h - 1) % 24]]
    return actions, total


def recommend_provisioned(obs: Observations, facts: BuildFacts, memory_mb: int) -> Recommendation:
    current = facts.provisioned_concurrency
    minutes = _all_minutes(obs)
    span_s = len(minutes) * 60
    scale = MONTH_S / span_s
    gb = memory_mb / 1024
    conc = [m.concurrency for m in minutes.values()]
    reqs = [(inv, h) for inv, h in obs.pairs if h is None or h.kind != "warmer"]
    colds = [inv for inv, h in reqs if inv.init_ms is not None or (h and h.cold)]
    level, cost = _cheapest(list(minutes.values()), gb, facts.arch)
    on_demand = sum(_minute_cost(m, 0, gb, facts.arch) for m in minutes.values())
    evidence = [
        Evidence("window", round(span_s / 3600, 1), "hours", obs.load_source),
        Evidence("concurrency p50 / p95 / max per minute",
                 f"{percentile(conc, 50):g} / {percentile(conc, 95):g} / {max(conc, default=0):g}", "executions",
                 obs.load_source),
        Evidence("cold-start rate", rounded(len(colds) / len(reqs), 4) if reqs else None, "",
                 "REPORT Init Duration and handler ColdStart"),
        Evidence("on-demand duration cost", rounded(on_demand * scale, 4), "USD per month", f"{facts.arch} list price"),
    ]
    details: dict = {"cheapest_fixed_level": level, "monthly_cost_fixed": rounded(cost * scale),
                     "monthly_cost_on_demand": rounded(on_demand * scale, 4), "memory_mb": memory_mb}
    if span_s >= DAILY_MIN_S:
        actions, sched_cost = _schedule(minutes, gb, facts.arch)
        details.update(schedule=actions, monthly_cost_schedule=rounded(sched_cost * scale))
        if len(actions) >= 2 and sched_cost < cost * (1 - SCHEDULE_GAIN):
            evidence.append(Evidence("with the schedule", rounded(sched_cost * scale), "USD per month",
                                     f"{len(actions)} scheduled actions, levels by UTC hour"))
            peak = max(a["provisioned_concurrency"] for a in actions)
            return Recommendation(
                "provisioned_concurrency", current, f"schedule (up to {peak})",
                f"load has a daily pattern: a schedule of levels by hour costs ${sched_cost * scale:.2f} a month "
                f"against ${cost * scale:.2f} for the best fixed level ({level}); apply it with Application Auto "
                "Scaling scheduled actions (details.schedule)", tuple(evidence), details, write=False)
    if level == 0:
        extra = _cheapest_extra(minutes, gb, facts.arch, on_demand, scale)
        evidence.append(Evidence("price of one provisioned environment", rounded(extra, 4), "USD per month extra",
                                 "against on-demand for the same load"))
        return Recommendation("provisioned_concurrency", current, None,
                              f"the load would leave provisioned environments idle: even one costs ${extra:.2f} a month "
                              "more than on-demand; cold starts are left to the warmer decision", tuple(evidence), details)
    evidence.append(Evidence(f"with {level} provisioned", rounded(cost * scale), "USD per month",
                             "provisioned price while ready and while busy, on-demand above the level"))
    return Recommendation("provisioned_concurrency", current, level,
                          f"steady load keeps {level} environments busy: provisioning them costs "
                          f"${(on_demand - cost) * scale:.2f} a month less than on-demand and removes their cold "
                          "starts", tuple(evidence), details)


def _cheapest_extra(minutes: dict[int, Minute], gb: float, arch: str, on_demand: float, scale: float) -> float:
    return (sum(_minute_cost(m, 1, gb, arch) for m in minutes.values()) - on_demand) * scale
