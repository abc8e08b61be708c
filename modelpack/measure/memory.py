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

PERIOD_S = 0.02
METHOD = (f"CPU share emulated: below 1 vCPU ({limits.LAMBDA_MB_PER_VCPU} MB) the measured process is stopped and "
          f"continued (SIGSTOP/SIGCONT) in {PERIOD_S * 1000:.0f} ms periods, running memory/"
          f"{limits.LAMBDA_MB_PER_VCPU} of each; above it, the runtime gets one thread per whole vCPU, up to this "
          "machine's cores. Durations are inference only (no handler or network overhead).")


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
    billed_ms = max(1, math.ceil(duration_ms))
    return 1_000_000 * (billed_ms / 1000 * memory_mb / 1024 * per_gb_s + per_request)


def recommend(rows: list[dict], weight: float) -> dict:
    """Memory size per strategy among possible sizes: cost, speed, and balanced (weight on cost)."""
    ok = [r for r in rows if r["possible"]]
    if not ok:
        return {"cost": None, "speed": None, "balanced": None}
    cheapest = min(ok, key=lambda r: (r["cost_per_million"]["x86_64"], r["memory_mb"]))
    fastest = min(ok, key=lambda r: (r["duration_ms"], r["memory_mb"]))
    c0, d0 = cheapest["cost_per_million"]["x86_64"], fastest["duration_ms"]
    balanced = min(ok, key=lambda r: (weight * r["cost_per_million"]["x86_64"] / c0
                                      + (1 - weight) * r["duration_ms"] / d0, r["memory_mb"]))
    return {"cost": cheapest["memory_mb"], "speed": fastest["memory_mb"], "balanced": balanced["memory_mb"]}
