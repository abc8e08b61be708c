"""Step 9, memory sizes: latency and cost of the selected variant at each Lambda memory size."""

from __future__ import annotations

import json
from pathlib import Path

from modelpack.cache import cache_key
from modelpack.jsonio import dumps_strict
from modelpack.measure import memory, metrics
from modelpack.measure.runner import run_probe
from modelpack.output import sha256_file
from modelpack.pipeline.fingerprint import host_id
from modelpack.pipeline.state import BuildState
from modelpack.report import BuildReport


def tune_memory(state: BuildState, report: BuildReport) -> dict | None:
    """The report's `memory` section, or None when the recipe asks for none or nothing was selected."""
    tuning = state.recipe.measure.memory
    chosen = report.variant(report.selected or "")
    if tuning is None or chosen is None:
        return None
    key = cache_key("memory", sha256_file(Path(chosen["file"])), tuning.model_dump(), chosen.get("peak_rss_mb"),
                    state.recipe.measure.latency.model_dump(), state.versions, host_id())
    if (hit := state.cache.get(key)) is not None:
        state.reporter.info("reused cached memory-size measurements")
        return json.loads((hit / "memory.json").read_text())
    rows = []
    for mb in tuning.sizes_mb:
        share = memory.cpu_share(mb)
        threads = memory.threads_for(mb)
        spec = state.probe_spec(Path(chosen["file"]), chosen["format"], None, threads=threads, runs=tuning.runs)
        control = memory.duty_cycle(share) if share < 1 else None
        with state.reporter.step(f"memory {mb} MB ({share:.2f} vCPU)"):
            warm = run_probe("warm", spec, state.work, controller=control)
            colds = [run_probe("cold", spec, state.work, controller=control) for _ in range(tuning.cold_runs)]
        duration = memory.trimmed_mean(warm["latency_ms"])
        rows.append({
            "memory_mb": mb, "cpu_share": round(share, 3), "threads": threads, "duty_cycled": share < 1,
            "duration_ms": duration, "latency_ms": metrics.latency_stats(warm["latency_ms"]),
            "cold_start_ms": metrics.median_of(colds)["total_ms"],
            "possible": (chosen.get("peak_rss_mb") or 0) + tuning.headroom_mb <= mb,
            "cost_per_million": {arch: memory.cost_per_million(duration, mb, arch, tuning.prices)
                                 for arch in ("x86_64", "arm64")},
        })
    result = {"method": memory.METHOD, "variant": chosen["name"], "rows": rows,
              "recommendations": memory.recommend(rows, tuning.balanced_weight),
              "balanced_weight": tuning.balanced_weight, "headroom_mb": tuning.headroom_mb}
    entry = state.work / "memory-tuning"
    entry.mkdir(exist_ok=True)
    (entry / "memory.json").write_text(dumps_strict(result))
    state.cache.put(key, entry)
    return result
