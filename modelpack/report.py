"""The build report: report.json (a contract other tools read) and report.md (for people and CI summaries)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from modelpack.limits import MB
from modelpack.records import VariantRecord

# The version of report.json's shape (modelpack/report.schema.json describes it). A reader checks it; a change
# that renames or removes a key bumps it, a new optional key does not.
SCHEMA_VERSION = "1"
SCHEMA_FILE = Path(__file__).with_name("report.schema.json")


@dataclass
class BuildReport:
    """Everything a build measured and wrote. Field names of the JSON form are a stable contract."""

    modelpack_version: str
    recipe: str
    name: str
    model: dict
    data: dict
    variants: list[VariantRecord] = field(default_factory=list)
    budgets: list[dict] = field(default_factory=list)
    selected: str | None = None
    selection_reason: str = ""
    closest: str | None = None
    artifacts: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measure: dict = field(default_factory=dict)
    prune: dict | None = None
    memory: dict | None = None
    search: list[dict] = field(default_factory=list)
    split: dict | None = None

    @property
    def passed(self) -> bool:
        return self.selected is not None and all(b["passed"] for b in self.budgets)

    def variant(self, name: str) -> VariantRecord | None:
        return next((v for v in self.variants if v.name == name), None)

    def to_json(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "variants"}
        d = asdict(BuildReport(**d))  # deep copies of the plain sections
        d["variants"] = [v.to_json() for v in self.variants]
        d["passed"] = self.passed
        d["schema_version"] = SCHEMA_VERSION
        d["steps"] = []  # always empty; schema 1 keeps the key for the readers that expect it
        return d

    @classmethod
    def from_json(cls, d: dict) -> BuildReport:
        """A report.json read back (`passed`, `schema_version` and `steps` are derived, not stored)."""
        known = {f.name for f in fields(cls)}
        report = cls(**{k: v for k, v in d.items() if k in known and k != "variants"})
        report.variants = [VariantRecord.from_json(v) for v in d.get("variants", [])]
        return report


def _f(x: float | None, fmt: str = "{:.2f}") -> str:
    return "–" if x is None else fmt.format(x)


def variant_rows(report: BuildReport) -> list[list[str]]:
    """The comparison table shared by report.md and `modelpack bench`."""
    base = report.variant("keras") or {}
    base_p50 = (base.get("latency_ms") or {}).get("p50")
    base_zip = base.get("zipped_bytes")
    rows = []
    for v in report.variants:
        if v["status"] != "ok":
            rows.append([v["name"], "failed", *["–"] * 10, (v.get("error") or "")[:80]])
            continue
        lat, cold = v.get("latency_ms") or {}, v.get("cold_start_ms") or {}
        fid = v.get("fidelity") or {}
        speedup = base_p50 / lat["p50"] if base_p50 and lat.get("p50") else None
        ratio = v["zipped_bytes"] / base_zip if base_zip and v.get("zipped_bytes") else None
        budget = "–" if v["name"] == "keras" or not v.get("budgets") else (
            "pass" if v["budgets_passed"] else "fail: " + ", ".join(b["name"] for b in v["budgets"] if not b["passed"])
        )
        rows.append([
            v["name"],
            _f(v["size_bytes"] / MB, "{:.3f}"),
            _f(v["zipped_bytes"] / MB, "{:.3f}"),
            _f(v.get("accuracy"), "{:.4f}"),
            _f(None if v.get("accuracy_drop") is None else 0.0 - v["accuracy_drop"] + 0.0, "{:+.4f}"),
            _f(fid.get("agreement"), "{:.4f}"),
            _f(lat.get("p50"), "{:.3f}"),
            _f(lat.get("p99"), "{:.3f}"),
            _f(cold.get("p50"), "{:.0f}"),
            _f(v.get("peak_rss_mb"), "{:.0f}"),
            _f(speedup, "{:.1f}×"),
            _f(ratio, "{:.2f}"),
            budget,
        ])
    return rows


HEADERS = ["variant", "MB", "zip MB", "accuracy", "Δ acc", "agreement", "p50 ms", "p99 ms",
           "cold ms", "RSS MB", "speed-up", "size ratio", "budgets"]


def search_markdown(searches: list[dict]) -> list[str]:
    """The accuracy-aware INT8 search: its outcome and every trial, per INT8 variant."""
    lines: list[str] = []
    for s in searches:
        lines += ["", f"### INT8 accuracy search ({s['variant']})", "", s["outcome"] + "."]
        if s.get("float_nodes"):
            lines.append("Kept in float: " + ", ".join(f"`{n}`" for n in s["float_nodes"]) + ".")
        lines += ["", "| trial | calibration | per-channel | float ops | accuracy | Δ acc | agreement | MB | p50 ms | "
                      "accuracy budgets |", "|---|---|---|---|---|---|---|---|---|---|"]
        for t in s["trials"]:
            drop = t.get("accuracy_drop")
            lines.append(
                f"| {t['trial']} | {t.get('calibration') or '–'} | {_yes(t.get('per_channel'))} | {len(t['float_nodes'])} | "
                f"{_f(t.get('accuracy'), '{:.4f}')} | {_f(None if drop is None else -drop + 0.0, '{:+.4f}')} | "
                f"{_f(t.get('agreement'), '{:.4f}')} | {_f(None if t.get('size_bytes') is None else t['size_bytes'] / MB, '{:.3f}')} | "
                f"{_f(t.get('p50_ms'), '{:.3f}')} | {'pass' if t.get('passed') else 'fail'} |")
    if searches:
        lines += ["", "Trials are judged on the evaluation samples with the recipe's accuracy budgets; their p50 is a "
                      "quick in-process timing, the variants table above has the full measurement."]
    return lines


def split_markdown(split: dict | None) -> list[str]:
    """The split model: where it was cut, each part, the chain's check, and which layouts fit."""
    if not split:
        return []
    if split.get("status") != "ok":
        return ["", "### Split", "", f"Not split: {split.get('reason', '')}."]
    vs = split["vs_unsplit"]
    lines = ["", f"### Split ({len(split['parts'])} parts of {split['variant']}, cut after "
                 f"{', '.join(f'`{a}`' for a in split['at'])})", "",
             f"Keras parts chained reproduce the model within {split['keras_chain_max_abs_err']:.1e} "
             f"({'ok' if split['keras_chain_ok'] else 'FAILED'}, limit 1e-5); the converted parts chained agree with "
             f"unsplit {split['variant']} on {_f(vs.get('agreement'), '{:.2%}')} of samples "
             f"(max abs error {vs['max_abs_err']:.2e}); accuracy {_f(split.get('accuracy'), '{:.4f}')}.", "",
             "| part | layers | input | output | MB | request KB (JSON) |", "|---|---|---|---|---|---|"]
    for p in split["parts"]:
        req = p.get("request_json_bytes")
        lines.append(f"| {p['part']} | {len(p['layers'])} | {p['input_shape']} | {p['output_shape']} | "
                     f"{p['size_bytes'] / MB:.3f} | {_f(None if req is None else req / 1e3, '{:.1f}')} |")
    lines += ["", "| layout | possible | why |", "|---|---|---|"]
    for name, layout in split["layouts"].items():
        lines.append(f"| {name} | {'yes' if layout['possible'] else 'no'} | {layout['why']} |")
    if split.get("note"):
        lines += ["", split["note"] + "."]
    return lines


