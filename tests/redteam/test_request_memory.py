"""Memory per request stays within its bound for the bodies that used to break it: hostile JSON for a model with a
free dimension (73-171 MB for a 6 MB body before), an .npz whose directory lists ~100,000 entries (40 MB of
zipfile objects before). Counted with tracemalloc around one request to the shipped handler; the whole-process
figures for full-size bodies are benchmarks/request_memory.py's."""

from __future__ import annotations

import base64
import json
import struct
import tracemalloc

import pytest

from tests.helpers.handlers import free_dim_dir, function_dir, hostile_body, http, strict


@pytest.mark.parametrize("make", ["empty lists", "empty objects", "flat numbers", "short strings", "oversize batch",
                                  "deep nesting", "flat floats", "one-number rows", "empty rows"])
def test_hostile_bodies_for_a_free_length_model_are_refused_before_they_are_parsed(tmp_path, import_fresh, make):
    """With a free length ([batch, any, 3]) the shape bounds no value count: strings, objects, the arrays below the
    free dimension (against the digits) and the instances (commas at the top two levels) still are, counted over
    one copy of the text before anything is parsed."""
    seq = import_fresh(free_dim_dir(tmp_path / "seq"), "handler")
    sample = [[0.5, -1.0, 2.0]] * 4
    text = hostile_body(make, json.dumps(sample))
    seq.handler(http(json.dumps({"instances": [sample]})), None)
    tracemalloc.start()
    try:
        result = seq.handler(http(text), None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["statusCode"] == 413 and "batch within the limit of 8" in strict(result["body"])["error"], make
    assert peak <= len(text) + 256 * 1024, f"{make}: {peak} bytes traced for a {len(text)}-byte body"
    long = json.dumps({"instances": [[[0.25, 0.5, 1.0]] * 5000]})  # a valid, long sequence: served
    result = seq.handler(http(long), None)
    assert result["statusCode"] == 200 and strict(result["body"])["predictions"] == [[1250.0, 2500.0, 5000.0]]


def npz_directory(entries: int) -> bytes:
    """One stored member, then a central directory listing it `entries` times (zipfile reads every entry)."""
    local = b"PK\x03\x04" + struct.pack("<HHHHHIIIHH", 20, 0, 0, 0, 33, 0, 0, 0, 1, 0) + b"x"
    entry = b"PK\x01\x02" + struct.pack("<HHHHHHIIIHHHHHII", 20, 20, 0, 0, 0, 33, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0) + b"x"
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, entries & 0xFFFF, entries & 0xFFFF, entries * len(entry),
                                      len(local), 0)
    return local + entry * entries + end


def test_an_npz_directory_of_100k_entries_is_refused_from_its_end_record(tmp_path, import_fresh):
    handler = import_fresh(function_dir(tmp_path / "fn", payload_limit_bytes=6_000_000), "handler")
    body = npz_directory(100_000)  # 4.7 MB
    event = {"version": "2.0", "rawPath": "/predict", "requestContext": {"http": {"method": "POST"}},
             "headers": {"content-type": "application/x-npz"}, "isBase64Encoded": True,
             "body": base64.b64encode(body).decode()}
    tracemalloc.start()
    try:
        result = handler.handler(event, None)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result["statusCode"] == 413 and "declares" in strict(result["body"])["error"], result["body"][:300]
    assert peak <= len(body) + 1024 * 1024, f"{peak} bytes traced for a {len(body)}-byte archive"
