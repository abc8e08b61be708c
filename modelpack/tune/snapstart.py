"""SnapStart against provisioned concurrency and plain cold starts, from the observed traffic.

SnapStart (python3.12+) keeps a snapshot of each published version cached, billed per GB of memory per second
(at least three hours a version), and turns every cold start into a restore, billed per GB restored and for
its restore duration instead of its init. Provisioned concurrency keeps environments initialised and is billed
while they wait. Lambda does not combine the two on one function, so provisioned concurrency, when the load pays
for it (concurrency.py), wins; otherwise SnapStart is recommended when cold starts are frequent enough to matter,
their init is long enough for a restore to beat it, and it costs less a month than keeping one environment
provisioned. Prices: the list prices in modelpack/limits.py.
"""

from __future__ import annotations

import statistics

from modelpack import limits
from modelpack.tune.dist import BuildFacts
from modelpack.tune.records import Evidence, Recommendation, rounded
from modelpack.tune.sources import Observations

MONTH_S = 30 * 86_400
COLD_SHARE = 0.01  # cold starts must be at least this share of requests to be worth removing
# A restore is not free: AWS puts Python restores in the hundreds of milliseconds, so an init shorter than this
# is not reliably beaten by one. Lambda reports a function's restore durations only once SnapStart runs.
MIN_INIT_MS = 1_000.0


def monthly_cost(memory_mb: int, restores_per_month: float, init_ms: float, arch: str) -> dict[str, float]:
    """SnapStart's monthly fees for one live version, and the init duration its restores no longer bill."""
    gb = memory_mb / 1024
    cache = gb * MONTH_S * limits.LAMBDA_SNAPSTART_CACHE_PER_GB_S
    restores = restores_per_month * gb * limits.LAMBDA_SNAPSTART_RESTORE_PER_GB
    init_saved = restores_per_month * init_ms / 1000 * gb * limits.LAMBDA_PRICE_PER_GB_S[arch]
    return {"cache": cache, "restores": restores, "init_saved": init_saved, "extra": cache + restores - init_saved}


def recommend_snapstart(obs: Observations, facts: BuildFacts, provisioned: Recommendation,
                        memory_mb: int) -> Recommendation:
    current = facts.snapstart
    requests = [(inv, h) for inv, h in obs.pairs if h is None or h.kind != "warmer"]
    colds = [inv for inv, h in requests if inv.init_ms is not None or inv.restore_ms is not None or (h and h.cold)]
    inits = [inv.init_ms for inv, _ in requests if inv.init_ms is not None]
    restores = [inv.restore_ms for inv, _ in requests if inv.restore_ms is not None]
    span_s = max(60.0, (obs.end_ms - obs.start_ms) / 1000)
    per_month = len(colds) * MONTH_S / span_s
    init_ms = statistics.median(inits) if inits else 0.0
    cost = monthly_cost(memory_mb, per_month, init_ms, facts.arch)
    one_provisioned = (provisioned.details or {}).get("monthly_extra_one_environment")
    share = len(colds) / len(requests) if requests else 0.0
    evidence = (
        Evidence("cold starts", f"{len(colds)} of {len(requests)} requests", "", "REPORT Init/Restore Duration and "
                 "handler ColdStart"),
        Evidence("init duration p50", rounded(init_ms, 1) if inits else None, "ms", "REPORT Init Duration"),
        Evidence("restore duration p50", rounded(statistics.median(restores), 1) if restores else None, "ms",
                 "REPORT Restore Duration (only once SnapStart runs)"),
        Evidence("SnapStart cache + restores", f"{cost['cache']:.2f} + {cost['restores']:.2f}", "USD per month",
                 f"one live version at {memory_mb} MB; each older version is cached too until deleted"),
        Evidence("init no longer billed", rounded(cost["init_saved"], 2), "USD per month", f"{facts.arch} list price"),
        Evidence("one provisioned environment", rounded(one_provisioned, 2), "USD per month extra",
                 "against on-demand (provisioned_concurrency)"),
    )
    details = {"monthly_cost": {k: rounded(v, 4) for k, v in cost.items()}, "cold_start_share": rounded(share, 4),
               "cold_starts_per_month": rounded(per_month, 1)}

    def keep(value: bool, why: str, write: bool = True) -> Recommendation:
        return Recommendation("snapstart", current, value, why, evidence, details, write=write)

    if tuple(int(n) for n in facts.python.split(".")[:2]) < limits.LAMBDA_SNAPSTART_MIN_PYTHON:
        return keep(current, f"SnapStart needs python3.12 or later; the function runs python{facts.python}",
                    write=False)
    if provisioned.recommended:
        return keep(False, "provisioned concurrency is recommended for this load, and Lambda does not combine it "
                           "with SnapStart")
    if not colds:
        return keep(False, "no cold starts in the window: SnapStart would cost "
                           f"${cost['cache']:.2f} a month in snapshot cache for nothing")
    if current and restores:
        return keep(True, f"{share:.1%} of requests start from the snapshot (restore p50 "
                          f"{statistics.median(restores):.0f} ms) for ${cost['extra']:.2f} a month")
    if share < COLD_SHARE:
        return keep(False, f"cold starts are {share:.1%} of requests, under the {COLD_SHARE:.0%} worth removing")
    if init_ms < MIN_INIT_MS:
        return keep(False, f"the init takes {init_ms:.0f} ms (p50), under the {MIN_INIT_MS:.0f} ms a restore "
                           "reliably beats; SnapStart would add fees without a faster start")
    if one_provisioned is not None and cost["extra"] >= one_provisioned:
        return keep(False, f"SnapStart would cost ${cost['extra']:.2f} a month, not less than keeping one "
                           f"environment provisioned (${one_provisioned:.2f})")
    return keep(True, f"{share:.1%} of requests wait for a {init_ms:.0f} ms init; SnapStart restores them from a "
                      f"snapshot for ${cost['extra']:.2f} a month (cache and restores, less the init no longer "
                      "billed), less than one provisioned environment")
