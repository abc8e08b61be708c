"""With GITHUB_ACTIONS=true: log groups per stage, error annotations at the recipe's file and line, step
outputs and the job summary, checked in the files a runner would read (temporary files here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from modelpack.console import github

pytestmark = pytest.mark.slow


def run_cli(args: list[str], tmp: Path, **extra) -> tuple[subprocess.CompletedProcess, dict[str, Path]]:
    files = {"GITHUB_OUTPUT": tmp / "github_output", "GITHUB_STEP_SUMMARY": tmp / "step_summary.md"}
    for f in files.values():
        f.write_text("")
    env = {**os.environ, "GITHUB_ACTIONS": "true", **{k: str(v) for k, v in files.items()}, **extra}
    proc = subprocess.run([str(Path(sys.executable).parent / "modelpack"), *args], capture_output=True, text=True,
                          env=env, timeout=600, check=False)
    return proc, files


def outputs(path: Path) -> dict[str, str]:
    """Parse $GITHUB_OUTPUT as the runner does: key=value, or key<<DELIM ... DELIM."""
    lines, values, i = path.read_text().splitlines(), {}, 0
    while i < len(lines):
        if "<<" in lines[i] and "=" not in lines[i].split("<<")[0]:
            key, delim = lines[i].split("<<", 1)
            end = lines.index(delim, i + 1)
            values[key], i = "\n".join(lines[i + 1:end]), end + 1
        else:
            key, value = lines[i].split("=", 1)
            values[key], i = value, i + 1
    return values


def test_build_writes_groups_outputs_and_summary(digits_recipe, tmp_path):
    # The labels array is named with HTML, as a hostile or careless data file may name it: the job summary
    # (report.md) must show it as text.
    import numpy as np

    from tests.helpers.paths import DIGITS

    hostile = "y<img src=x onerror=alert(1)>"
    with np.load(DIGITS / "digits.npz") as npz:
        np.savez(tmp_path / "digits.npz", **{"x": npz["x"], hostile: npz["y"], "x_train": npz["x_train"],
                                             "y_train": npz["y_train"]})
    recipe = digits_recipe(optimize={"variants": ["tflite-int8"]}, targets=[{"kind": "lambda-function", "top_k": 3}])
    data = yaml.safe_load(recipe.read_text())
    data["data"].update(path=str(tmp_path / "digits.npz"), labels=hostile)
    recipe.write_text(yaml.safe_dump(data, sort_keys=False))
    out = tmp_path / "out"
    proc, files = run_cli(["build", str(recipe), "--out", str(out), "--cache-dir", str(tmp_path / "cache"),
                           "--summary"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("::group::") == proc.stdout.count("::endgroup::")  # stages are groups (below)
    values = outputs(files["GITHUB_OUTPUT"])
    assert values["passed"] == "true" and values["selected"] == "tflite-int8" and values["dist"] == str(out)
    assert str(out / "lambda" / "function.zip") in values["artifacts"].splitlines()
    assert all(Path(p).is_file() for p in values["artifacts"].splitlines())
    summary = files["GITHUB_STEP_SUMMARY"].read_text()
    assert "tflite-int8" in summary and "## Next steps" in summary
    assert "<img" not in summary and "y&lt;img src=x onerror=alert(1)&gt;" in summary
    assert "](report.png)" not in summary and "](memory.png)" not in summary
    assert "Next steps:" in proc.stdout and f"modelpack publish {out} --target lambda" in proc.stdout


def test_recipe_errors_are_annotated_at_their_line(tmp_path):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: digits\nmodel:\n  path: missing.keras\ndata: {path: d.npz, inputs: x}\n"
                      "budgets:\n  max_zip_mb: -3\n")
    proc, _ = run_cli(["validate", str(recipe)], tmp_path)
    assert proc.returncode == 2
    annotations = [ln for ln in proc.stdout.splitlines() if ln.startswith("::error ")]
    assert any(ln.startswith(f"::error file={recipe},line=6::") and "max_zip_mb" in ln for ln in annotations), \
        proc.stdout + proc.stderr


def test_failed_budgets_are_annotated_at_the_budget_line(tmp_path, monkeypatch, capsys):
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"name": "x", "budgets": {"max_zip_mb": 1, "max_p95_ms": 2}}, sort_keys=False))
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    github.budget_errors({"selected": "onnx-fp32", "budgets": [
        {"name": "max_zip_mb", "limit": 1.0, "value": 0.5, "passed": True},
        {"name": "max_p95_ms", "limit": 2.0, "value": 3.25, "passed": False}]}, recipe)
    out = capsys.readouterr().out.splitlines()
    assert out == [f"::error file={recipe},line=4::budget max_p95_ms failed: measured 3.25, limit 2.0"]


def test_summary_keeps_remote_images_and_commands_escape(monkeypatch, capsys):
    md = "![chart](report.png)\n![logo](https://example.org/x.png)\n"
    assert github.summary_markdown(md) == "*chart (`report.png` in the build output)*\n![logo](https://example.org/x.png)\n"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    github.error("50% of\nthe rows", "a,b:c.yaml", 3)
    assert capsys.readouterr().out == "::error file=a%2Cb%3Ac.yaml,line=3::50%25 of%0Athe rows\n"
    monkeypatch.setenv("GITHUB_ACTIONS", "false")
    github.error("silent")
    assert capsys.readouterr().out == ""


def test_each_stage_is_a_log_group(monkeypatch, capsys):
    from rich.console import Console

    from modelpack.console.progress import Reporter

    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    reporter = Reporter(Console(file=sys.stderr, force_terminal=False))
    with reporter.stage(2, 11, "convert", "converting 3 variants"):
        print("inside")
    with Reporter(quiet=True).stage(3, 11, "measure", "measuring"):
        pass
    assert capsys.readouterr().out == "::group::[2/11] converting 3 variants\ninside\n::endgroup::\n"
