"""Exit codes that tell the truth: the user's mistakes are exit 2 naming the file and the field or array,
never exit 0 with nothing built, never a traceback or exit 3."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.files.jsonio import dumps_strict
from modelpack.files.output import write_manifest
from tests.helpers.paths import DIGITS, ROOT

MODELPACK = ROOT / ".venv" / "bin" / "modelpack"


def write_recipe(folder: Path, **overrides) -> Path:
    """A one-variant digits recipe in `folder` with cheap measurements."""
    data = {"name": "codes", "model": {"path": str(DIGITS / "model.keras")},
            "data": {"path": str(DIGITS / "digits.npz"), "evaluation": 100, "calibration": 20},
            "optimize": {"variants": ["tflite-fp32"]},
            "measure": {"latency": {"warmup": 2, "runs": 10}, "cold_start": {"runs": 1}}}
    data.update(overrides)
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def run(*args: str):
    return CliRunner().invoke(cli, list(args))


def build(recipe: Path, out: Path):
    return run("build", str(recipe), "--out", str(out), "--cache-dir", str(recipe.parent / "cache"))


def assert_usage_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    for word in words:
        assert word in result.output, result.output


@pytest.fixture
def data_module(tmp_path, monkeypatch):
    """Write a module of data functions and put its folder on the import path, as a user would."""
    folder = tmp_path / "pymods"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))

    def write(name: str, body: str) -> str:
        (folder / f"{name}.py").write_text(body)
        return f"{name}:load"

    return write


def previous_output(out: Path) -> dict[str, bytes]:
    """A previous build's output (a folder with its manifest) and its bytes, to check it is untouched."""
    out.mkdir()
    (out / "report.json").write_text('{"previous": true}\n')
    write_manifest(out)
    return {p.name: p.read_bytes() for p in out.iterdir()}


# Data functions: user code that exits, interrupts or hangs.

def test_data_function_calling_sys_exit_0(tmp_path, data_module):
    ref = data_module("exits_zero", "import sys\n\ndef load():\n    sys.exit(0)\n")
    recipe = write_recipe(tmp_path, data={"path": ref})
    out = tmp_path / "out"
    before = previous_output(out)
    assert_usage_error(build(recipe, out), f"data.path {ref}", "sys.exit(0)")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_data_function_raising_keyboard_interrupt(tmp_path, data_module):
    ref = data_module("interrupts", "def load():\n    raise KeyboardInterrupt\n")
    assert_usage_error(build(write_recipe(tmp_path, data={"path": ref}), tmp_path / "out"),
                       f"data.path {ref}", "KeyboardInterrupt")


def test_data_function_that_never_returns_is_stopped(tmp_path, data_module):
    ref = data_module("hangs", "import time\n\ndef load():\n    while True:\n        time.sleep(1)\n")
    recipe = write_recipe(tmp_path, data={"path": ref, "timeout_s": 2})
    start = time.monotonic()
    result = build(recipe, tmp_path / "out")
    assert_usage_error(result, f"data.path {ref}", "did not return within 2 s", "data.timeout_s")
    assert time.monotonic() - start < 30


def test_data_timeout_is_a_documented_recipe_field():
    schema = json.loads((ROOT / "recipes" / "recipe.schema.json").read_text())
    field = schema["$defs"]["DataSpec"]["properties"]["timeout_s"]
    assert field["default"] == 300 and "stopped" in field["description"]
    assert "`data.timeout_s`" in (ROOT / "docs" / "guarantees.md").read_text()


# Sample data that would make every measurement undefined.

def test_empty_npz(tmp_path):
    npz = tmp_path / "empty.npz"
    np.savez(npz, x=np.zeros((0, 8, 8, 1), np.float32), y=np.zeros((0,), np.int64))
    recipe = write_recipe(tmp_path, data={"path": str(npz)})
    for result in (run("validate", str(recipe)), build(recipe, tmp_path / "out")):
        assert_usage_error(result, str(npz), "array 'x' has 0 samples")


