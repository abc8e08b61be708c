"""The CLI's streams and exit codes as shells and CI runners see them: a reader that goes away early (`| head`)
ends the command quietly, as `git log | head` does (SIGPIPE, never exit 1 or a "modelpack bug" exit 3); error text
that quotes recipe values never becomes a GitHub Actions workflow command; report.md (the job summary) shows the
HTML a data array's name holds as text; `modelpack cache clean` leaves a cache alone while a build uses it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from modelpack.files.cache import Cache
from tests.helpers.paths import DIGITS

MODELPACK = [sys.executable, "-m", "modelpack"]


def run_into_closed_pipe(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """The command with its stdout a pipe whose reader has already gone (`modelpack ... | head -c 0`)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run([*MODELPACK, *args], stdout=write, stderr=subprocess.PIPE, text=True, cwd=cwd,
                              timeout=120, check=False)
    finally:
        os.close(write)


@pytest.mark.parametrize("args", [["schema"], ["schema", "--markdown"], ["--help"], ["validate", "--help"],
                                  ["cache", "info", "--json"], ["validate", str(DIGITS / "recipe.yaml")]])
def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path, args):
    proc = run_into_closed_pipe(args, tmp_path)
    assert proc.returncode == -signal.SIGPIPE, (proc.returncode, proc.stderr)
    assert proc.stderr == ""


def test_head_after_a_pipe_still_gets_its_lines(tmp_path):
    proc = subprocess.run(" ".join(MODELPACK) + " schema --markdown | head -2", shell=True, capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, check=False)
    assert len(proc.stdout.splitlines()) == 2 and proc.stderr == "" and proc.returncode == 0


INJECTED = "\n::warning::pwned\n::add-mask::secret\r::stop-commands::x ##[error]no ##vso[task.setvariable]v"


def runner_lines(text: str) -> list[str]:
    """Lines as the Actions runner and the Azure Pipelines agent read a step's output."""
    return re.split(r"\r\n|\r|\n", text)


@pytest.mark.parametrize("field", ["inputs", "model"])
def test_error_text_quoting_recipe_values_runs_no_workflow_command(tmp_path, field):
    data = {"name": "inj", "model": {"path": str(DIGITS / "model.keras")},
            "data": {"path": str(DIGITS / "digits.npz"), "labels": "y"}}
    if field == "inputs":
        data["data"]["inputs"] = "x" + INJECTED
    else:
        data["model"]["path"] = "missing" + INJECTED + ".keras"
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(data))
    proc = subprocess.run([*MODELPACK, "validate", str(recipe)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "GITHUB_ACTIONS": "true"}, check=False)
    assert proc.returncode == 2 and "pwned" in proc.stderr, proc.stderr
    for line in runner_lines(proc.stdout + proc.stderr):
        assert not line.lstrip().startswith("::") or line.startswith("::error"), line
        assert "##[" not in line and "##vso[" not in line.lower(), line
    annotations = [line for line in runner_lines(proc.stdout) if line.startswith("::error")]
    assert annotations and all("add-mask" not in a or "%0A" in a for a in annotations), annotations


def test_report_markdown_shows_html_from_names_as_text():
    from modelpack.report.markdown import to_markdown

    doc = json.loads((Path(__file__).parents[1] / "fixtures" / "reports" / "digits.json").read_text())
    hostile = "<img src=x onerror=alert(1)>"
    doc["data"]["description"] = f"100 samples from data.npz (labels: y{hostile})"
    doc["model"]["path"] = f"models/{hostile}.keras"
    doc["notes"] = [f"array {hostile} & more"]
    md = to_markdown(doc)
    assert "<img" not in md and "&lt;img src=x onerror=alert(1)&gt;" in md and "&amp; more" in md


def test_cache_clean_leaves_a_cache_in_use_alone(tmp_path):
    root = tmp_path / "cache"
    source = tmp_path / "step"
    source.mkdir()
    (source / "model.tflite").write_bytes(b"x" * 100)
    cache = Cache(root)
    entry = cache.put("0" * 32, source)
    with cache.in_use():  # as a running build holds it
        for command in (["cache", "clean"], ["cache", "prune", "--max-size", "0"]):
            proc = subprocess.run([*MODELPACK, *command, "--cache-dir", str(root)], capture_output=True, text=True,
                                  timeout=120, check=False)
            assert proc.returncode == 2, proc.stderr
            assert "in use by a running build" in proc.stderr and str(root) in proc.stderr.replace("\n", "")
            assert (entry / "model.tflite").is_file()
    proc = subprocess.run([*MODELPACK, "cache", "clean", "--cache-dir", str(root)], capture_output=True, text=True,
                          timeout=120, check=False)
    assert proc.returncode == 0 and "removed 1 entries" in proc.stdout and not root.exists(), proc.stdout


def test_data_arrays_with_html_names_load(tmp_path):
    """The hostile name used by the job summary test below is a legal .npz member."""
    np.savez(tmp_path / "d.npz", **{"y<img src=x>": np.zeros(3)})
    with np.load(tmp_path / "d.npz") as npz:
        assert npz.files == ["y<img src=x>"]
