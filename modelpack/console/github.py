"""GitHub Actions output, active when GITHUB_ACTIONS=true: error annotations, log groups per stage, step
outputs in $GITHUB_OUTPUT and (opt-in) the report in $GITHUB_STEP_SUMMARY. Elsewhere every function here
does nothing, so callers need no checks of their own."""

from __future__ import annotations

import contextlib
import os
import re
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

PROBLEM = re.compile(r"^(?P<file>[^\s:][^:]*):(?P<line>\d+):?\s+(?P<message>.+)$")
COMMAND_LINE = re.compile(r"^(\s*)::", re.MULTILINE)  # what the Actions runner takes as a workflow command
LINE_BREAKS = re.compile(r"\r\n|\r|\n")  # the runner, like Azure Pipelines' agent, also ends a line at \r
LOG_COMMAND = re.compile(r"##(?=\[|vso\[)", re.IGNORECASE)  # ##[group], ##vso[task.setvariable]: anywhere
IMAGE = re.compile(r"!\[(?P<alt>[^\]]*)\]\((?!https?://|data:)(?P<src>[^)\s]+)\)")


def inert(text: str) -> str:
    r"""`text` as plain log output that no CI runner executes: a line that starts with `::` (after spaces) would be
    a GitHub Actions workflow command (::add-mask::, ::warning::, ::stop-commands::), `##[` and `##vso[` anywhere
    one of the older or Azure Pipelines' log commands. Messages quote recipe values, data array names and paths
    as they are, so a value holding a line break and `::add-mask::` must not become a command: such lines get a
    backslash before the `::`, and `##` before `[` becomes `#\#`. Carriage returns end lines too."""
    text = LINE_BREAKS.sub("\n", text)
    return LOG_COMMAND.sub("#\\#", COMMAND_LINE.sub(lambda m: m.group(1) + "\\::", text))


def active() -> bool:
    return os.environ.get("GITHUB_ACTIONS") == "true"


def _data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _command(line: str) -> None:
    sys.stderr.flush()
    print(line, flush=True)


def error(message: str, file: str | Path | None = None, line: int | None = None) -> None:
    if not active():
        return
    props = ",".join(p for p in (f"file={_prop(str(file))}" if file else "",
                                 f"line={line}" if line else "") if p)
    message = LOG_COMMAND.sub("#\\#", message)
    _command(f"::error {props}::{_data(message)}" if props else f"::error::{_data(message)}")


def recipe_errors(message: str, problems: list[str]) -> None:
    """One annotation per recipe problem, at its file and line when the loader knew them."""
    for problem in problems or [message.splitlines()[0]]:
        m = PROBLEM.match(problem.strip())
        if m:
            error(m["message"], m["file"], int(m["line"]))
        else:
            error(problem.strip())


def budget_errors(report_json: dict, recipe: Path) -> None:
    """One annotation per failed budget, at the budget's line in the recipe."""
    if not active():
        return
    from modelpack.recipe.loader import read_yaml

    try:
        _, lines = read_yaml(recipe)
    except Exception:  # the build read it a moment ago; an annotation without a line is still useful
        lines = {}
    for b in report_json.get("budgets", []):
        if not b["passed"]:
            error(f"budget {b['name']} failed: measured {b['value']}, limit {b['limit']}",
                  recipe, lines.get(("budgets", b["name"])))
    if report_json.get("selected") is None and not report_json.get("budgets"):
        error("no variant was built", recipe)


@contextlib.contextmanager
def group(title: str) -> Iterator[None]:
    if not active():
        yield
        return
    _command(f"::group::{_data(title)}")
    try:
        yield
    finally:
        _command("::endgroup::")


def write_outputs(values: dict[str, str]) -> None:
    """key=value lines (a heredoc-style block for multi-line values) appended to $GITHUB_OUTPUT."""
    target = os.environ.get("GITHUB_OUTPUT")
    if not active() or not target:
        return
    with open(target, "a", encoding="utf-8") as f:
        for key, value in values.items():
            if "\n" in value:
                delimiter = f"MODELPACK_{uuid.uuid4().hex}"
                f.write(f"{key}<<{delimiter}\n{value}\n{delimiter}\n")
            else:
                f.write(f"{key}={value}\n")


def build_outputs(report_json: dict, dist: Path) -> dict[str, str]:
    arts = [str(dist / a["path"]) for a in report_json.get("artifacts", [])]
    return {"passed": "true" if report_json.get("passed") else "false", "selected": report_json.get("selected") or "",
            "dist": str(dist), "report": str(dist / "report.md"), "artifacts": "\n".join(arts)}


def summary_markdown(markdown: str) -> str:
    """report.md for the job summary: images the summary cannot resolve (relative paths) become their text."""
    return IMAGE.sub(lambda m: f"*{m['alt'] or m['src']} (`{m['src']}` in the build output)*", markdown)


def append_summary(markdown: str) -> bool:
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return False
    with open(target, "a", encoding="utf-8") as f:
        f.write(summary_markdown(markdown).rstrip("\n") + "\n")
    return True