def test_nan_labels_are_refused_for_classification(tmp_path):
    with np.load(DIGITS / "digits.npz") as d:
        x, y = d["x"], d["y"].astype(np.float32)
    y[5] = np.nan
    npz = tmp_path / "nan-labels.npz"
    np.savez(npz, x=x, y=y)
    recipe = write_recipe(tmp_path, data={"path": str(npz)})
    for result in (run("validate", str(recipe)), build(recipe, tmp_path / "out")):
        assert_usage_error(result, str(npz), "array 'y' (data.labels)", "NaN or infinite", "sample 5")
    regression = write_recipe(tmp_path, data={"path": str(npz)}, task="regression")
    assert_usage_error(run("validate", str(regression)), "array 'y' (data.labels)")
    custom = write_recipe(tmp_path, data={"path": str(npz)}, task="mytask:score")
    assert run("validate", str(custom)).exit_code == 0  # a custom task decides about its own labels


def test_nan_inputs_are_refused_and_previous_output_kept(tmp_path):
    with np.load(DIGITS / "digits.npz") as d:
        x, y = d["x"].copy(), d["y"]
    x[7, 0, 0, 0] = np.inf
    x[9, 1, 1, 0] = np.nan
    npz = tmp_path / "nan-inputs.npz"
    np.savez(npz, x=x, y=y)
    recipe = write_recipe(tmp_path, data={"path": str(npz)})
    out = tmp_path / "out"
    before = previous_output(out)
    for result in (run("validate", str(recipe)), build(recipe, out)):
        assert_usage_error(result, str(npz), "array 'x' (data.inputs)", "2 of 540 samples", "sample 7")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


# Model files that are not files.

