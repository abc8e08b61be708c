"""Memory tuning arithmetic against hand-computed values, and the CPU-share emulation itself."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from modelpack.measure import memory_curve


def test_cpu_share_and_threads():
    assert memory_curve.cpu_share(1769) == pytest.approx(1.0)
    assert memory_curve.cpu_share(128) == pytest.approx(128 / 1769)
    assert memory_curve.threads_for(512, cores=2) == 1
    assert memory_curve.threads_for(3538, cores=2) == 2
    assert memory_curve.threads_for(10240, cores=2) == 2  # capped by the machine


def test_cost_per_million_hand_computed():
    # 2.3 ms is billed as 3 ms; 1024 MB = 1 GB; x86_64 $0.0000166667 per GB-s; $0.20 per million requests.
    assert memory_curve.cost_per_million(2.3, 1024, "x86_64") == pytest.approx(1e6 * (0.003 * 1 * 0.0000166667 + 0.2e-6))
    # 512 MB on arm64, 10 ms exactly.
    assert memory_curve.cost_per_million(10.0, 512, "arm64") == pytest.approx(1e6 * (0.010 * 0.5 * 0.0000133334 + 0.2e-6))
    # Sub-millisecond work still pays one ms.
    assert memory_curve.cost_per_million(0.01, 128, "x86_64") == pytest.approx(1e6 * (0.001 * 0.125 * 0.0000166667 + 0.2e-6))


def test_price_override():
    prices = {"x86_64_per_gb_s": 0.00001, "per_request": 0.0}
    assert memory_curve.cost_per_million(1000, 2048, "x86_64", prices) == pytest.approx(1e6 * 1 * 2 * 0.00001)


def test_trimmed_mean_drops_both_tails():
    assert memory_curve.trimmed_mean([1, 2, 3, 4, 5, 6, 7, 8, 9, 1000]) == pytest.approx(5.5)


def row(mb, duration, possible=True):
    return {"memory_mb": mb, "duration_ms": duration, "possible": possible,
            "cost_per_million": {"x86_64": memory_curve.cost_per_million(duration, mb, "x86_64"),
                                 "arm64": memory_curve.cost_per_million(duration, mb, "arm64")}}


def test_recommendations_per_strategy():
    rows = [row(128, 40.0, possible=False), row(256, 20.0), row(512, 9.0), row(1024, 5.0), row(2048, 4.5)]
    rec = memory_curve.recommend(rows, weight=0.5)
    assert rec["cost"] == 512  # 9 ms at 0.5 GB is cheaper than 20 ms at 0.25 GB; 128 MB is impossible
    assert rec["speed"] == 2048
    assert rec["balanced"] == 1024
    assert memory_curve.recommend(rows, weight=1.0)["balanced"] == rec["cost"]
    assert memory_curve.recommend(rows, weight=0.0)["balanced"] == rec["speed"]
    assert memory_curve.recommend([row(128, 1.0, possible=False)], 0.5) == {"cost": None, "speed": None, "balanced": None}


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
    throttled = wall(memory_curve.duty_cycle(0.25))
    assert throttled > 2.5 * free  # a quarter of the CPU: about four times the wall time


def measured(mb, duration, std, runs=100):
    return {**row(mb, duration), "latency_ms": {"std": std, "runs": runs}}


# Three clean builds of the digits example (tflite-int8, 100 runs a size) on a shared 2-core machine: the
# durations are a few microseconds and move by more than 100 % between builds. Without a noise band these
# recommended balanced 1769, 1024 and 512 MB (and speed 1769, 3008, 512).
DIGITS_BUILDS = [
    [(256, 0.00471, 0.00455), (512, 0.0044, 0.00011), (1024, 0.00972, 0.01483), (1769, 0.00393, 0.0001),
     (3008, 0.00467, 0.00033)],
    [(256, 0.00474, 0.00008), (512, 0.00463, 0.4688), (1024, 0.00437, 0.0058), (1769, 0.00466, 0.00049),
     (3008, 0.00436, 0.0001)],
    [(256, 0.0047, 0.00014), (512, 0.00438, 0.00011), (1024, 0.00483, 0.00014), (1769, 0.00468, 0.00036),
     (3008, 0.00456, 0.00009)],
]


def test_noisy_builds_of_a_microsecond_model_recommend_the_same_sizes():
    recs = [memory_curve.recommend([measured(*r) for r in build], 0.5) for build in DIGITS_BUILDS]
    # Every duration is within the band of the smallest size's: more memory buys nothing measurable.
    assert recs == [{"cost": 256, "speed": 256, "balanced": 256}] * 3


def test_jitter_within_the_band_never_moves_a_recommendation():
    rng = np.random.default_rng(7)
    truth = [(256, 20.0), (512, 9.0), (1024, 5.0), (2048, 3.0), (3008, 2.9)]
    expected = memory_curve.recommend([measured(mb, d, d * 0.2) for mb, d in truth], 0.5)
    assert expected == {"cost": 512, "speed": 2048, "balanced": 2048}  # 3008 ties with 2048 and costs more
    for _ in range(300):
        # Each mean moves by up to 2 %; the spread of the samples (std 20 %) says that is within the noise.
        noisy = [measured(mb, d * (1 + rng.uniform(-0.02, 0.02)), d * 0.2) for mb, d in truth]
        assert memory_curve.recommend(noisy, 0.5) == expected
    tiny = [(256, 0.004), (512, 0.004), (1024, 0.004), (1769, 0.004)]
    for _ in range(300):
        noisy = [measured(mb, d * rng.uniform(0.5, 2.5), d * rng.uniform(0.01, 50)) for mb, d in tiny]
        assert memory_curve.recommend(noisy, 0.5) == {"cost": 256, "speed": 256, "balanced": 256}


def test_effective_durations_keep_real_gains_and_real_losses():
    rows = [measured(256, 10.0, 0.01), measured(512, 9.7, 0.01), measured(1024, 5.0, 0.01),
            measured(2048, 5.2, 0.01), measured(3008, 8.0, 0.01)]
    eff = memory_curve.effective_durations(rows)
    # 9.7 is within 5 % of 10: a tie, so 512 MB is taken as no faster than 256 MB; 5.0 is a real gain; 5.2 ties
    # with it; 8.0 is really slower and keeps its own time.
    assert eff == {256: 10.0, 512: 10.0, 1024: 5.0, 2048: 5.0, 3008: 8.0}
    # A wide measured spread widens the band: here twice the standard errors (2 * 3 / sqrt(100) each) exceed 5 %.
    assert memory_curve.effective_durations([measured(256, 10.0, 3.0), measured(512, 8.9, 3.0)])[512] == 10.0
    assert memory_curve.effective_durations([measured(256, 10.0, 0.1), measured(512, 8.9, 0.1)])[512] == 8.9



def test_sizes_that_cost_the_same_go_to_the_smallest():
    # Below one vCPU a CPU-bound model runs in proportion to its share: the same GB-ms at every size, so which
    # size measures cheapest is noise; the smallest size within 5 % of the lowest cost wins.
    rows = [measured(256, 20.0, 0.1), measured(512, 10.1, 0.1), measured(1024, 4.9, 0.1)]
    assert memory_curve.recommend(rows, 0.5)["cost"] == 256
    rows = [measured(256, 20.0, 0.1), measured(512, 9.0, 0.1)]  # 4.5 against 5 GB-ms: really cheaper
    assert memory_curve.recommend(rows, 0.5)["cost"] == 512
