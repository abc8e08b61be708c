"""Provisioned concurrency: the level (or daily schedule) that the observed load pays for.

Provisioned environments cost money while idle and less per GB-s while busy, so a level is worth its
price when the load keeps it busy. For each level the minutes' load is split: the share `level /
concurrency` of the busy time runs on provisioned environments (their duration price), the rest on
demand. The cheapest level wins; with two days or more of data, each hour of the day gets its own
cheapest level, and a schedule is recommended when it costs clearly less than one fixed level.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

from modelpack import limits
from modelpack.tune.dist import BuildFacts
from modelpack.tune.records import CHANGE_WORTH, Evidence, Recommendation, rounded
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


@dataclass
class Load:
    """The window's minutes: those with load (as observed) and how many had none, in total and per UTC hour.
    Idle minutes are counted, not listed, so memory follows the log lines, not the length of the window."""

    active: dict[int, Minute]
    idle: int
    idle_by_hour: list[int]

    @property
    def minutes(self) -> int:
        return len(self.active) + self.idle


def _load(obs: Observations) -> Load:
    first = min(obs.minutes, default=obs.start_ms // 60_000 * 60_000)
    start = min(first, obs.start_ms // 60_000 * 60_000)
    end = max(max(obs.minutes, default=first), (obs.end_ms - 1) // 60_000 * 60_000)
    idle_by_hour = [0] * 24
    t = start
    while t <= end:  # hour by hour: at most 24 × the days of --since
        block_end = min(end, (t // 3_600_000 + 1) * 3_600_000 - 60_000)
        idle_by_hour[_hour(t)] += (block_end - t) // 60_000 + 1
        t = block_end + 60_000
    for minute in obs.minutes:
        idle_by_hour[_hour(minute)] -= 1
    return Load(dict(obs.minutes), sum(idle_by_hour), idle_by_hour)


def _hour(t_ms: int) -> int:
    return datetime.fromtimestamp(t_ms / 1000, timezone.utc).hour


def _cost(minutes: list[Minute], idle: int, level: int, gb: float, arch: str) -> float:
    return sum(_minute_cost(m, level, gb, arch) for m in minutes) + idle * _minute_cost(Minute(), level, gb, arch)


def _cheapest(minutes: list[Minute], idle: int, gb: float, arch: str) -> tuple[int, float]:
    top = math.ceil(max((m.concurrency for m in minutes), default=0))
    costs = {lv: _cost(minutes, idle, lv, gb, arch) for lv in range(top + 1)}
    best = min(costs, key=lambda lv: (costs[lv], lv))
    return best, costs[best]


def _schedule(load: Load, gb: float, arch: str) -> tuple[list[dict], float]:
    """Cheapest level per UTC hour of the day, merged into scheduled actions."""
    by_hour: dict[int, list[Minute]] = {h: [] for h in range(24)}
    for t, m in load.active.items():
        by_hour[_hour(t)].append(m)
    levels, total = {}, 0.0
    for h, ms in by_hour.items():
        levels[h], cost = _cheapest(ms, load.idle_by_hour[h], gb, arch)
        total += cost
    actions = [{"at_utc": f"{h:02d}:00", "cron": f"cron(0 {h} * * ? *)", "provisioned_concurrency": levels[h]}
               for h in range(24) if levels[h] != levels[(h - 1) % 24]]
    return actions, total


def _percentile(values: list[float], zeros: int, q: float) -> float:
    """The q-th percentile (linear interpolation, as numpy's) of `values` and `zeros` more zeros, values ≥ 0."""
    ordered = sorted(values)
    n = len(ordered) + zeros
    if n == 0:
        return 0.0
    pos = q / 100 * (n - 1)
    at = lambda k: 0.0 if k < zeros else ordered[k - zeros]  # noqa: E731
    low = math.floor(pos)
    return at(low) + (at(min(low + 1, n - 1)) - at(low)) * (pos - low)


def recommend_provisioned(obs: Observations, facts: BuildFacts, memory_mb: int) -> Recommendation:
    current = facts.provisioned_concurrency
    load = _load(obs)
    span_s = load.minutes * 60
    scale = MONTH_S / span_s
    gb = memory_mb / 1024
    conc = [m.concurrency for m in load.active.values()]
    reqs = [(inv, h) for inv, h in obs.pairs if h is None or h.kind != "warmer"]
    colds = [inv for inv, h in reqs if inv.init_ms is not None or (h and h.cold)]
    active = list(load.active.values())
    level, cost = _cheapest(active, load.idle, gb, facts.arch)
    on_demand = _cost(active, load.idle, 0, gb, facts.arch)
    small = level > 0 and on_demand - cost < CHANGE_WORTH * on_demand
    if small:  # cheaper, but by too little to be worth a standing configuration
        saving = (on_demand - cost) * scale
        level, cost = 0, on_demand
    evidence = [
        Evidence("window", round(span_s / 3600, 1), "hours", obs.load_source),
        Evidence("concurrency p50 / p95 / max per minute",
                 f"{_percentile(conc, load.idle, 50):g} / {_percentile(conc, load.idle, 95):g} / "
                 f"{max(conc, default=0):g}", "executions",
                 obs.load_source),
        Evidence("cold-start rate", rounded(len(colds) / len(reqs), 4) if reqs else None, "",
                 "REPORT Init Duration and handler ColdStart"),
        Evidence("on-demand duration cost", rounded(on_demand * scale, 4), "USD per month", f"{facts.arch} list price"),
    ]
    details: dict = {"cheapest_fixed_level": level, "monthly_cost_fixed": rounded(cost * scale),
                     "monthly_cost_on_demand": rounded(on_demand * scale, 4), "memory_mb": memory_mb,
                     "monthly_extra_one_environment": rounded(_cheapest_extra(active, load.idle, gb, facts.arch,
                                                                              on_demand, scale), 4)}
    if span_s >= DAILY_MIN_S:
        actions, sched_cost = _schedule(load, gb, facts.arch)
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
    if small:
        return Recommendation("provisioned_concurrency", current, None,
                              f"provisioning would save ${saving:.2f} a month, under the {CHANGE_WORTH:.0%} of the "
                              f"on-demand cost (${on_demand * scale:.2f}) a change must gain", tuple(evidence), details)
    if level == 0:
        extra = _cheapest_extra(active, load.idle, gb, facts.arch, on_demand, scale)
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


def _cheapest_extra(minutes: list[Minute], idle: int, gb: float, arch: str, on_demand: float, scale: float) -> float:
    return (_cost(minutes, idle, 1, gb, arch) - on_demand) * scale
