"""The rows shared by report.md, report.html and `modelpack bench`, computed from the report's JSON document."""

from __future__ import annotations

from modelpack.limits import MB

HEADERS = ["variant", "MB", "zip MB", "accuracy", "Δ acc", "agreement", "p50 ms", "p95 ms", "p99 ms",
           "cold ms", "RSS MB", "speed-up", "size ratio", "budgets"]
# The task's own columns in place of accuracy, Δ acc and agreement: regression is judged by its error (MAE and
# RMSE in the labels' units, the MAE's increase over Keras, R²) and by how far outputs move from Keras' (max abs).
TASK_HEADERS = {"classification": ["accuracy", "Δ acc", "agreement"],
                "regression": ["MAE", "Δ MAE", "RMSE", "R²", "max err vs Keras"]}
CUSTOM_HEADERS = ["score", "Δ score", "agreement"]


def fmt(x: float | None, spec: str = "{:.2f}") -> str:
    return "–" if x is None else spec.format(x)


def yes_no(flag: bool | None) -> str:
    return "–" if flag is None else ("yes" if flag else "no")


def variant(doc: dict, name: str | None) -> dict | None:
    return next((v for v in doc.get("variants", []) if v["name"] == name), None)


def budget_limits(doc: dict) -> dict[str, float]:
    """Every budget the recipe set, by name (the report lists them per variant and for the selected one)."""
    limits: dict[str, float] = {}
    for b in doc.get("budgets", []):
        limits[b["name"]] = b["limit"]
    for v in doc.get("variants", []):
        for b in v.get("budgets") or []:
            limits.setdefault(b["name"], b["limit"])
    return limits


def budget_cell(v: dict) -> str:
    if v["name"] == "keras" or not v.get("budgets"):
        return "–"
    if v.get("budgets_passed"):
        return "pass"
    return "FAIL: " + ", ".join(b["name"] for b in v["budgets"] if not b["passed"])


def task_name(doc: dict) -> str:
    """The task the report scored (reports written before it was recorded scored classification or regression
    as the recipe said; they read as classification)."""
    return (doc.get("task") or {}).get("name") or "classification"


def headers(doc: dict) -> list[str]:
    """The variants table's columns for this report's task."""
    task_columns = TASK_HEADERS.get(task_name(doc), CUSTOM_HEADERS)
    return [*HEADERS[:3], *task_columns, *HEADERS[6:]]


def task_cells(doc: dict, v: dict) -> list[str]:
    """The task's columns of one variant."""
    fid = v.get("fidelity") or {}
    if task_name(doc) == "regression":
        reg = v.get("regression") or {}
        increase = reg.get("mae_increase")
        return [fmt(reg.get("mae"), "{:.4g}"), fmt(None if increase is None else increase + 0.0, "{:+.4g}"),
                fmt(reg.get("rmse"), "{:.4g}"), fmt(reg.get("r2"), "{:.4f}"), fmt(fid.get("max_abs_err"), "{:.2e}")]
    drop = v.get("accuracy_drop")
    return [fmt(v.get("accuracy"), "{:.4f}"), fmt(None if drop is None else 0.0 - drop + 0.0, "{:+.4f}"),
            fmt(fid.get("agreement"), "{:.4f}")]


def variant_rows(doc: dict) -> list[list[str]]:
    """One row per variant, in `headers(doc)` order; a failed variant says so and why (the first words: the
    report's failures section has the whole reason)."""
    base = variant(doc, "keras") or {}
    base_p50 = (base.get("latency_ms") or {}).get("p50")
    base_zip = base.get("zipped_bytes")
    width = len(headers(doc))
    rows = []
    for v in doc.get("variants", []):
        if v["status"] != "ok":
            error = v.get("error") or ""
            rows.append([v["name"], "failed", *["–"] * (width - 3),
                         error if len(error) <= 80 else error[:77] + "... (see Failures)"])
            continue
        lat, cold = v.get("latency_ms") or {}, v.get("cold_start_ms") or {}
        speedup = base_p50 / lat["p50"] if base_p50 and lat.get("p50") else None
        ratio = v["zipped_bytes"] / base_zip if base_zip and v.get("zipped_bytes") else None
        rows.append([
            v["name"],
            fmt(v["size_bytes"] / MB, "{:.3f}"),
            fmt(v["zipped_bytes"] / MB, "{:.3f}"),
            *task_cells(doc, v),
            fmt(lat.get("p50"), "{:.3f}"),
            fmt(lat.get("p95"), "{:.3f}"),
            fmt(lat.get("p99"), "{:.3f}"),
            fmt(cold.get("p50"), "{:.0f}"),
            fmt(v.get("peak_rss_mb"), "{:.0f}"),
            fmt(speedup, "{:.1f}×"),
            fmt(ratio, "{:.2f}"),
            budget_cell(v),
        ])
    return rows


