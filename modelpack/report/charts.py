"""The report's charts (matplotlib), drawn from the report's JSON document.

report.png  zipped size against warm latency on linear axes from 0: one hollow marker per variant (named in the
            legend, so labels never overlap, and one drawn over another hides nothing), green within budgets /
            red outside them, a whisker up to p95, the selected one ringed; every latency budget the recipe set
            as a line inside the frame, budgets far outside the data (and a Keras baseline far beyond the
            variants) as an arrow at the edge.
cold.png    cold start of the Keras baseline, every converted variant, and the built handler, as bars from 0 on a
            linear axis, each labelled with its time and its fraction of the Keras baseline's.
memory.png  two panels over Lambda memory size: time (ms) and cost (USD per million), the recommendation marked.
distill.png the distilled student's training and held-out loss per epoch, the kept epoch marked.

Each chart is first reduced to the numbers it plots; the cache is keyed by them, so a cached rebuild copies the
PNG instead of importing matplotlib, and the same numbers always give the same file.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from modelpack.limits import MB
from modelpack.report import rows as R
from modelpack.report.distill import curve_data

STYLE_VERSION = 4  # bump when the drawing changes, so cached PNGs are redrawn
PASS, FAIL, BASE, CHOSEN, HANDLER = "#1a7f37", "#cf222e", "#6e7781", "#0969da", "#bc4c00"
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "h", "<", ">", "p", "*"]
LATENCY_BUDGETS = {"max_p50_ms": ("p50", "-."), "max_p95_ms": ("p95", "--"), "max_p99_ms": ("p99", ":")}
ASPECT = {"dpi": 110}


def write_charts(doc: dict, out_dir: Path, cache=None) -> dict[str, Path]:
    """Draw every chart the report has numbers for; {file name: path} in the order the report shows them."""
    written = {}
    for name, extract, draw in CHARTS:
        data = extract(doc)
        if data is not None:
            written[name] = _cached(out_dir / name, cache, data, draw)
    return written


def _cached(path: Path, cache, data: dict, draw: Callable[[dict, Path], None]) -> Path:
    from modelpack.files.cache import cache_key

    key = cache_key("chart", STYLE_VERSION, path.name, data)
    if cache is not None and (hit := cache.get(key)) is not None:
        shutil.copyfile(hit / path.name, path)
        return path
    draw(data, path)
    if cache is not None:
        with tempfile.TemporaryDirectory() as tmp:
            shutil.copyfile(path, Path(tmp) / path.name)
            cache.put(key, Path(tmp))
    return path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plain_log_ticks(axis, steps: tuple[float, ...] = (1.0, 2.0, 5.0)) -> None:
    """Log-axis ticks as plain numbers (0.05, 2, 300) on the decades and 2/5 steps; no crowded minor labels."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axis.set_major_locator(LogLocator(base=10, subs=steps, numticks=12))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _save(fig, path: Path) -> None:
    fig.savefig(path, metadata={"Software": None})
    _pyplot().close(fig)


# --- report.png: size against latency ---------------------------------------------------------------------

def scatter_data(doc: dict) -> dict | None:
    points = []
    for v in doc.get("variants", []):
        lat = v.get("latency_ms") or {}
        if v["status"] != "ok" or lat.get("p50") is None:
            continue
        status = "baseline" if v["name"] == "keras" or not v.get("budgets") else (
            "pass" if v.get("budgets_passed") else "fail")
        points.append({"name": v["name"], "mb": v["zipped_bytes"] / MB, "p50": lat["p50"],
                       "p95": lat.get("p95", lat["p50"]), "accuracy": v.get("accuracy"), "status": status})
    if not points:
        return None
    limits = R.budget_limits(doc)
    budgets = {k: limits[k] for k in ("max_zip_mb", *LATENCY_BUDGETS) if k in limits}
    return {"title": doc["name"], "selected": doc.get("selected"), "points": points, "budgets": budgets}