def _yes(flag: bool | None) -> str:
    return "–" if flag is None else ("yes" if flag else "no")


def to_markdown(report: BuildReport) -> str:
    lines = [f"## modelpack: {report.name}", ""]
    status = "passed" if report.passed else "FAILED"
    lines.append(f"**{status}** — selected: `{report.selected or 'none'}` ({report.selection_reason})")
    if report.closest:
        lines.append(f"Closest variant: `{report.closest}`.")
    m = report.model
    lines += ["", f"Model `{m['path']}` ({m['format']}, {m['params']:,} parameters, {m['size_bytes'] / MB:.3f} MB, "
              f"sha256 `{m['sha256'][:12]}`)."]
    d = report.data
    lines.append(f"Data: {d.get('description', '')}")
    ms = report.measure
    if ms:
        lines.append(
            f"Latency: batch {ms['batch']}, {ms['threads']} thread(s), {ms['warmup']} warm-up + {ms['runs']} runs; "
            f"cold start: median of {ms['cold_runs']} fresh processes (import + load + first inference)."
        )
    lines += ["", "| " + " | ".join(HEADERS) + " |", "|" + "---|" * len(HEADERS)]
    lines += ["| " + " | ".join(r) + " |" for r in variant_rows(report)]
    if report.budgets:
        lines += ["", f"### Budgets ({report.selected or report.closest or 'no variant'})", "",
                  "| budget | limit | value | result |", "|---|---|---|---|"]
        for b in report.budgets:
            lines.append(f"| {b['name']} | {b['limit']:g} | {_f(b['value'], '{:.4g}')} | {'pass' if b['passed'] else 'FAIL'} |")
    lines += search_markdown(report.search)
    lines += split_markdown(report.split)
    if report.prune:
        p = report.prune
        lines += ["", f"### Pruning (target sparsity {p['target']:.0%}, {p['schedule']} schedule, "
                      f"{p['steps']} fine-tuning steps)", "", "| layer | sparsity |", "|---|---|"]
        lines += [f"| {name} | {value:.1%} |" for name, value in p["sparsity_by_layer"].items()]
    if report.memory:
        m = report.memory
        rec = m["recommendations"]
        lines += ["", f"### Memory size and cost ({m['variant']})", "",
                  f"Recommended: **{rec['balanced']} MB** (balanced, cost weight {m['balanced_weight']:g}); "
                  f"cheapest {rec['cost']} MB, fastest {rec['speed']} MB. {m['method']}", "",
                  "![latency and cost against memory](memory.png)", "",
                  "| memory MB | vCPU | threads | mean ms | p99 ms | cold ms | $ per 1M x86_64 | $ per 1M arm64 | possible |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for r in m["rows"]:
            c = r["cost_per_million"]
            lines.append(f"| {r['memory_mb']} | {r['cpu_share']:.2f} | {r['threads']} | {r['duration_ms']:.3f} | "
                         f"{r['latency_ms']['p99']:.3f} | {r['cold_start_ms']:.0f} | {c['x86_64']:.4f} | "
                         f"{c['arm64']:.4f} | {'yes' if r['possible'] else 'no: below peak RSS + headroom'} |")
    if report.artifacts:
        lines += ["", "### Artifacts", "", "| target | path | MB | unzipped MB |", "|---|---|---|---|"]
        for a in report.artifacts:
            unz = None if a.get("unzipped_bytes") is None else a["unzipped_bytes"] / MB
            lines.append(f"| {a['target']} | `{a['path']}` | {a['size_bytes'] / MB:.3f} | {_f(unz, '{:.3f}')} |")
    if report.notes:
        lines += ["", "### Notes", ""] + [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"
