"""report.png and report.html: zipped size against median latency, accuracy as colour, budgets as lines."""

from __future__ import annotations

import html
from pathlib import Path

from modelpack.limits import MB
from modelpack.report import HEADERS, BuildReport, variant_rows


def _cached(path: Path, cache, parts: tuple, render) -> Path:
    """Draw through the cache: the same plotted numbers give the same PNG, and a cached rebuild should not
    spend a second importing and running matplotlib."""
    import shutil

    from modelpack.cache import cache_key

    key = cache_key("chart", *parts)
    if cache is not None and (hit := cache.get(key)) is not None:
        shutil.copyfile(hit / path.name, path)
        return path
    render(path)
    if cache is not None:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            shutil.copyfile(path, Path(tmp) / path.name)
            cache.put(key, Path(tmp))
    return path


def write_chart(report: BuildReport, path: Path, budgets: dict, cache=None) -> Path | None:
    """Scatter of the measured variants; None when nothing was measured."""
    points = [v for v in report.variants if v["status"] == "ok" and v.get("latency_ms")]
    if not points:
        return None
    data = [(v["name"], v["zipped_bytes"], v["latency_ms"]["p50"], v.get("accuracy")) for v in points]
    limits = (budgets.get("max_zip_mb"), budgets.get("max_p50_ms"))
    return _cached(path, cache, (path.name, report.name, report.selected, data, limits),
                   lambda dest: _draw_chart(report, dest, budgets, points))


def _draw_chart(report: BuildReport, path: Path, budgets: dict, points: list[dict]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=110)
    xs = [v["zipped_bytes"] / MB for v in points]
    ys = [v["latency_ms"]["p50"] for v in points]
    colour_key = "accuracy" if all(v.get("accuracy") is not None for v in points) else None
    if colour_key:
        acc = [v["accuracy"] for v in points]
        lo, hi = min(acc), max(acc)
        pad = max(0.005, (hi - lo) * 0.05)
        scatter = ax.scatter(xs, ys, c=acc, cmap="viridis", vmin=lo - pad, vmax=hi + pad, s=70, edgecolors="black")
        fig.colorbar(scatter, ax=ax, label="accuracy")
    else:
        ax.scatter(xs, ys, s=70, color="tab:blue", edgecolors="black")
    for v, x, y in zip(points, xs, ys):
        weight = "bold" if v["name"] == report.selected else "normal"
        ax.annotate(v["name"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8, fontweight=weight)
    if budgets.get("max_zip_mb") is not None:
        ax.axvline(budgets["max_zip_mb"], color="tab:red", linestyle="--", label=f"max_zip_mb {budgets['max_zip_mb']:g}")
    if budgets.get("max_p50_ms") is not None:
        ax.axhline(budgets["max_p50_ms"], color="tab:orange", linestyle="--", label=f"max_p50_ms {budgets['max_p50_ms']:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("zipped size (MB, log)")
    ax.set_ylabel("median warm latency (ms, log)")
    ax.set_title(f"{report.name}: size vs latency (selected: {report.selected or 'none'})")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="best", fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)


def write_html(report: BuildReport, path: Path, chart: Path | None) -> Path:
    e = html.escape
    head = "".join(f"<th>{e(h)}</th>" for h in HEADERS)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in variant_rows(report))
    def value(b: dict) -> str:
        return "–" if b["value"] is None else f"{b['value']:.4g}"

    budgets = "".join(
        f"<tr><td>{e(b['name'])}</td><td>{b['limit']:g}</td><td>{value(b)}</td>"
        f"<td>{'pass' if b['passed'] else 'FAIL'}</td></tr>" for b in report.budgets
    )
    status = "passed" if report.passed else "FAILED"
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>modelpack: {e(report.name)}</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}td:first-child{text-align:left}</style>",
        "</head><body>",
        f"<h1>modelpack: {e(report.name)}</h1>",
        f"<p><b>{status}</b> — selected <code>{e(report.selected or 'none')}</code> ({e(report.selection_reason)})</p>",
        f"<img src='{chart.name}' alt='zipped size against median latency'>" if chart else "",
        f"<table><tr>{head}</tr>{body}</table>",
        f"<h2>Budgets</h2><table><tr><th>budget</th><th>limit</th><th>value</th><th>result</th></tr>{budgets}</table>"
        if report.budgets else "",
        "</body></html>\n",
    ]
    path.write_text("".join(parts))
    return path


def write_memory_chart(report: BuildReport, path: Path, cache=None) -> Path | None:
    """Duration, cold start and cost against memory size, with the recommendation marked."""
    if not report.memory:
        return None
    return _cached(path, cache, (path.name, report.memory), lambda dest: _draw_memory(report, dest))


def _draw_memory(report: BuildReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report.memory["rows"]
    mb = [r["memory_mb"] for r in rows]
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=110)
    ax.plot(mb, [r["cold_start_ms"] for r in rows], "o-", color="tab:blue", label="cold start (ms)")
    ax.plot(mb, [r["duration_ms"] * 1000 for r in rows], "s-", color="tab:green", label="mean inference (µs)")
    ax.set_xlabel("Lambda memory (MB)")
    ax.set_ylabel("time")
    ax.set_yscale("log")
    cost = ax.twinx()
    cost.plot(mb, [r["cost_per_million"]["x86_64"] for r in rows], "^--", color="tab:red", label="$ per 1M (x86_64)")
    cost.plot(mb, [r["cost_per_million"]["arm64"] for r in rows], "v--", color="tab:orange", label="$ per 1M (arm64)")
    cost.set_ylabel("USD per million invocations")
    best = report.memory["recommendations"].get("balanced")
    if best:
        ax.axvline(best, color="grey", linestyle=":", label=f"recommended {best} MB")
    lines = ax.get_legend_handles_labels()
    more = cost.get_legend_handles_labels()
    ax.legend(lines[0] + more[0], lines[1] + more[1], fontsize=8, loc="upper center")
    ax.set_title(f"{report.name}: {report.memory['variant']} by memory size (CPU share emulated)")
    fig.tight_layout()
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