@pytest.mark.parametrize("kind", ["device", "fifo"])
def test_non_regular_model_file(tmp_path, kind):
    if kind == "device":
        model = Path("/dev/zero")
    else:
        model = tmp_path / "model.keras"
        os.mkfifo(model)
    recipe = write_recipe(tmp_path, model={"path": str(model)})
    for command in (["validate", str(recipe)], ["build", str(recipe), "--out", str(tmp_path / "out")]):
        # A real process with a time limit: reading a device or opening a pipe would hang forever.
        proc = subprocess.run([str(MODELPACK), *command], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        assert proc.returncode == 2, proc.stderr
        assert f"model.path: {model} is not a regular file" in proc.stderr


# validate refuses what build refuses (without TensorFlow).

def _edited_model(tmp_path: Path, edit) -> Path:
    """The digits model with its saved architecture changed by `edit(config)`."""
    dest = tmp_path / "edited.keras"
    with zipfile.ZipFile(DIGITS / "model.keras") as src, zipfile.ZipFile(dest, "w") as out:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                config = json.loads(data)
                edit(config)
                data = json.dumps(config).encode()
            out.writestr(item, data)
    return dest


def _lambda_layer(config: dict) -> None:
    layer = next(la for la in config["config"]["layers"] if la["class_name"] == "Flatten")
    layer["class_name"] = "Lambda"


def _no_outputs(config: dict) -> None:
    config["config"]["output_layers"] = []


def _truncated(tmp_path: Path) -> Path:
    dest = tmp_path / "truncated.keras"
    data = (DIGITS / "model.keras").read_bytes()
    dest.write_bytes(data[: len(data) // 2])
    return dest


@pytest.mark.parametrize("case, words", [
    ("lambda", ["layer 'flatten' (Lambda)", "model.trust_code: true"]),
    ("truncated", ["not a Keras model"]),
    ("no-outputs", ["has no outputs"]),
])
def test_validate_refuses_what_build_refuses(tmp_path, case, words):
    model = {"lambda": lambda: _edited_model(tmp_path, _lambda_layer), "truncated": lambda: _truncated(tmp_path),
             "no-outputs": lambda: _edited_model(tmp_path, _no_outputs)}[case]()
    recipe = write_recipe(tmp_path, model={"path": str(model)})
    validated, built = run("validate", str(recipe)), build(recipe, tmp_path / "out")
    assert_usage_error(validated, str(model), *words)
    assert_usage_error(built, str(model), *words)
    # The same paragraph; the build shows the stage it stopped in before it.
    assert validated.output == built.output[built.output.index("error: "):]


def test_damaged_archive_member(tmp_path):
    """A .keras whose weights were corrupted after zipping: the CRC check finds it, before TensorFlow."""
    dest = tmp_path / "damaged.keras"
    shutil.copyfile(DIGITS / "model.keras", dest)
    with zipfile.ZipFile(dest) as zf:
        info = zf.getinfo("model.weights.h5")
    raw = bytearray(dest.read_bytes())
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 100
    raw[start:start + 64] = bytes(64)
    dest.write_bytes(bytes(raw))
    recipe = write_recipe(tmp_path, model={"path": str(dest)})
    assert_usage_error(run("validate", str(recipe)), str(dest), "archive is damaged", "model.weights.h5")


# Strict JSON.

def test_strict_json_helper_writes_null_for_undefined_numbers():
    text = dumps_strict({"a": math.nan, "b": [np.float32(np.inf), np.float64(-np.inf), np.int64(3)],
                         "c": np.array([1.5, np.nan]), "d": (np.bool_(True), None)}, sort_keys=True)
    assert text == '{"a": null, "b": [null, null, 3], "c": [1.5, null], "d": [true, null]}'
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}"))


@pytest.mark.slow
def test_report_json_is_strict_when_a_score_is_undefined(tmp_path, monkeypatch):
    """A custom task may accept NaN labels and return NaN: report.json says null, never NaN."""
    mods = tmp_path / "pymods"
    mods.mkdir()
    (mods / "nan_task.py").write_text("def score(outputs, labels):\n    return float('nan')\n")
    monkeypatch.syspath_prepend(str(mods))
    with np.load(DIGITS / "digits.npz") as d:
        x, y = d["x"], d["y"].astype(np.float32)
    y[::3] = np.nan
    npz = tmp_path / "data.npz"
    np.savez(npz, x=x, y=y)
    recipe = write_recipe(tmp_path, data={"path": str(npz), "evaluation": 60, "calibration": 20}, task="nan_task:score")
    out = tmp_path / "out"
    result = build(recipe, out)
    assert result.exit_code in (0, 1), result.output
    for path in out.rglob("*.json"):
        json.loads(path.read_text(), parse_constant=lambda c, p=path: pytest.fail(f"{p}: {c}"))
    report = json.loads((out / "report.json").read_text())
    assert [v["accuracy"] for v in report["variants"]] == [None, None]


def test_custom_task_calling_sys_exit_is_a_recipe_error(tmp_path, monkeypatch):
    """The task score runs in the build process: sys.exit there must not become the build's exit code."""
    from modelpack.errors import InputError
    from modelpack.measure import metrics

    (tmp_path / "exiting_task.py").write_text("import sys\n\ndef score(outputs, labels):\n    sys.exit(0)\n")
    (tmp_path / "nan_score.py").write_text("def score(outputs, labels):\n    return float('inf')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    outputs, labels = [np.zeros((4, 10), np.float32)], np.zeros(4, np.int64)
    with pytest.raises(InputError, match=r"task exiting_task:score called sys.exit\(0\)"):
        metrics.accuracy(outputs, labels, "exiting_task:score")
    assert metrics.accuracy(outputs, labels, "nan_score:score") is None


@pytest.mark.slow
def test_cache_clean_while_a_build_runs_leaves_the_build_alone(tmp_path):
    """`modelpack cache clean` during a build is refused (exit 2, naming the cache) for as long as the build uses it;
    the build finishes with exit 0 and its artifacts (it used to die with exit 3, FileNotFoundError)."""
    recipe = write_recipe(tmp_path, targets=[{"kind": "lambda-function"}])
    cache = tmp_path / "cache"
    build_proc = subprocess.Popen([str(MODELPACK), "build", str(recipe), "--out", str(tmp_path / "out"), "--cache-dir",
                                   str(cache), "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    cleans = []
    try:
        while build_proc.poll() is None:
            if any(cache.glob("[0-9a-f]" * 32)):  # entries written: the build is under way
                clean = subprocess.run([str(MODELPACK), "cache", "clean", "--cache-dir", str(cache)],
                                       capture_output=True, text=True, timeout=120, check=False)
                cleans.append((clean.returncode, clean.stderr))
            time.sleep(0.5)
        out, err = build_proc.communicate(timeout=600)
    finally:
        if build_proc.poll() is None:
            build_proc.kill()
    assert build_proc.returncode == 0, err[-2000:]
    assert (tmp_path / "out" / "lambda" / "function.zip").is_file()
    assert cleans and all(code == 2 and "in use by a running build" in text for code, text in cleans[:-1]), cleans
