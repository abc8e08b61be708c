"""Memory tuning arithmetic against hand-computed values, and the CPU-share emulation itself."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from modelpack.measure import memory


def test_cpu_share_and_threads():
    assert memory.cpu_share(1769) == pytest.approx(1.0)
    assert memory.cpu_share(128) == pytest.approx(128 / 1769)
    assert memory.threads_for(512, cores=2) == 1
    assert memory.threads_for(3538, cores=2) == 2
    assert memory.threads_for(10240, cores=2) == 2  # capped by the machine


def test_cost_per_million_hand_computed():
    # 2.3 ms is billed as 3 ms; 1024 MB = 1 GB; x86_64 $0.0000166667 per GB-s; $0.20 per million requests.
    assert memory.cost_per_million(2.3, 1024, "x86_64") == pytest.approx(1e6 * (0.003 * 1 * 0.0000166667 + 0.2e-6))
    # 512 MB on arm64, 10 ms exactly.
    assert memory.cost_per_million(10.0, 512, "arm64") == pytest.approx(1e6 * (0.010 * 0.5 * 0.0000133334 + 0.2e-6))
    # Sub-millisecond work still pays one ms.
    assert memory.cost_per_million(0.01, 128, "x86_64") == pytest.approx(1e6 * (0.001 * 0.125 * 0.0000166667 + 0.2e-6))


def test_price_override():
    prices = {"x86_64_per_gb_s": 0.00001, "per_request": 0.0}
    assert memory.cost_per_million(1000, 2048, "x86_64", prices) == pytest.approx(1e6 * 1 * 2 * 0.00001)


def test_trimmed_mean_drops_both_tails():
    assert memory.trimmed_mean([1, 2, 3, 4, 5, 6, 7, 8, 9, 1000]) == pytest.approx(5.5)


def row(mb, duration, possible=True):
    return {"memory_mb": mb, "duration_ms": duration, "possible": possible,
            "cost_per_million": {"x86_64": memory.cost_per_million(duration, mb, "x86_64"),
                                 "arm64": memory.cost_per_million(duration, mb, "arm64")}}


def test_recommendations_per_strategy():
    rows = [row(128, 40.0, possible=False), row(256, 20.0), row(512, 9.0), row(1024, 5.0), row(2048, 4.5)]
    rec = memory.recommend(rows, weight=0.5)
    assert rec["cost"] == 512  # 9 ms at 0.5 GB is cheaper than 20 ms at 0.25 GB; 128 MB is impossible
    assert rec["speed"] == 2048
    assert rec["balanced"] == 1024
    assert memory.recommend(rows, weight=1.0)["balanced"] == rec["cost"]
    assert memory.recommend(rows, weight=0.0)["balanced"] == rec["speed"]
    assert memory.recommend([row(128, 1.0, possible=False)], 0.5) == {"cost": None, "speed": None, "balanced": None}


def test_duty_cycle_slows_a_cpu_bound_process_in_proportion():
    work = "import time\nt=time.process_time()\nwhile time.process_time()-t < 0.3: pass\n"

    def wall(controller=None) -> float:
        t = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", work])
        if controller:
            controller(proc)
        proc.wait()
        return time.perf_counter() - t

    free = wall()
    throttled = wall(memory.duty_cycle(0.25))
    assert throttled > 2.5 * free  # a quarter of the CPU: about four times the wall time
