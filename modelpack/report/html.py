"""report.html: everything report.md says plus the charts, in one file that needs nothing else.

The charts are embedded as data: URIs and the style sheet is inline, so the page makes no request at all; it
reads on a phone (wide tables scroll sideways inside their box) and prints (tables and charts kept whole).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from modelpack.report import distill as D
from modelpack.report import markdown as M
from modelpack.report import rows as R
from modelpack.report.next_steps import EVENT, next_steps

CSS = """
:root{--pass:#1a7f37;--fail:#cf222e;--sel:#fff8c5;--line:#d0d7de;--muted:#57606a}
*{box-sizing:border-box}
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 auto;padding:1rem;max-width:92rem;
color:#1f2328;background:#fff}
h1{font-size:1.5rem;margin:.2rem 0 .6rem}h2{font-size:1.15rem;margin:1.6rem 0 .4rem;border-bottom:1px solid var(--line)}
p{margin:.35rem 0}code{font-size:.9em;background:#f6f8fa;padding:0 .25em;border-radius:3px;word-break:break-all}
.status{display:inline-block;padding:.1rem .6rem;border-radius:1rem;color:#fff;font-weight:600}
.status.pass{background:var(--pass)}.status.fail{background:var(--fail)}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;margin:.4rem 0}
table{border-collapse:collapse;font-size:.85rem;font-variant-numeric:tabular-nums}
th,td{border:1px solid var(--line);padding:.25rem .5rem;text-align:right;white-space:nowrap}
th{background:#f6f8fa}td:first-child,th:first-child{text-align:left;position:sticky;left:0;background:inherit}
tr{background:#fff}tr.selected{background:var(--sel);font-weight:600}
td.pass{color:var(--pass);font-weight:600}td.fail{color:var(--fail);font-weight:700}
td.text{text-align:left;white-space:normal}
figure{margin:.8rem 0}figure img{max-width:100%;height:auto;border:1px solid var(--line)}
figcaption{color:var(--muted);font-size:.85rem}
.note{color:var(--muted);font-size:.85rem}
pre{background:#f6f8fa;border:1px solid var(--line);border-radius:4px;padding:.5rem;overflow-x:auto;
white-space:pre-wrap;word-break:break-all}pre code{background:none;padding:0}
li.failure{margin:.2rem 0}
@media (max-width:40rem){body{font-size:14px;padding:.6rem}table{font-size:.78rem}}
@media print{body{max-width:none;padding:0;font-size:10pt}.scroll{overflow:visible}
table{font-size:7.5pt}th,td{padding:1px 3px}tr,figure,img{break-inside:avoid}
h2{break-after:avoid}.status,tr.selected,td.pass,td.fail{-webkit-print-color-adjust:exact;print-color-adjust:exact}}
"""

CAPTIONS = {
    "report.png": "Zipped size against warm latency, both axes linear from 0 (hollow marker at p50, bar up to p95; "
                  "the selected variant ringed); green within every budget, red outside; budget lines dashed, "
                  "budgets (and a Keras baseline) beyond the variants as arrows at the edge.",
    "cold.png": "Cold start, linear from 0: the Keras baseline, each converted variant (selected one darker) and the "
                "built handler, each with its share of the Keras baseline's.",
    "memory.png": "Lambda memory size: time (top) and cost per million requests (bottom); recommendation dotted.",
}


def inline(text: str) -> str:
    """The little markdown the report's sentences use (`code`, **bold**) as HTML, everything else escaped."""
    out = html.escape(text, quote=False)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<strong>\1</strong>", out)


def _cell(text: str, tag: str = "td") -> str:
    cls = ""
    if text == "pass" or text == "yes":
        cls = " class='pass'"
    elif text.startswith(("FAIL", "failed", "no:")):
        cls = " class='fail'"
    elif len(text) > 40:
        cls = " class='text'"
    return f"<{tag}{cls}>{inline(text)}</{tag}>"


def table(headers: list[str], body: list[list[str]], selected: str | None = None) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    rows = []
    for row in body:
        mark = " class='selected'" if selected is not None and row and row[0] == selected else ""
        rows.append(f"<tr{mark}>" + "".join(_cell(c) for c in row) + "</tr>")
    return f"<div class='scroll'><table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"


def figure(name: str, png: Path) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    caption = CAPTIONS.get(name, name)
    return (f"<figure id='{name.split('.')[0]}-chart'><img src='data:image/png;base64,{data}' "
            f"alt='{html.escape(caption, quote=True)}'><figcaption>{html.escape(caption)}</figcaption></figure>")


def _p(text: str, cls: str = "") -> str:
    return f"<p{f' class={cls!r}' if cls else ''}>{inline(text)}</p>"


def sections(doc: dict, charts: dict[str, Path]) -> list[str]:
    selected = doc.get("selected")
    out = ["<h2 id='variants'>Variants</h2>", table(R.headers(doc), R.variant_rows(doc), selected)]
    failures = R.failure_rows(doc)
    if failures:
        out += ["<h2 id='failures'>Failures</h2>",
                "<ul>" + "".join(f"<li class='failure'><code>{html.escape(name)}</code>: {html.escape(error)}</li>"
                                 for name, error in failures) + "</ul>"]
    out += [figure(n, charts[n]) for n in ("report.png", "cold.png") if n in charts]
    if doc.get("budgets"):
        out += [f"<h2 id='budgets'>Budgets ({html.escape(selected or doc.get('closest') or 'no variant')})</h2>",
                table(["budget", "limit", "value", "result"], R.budget_rows(doc))]
    for search in doc.get("search") or []:
        out.append(f"<h2>INT8 accuracy search ({html.escape(search['variant'])})</h2>")
        out.append(_p(search["outcome"] + "."))
        if search.get("float_nodes"):
            out.append(_p("Kept in float: " + ", ".join(f"`{n}`" for n in search["float_nodes"]) + "."))
        out += [_p(f"{r}.") for r in R.refused_trials(search)]
        out.append(table(R.search_headers(doc), R.search_rows(search, doc)))
    if doc.get("search"):
        out.append(_p(M.SEARCH_NOTE, "note"))
    out += split_section(doc.get("split"))
    if doc.get("prune"):
        p = doc["prune"]
        out += [f"<h2 id='pruning'>{html.escape(M.prune_title(p))}</h2>",
                table(["layer", "sparsity"], [[k, f"{v:.1%}"] for k, v in p["sparsity_by_layer"].items()])]
    if doc.get("distill"):
        d = doc["distill"]
        out += [f"<h2 id='distillation'>{html.escape(D.title(d))}</h2>", table(D.HEADERS, D.side_rows(d)),
                table(D.PAIR_HEADERS, D.pair_rows(d, doc))]
        if "distill.png" in charts:
            out.append(figure("distill.png", charts["distill.png"]))
    if doc.get("memory"):
        m = doc["memory"]
        out += [f"<h2 id='memory'>Memory size and cost ({html.escape(m['variant'])})</h2>", _p(M.memory_sentence(m))]
        if "memory.png" in charts:
            out.append(figure("memory.png", charts["memory.png"]))
        out.append(table(R.MEMORY_HEADERS, R.memory_rows(m)))
    if doc.get("artifacts"):
        out += ["<h2 id='artifacts'>Artifacts</h2>",
                table(R.ARTIFACT_HEADERS, [[a[0], f"`{a[1]}`", *a[2:]] for a in R.artifact_rows(doc)])]
    if doc.get("notes"):
        out += ["<h2 id='notes'>Notes</h2>", "<ul>" + "".join(f"<li>{inline(n)}</li>" for n in doc["notes"]) + "</ul>"]
    out += next_steps_section(doc)
    return out


def next_steps_section(doc: dict) -> list[str]:
    """report.md's "Next steps": the commands for what the build made, run from the report's folder."""
    steps = next_steps(doc, Path("."))
    if not steps:
        return []
    out = ["<h2 id='next-steps'>Next steps</h2>",
           _p(f"Run from this report's folder; `{EVENT}` is the sample request the build wrote (`events/` has it "
              "in every format).")]
    for step in steps:
        out += [_p(f"{step.title}:"), f"<pre><code>{html.escape(chr(10).join(step.commands))}</code></pre>"]
    return out


def split_section(split: dict | None) -> list[str]:
    if not split:
        return []
    if split.get("status") != "ok":
        return ["<h2 id='split'>Split</h2>", _p(f"Not split: {split.get('reason', '')}.")]
    at = ", ".join(f"`{a}`" for a in split["at"])
    out = [f"<h2 id='split'>Split ({len(split['parts'])} parts of {html.escape(split['variant'])}, cut after "
           f"{inline(at)})</h2>", _p(M.split_sentence(split)), table(R.SPLIT_HEADERS, R.split_part_rows(split)),
           table(["layout", "possible", "why"],
                 [[name, R.yes_no(lay["possible"]), lay["why"]] for name, lay in split["layouts"].items()])]
    if split.get("note"):
        out.append(_p(split["note"] + "."))
    return out


def to_html(doc: dict, charts: dict[str, Path]) -> str:
    """report.html from the report's JSON document and the chart files written beside it."""
    name = html.escape(doc["name"])
    passed = bool(doc.get("passed"))
    summary = M.summary_lines(doc)
    first = summary[0].split(" — ", 1)[-1]
    head = ["<!doctype html>", "<html lang='en'><head><meta charset='utf-8'>",
            "<meta name='viewport' content='width=device-width,initial-scale=1'>",
            "<link rel='icon' href='data:,'>",  # no favicon request either
            f"<title>modelpack: {name}</title><style>{CSS}</style></head><body>",
            f"<h1>modelpack: {name}</h1>",
            f"<p><span class='status {'pass' if passed else 'fail'}'>{'passed' if passed else 'FAILED'}</span> "
            f"{inline(first)}</p>"]
    head += [_p(line) for line in summary[1:]]
    return "\n".join(head + sections(doc, charts) + ["</body></html>"]) + "\n"
