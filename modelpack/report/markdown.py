"""report.md: the whole report as GitHub-flavoured markdown, self-contained so it can be appended to
$GITHUB_STEP_SUMMARY (no images or links to files beside it; the charts are in report.html).

GitHub renders raw HTML in markdown, and the report quotes what the user's files name (data arrays, layers, paths):
every `<`, `>` and `&` of it is written as an entity, so a name holding `<img src=x onerror=...>` shows as text.
The report itself uses none of them (the Next steps' fenced commands are added afterwards, unescaped)."""

from __future__ import annotations

import html

from modelpack.limits import MB
from modelpack.report import distill as D
from modelpack.report import rows as R


def table(headers: list[str], body: list[list[str]]) -> list[str]:
    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")

    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)] + [
        "| " + " | ".join(cell(c) for c in row) + " |" for row in body]


def summary_lines(doc: dict) -> list[str]:
    """Status, selection, model, data and how latency was measured: the prose at the top of both reports."""
    status = "passed" if doc.get("passed") else "FAILED"
    lines = [f"**{status}** — selected: `{doc.get('selected') or 'none'}` ({doc.get('selection_reason', '')})"]
    if doc.get("closest"):
        lines.append(f"Closest variant: `{doc['closest']}`.")
    m = doc.get("model") or {}
    if m:
        lines.append(f"Model `{m['path']}` ({m['format']}, {m['params']:,} parameters, {m['size_bytes'] / MB:.3f} MB, "
                     f"sha256 `{m['sha256'][:12]}`).")
    if (doc.get("data") or {}).get("description"):
        lines.append(f"Data: {doc['data']['description']}")
    if doc.get("task"):
        lines.append(task_sentence(doc["task"]))
    ms = doc.get("measure") or {}
    if ms:
        lines.append(f"Latency: batch {ms['batch']}, {ms['threads']} thread(s), {ms['warmup']} warm-up + {ms['runs']} "
                     f"runs; cold start: median of {ms['cold_runs']} fresh processes (import + load + first inference).")
    cold = cold_start_sentence(doc)
    if cold:
        lines.append(cold)
    return lines


def task_sentence(task: dict) -> str:
    """What the report scored and where that came from; for regression, what its accuracy column holds."""
    how = "inferred from the labels; set `task` to override" if task["inferred"] else "from the recipe"
    return f"Task: **{task['name']}** ({how}: {task['why']}); accuracy in report.json is {task['score']}."


def failures_section(doc: dict) -> list[str]:
    """Every failed variant with its whole reason (the variants table shows only the first words)."""
    rows = R.failure_rows(doc)
    if not rows:
        return []
    return ["", "### Failures", ""] + [f"- `{name}`: {error}" for name, error in rows]


def cold_start_sentence(doc: dict) -> str:
    """The headline: the Keras model's cold start against the selected variant's and the built handler's."""
    base = R.variant(doc, "keras")
    chosen = R.variant(doc, doc.get("selected"))
    if not base or not chosen or not base.get("cold_start_ms") or not chosen.get("cold_start_ms"):
        return ""
    text = (f"Cold start: {base['cold_start_ms']['p50']:,.0f} ms (Keras) → "
            f"{chosen['cold_start_ms']['p50']:,.0f} ms ({chosen['name']})")
    handler = R.handler_cold_start(doc)
    if handler:
        text += f", {handler[1]:,.0f} ms through the built {handler[0]} handler"
    return text + "."


def search_section(search: dict, doc: dict | None = None) -> list[str]:
    lines = ["", f"### INT8 accuracy search ({search['variant']})", "", search["outcome"] + "."]
    if search.get("float_nodes"):
        lines.append("Kept in float: " + ", ".join(f"`{n}`" for n in search["float_nodes"]) + ".")
    lines += [f"{r}." for r in R.refused_trials(search)]
    return lines + [""] + table(R.search_headers(doc or {}), R.search_rows(search, doc))


SEARCH_NOTE = ("Trials are judged on the evaluation samples with the recipe's accuracy budgets; their p50 is a quick "
               "in-process timing, the variants table above has the full measurement.")