def failure_rows(doc: dict) -> list[list[str]]:
    """Every variant that failed, with the whole reason."""
    return [[v["name"], v.get("error") or "no reason recorded"] for v in doc.get("variants", [])
            if v["status"] != "ok"]


def budget_rows(doc: dict) -> list[list[str]]:
    return [[b["name"], f"{b['limit']:g}", fmt(b["value"], "{:.4g}"), "pass" if b["passed"] else "FAIL"]
            for b in doc.get("budgets", [])]


def search_rows(search: dict, doc: dict | None = None) -> list[list[str]]:
    """One row per INT8 search trial, in `search_headers(doc)` order (regression: the trial's MAE and its
    increase, read from its score, the negative MAE)."""
    regression = task_name(doc or {}) == "regression"
    rows = []
    for t in search["trials"]:
        drop, size, acc = t.get("accuracy_drop"), t.get("size_bytes"), t.get("accuracy")
        if regression:
            scores = [fmt(None if acc is None else -acc + 0.0, "{:.4g}"),
                      fmt(None if drop is None else drop + 0.0, "{:+.4g}")]
        else:
            scores = [fmt(acc, "{:.4f}"), fmt(None if drop is None else -drop + 0.0, "{:+.4f}"),
                      fmt(t.get("agreement"), "{:.4f}")]
        rows.append([str(t["trial"]), t.get("calibration") or "–", yes_no(t.get("per_channel")),
                     t.get("activations") or "int8", str(len(t["float_nodes"])), *scores,
                     fmt(None if size is None else size / MB, "{:.3f}"), fmt(t.get("p50_ms"), "{:.3f}"),
                     "refused" if "refused" in t else "pass" if t.get("passed") else "FAIL"])
    return rows


SEARCH_HEADERS = ["trial", "calibration", "per-channel", "activations", "float ops", "accuracy", "Δ acc",
                  "agreement", "MB", "p50 ms", "accuracy budgets"]


def search_headers(doc: dict) -> list[str]:
    if task_name(doc) == "regression":
        return [*SEARCH_HEADERS[:5], "MAE", "Δ MAE", *SEARCH_HEADERS[8:]]
    return SEARCH_HEADERS


def refused_trials(search: dict) -> list[str]:
    """One sentence per search trial the model refused (a 16x8 trial whose op has no int16 form), with why."""
    return [f"Trial {t['trial']} refused: {t['refused']}" for t in search["trials"] if "refused" in t]


def memory_rows(memory: dict) -> list[list[str]]:
    rows = []
    for r in memory["rows"]:
        c, lat = r["cost_per_million"], r["latency_ms"]
        rows.append([str(r["memory_mb"]), f"{r['cpu_share']:.2f}", str(r["threads"]), f"{r['duration_ms']:.3f}",
                     fmt(lat.get("p95"), "{:.3f}"), f"{lat['p99']:.3f}", f"{r['cold_start_ms']:.0f}",
                     f"{c['x86_64']:.4f}", f"{c['arm64']:.4f}",
                     "yes" if r["possible"] else "no: below peak RSS + headroom"])
    return rows


MEMORY_HEADERS = ["memory MB", "vCPU", "threads", "mean ms", "p95 ms", "p99 ms", "cold ms", "$ per 1M x86_64",
                  "$ per 1M arm64", "possible"]


def split_part_rows(split: dict) -> list[list[str]]:
    rows = []
    for p in split["parts"]:
        req = p.get("request_json_bytes")
        rows.append([str(p["part"]), str(len(p["layers"])), str(p["input_shape"]), str(p["output_shape"]),
                     f"{p['size_bytes'] / MB:.3f}", fmt(None if req is None else req / 1e3, "{:.1f}")])
    return rows


SPLIT_HEADERS = ["part", "layers", "input", "output", "MB", "request KB (JSON)"]


def artifact_rows(doc: dict) -> list[list[str]]:
    rows = []
    for a in doc.get("artifacts", []):
        unz = None if a.get("unzipped_bytes") is None else a["unzipped_bytes"] / MB
        rows.append([a["target"], a["path"], f"{a['size_bytes'] / MB:.3f}", fmt(unz, "{:.3f}")])
    return rows


ARTIFACT_HEADERS = ["target", "path", "MB", "unzipped MB"]


def handler_cold_start(doc: dict) -> tuple[str, float] | None:
    """The built handler's own cold start (import + load + first answer), from the first artifact that measured it."""
    for a in doc.get("artifacts", []):
        cold = (a.get("details") or {}).get("handler_cold_start_ms")
        if cold and cold.get("total_ms") is not None:
            return a["target"], float(cold["total_ms"])
    return None
