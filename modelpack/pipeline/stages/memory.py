"""The memory stage: latency and cost of the selected variant at each Lambda memory size."""

from __future__ import annotations

import json

from modelpack.files.cache import cache_key
from modelpack.files.jsonio import dumps_strict
from modelpack.files.output import sha256_file
from modelpack.measure import memory_curve, metrics
from modelpack.measure.runner import run_probe
from modelpack.pipeline.fingerprint import host_id
from modelpack.pipeline.state import BuildState


def run(state: BuildState) -> None:
    """Set the report's `memory` section (None when the recipe asks for none or nothing was selected)."""
    state.memory = _memory(state)


def _memory(state: BuildState) -> dict | None:
    tuning = state.recipe.measure.memory
    chosen = next((v for v in state.variants if v.name == state.selection.selected), None)
    if tuning is None or chosen is None:
        return None
    key = cache_key("memory", sha256_file(chosen.file), tuning.model_dump(), chosen.peak_rss_mb,
                    state.recipe.measure.latency.model_dump(), state.versions, host_id())
    if (hit := state.cache.get(key)) is not None:
        state.reporter.info("reused cached memory-size measurements")
        return json.loads((hit / "memory_curve.json").read_text())
    rows = []
    for mb in tuning.sizes_mb:
        share = memory_curve.cpu_share(mb)
        threads = memory_curve.threads_for(mb)
        spec = state.probe_spec(chosen.file, chosen.format, None, threads=threads, runs=tuning.runs)
        control = memory_curve.duty_cycle(share) if share < 1 else None
        with state.reporter.step(f"memory {mb} MB ({share:.2f} vCPU)"):
            warm = run_probe("warm", spec, state.work, controller=control)
            colds = [run_probe("cold", spec, state.work, controller=control) for _ in range(tuning.cold_runs)]
        duration = memory_curve.trimmed_mean(warm["latency_ms"])
        rows.append({
            "memory_mb": mb, "cpu_share": round(share, 3), "threads": threads, "duty_cycled": share < 1,
            "duration_ms": duration, "latency_ms": metrics.latency_stats(warm["latency_ms"]),
            "cold_start_ms": metrics.median_of(colds)["total_ms"],
            "possible": (chosen.peak_rss_mb or 0) + tuning.headroom_mb <= mb,
            "cost_per_million": {arch: memory_curve.cost_per_million(duration, mb, arch, tuning.prices)
                                 for arch in ("x86_64", "arm64")},
        })
    result = {"method": memory_curve.METHOD, "variant": chosen.name, "rows": rows,
              "recommendations": memory_curve.recommend(rows, tuning.balanced_weight),
              "balanced_weight": tuning.balanced_weight, "headroom_mb": tuning.headroom_mb}
    entry = state.work / "memory-tuning"
    entry.mkdir(exist_ok=True)
    (entry / "memory_curve.json").write_text(dumps_strict(result))
    state.cache.put(key, entry)
    return result
