"""Step 9, memory sizes: latency and cost of the selected variant at each Lambda memory size."""

from __future__ import annotations

import json

from modelpack.cache import cache_key
from modelpack.jsonio import dumps_strict
from modelpack.measure import memory, metrics
from modelpack.measure.runner import run_probe
from modelpack.output import sha256_file
from modelpack.pipeline.fingerprint import host_id
from modelpack.pipeline.state import BuildState


def tune_memory(state: BuildState) -> None:
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
        return json.loads((hit / "memory.json").read_text())
    rows = []
    for mb in tuning.sizes_mb:
        share = memory.cpu_share(mb)
        threads = memory.threads_for(mb)
        spec = state.probe_spec(chosen.file, chosen.format, None, threads=threads, runs=tuning.runs)
        control = memory.duty_cycle(share) if share < 1 else None
        with state.reporter.step(f"memory {mb} MB ({share:.2f} vCPU)"):
            warm = run_probe("warm", spec, state.work, controller=control)
            colds = [run_probe("cold", spec, state.work, controller=control) for _ in range(tuning.cold_runs)]
        duration = memory.trimmed_mean(warm["latency_ms"])
        rows.append({
            "memory_mb": mb, "cpu_share": round(share, 3), "threads": threads, "duty_cycled": share < 1,
            "duration_ms": duration, "latency_ms": metrics.latency_stats(warm["latency_ms"]),
            "cold_start_ms": metrics.median_of(colds)["total_ms"],
            "possible": (chosen.peak_rss_mb or 0) + tuning.headroom_mb <= mb,
            "cost_per_million": {arch: memory.cost_per_million(duration, mb, arch, tuning.prices)
                                 for arch in ("x86_64", "arm64")},
        })
    result = {"method": memory.METHOD, "variant": chosen.name, "rows": rows,
              "recommendations": memory.recommend(rows, tuning.balanced_weight),
              "balanced_weight": tuning.balanced_weight, "headroom_mb": tuning.headroom_mb}
    entry = state.work / "memory-tuning"
    entry.mkdir(exist_ok=True)
    (entry / "memory.json").write_text(dumps_strict(result))
    state.cache.put(key, entry)
    return result