def _linear_range(values: list[float], budgets: list[float]) -> tuple[float, float]:
    """From 0 (so the distances from the axis are the values, and their ratios read true) to past the largest
    value, and past any budget close enough to draw inside the frame with a margin."""
    top = max(values) if values else 1.0
    near = [b for b in budgets if b <= top * BUDGET_REACH]
    top = max([top, *near]) or 1.0
    return 0.0, top * 1.12


BUDGET_REACH = 3.0  # a budget up to 3x the largest value is drawn inside the frame; further out, an arrow


def _accuracy_varies(points: list[dict]) -> bool:
    acc = [p["accuracy"] for p in points if p["accuracy"] is not None]
    return len(acc) > 1 and max(acc) - min(acc) > 5e-5


def draw_scatter(data: dict, path: Path) -> None:
    plt = _pyplot()
    points, budgets = data["points"], data["budgets"]
    fig, ax = plt.subplots(figsize=(8.4, 4.6), **ASPECT)
    variants = [p for p in points if p["status"] != "baseline"] or points
    lat_budgets = [budgets[k] for k in LATENCY_BUDGETS if k in budgets]
    xlim = _linear_range([p["mb"] for p in variants], [budgets["max_zip_mb"]] if "max_zip_mb" in budgets else [])
    ylim = _linear_range([max(p["p95"], p["p50"]) for p in variants], lat_budgets)
    above = sum(1 for b in lat_budgets if b > ylim[1])
    ylim = (ylim[0], ylim[1] * 1.15 ** above)  # headroom for the arrow labels of budgets above the frame
    show_acc = _accuracy_varies(points)
    corners: dict[str, int] = {}
    # Every marker hollow, so one drawn over another leaves both visible; the selected one gets a ring.
    for i, p in enumerate(points):
        colour = {"pass": PASS, "fail": FAIL}.get(p["status"], BASE)
        chosen = p["name"] == data["selected"]
        label = p["name"] + (" (selected)" if chosen else "") + ("" if p["status"] == "baseline" else f" – {p['status']}")
        if show_acc and p["accuracy"] is not None:
            label += f", acc {p['accuracy']:.4f}"
        if p["mb"] > xlim[1] or p["p50"] > ylim[1]:  # the Keras model far beyond the variants: an arrow
            _off_chart(ax, p, label, colour, corners)
            continue
        ax.plot([p["mb"], p["mb"]], [p["p50"], min(max(p["p95"], p["p50"]), ylim[1])], color=colour,
                linewidth=1.2, alpha=0.7)
        ax.scatter([p["mb"]], [p["p50"]], marker=MARKERS[i % len(MARKERS)], s=70, facecolors="none",
                   edgecolors=colour, linewidths=1.8, zorder=3, label=label)
        if chosen:
            ax.scatter([p["mb"]], [p["p50"]], marker="o", s=320, facecolors="none", edgecolors=CHOSEN,
                       linewidths=1.4, zorder=2)
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    if "max_zip_mb" in budgets:
        _budget(ax, "x", budgets["max_zip_mb"], xlim, f"max_zip_mb {budgets['max_zip_mb']:g}", "-", corners)
    for key, (_, style) in LATENCY_BUDGETS.items():
        if key in budgets:
            _budget(ax, "y", budgets[key], ylim, f"{key} {budgets[key]:g}", style, corners)
    ax.set_xlabel("zipped size (MB, from 0)")
    ax.set_ylabel("warm latency (ms, from 0): p50 marker, bar to p95")
    ax.set_title(f"{data['title']}: size against latency (selected: {data['selected'] or 'none'}, ringed)",
                 fontsize=10)
    ax.grid(True, alpha=0.25)
    ax.set_axisbelow(True)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, borderaxespad=0)
    fig.tight_layout()
    _save(fig, path)


def _off_chart(ax, p: dict, label: str, colour: str, corners: dict[str, int]) -> None:
    """A point beyond the frame (the Keras baseline, usually) as a labelled arrow at the top right corner."""
    n = corners["yTrue"] = corners.get("yTrue", 0) + 1  # stacked with the arrows of budgets above the frame
    ax.annotate(f"{label}: {p['mb']:.3g} MB, {p['p50']:.3g} ms ↗", (1.0, 1.0), xycoords="axes fraction",
                xytext=(-4, -6 - 16 * (n - 1)), textcoords="offset points", ha="right", va="top", fontsize=7,
                color=colour, bbox={"boxstyle": "round", "fc": "white", "ec": colour, "lw": 0.6})


