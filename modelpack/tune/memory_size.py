"""Memory size from production durations, rescaled along the memory curve the build measured.

An observed warm duration has two parts: inference (the handler's InferenceMs) and everything else the
handler does (event parsing, JSON, logging). Inference moves along the build's measured curve; the rest is
single-threaded Python, whose speed follows the CPU share up to one vCPU. The floor is the largest
`Max Memory Used` seen plus the build's headroom.
"""

from __future__ import annotations

import math

from modelpack import limits
from modelpack.measure import memory_curve as curve_tools
from modelpack.tune.dist import BuildFacts
from modelpack.tune.records import CHANGE_WORTH, Evidence, Recommendation, percentile, rounded, usd_pair
from modelpack.tune.sources import Observations

STEP_MB = 64  # the floor is rounded up to a multiple of this


def share(mb: float) -> float:
    """Fraction of one vCPU a size gets, capped at one (a single Python thread uses no more)."""
    return min(1.0, curve_tools.cpu_share(int(mb)))


def curve_at(facts: BuildFacts, mb: int) -> float | None:
    """Measured inference duration at `mb`, interpolated between sizes (noise within the band flattened)."""
    if not facts.curve:
        return None
    rows = [{"memory_mb": p.memory_mb, "duration_ms": p.duration_ms} for p in facts.curve]
    eff = sorted(curve_tools.effective_durations(rows).items())
    if mb <= eff[0][0]:
        return eff[0][1] * share(eff[0][0]) / share(mb)
    if mb >= eff[-1][0]:
        return eff[-1][1] * share(eff[-1][0]) / share(mb)
    for (m0, d0), (m1, d1) in zip(eff, eff[1:]):
        if m0 <= mb <= m1:
            return d0 + (d1 - d0) * (mb - m0) / (m1 - m0)
    return eff[-1][1]


def recommend_memory(obs: Observations, facts: BuildFacts) -> Recommendation:
    reqs = [(inv, h) for inv, h in obs.pairs if h is None or h.kind != "warmer"]
    current = reqs[-1][0].memory_size_mb if reqs else facts.memory_mb
    warm = [(inv, h) for inv, h in reqs if inv.memory_size_mb == current and inv.init_ms is None
            and not (h and h.cold)]
    if not warm:
        return Recommendation("memory_mb", facts.memory_mb, facts.memory_mb,
                              "no warm request was observed: nothing to rescale", (), write=False)
    durations = [inv.duration_ms for inv, _ in warm]
    mean, p99 = sum(durations) / len(durations), percentile(durations, 99)
    infer = [h.inference_ms for _, h in warm if h and h.inference_ms is not None]
    infer_mean = min(mean, sum(infer) / len(infer)) if infer else 0.0
    peak_used = max(inv.max_memory_mb for inv, _ in obs.pairs)
    floor = max(limits.LAMBDA_MEMORY_MB[0], peak_used + facts.headroom_mb)
    floor_size = min(limits.LAMBDA_MEMORY_MB[1], math.ceil(floor / STEP_MB) * STEP_MB)
    sizes = sorted({p.memory_mb for p in facts.curve} | {current, floor_size})
    sizes = [mb for mb in sizes if floor <= mb <= limits.LAMBDA_MEMORY_MB[1]] or [floor_size]
    c_now = curve_at(facts, current)

    def predicted(mb: int) -> float:
        c = curve_at(facts, mb)
        inf_ratio = c / c_now if c is not None and c_now else share(current) / share(mb)
        return infer_mean * inf_ratio + (mean - infer_mean) * share(current) / share(mb)

    pred = {mb: predicted(mb) for mb in sizes}
    pred_p99 = {mb: p99 * pred[mb] / mean for mb in sizes}
    rows = [{"memory_mb": mb, "duration_ms": pred[mb], "possible": True, "latency_ms": {}} for mb in sizes]
    picks = curve_tools.recommend(rows, facts.balanced_weight)
    chosen, why = picks["balanced"], "balanced size (cost and speed weighed) among sizes above the floor"
    budget, q = facts.latency_budget_ms, facts.latency_budget_q
    if budget is not None:  # the budget says how fast is fast enough: the cheapest size that meets it
        observed_q = percentile(durations, q)
        pred_q = {mb: observed_q * pred[mb] / mean for mb in sizes}
        meeting = [mb for mb in sizes if pred_q[mb] <= budget]
        if meeting:
            chosen = min(meeting, key=lambda mb: (max(1.0, pred[mb]) * mb, mb))
            why = (f"cheapest size whose predicted p{q} meets the {facts.latency_budget_name} budget of {budget:g} ms "
                   f"(observed p{q} at {current} MB: {observed_q:.1f} ms)")
        else:
            chosen = picks["speed"]
            why = f"fastest size; no size is predicted to meet the {facts.latency_budget_name} budget of {budget:g} ms"
    cost = {mb: curve_tools.cost_per_million(pred[mb], mb, facts.arch, facts.prices) for mb in sizes}
    if chosen != current and current in pred and (budget is None or pred_q[current] <= budget):
        cost_gain, speed_gain = 1 - cost[chosen] / cost[current], 1 - pred[chosen] / pred[current]
        if max(cost_gain, speed_gain) < CHANGE_WORTH:
            why = (f"keep {current} MB: {chosen} MB ({why}) would change the cost per request by {-cost_gain:+.1%} "
                   f"and the duration by {-speed_gain:+.1%}, under the {CHANGE_WORTH:.0%} a change must gain in "
                   "one of them")
            chosen = current
    if chosen != current and current in pred:
        cost_change, speed_change = cost[chosen] / cost[current] - 1, pred[chosen] / pred[current] - 1
        why += (f"; against {current} MB: {abs(speed_change):.0%} {'faster' if speed_change < 0 else 'slower'}, "
                f"{abs(cost_change):.1%} {'cheaper' if cost_change < 0 else 'dearer'} per request")
    before, after = usd_pair(cost.get(current, curve_tools.cost_per_million(mean, current, facts.arch)), cost[chosen])
    source = obs.source
    evidence = (
        Evidence("memory size observed", current, "MB", "REPORT lines"),
        Evidence("warm requests", len(warm), "", source),
        Evidence("duration p50 / p99", f"{percentile(durations, 50):.1f} / {p99:.1f}", "ms", "REPORT lines"),
        Evidence("inference share of the mean duration", rounded(infer_mean / mean if mean else 0, 3), "",
                 "handler EMF InferenceMs" if infer else "no InferenceMs: all of it scaled by CPU share"),
        Evidence("max memory used", peak_used, "MB", "REPORT lines"),
        Evidence("floor (max used + headroom)", floor, "MB", f"headroom {facts.headroom_mb} MB from the build"),
        Evidence(f"predicted p99 at {chosen} MB", rounded(pred_p99[chosen]), "ms",
                 "measured memory curve (report.json memory)" if facts.curve else "CPU share only (no curve)"),
        Evidence(f"cost per 1M requests, {current} → {chosen} MB", f"{before} → {after}", "USD",
                 f"{facts.arch} list price"),
    )
    if budget is not None:
        evidence += (Evidence(f"latency budget ({facts.latency_budget_name})", budget, "ms", "report.json budgets"),)
    details = {"strategies": picks, "floor_mb": floor,
               "sizes": [{"memory_mb": mb, "predicted_ms": rounded(pred[mb], 3), "predicted_p99_ms": rounded(pred_p99[mb], 3),
                          "cost_per_million": rounded(cost[mb], 4)} for mb in sizes]}
    return Recommendation("memory_mb", facts.memory_mb if facts.memory_mb is not None else current, chosen, why,
                          evidence, details)
