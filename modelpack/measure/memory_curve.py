"""Memory-size tuning before deployment: latency and cost of the selected variant at each Lambda memory size.

Lambda gives CPU in proportion to memory (limits.LAMBDA_MB_PER_VCPU per vCPU). The share is emulated here:
below one vCPU the probe process is duty-cycled with SIGSTOP / SIGCONT in fixed slices (it runs `share` of
every period, like a CPU quota); from one vCPU up it runs unthrottled with as many runtime threads as whole
vCPUs the size gets, capped by this machine's cores.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time

import numpy as np

from modelpack import limits
from modelpack.judge.select import TIE

PERIOD_S = 0.02
# Durations closer than this are one duration: a tenth of Lambda's 1 ms billing unit, far below the jitter of
# a single invocation, and wider than the few microseconds by which a tiny model's time moves between runs.
NOISE_FLOOR_MS = limits.LAMBDA_BILLING_MS / 10
METHOD = (f"CPU share emulated: below 1 vCPU ({limits.LAMBDA_MB_PER_VCPU} MB) the measured process is stopped and "
          f"continued (SIGSTOP/SIGCONT) in {PERIOD_S * 1000:.0f} ms periods, running memory/"
          f"{limits.LAMBDA_MB_PER_VCPU} of each; above it, the runtime gets one thread per whole vCPU, up to this "
          "machine's cores. Durations are inference only (no handler or network overhead). A larger size counts as "
          f"faster only by more than the noise band ({TIE:.0%}, {NOISE_FLOOR_MS} ms or twice the standard errors, "
          "whichever is widest); within it the smaller size is recommended.")


def cpu_share(memory_mb: int) -> float:
    return memory_mb / limits.LAMBDA_MB_PER_VCPU


def threads_for(memory_mb: int, cores: int | None = None) -> int:
    return max(1, min(int(cpu_share(memory_mb)), cores or os.cpu_count() or 1))


def duty_cycle(share: float, period_s: float = PERIOD_S):
    """A controller for run_probe: lets the process run `share` of every period until it exits."""
    on = period_s * share
    off = period_s - on

    def control(proc: subprocess.Popen) -> None:
        try:
            while proc.poll() is None:
                time.sleep(on)
                os.kill(proc.pid, signal.SIGSTOP)
                time.sleep(off)
                os.kill(proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            pass
        finally:
            try:
                os.kill(proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass

    return control


def trimmed_mean(values: list[float], cut: float = 0.1) -> float:
    """Mean without the lowest and highest `cut` fraction (noise at both ends)."""
    v = np.sort(np.asarray(values, dtype=np.float64))
    k = int(len(v) * cut)
    return float(v[k : len(v) - k].mean()) if len(v) > 2 * k else float(v.mean())


def cost_per_million(duration_ms: float, memory_mb: int, arch: str, prices: dict | None = None) -> float:
    """USD for one million invocations: duration billed per started ms, plus the request price."""
    p = prices or {}
    per_gb_s = p.get(f"{arch}_per_gb_s", limits.LAMBDA_PRICE_PER_GB_S[arch])
    per_request = p.get("per_request", limits.LAMBDA_PRICE_PER_REQUEST)
    unit = limits.LAMBDA_BILLING_MS
    billed_ms = max(unit, math.ceil(duration_ms / unit) * unit)
    return 1_000_000 * (billed_ms / 1000 * memory_mb / 1024 * per_gb_s + per_request)


def noise_ms(row: dict) -> float:
    """Twice the standard error of a row's mean duration: the band its own samples leave it in."""
    stats = row.get("latency_ms") or {}
    runs = stats.get("runs") or 0
    return 2 * stats["std"] / math.sqrt(runs) if runs > 1 and stats.get("std") is not None else 0.0


def effective_durations(rows: list[dict]) -> dict[int, float]:
    """Each size's duration, with differences inside the noise band taken as no difference.

    Walking up from the smallest size, a size counts as faster only when it beats the last size that was
    really faster by more than the band (TIE of that duration, NOISE_FLOOR_MS, or both rows' own noise,
    whichever is widest); within the band it takes that size's duration, so more memory never wins a tie.
    """
    effective: dict[int, float] = {}
    ref: dict | None = None
    for r in sorted(rows, key=lambda r: r["memory_mb"]):
        d = r["duration_ms"]
        if ref is None:
            ref, effective[r["memory_mb"]] = r, d
            continue
        base = effective[ref["memory_mb"]]
        band = max(TIE * base, NOISE_FLOOR_MS, noise_ms(ref) + noise_ms(r))
        if d < base - band:
            ref, effective[r["memory_mb"]] = r, d
        else:  # no faster than `ref`: within the band it ties, beyond it it is really slower
            effective[r["memory_mb"]] = d if d > base + band else base
    return effective


def recommend(rows: list[dict], weight: float) -> dict:
    """Memory size per strategy among possible sizes: cost, speed, and balanced (weight on cost).

    Timing noise must not move a recommendation. Durations go through `effective_durations` first. Cost is
    ranked on GB-ms of the duration itself, not rounded up to the billed ms (a 1 % wobble at a ms boundary
    would change it by a whole ms) and without the request price (the same at every size). Below one vCPU
    a CPU-bound model costs about the same at every size, so among the sizes within TIE of the lowest cost
    (or balanced score) the smallest wins, as among variants within TIE of the fastest.
    """
    ok = [r for r in rows if r["possible"]]
    if not ok:
        return {"cost": None, "speed": None, "balanced": None}
    duration = effective_durations(ok)
    gb_ms = {mb: max(limits.LAMBDA_BILLING_MS, d) * mb / 1024 for mb, d in duration.items()}
    c0, d0 = min(gb_ms.values()), min(duration.values())
    score = {mb: weight * gb_ms[mb] / c0 + (1 - weight) * duration[mb] / d0 for mb in duration}
    return {"cost": _smallest_near_best(gb_ms), "speed": min(duration, key=lambda mb: (duration[mb], mb)),
            "balanced": _smallest_near_best(score)}


def _smallest_near_best(values: dict[int, float]) -> int:
    best = min(values.values())
    return min(mb for mb, v in values.items() if v <= best * (1 + TIE))