def _budget(ax, axis: str, value: float, lim: tuple[float, float], label: str, style: str,
            corners: dict[str, int]) -> None:
    """A budget inside the plotted range is a line named in the legend (the range leaves a margin around it, so it
    never lies on the frame); one beyond it is an arrow label at the edge it lies beyond (stacked when several
    do), so it never stretches the axes."""
    colour = "#8250df"
    if lim[0] < value < lim[1]:
        line = ax.axvline if axis == "x" else ax.axhline
        line(value, color=colour, linestyle=style, linewidth=1.2, label=label)
        return
    beyond = value >= lim[1]
    arrow = {("x", True): "→", ("x", False): "←", ("y", True): "↑", ("y", False): "↓"}[(axis, beyond)]
    corner = f"{axis}{beyond}"
    n = corners[corner] = corners.get(corner, 0) + 1
    box = {"boxstyle": "round", "fc": "white", "ec": colour, "lw": 0.6}
    if axis == "x":  # bottom edge, left or right
        ax.annotate(f"{label} {arrow}" if beyond else f"{arrow} {label}", (1.0 if beyond else 0.0, 0.0),
                    xycoords="axes fraction", xytext=(-4 if beyond else 4, 6 + 16 * (n - 1)),
                    textcoords="offset points", ha="right" if beyond else "left", va="bottom", fontsize=7,
                    color=colour, bbox=box)
    else:  # right edge, top or bottom, above the x-axis labels
        ax.annotate(f"{label} {arrow}", (1.0, 1.0 if beyond else 0.0), xycoords="axes fraction",
                    xytext=(-4, (-6 - 16 * (n - 1)) if beyond else (24 + 16 * (n - 1))),
                    textcoords="offset points", ha="right", va="top" if beyond else "bottom", fontsize=7,
                    color=colour, bbox=box)


# --- cold.png: cold start ---------------------------------------------------------------------------------

def cold_data(doc: dict) -> dict | None:
    bars = []
    for v in doc.get("variants", []):
        cold = (v.get("cold_start_ms") or {}).get("p50")
        if v["status"] == "ok" and cold is not None:
            kind = "baseline" if v["name"] == "keras" else ("selected" if v["name"] == doc.get("selected") else "variant")
            bars.append({"name": v["name"], "ms": cold, "kind": kind})
    handler = R.handler_cold_start(doc)
    if handler:
        bars.append({"name": f"{doc.get('selected')} in the {handler[0]} handler", "ms": handler[1], "kind": "handler"})
    if len(bars) < 2:
        return None
    return {"title": doc["name"], "bars": bars}