def split_section(split: dict | None) -> list[str]:
    if not split:
        return []
    if split.get("status") != "ok":
        return ["", "### Split", "", f"Not split: {split.get('reason', '')}."]
    lines = ["", f"### Split ({len(split['parts'])} parts of {split['variant']}, cut after "
                 f"{', '.join(f'`{a}`' for a in split['at'])})", "", split_sentence(split), ""]
    lines += table(R.SPLIT_HEADERS, R.split_part_rows(split))
    lines += [""] + table(["layout", "possible", "why"], [[name, R.yes_no(lay["possible"]), lay["why"]]
                                                          for name, lay in split["layouts"].items()])
    if split.get("note"):
        lines += ["", split["note"] + "."]
    return lines


def split_sentence(split: dict) -> str:
    vs = split["vs_unsplit"]
    return (f"Keras parts chained reproduce the model within {split['keras_chain_max_abs_err']:.1e} "
            f"({'ok' if split['keras_chain_ok'] else 'FAILED'}, limit 1e-5); the converted parts chained agree with "
            f"unsplit {split['variant']} on {R.fmt(vs.get('agreement'), '{:.2%}')} of samples "
            f"(max abs error {vs['max_abs_err']:.2e}); accuracy {R.fmt(split.get('accuracy'), '{:.4f}')}.")


def prune_title(p: dict) -> str:
    return f"Pruning (target sparsity {p['target']:.0%}, {p['schedule']} schedule, {p['steps']} fine-tuning steps)"


def memory_sentence(m: dict) -> str:
    rec = m["recommendations"]
    return (f"Recommended: **{rec['balanced']} MB** (balanced, cost weight {m['balanced_weight']:g}); "
            f"cheapest {rec['cost']} MB, fastest {rec['speed']} MB. {m['method']}")


def to_markdown(doc: dict) -> str:
    """report.md from the report's JSON document."""
    lines = [f"## modelpack: {doc['name']}", ""] + summary_lines(doc)
    lines += [""] + table(R.headers(doc), R.variant_rows(doc))
    lines += failures_section(doc)
    if doc.get("budgets"):
        lines += ["", f"### Budgets ({doc.get('selected') or doc.get('closest') or 'no variant'})", ""]
        lines += table(["budget", "limit", "value", "result"], R.budget_rows(doc))
    for search in doc.get("search") or []:
        lines += search_section(search, doc)
    if doc.get("search"):
        lines += ["", SEARCH_NOTE]
    lines += split_section(doc.get("split"))
    if doc.get("prune"):
        p = doc["prune"]
        lines += ["", f"### {prune_title(p)}", ""]
        lines += table(["layer", "sparsity"], [[k, f"{v:.1%}"] for k, v in p["sparsity_by_layer"].items()])
    if doc.get("distill"):
        d = doc["distill"]
        lines += ["", f"### {D.title(d)}", ""] + table(D.HEADERS, D.side_rows(d))
        lines += [""] + table(D.PAIR_HEADERS, D.pair_rows(d, doc))
        lines += [""] + table(["epoch", "loss", "held-out loss"],
                              [[str(c["epoch"]), f"{c['loss']:.4f}", f"{c['val_loss']:.4f}"] for c in d["curve"]])
    if doc.get("memory"):
        m = doc["memory"]
        lines += ["", f"### Memory size and cost ({m['variant']})", "", memory_sentence(m), ""]
        lines += table(R.MEMORY_HEADERS, R.memory_rows(m))
    if doc.get("artifacts"):
        lines += ["", "### Artifacts", ""]
        lines += table(R.ARTIFACT_HEADERS, [[a[0], f"`{a[1]}`", *a[2:]] for a in R.artifact_rows(doc)])
    if doc.get("notes"):
        lines += ["", "### Notes", ""] + [f"- {n}" for n in doc["notes"]]
    lines += ["", "_Charts (size against latency, cold start, memory) are in report.html beside this file._"]
    return html.escape("\n".join(lines) + "\n", quote=False)
