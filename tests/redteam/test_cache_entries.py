"""What the handler finds under its key in a shared Redis is checked before it is served: an unreadable or
ill-formed entry is a miss with one warning (then replaced by the fresh result), and only an entry naming this
model's sha256 and shaped like this request's result is served. Against a real redis-server on loopback."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.helpers.handlers import GOOD, function_dir, log_lines, strict
from tests.helpers.processes import free_port, wait_for_port
from tests.helpers.services import need


@pytest.fixture
def redis_url():
    port = free_port()
    proc = subprocess.Popen([need("redis-server", "the result cache tests"), "--port", str(port), "--bind", "127.0.0.1",
                             "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, 10)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def cached(tmp_path, redis_url, monkeypatch, capsys, import_fresh):
    """A handler with `cache: {kind: redis}`, its redis client, and its (only) key after one request."""
    import redis

    monkeypatch.setenv("REDIS_URL", redis_url)
    handler = import_fresh(function_dir(tmp_path / "fn", cache={"kind": "redis", "ttl_s": 60}), "handler")
    first = handler.handler({"instances": GOOD}, None)
    assert "predictions" in first
    client = redis.Redis.from_url(redis_url)
    keys = client.keys("modelpack:*")
    assert len(keys) == 1
    capsys.readouterr()
    return handler, client, keys[0], first


def _serve(handler, capsys) -> tuple[dict, list[dict]]:
    result = handler.handler({"instances": GOOD}, None)
    lines = log_lines(capsys.readouterr().out)
    return result, lines


def test_a_stored_result_is_served_from_the_cache(cached, capsys):
    handler, client, key, first = cached
    again, lines = _serve(handler, capsys)
    assert again == first and [r["cache"] for r in lines if "status" in r] == ["hit"]
    stored = strict(client.get(key))
    assert stored["model"]["sha256"] == handler.CONFIG["model"]["sha256"]


def _ill_formed(first: dict, sha: str) -> dict[str, bytes]:
    other = json.dumps({**first, "model": {"name": "tiny", "sha256": "0" * 64}}).encode()
    rows = first["predictions"]
    return {
        "not json": b"{not json",
        "not utf-8": b"\xff\xfe\x00",
        "NaN literal": json.dumps(first).replace(str(rows[0][0]), "NaN", 1).encode(),
        "a list": b"[1, 2, 3]",
        "a string": b'"predictions"',
        "null": b"null",
        "no predictions": json.dumps({"model": first["model"]}).encode(),
        "another model": other,
        "no model": json.dumps({"predictions": rows}).encode(),
        "too many rows": json.dumps({**first, "predictions": rows * 2}).encode(),
        "short rows": json.dumps({**first, "predictions": [rows[0][:2]]}).encode(),
        "nested too deep": json.dumps({**first, "predictions": [[[v] for v in rows[0]]]}).encode(),
        "string values": json.dumps({**first, "predictions": [["a", "b", "c"]]}).encode(),
        "null values": json.dumps({**first, "predictions": [[None, None, None]]}).encode(),
        "top_k for another batch": json.dumps({**first, "top_k": first["top_k"] * 3}).encode(),
        "deeply nested": b'{"predictions": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
    }


@pytest.mark.parametrize("case", ["not json", "not utf-8", "NaN literal", "a list", "a string", "null",
                                  "no predictions", "another model", "no model", "too many rows", "short rows",
                                  "nested too deep", "string values", "null values", "top_k for another batch",
                                  "deeply nested"])
def test_an_ill_formed_entry_is_a_miss_with_one_warning_and_is_replaced(cached, capsys, case):
    handler, client, key, first = cached
    client.set(key, _ill_formed(first, handler.CONFIG["model"]["sha256"])[case])
    result, lines = _serve(handler, capsys)
    assert result == first  # computed afresh, not the entry
    warnings = [r for r in lines if r.get("level") == "WARNING"]
    assert len(warnings) == 1 and "ill-formed" in warnings[0]["message"] and "treated as a miss" in warnings[0]["message"]
    assert [r["cache"] for r in lines if "status" in r] == ["miss"]
    assert strict(client.get(key)) == first  # replaced by the fresh result
    again, lines = _serve(handler, capsys)
    assert again == first and [r["cache"] for r in lines if "status" in r] == ["hit"]
    assert not [r for r in lines if r.get("level") == "WARNING"]


def test_a_corrupt_entry_never_marks_redis_as_down(cached, capsys):
    """A bad value is the entry's fault, not the server's: the next request still uses the cache."""
    handler, client, key, first = cached
    client.set(key, b"{not json")
    _serve(handler, capsys)
    assert handler.HOLDER.cache._down_until == 0.0
    result, lines = _serve(handler, capsys)
    assert result == first and [r["cache"] for r in lines if "status" in r] == ["hit"]


def test_every_served_entry_is_strict_json_over_http(cached, capsys):
    handler, client, key, first = cached
    client.set(key, json.dumps(first).replace(str(first["predictions"][0][0]), "Infinity", 1))
    result = handler.handler({"version": "2.0", "rawPath": "/predict", "requestContext": {"http": {"method": "POST"}},
                              "body": json.dumps({"instances": GOOD})}, None)
    assert result["statusCode"] == 200 and strict(result["body"]) == first
    log_lines(capsys.readouterr().out)


def _two_output_dir(dest):
    """A function folder whose ONNX model has two outputs: class scores [N, 3] and a value [N, 1]."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    from modelpack.targets.handler_files import copy_code
    from tests.helpers.handlers import sha256

    copy_code(dest, ("lambda", "handler.py"))
    w1 = np.arange(12, dtype=np.float32).reshape(4, 3) % 5 + 1
    w2 = np.ones((4, 1), dtype=np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w1"], ["cls"]), helper.make_node("MatMul", ["x", "w2"], ["val"])], "two",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("cls", TensorProto.FLOAT, [None, 3]),
         helper.make_tensor_value_info("val", TensorProto.FLOAT, [None, 1])],
        [helper.make_tensor("w1", TensorProto.FLOAT, w1.shape, w1.flatten()),
         helper.make_tensor("w2", TensorProto.FLOAT, w2.shape, w2.flatten())])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path = dest / "model" / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    config = {"name": "two", "variant": "onnx-fp32", "task": "classification", "threads": 1, "top_k": None,
              "max_batch": 8, "load": "lazy", "payload_limit_bytes": 200_000,
              "cache": {"kind": "memory", "max_items": 16, "ttl_s": 60},
              "model": {"path": "model/model.onnx", "sha256": sha256(path), "in_layer": False},
              "inputs": [{"name": "x", "shape": [None, 4], "dtype": "float32"}],
              "outputs": [{"name": "cls", "shape": [None, 3], "dtype": "float32"},
                          {"name": "val", "shape": [None, 1], "dtype": "float32"}]}
    (dest / "modelpack.json").write_text(json.dumps(config))
    return dest


def test_row_and_columnar_answers_of_a_two_output_model_are_cached_apart(tmp_path, capsys, import_fresh):
    """The same arrays asked in row and in columnar form get their own answer shapes, from the cache too."""
    handler = import_fresh(_two_output_dir(tmp_path / "fn"), "handler")
    rows = handler.handler({"instances": GOOD}, None)
    columns = handler.handler({"inputs": GOOD}, None)
    assert set(rows) >= {"predictions"} and set(rows["predictions"][0]) == {"cls", "val"}
    assert set(columns) >= {"outputs"} and set(columns["outputs"]) == {"cls", "val"}
    assert handler.handler({"inputs": GOOD}, None) == columns
    assert handler.handler({"instances": GOOD}, None) == rows
    outcomes = [r["cache"] for r in log_lines(capsys.readouterr().out) if "status" in r]
    assert outcomes == ["miss", "miss", "hit", "hit"]
    assert columns["outputs"]["cls"] == [rows["predictions"][0]["cls"]]
