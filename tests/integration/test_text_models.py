"""Text models: a sentiment classifier whose string input is read by TextVectorization, built with Lambda targets and
served raw strings by the generated handler (in its own environment, without TensorFlow) and by `modelpack serve`,
with Keras' predictions; the handler's ids equal the layer's for other settings and for StringLookup; settings
the handler cannot reproduce are refused naming the option. Every model is tiny and created here."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.host.interpreters import host_arch, host_python
from modelpack.local.unzip import safe_extract
from modelpack.steps import StepJob
from modelpack.steps.text import AWKWARD
from modelpack.steps.worker import run_jobs
from tests.helpers.processes import free_port, wait_for_port

pytestmark = pytest.mark.slow
GOOD = ["a great film, loved it", "wonderful acting and a moving story", "brilliant! best movie this year",
        "I enjoyed every minute", "superb, funny and warm", "what a delight", "great cast, great fun",
        "moving and beautiful", "loved the music", "a joy to watch"]
BAD = ["a dull, boring film", "terrible acting and a silly story", "awful! worst movie this year",
       "I hated every minute", "tedious, flat and cold", "what a mess", "bad cast, no fun",
       "boring and ugly", "hated the music", "a pain to watch"]
QUERIES = ["Loved it!", "boring, BORING film...", "", "Ünïcödé 😀 review", "great\u00a0fun", "word " * 500]


def sentiment(folder: Path) -> Path:
    """A sentiment model with its vocabulary lookup inside: TextVectorization, an embedding, a softmax."""
    import keras

    keras.utils.set_random_seed(21)
    texts = np.asarray(GOOD + BAD)
    labels = np.asarray([1] * len(GOOD) + [0] * len(BAD))
    vectorize = keras.layers.TextVectorization(max_tokens=80, output_sequence_length=10)
    vectorize.adapt(texts)
    review = keras.Input((1,), dtype="string", name="review")
    h = keras.layers.Embedding(81, 8)(vectorize(review))
    h = keras.layers.GlobalAveragePooling1D()(h)
    model = keras.Model(review, keras.layers.Dense(2, activation="softmax")(h))
    model.compile("adam", "sparse_categorical_crossentropy")
    import tensorflow as tf

    model.fit(tf.constant(texts[:, None]), labels, epochs=40, verbose=0)
    model.save(folder / "model.keras")
    rng = np.random.default_rng(3)
    order = rng.permutation(len(texts))
    np.savez(folder / "reviews.npz", text=texts[order], y=labels[order])
    return folder / "model.keras"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("text")
    model = sentiment(tmp)
    recipe = tmp / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "reviews", "model": {"path": str(model)},
        "data": {"path": str(tmp / "reviews.npz"), "inputs": "text", "labels": "y", "evaluation": 14,
                 "calibration": 6},
        "optimize": {"variants": ["tflite-fp32", "onnx-fp32"]},
        "measure": {"latency": {"warmup": 1, "runs": 5}, "cold_start": {"runs": 1}},
        "serving": {"labels": ["negative", "positive"]},
        "targets": [{"kind": "lambda-layer", "python": host_python(), "arch": host_arch()},
                    {"kind": "lambda-function", "top_k": 2, "max_batch": 8}],
    }, sort_keys=False))
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(tmp / "out"), "--cache-dir", str(tmp / "c")])
    assert result.exit_code == 0, result.output
    return {"out": tmp / "out", "model": model, "tmp": tmp}


def keras_predictions(model: Path, texts: list[str]) -> np.ndarray:
    import keras

    return np.asarray(keras.saving.load_model(model)(np.asarray(texts)[:, None]))


def test_the_report_says_the_lookup_moved_into_the_handler(built):
    report = json.loads((built["out"] / "report.json").read_text())
    text = report["model"]["text"]
    assert text["input"] == "review" and text["kind"] == "TextVectorization" and text["sequence_length"] == 10
    assert report["model"]["inputs"] == [{"name": "review", "shape": [None, 1], "dtype": "string"}]
    assert any("vocabulary lookup" in n and "awkward strings" in n for n in report["notes"])
    for v in report["variants"]:
        assert v["status"] == "ok" and v["fidelity"]["agreement"] == 1.0, v
    assert report["variants"][0]["accuracy"] >= 0.9  # it learned the reviews
    events = json.loads((built["out"] / "events" / "predict.json").read_text())
    assert all(isinstance(t, list) and isinstance(t[0], str) for t in events["instances"])


def _handler(built, tmp_path, events: list) -> list[dict]:
    """Each event's answer from the packaged handler, run as Lambda runs it: task root and layer only."""
    from modelpack.targets.handler_check import handler_env

    task, opt = tmp_path / "task", tmp_path / "opt"
    safe_extract(built["out"] / "lambda" / "function.zip", task)
    safe_extract(built["out"] / "lambda" / "layer.zip", opt)
    code = ("import json, sys, handler\nevents = json.loads(sys.stdin.read())\n"
            "print(json.dumps([handler.handler(e, None) for e in events]))\n"
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules")
    proc = subprocess.run([sys.executable, "-S", "-c", code], input=json.dumps(events), capture_output=True, text=True,
                          cwd=task, env=handler_env(task, opt), timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_lambda_handler_serves_raw_strings_with_keras_predictions(built, tmp_path):
    expected = keras_predictions(built["model"], QUERIES)
    http = {"version": "2.0", "rawPath": "/predict", "requestContext": {"http": {"method": "POST"}},
            "headers": {"content-type": "application/json"}, "body": json.dumps({"instances": QUERIES[:2]})}
    rows, columns, as_http, surrogate, number = _handler(built, tmp_path, [
        {"instances": QUERIES}, {"inputs": {"review": [[q] for q in QUERIES]}}, http,
        {"instances": ["\ud800 broken"]}, {"instances": [42]}])
    for body in (rows, columns):
        assert np.max(np.abs(np.asarray(body["predictions"]) - expected)) <= 1e-5
        assert body["classes"] == [["negative", "positive"][int(i)] for i in np.argmax(expected, axis=1)]
        assert [r[0]["label"] for r in body["top_k"]] == body["classes"]
    assert as_http["statusCode"] == 200
    assert np.max(np.abs(np.asarray(json.loads(as_http["body"])["predictions"]) - expected[:2])) <= 1e-5
    assert surrogate["statusCode"] == 400 and "not valid Unicode" in surrogate["error"]
    assert number["statusCode"] == 400  # a number for a text input is neither text nor a row of token ids


def test_modelpack_serve_answers_strings_like_keras(built, tmp_path):
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "modelpack", "serve", str(built["out"]), "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, 120)
        req = urllib.request.Request(f"http://127.0.0.1:{port}/predict", method="POST",
                                     data=json.dumps({"instances": QUERIES}).encode(),
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as resp:
            body = json.loads(resp.read())
    finally:
        proc.terminate()
        proc.wait(20)
    expected = keras_predictions(built["model"], QUERIES)
    assert np.max(np.abs(np.asarray(body["predictions"]) - expected)) <= 1e-5, log.read_text()[-2000:]
    assert body["classes"][0] == "positive" and body["classes"][1] == "negative"


def _text_model(path: Path, layer_kwargs: dict, kind: str = "TextVectorization", shape: tuple = (1,)) -> Path:
    import keras

    keras.utils.set_random_seed(5)
    corpus = GOOD + BAD + ["the cat sat on the mat", "THE DOG ran!", "a cat and a dog"]
    if kind == "TextVectorization":
        layer = keras.layers.TextVectorization(**layer_kwargs)
        layer.adapt(corpus)
    else:
        words = sorted({w for t in corpus for w in t.lower().split()})
        layer = keras.layers.StringLookup(vocabulary=words, **layer_kwargs)
    x = keras.Input(shape, dtype="string", name="text")
    h = layer(x)
    if h.dtype == "int64":  # ids: embedded and averaged over the sequence, whatever its length
        h = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(5000, 3)(h))
    keras.Model(x, keras.layers.Dense(2)(keras.layers.Flatten()(h))).save(path)
    return path


SETTINGS = {
    "ngrams-chars": ({"split": "character", "ngrams": 2, "output_sequence_length": 40}, "TextVectorization"),
    "lower-only-no-length": ({"standardize": "lower", "ngrams": (1, 3)}, "TextVectorization"),
    "strip-only-multi-hot": ({"standardize": "strip_punctuation", "output_mode": "multi_hot"}, "TextVectorization"),
    "count-no-standardize": ({"standardize": None, "output_mode": "count", "max_tokens": 30}, "TextVectorization"),
    "lookup-one-hot": ({"output_mode": "one_hot"}, "StringLookup"),
    "lookup-int": ({}, "StringLookup"),
}


def test_handler_ids_equal_the_layers_for_other_settings(tmp_path):
    """The build's own check (text-tokens) on each setting, in one worker: the handler's ids are the layer's on the
    texts and on the awkward corpus, and the numeric model on them computes the whole model's outputs."""
    texts = tmp_path / "texts.npz"
    words = np.asarray(["Loved it!", "boring", "ÉCOLE école", "", "x" * 300, *AWKWARD[:5]])[:, None]
    np.savez(texts, evaluation=words, calibration=words[:2])
    jobs = []
    for name, (kwargs, kind) in sorted(SETTINGS.items()):
        model = _text_model(tmp_path / f"{name}.keras", kwargs, kind)
        jobs.append(StepJob("text-tokens", str(model), "keras3", str(tmp_path / name), data={"texts": str(texts)}))
    results = run_jobs(jobs, tmp_path / "worker.log")
    for name, job in zip(sorted(SETTINGS), jobs):
        res = results[job.out_dir]
        assert res["ok"], (name, res.get("error"))
        assert res["details"]["awkward"] == len(AWKWARD)


def test_settings_the_handler_cannot_reproduce_are_refused_naming_the_option(tmp_path):
    import keras

    keras.utils.set_random_seed(6)
    layer = keras.layers.TextVectorization(output_mode="tf_idf")
    layer.adapt(GOOD + BAD)
    x = keras.Input((1,), dtype="string", name="text")
    keras.Model(x, keras.layers.Dense(2)(layer(x))).save(tmp_path / "model.keras")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"name": "tfidf", "model": {"path": str(tmp_path / "model.keras")},
                                      "data": {"synthetic": True, "evaluation": 4, "calibration": 4},
                                      "optimize": {"variants": ["tflite-fp32"]}}))
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(tmp_path / "out"), "--no-cache"])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "output_mode='tf_idf'" in text and "TextVectorization" in text and "supported: int" in text
    assert "Traceback" not in text and not (tmp_path / "out").exists()
