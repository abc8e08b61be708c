"""Big bodies through orjson and pybase64 in the shipped Lambda handler: the same answers and the same errors as
the standard library gives, byte for byte (where orjson refuses, the json module decides); small traffic never
imports them."""

from __future__ import annotations

import base64
import json
import sys

import numpy as np
import orjson  # noqa: F401  (test extras: the handler finds the same modules a package carries)
import pybase64  # noqa: F401
import pytest

from tests.helpers.handlers import event, function_dir, npy, oip_json

BIG = np.random.default_rng(7).uniform(-3, 3, (4000, 4)).astype(np.float32)  # 64 kB as .npy, 300 kB as JSON


@pytest.fixture
def big(tmp_path, import_fresh):
    return import_fresh(function_dir(tmp_path / "fn", max_batch=5000, payload_limit_bytes=2_000_000), "handler")


def answers(handler, events: dict[str, dict], fast: bool) -> dict[str, dict]:
    """Each event's whole result, with the fast decoders on or (as in a package without them) off."""
    decoders = sys.modules["decoders"]
    saved = dict(decoders._loaded)
    decoders._loaded.clear()
    if not fast:
        decoders._loaded.update(orjson=None, pybase64=None)
    try:
        return {name: handler.handler(ev, None) for name, ev in events.items()}
    finally:
        used = dict(decoders._loaded)
        decoders._loaded.clear()
        decoders._loaded.update(saved)
        if fast:
            assert used.get("orjson") is sys.modules["orjson"] and used.get("pybase64") is sys.modules["pybase64"]


def test_big_bodies_answer_as_without_the_fast_decoders(big, capsys):
    text = json.dumps({"instances": BIG.tolist()})
    events = {"json": event(text, "application/json"), "json bytes": event(text.encode(), "application/json"),
              "npy": event(npy(BIG), "application/x-npy"),
              "oip json": event(oip_json(BIG), "application/json", "/v2/models/tiny/infer"),
              "npy answer": event(npy(BIG), "application/x-npy", accept="application/x-npy")}
    assert len(text) > 64 * 1024 and len(events["npy"]["body"]) > 64 * 1024
    fast, plain = answers(big, events, True), answers(big, events, False)
    assert fast == plain
    assert all(r["statusCode"] == 200 for r in fast.values()), {k: str(v)[:200] for k, v in fast.items()}
    predictions = np.array(json.loads(fast["json"]["body"])["predictions"])
    assert predictions.shape == (4000, 3) and len(json.loads(fast["json"]["body"])["top_k"]) == 4000
    np.testing.assert_array_equal(predictions, json.loads(fast["npy"]["body"])["predictions"])
    capsys.readouterr()


def test_big_bad_bodies_get_the_standard_library_errors(big, capsys):
    rows = json.dumps(BIG.tolist())[1:-1]
    b64 = base64.b64encode(npy(BIG)).decode()
    events = {
        "NaN at the end": event('{"instances": [' + rows + ", [NaN, 1, 2, 3]]}", "application/json"),
        "Infinity inside": event('{"instances": [[1, 2, 3, Infinity], ' + rows + "]}", "application/json"),
        "trailing garbage": event('{"instances": [' + rows + "]} x", "application/json"),
        "trailing comma": event('{"instances": [' + rows + ",]}", "application/json"),
        "lone surrogate escape": event('{"instances": [' + rows + ', [1, 2, 3, "\\ud800"]]}', "application/json"),
        "UTF-16 text": event(('{"instances": [' + rows + "]}").encode("utf-16"), "application/json"),
        "string leaf": event('{"instances": [' + rows + ', [1, 2, 3, "4"]]}', "application/json"),
        "row of the wrong length": event('{"instances": [' + rows + ", [1, 2, 3]]}", "application/json"),
        "big integer": event('{"instances": [' + rows + ", [1, 2, 3, " + "9" * 30 + "]]}", "application/json"),
        "base64 with a bad byte": {**event(b"", "application/x-npy"), "body": b64[:50_000] + "*" + b64[50_001:]},
        "base64 cut short": {**event(b"", "application/x-npy"), "body": b64[:-3]},
        "base64 with a newline": {**event(b"", "application/x-npy"), "body": b64[:40_000] + "\n" + b64[40_000:]},
    }
    fast, plain = answers(big, events, True), answers(big, events, False)
    # A JSON integer beyond 64 bits is the one documented difference: orjson reads it as a float (as
    # JavaScript does), which a float input takes; the json module's Python int is refused as too large.
    assert fast.pop("big integer")["statusCode"] == 200 and plain.pop("big integer")["statusCode"] == 400
    assert fast == plain
    # orjson reads only UTF-8; the json module also reads UTF-16 and UTF-32, and still does.
    assert fast.pop("UTF-16 text")["statusCode"] == 200
    for name, result in fast.items():
        assert 400 <= result["statusCode"] < 500 and json.loads(result["body"])["error"], (name, result)
    capsys.readouterr()


def test_small_traffic_imports_no_fast_decoder(tmp_path, import_fresh, capsys):
    handler = import_fresh(function_dir(tmp_path / "fn"), "handler")
    small = np.ones((2, 4), np.float32)
    for ev in (event(json.dumps({"instances": small.tolist()}), "application/json"),
               event(npy(small), "application/x-npy")):
        assert handler.handler(ev, None)["statusCode"] == 200
    assert sys.modules["decoders"]._loaded == {}  # nothing imported, not even tried
    capsys.readouterr()
