"""Layer splitting end to end: cut points of a sequential CNN (digits) and a residual CNN, illegal cuts refused
with the legal ones named, chains verified numerically, and both Lambda layouts invoked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.host.interpreters import host_arch, host_python
from modelpack.local.split_chain import SplitChain
from tests.helpers.paths import DIGITS, FIXTURES
from tests.helpers.serving import serving_module

pytestmark = pytest.mark.slow
RESIDUAL = FIXTURES / "residual" / "model.keras"


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("split-cache")


def _recipe(tmp: Path, name: str, model: Path, variant: str, split: dict, target: dict | None) -> Path:
    data = {"name": name, "model": {"path": str(model)},
            "optimize": {"variants": [variant], "split": split},
            "measure": {"latency": {"warmup": 2, "runs": 10}, "cold_start": {"runs": 1}}}
    if model == DIGITS / "model.keras":
        data["data"] = {"path": str(DIGITS / "digits.npz"), "evaluation": 100, "calibration": 100,
                        "train": {"inputs": "x_train", "labels": "y_train"}}
    else:
        data["data"] = {"synthetic": True, "evaluation": 40, "calibration": 40}
    if target:
        data["targets"] = [{"kind": "lambda-layer", "python": host_python(), "arch": host_arch()}, target]
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _build(recipe: Path, out: Path, cache: Path, code: int = 0):
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(out), "--cache-dir", str(cache)])
    assert result.exit_code == code, result.output
    return result, (json.loads((out / "report.json").read_text()) if code == 0 else None)


def test_inspect_lists_legal_and_illegal_cuts_of_a_residual_model():
    result = CliRunner().invoke(cli, ["inspect", str(RESIDUAL), "--json"])
    assert result.exit_code == 0, result.output
    cuts = {c["after"]: c for c in json.loads(result.output)["cuts"]}
    for inside in ("block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2"):
        assert not cuts[inside]["legal"] and cuts[inside]["crossing_tensors"] == 2
    for between in ("stem", "block1_add", "block1_out", "block2_out", "pool", "flatten", "fc"):
        assert cuts[between]["legal"]
    assert cuts["pool"]["tensor_shape"] == [None, 8, 8, 16] and cuts["pool"]["tensor_bytes"] == 8 * 8 * 16 * 4
    assert cuts["fc"]["bytes_before"] + cuts["fc"]["bytes_after"] == cuts["stem"]["bytes_before"] + cuts["stem"]["bytes_after"]
    table = CliRunner().invoke(cli, ["inspect", str(RESIDUAL)])
    assert "skip connection" in table.output and "cut points (8 legal)" in table.output


def test_illegal_cut_is_refused_naming_the_legal_ones(tmp_path, cache):
    recipe = _recipe(tmp_path, "bad", RESIDUAL, "tflite-fp32", {"at": ["block1_conv2"]}, None)
    result, _ = _build(recipe, tmp_path / "out", cache, code=2)
    assert "optimize.split.at[0]: cannot cut after 'block1_conv2'" in result.output
    assert "skip connection" in result.output and "'stem' or 'block1_add'" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def sequential(tmp_path_factory, cache):
    tmp = tmp_path_factory.mktemp("sequential")
    recipe = _recipe(tmp, "digits-split", DIGITS / "model.keras", "tflite-fp32", {"parts": 3},
                     {"kind": "lambda-split", "layout": "single", "parts_in": "layers", "top_k": 2})
    return _build(recipe, tmp / "out", cache)[1], tmp / "out"


def test_sequential_float_chain_reproduces_the_model(sequential):
    report, out = sequential
    split = report["split"]
    assert split["status"] == "ok" and len(split["parts"]) == 3 and len(split["at"]) == 2
    assert split["keras_chain_ok"] and split["keras_chain_max_abs_err"] <= 1e-5
    assert split["vs_unsplit"]["max_abs_err"] <= 1e-5 and split["vs_unsplit"]["agreement"] == 1.0
    assert split["accuracy"] == next(v for v in report["variants"] if v["name"] == "tflite-fp32")["accuracy"]
    assert all((out / p["file"]).exists() for p in split["parts"])
    assert split["layouts"]["step-functions"]["possible"] and "KiB" in split["layouts"]["step-functions"]["why"]
    assert "### Split (3 parts of tflite-fp32" in (out / "report.md").read_text()


def test_single_function_with_part_layers_invokes_end_to_end(sequential, tmp_path):
    report, out = sequential
    arts = {a["path"]: a for a in report["artifacts"]}
    assert {f"lambda/split/part{k}-layer.zip" for k in (1, 2, 3)} <= set(arts)
    fn = arts["lambda/split/function.zip"]["details"]
    assert fn["layers"] == 4 and fn["handler_check"]["max_abs_err_vs_chain"] <= 1e-6
    # Every part is verified and loaded inside the one timed load, not on the first inference.
    assert fn["handler_check"]["model_loads"] == 1 and fn["handler_check"]["model_load_ms"] > 0.5
    with np.load(DIGITS / "digits.npz") as npz:
        x = npz["x"][:3]
    with SplitChain(out, tmp_path) as chain:
        answer, _ = chain.invoke({"instances": x.tolist()})
    whole = _variant_predictions(out / "variants" / "tflite-fp32.tflite", "image", x)
    assert np.max(np.abs(np.asarray(answer["predictions"]) - whole)) <= 1e-5
    assert [t[0]["class"] for t in answer["top_k"]] == list(np.argmax(whole, axis=1))
    _cfn_lint(out / "lambda" / "split" / "template.yaml")


def test_serve_answers_every_format_through_the_chaining_function(sequential, tmp_path):
    """`modelpack serve` on a build whose only function is the split chain: JSON and .npy bodies (base64 in
    the Function URL event) through the three part layers agree with the model."""
    import io
    import subprocess
    import sys
    import urllib.request

    from tests.helpers.processes import free_port, wait_for_port

    _, out = sequential
    with np.load(DIGITS / "digits.npz") as npz:
        x = npz["x"][:3].astype(np.float32)
    whole = _variant_predictions(out / "variants" / "tflite-fp32.tflite", "image", x)
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "modelpack", "serve", str(out), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 120)
        array = io.BytesIO()
        np.save(array, x)
        for body, ctype in ((json.dumps({"instances": x.tolist()}).encode(), "application/json"),
                            (array.getvalue(), "application/x-npy")):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/predict", data=body, headers={"content-type": ctype})
            with urllib.request.urlopen(req, timeout=60) as resp:
                answer = json.loads(resp.read())
            assert np.max(np.abs(np.asarray(answer["predictions"]) - whole)) <= 1e-5, ctype
    finally:
        proc.terminate()
        output = proc.communicate(timeout=20)[0].decode()
    assert proc.returncode in (130, 143), output[-2000:]


@pytest.fixture(scope="module")
def residual(tmp_path_factory, cache):
    tmp = tmp_path_factory.mktemp("residual")
    recipe = _recipe(tmp, "residual-split", RESIDUAL, "onnx-int8", {"at": ["block1_out", "pool"]},
                     {"kind": "lambda-split", "layout": "per-part"})
    return _build(recipe, tmp / "out", cache)[1], tmp / "out"


def test_residual_int8_parts_chain_and_agree_with_the_unsplit_variant(residual):
    report, out = residual
    split = report["split"]
    assert split["at"] == ["block1_out", "pool"] and split["variant"] == "onnx-int8"
    assert split["keras_chain_max_abs_err"] <= 1e-5
    assert split["vs_unsplit"]["agreement"] >= 0.9  # INT8 per part, calibrated on the earlier parts' activations
    assert [p["input_shape"] for p in split["parts"]] == [[None, 16, 16, 3], [None, 16, 16, 16], [None, 8, 8, 16]]
    assert [c["tensor_bytes"] for c in split["cuts"]] == [16 * 16 * 16 * 4, 8 * 8 * 16 * 4]


def test_per_part_functions_run_through_the_state_machine(residual, tmp_path):
    report, out = residual
    machine = json.loads((out / "lambda" / "split" / "statemachine.asl.json").read_text())
    assert machine["StartAt"] == "Part1" and machine["States"]["Part1Handoff"]["Parameters"] == {
        "inputs.$": "$.Payload.predictions"}
    x = np.random.default_rng(3).normal(size=(2, 16, 16, 3)).astype(np.float32)
    with SplitChain(out, tmp_path) as chain:
        answer, _ = chain.invoke({"instances": x.tolist()})
        failed, _ = chain.invoke({"instances": [[1.0, 2.0]]})
    chained = _chain(out, report, x)
    assert np.max(np.abs(np.asarray(answer["predictions"]) - chained)) <= 1e-6
    assert failed["failed"] == "Part1Error" and "expected [batch, 16, 16, 3]" in failed["error"]
    _cfn_lint(out / "lambda" / "split" / "template.yaml")


def _variant_predictions(path: Path, name: str, x: np.ndarray) -> np.ndarray:
    model = serving_module("model_runtime").load(str(path))
    return np.concatenate([model.predict({name: x[i : i + 1]})[0] for i in range(len(x))])


def _chain(out: Path, report: dict, x: np.ndarray) -> np.ndarray:
    value = x
    for p in report["split"]["parts"]:
        value = _variant_predictions(out / p["file"], p["input"] if p["part"] > 1 else "image", value)
    return value


def _cfn_lint(template: Path) -> None:
    proc = subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(template)], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