def draw_cold(data: dict, path: Path) -> None:
    """Bars from 0 on a linear axis: a bar half as long is half the time. Each bar says its time and, beside the
    Keras baseline's, its fraction of it."""
    plt = _pyplot()
    bars = data["bars"]
    colours = {"baseline": BASE, "variant": "#54aeff", "selected": CHOSEN, "handler": HANDLER}
    fig, ax = plt.subplots(figsize=(8.4, 0.9 + 0.36 * len(bars)), **ASPECT)
    ys = list(range(len(bars)))[::-1]
    values = [b["ms"] for b in bars]
    base = next((b["ms"] for b in bars if b["kind"] == "baseline"), None)
    ax.barh(ys, values, left=0, color=[colours[b["kind"]] for b in bars], height=0.65)
    for y, b in zip(ys, bars):
        share = f" ({b['ms'] / base:.1%} of Keras)" if base and b["kind"] != "baseline" else ""
        ax.annotate(f"{b['ms']:,.0f} ms{share}", (b["ms"], y), xytext=(4, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.set_yticks(ys, [b["name"] for b in bars], fontsize=8)
    ax.set_xlim(0, max(values) * 1.45)  # room for the longest bar's label
    ax.set_xlabel("cold start (ms, linear from 0): import + load + first inference")
    ax.set_title(f"{data['title']}: cold start, Keras baseline against the converted variants", fontsize=10)
    ax.grid(True, axis="x", alpha=0.25)
    ax.set_axisbelow(True)  # grid lines behind the bars, which stay whole
    fig.tight_layout()
    _save(fig, path)


# --- memory.png: time and cost by memory size -------------------------------------------------------------

def memory_data(doc: dict) -> dict | None:
    m = doc.get("memory")
    if not m or not m.get("rows"):
        return None
    rows = [{"mb": r["memory_mb"], "cold": r["cold_start_ms"], "mean": r["duration_ms"],
             "p95": (r.get("latency_ms") or {}).get("p95"), "x86": r["cost_per_million"]["x86_64"],
             "arm": r["cost_per_million"]["arm64"], "possible": r["possible"]} for r in m["rows"]]
    return {"title": doc["name"], "variant": m["variant"], "rows": rows,
            "recommended": m["recommendations"].get("balanced")}


def draw_memory(data: dict, path: Path) -> None:
    plt = _pyplot()
    rows = data["rows"]
    mb = [r["mb"] for r in rows]
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(8.4, 5.6), **ASPECT)
    top.plot(mb, [r["cold"] for r in rows], "o-", color=HANDLER, label="cold start")
    top.plot(mb, [r["mean"] for r in rows], "s-", color=CHOSEN, label="mean inference")
    if all(r["p95"] is not None for r in rows):
        top.plot(mb, [r["p95"] for r in rows], "^:", color=CHOSEN, label="p95 inference")
    top.set_yscale("log")
    _plain_log_ticks(top.yaxis, steps=(1.0,))
    top.set_ylabel("milliseconds (log)")
    bottom.plot(mb, [r["x86"] for r in rows], "o-", color="#8250df", label="x86_64")
    bottom.plot(mb, [r["arm"] for r in rows], "s--", color="#1a7f37", label="arm64")
    bottom.set_ylabel("USD per million requests")
    bottom.set_xlabel("Lambda memory (MB)")
    impossible = [r["mb"] for r in rows if not r["possible"]]
    for ax in (top, bottom):
        if data["recommended"]:
            ax.axvline(data["recommended"], color=BASE, linestyle=":", label=f"recommended {data['recommended']} MB")
        for x in impossible:
            ax.axvspan(x * 0.93, x * 1.07, color=FAIL, alpha=0.12)
        ax.grid(True, alpha=0.25)
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, borderaxespad=0)
    bottom.set_xscale("log", base=2)
    bottom.set_xticks(mb, [str(x) for x in mb])
    bottom.minorticks_off()
    top.set_title(f"{data['title']}: {data['variant']} by Lambda memory size (CPU share emulated)", fontsize=10)
    fig.tight_layout()
    _save(fig, path)


def draw_curve(data: dict, path: Path) -> None:
    """The distillation loss on the training part and on the held-out part, per epoch; the kept epoch marked."""
    plt = _pyplot()
    curve = data["curve"]
    epochs = [c["epoch"] for c in curve]
    fig, ax = plt.subplots(figsize=(8.4, 3.4), **ASPECT)
    ax.plot(epochs, [c["loss"] for c in curve], "o-", color=CHOSEN, label="training loss")
    ax.plot(epochs, [c["val_loss"] for c in curve], "s-", color=HANDLER, label="held-out loss")
    ax.axvline(data["best"], color=PASS, linestyle="--", label=f"kept: epoch {data['best']}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("alpha x distillation + (1 - alpha) x label loss", fontsize=8)
    ax.set_ylim(bottom=0)
    ax.set_title(f"{data['title']}: distilled student's training", fontsize=10)
    ax.grid(True, alpha=0.25)
    ax.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)


CHARTS: list[tuple[str, Callable[[dict], dict | None], Callable[[dict, Path], None]]] = [
    ("report.png", scatter_data, draw_scatter),
    ("cold.png", cold_data, draw_cold),
    ("memory.png", memory_data, draw_memory),
    ("distill.png", curve_data, draw_curve),
]
