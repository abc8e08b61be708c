"""Every malformed request body is a 4xx JSON error naming what is wrong, on the Lambda handler and the Azure app
alike: .npy headers numpy's parser chokes on, damaged or encrypted .npz members, Open Inference Protocol tensors
with odd names, header lengths and shapes whose product overflows 64 bits, and thousands of seeded mutations of
valid bodies in every format. A decoder's error is the request's fault: it never escapes as a 500.

The shipped handler files run around tiny ONNX models built in code (tests/helpers/handlers.py).
"""

from __future__ import annotations

import io
import json
import random
import struct
import zipfile

import numpy as np
import pytest

from tests.helpers.handlers import (
    azure_caller,
    check_strict,
    event,
    free_dim_dir,
    function_dir,
    log_lines,
    npy,
    strict,
    with_azure_app,
)

X = np.array([[0.1, 0.2, 0.3, 0.4], [1.0, -2.0, 0.5, 3.0]], dtype=np.float32)
PREDICT, INFER = "/predict", "/v2/models/tiny/infer"
SEQ_INFER = "/v2/models/seq/infer"
NPY, NPZ, JSON = "application/x-npy", "application/x-npz", "application/json"


def npy_with_header(header: str, data: bytes = X.tobytes(), version: bytes = b"\x01\x00") -> bytes:
    """A .npy body with a header text of our choosing (padded as numpy pads it)."""
    raw = header.encode("latin-1")
    raw += b" " * (63 - (10 + len(raw)) % 64) + b"\n"
    return b"\x93NUMPY" + version + struct.pack("<H", len(raw)) + raw + data


def npz_bytes(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez(out, **arrays)
    return out.getvalue()


def patched(data: bytes, at: int, value: bytes) -> bytes:
    return data[:at] + value + data[at + len(value):]


def central(data: bytes) -> int:
    return data.index(b"PK\x01\x02")


def npz_cases() -> dict[str, bytes]:
    good = npz_bytes(x=X)
    enc = patched(patched(good, 6, bytes([good[6] | 1])), central(good) + 8, bytes([good[central(good) + 8] | 1]))
    eocd = good.rindex(b"PK\x05\x06")
    return {
        "npz member with the encryption flag": enc,
        "npz member header with a wrong name length": patched(good, 26, b"\xff\xff"),
        "npz member header with a bad signature": patched(good, 0, b"PK\x00\x00"),
        "npz member compressed with method 99": patched(good, central(good) + 10, b"\x63\x00"),
        "npz member compressed as bzip2 garbage": patched(good, central(good) + 10, b"\x0c\x00"),
        "npz member compressed as lzma garbage": patched(good, central(good) + 10, b"\x0e\x00"),
        "npz directory claiming 60000 entries": patched(patched(good, eocd + 8, struct.pack("<H", 60000)),
                                                        eocd + 10, struct.pack("<H", 60000)),
        "npz directory past the end": patched(good, eocd + 16, struct.pack("<I", 10**9)),
        "npz member that is not .npy": zipfile_of({"x.npy": b"hello"}),
        "npz member with a path": zipfile_of({"../x.npy": npy(X)}),
        "npz with an extra member": npz_bytes(x=X, extra=X),
        "npz nested in an npz": zipfile_of({"x.npy": npz_bytes(x=X)}),
        "npz truncated": good[: len(good) // 2],
        "npz member header cut short": good[:40] + good[central(good):],
    }


def zipfile_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return out.getvalue()


def npy_cases() -> dict[str, bytes]:
    dict_ = "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }"
    return {
        "npy header dict never closed": npy_with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), "),
        "npy boolean batch dimension": npy_with_header(dict_ % "(True, 4)", X[:1].tobytes()),
        "npy boolean dimension": npy_with_header(dict_ % "(2, True)"),
        "npy negative dimension": npy_with_header(dict_ % "(-2, 4)"),
        "npy float dimension": npy_with_header(dict_ % "(2.0, 4)"),
        "npy 200-bit dimension": npy_with_header(dict_ % "(2, 4, %d)" % (1 << 200)),
        "npy shape is a number": npy_with_header(dict_ % "8"),
        "npy header is a list": npy_with_header("[1, 2, 3]"),
        "npy header misses shape": npy_with_header("{'descr': '<f4', 'fortran_order': False}"),
        "npy header calls a function": npy_with_header("{'descr': __import__('os').getcwd(), 'shape': (2, 4)}"),
        "npy header with a set": npy_with_header(dict_.replace("False", "{1, 2}") % "(2, 4)"),
        "npy header nested 500 deep": npy_with_header("{'descr': " + "[" * 500 + "]" * 500 + "}"),
        "npy descr unknown": npy_with_header("{'descr': '<q9', 'fortran_order': False, 'shape': (2, 4), }"),
        "npy descr structured": npy_with_header("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2, 4), }"),
        "npy fortran_order not a bool": npy_with_header("{'descr': '<f4', 'fortran_order': 'x', 'shape': (2, 4), }"),
        "npy version 9.9": npy_with_header(dict_ % "(2, 4)", version=b"\x09\x09"),
        "npy header length past the body": b"\x93NUMPY\x01\x00\xff\xff{'descr'",
        "npy header of latin-1 bytes": npy_with_header("{'descr': '<f4\xe9', 'fortran_order': False, 'shape': (2, 4), }"),
        "npy magic only": b"\x93NUMPY",
        "npy empty body": b"",
    }


def oip(name=("x",), shape=(2, 4), datatype="FP32", **extra) -> str:
    tensor = {"name": name[0] if isinstance(name, tuple) else name, "shape": list(shape), "datatype": datatype,
              "data": X.reshape(-1).tolist(), **extra}
    return json.dumps({"inputs": [tensor]})


def oip_cases() -> dict[str, tuple[str, str | bytes, dict]]:
    """name -> (path, body, headers)."""
    header = oip(parameters={"binary_data_size": 32}).replace(', "data": ' + json.dumps(X.reshape(-1).tolist()), "")
    length = "inference-header-content-length"
    truthy = header.replace("32", "true")
    cases = {f"oip name is {kind}": (INFER, oip(name=value), {}) for kind, value in
             (("a list", ["x"]), ("an object", {"x": 1}), ("a number", 3), ("null", None), ("true", True))}
    cases.update({
        "oip header length in Arabic-Indic digits": (INFER, header, {length: "١٢"}),
        "oip header length in superscript digits": (INFER, header, {length: "²"}),
        "oip header length of 5000 digits": (INFER, header, {length: "9" * 5000}),
        "oip header length negative": (INFER, header, {length: "-1"}),
        "oip header length with a plus sign": (INFER, header, {length: "+5"}),
        "oip header length with spaces": (INFER, header, {length: " 12 "}),
        "oip header length empty": (INFER, header, {length: ""}),
        "oip header length in hex": (INFER, header, {length: "0x10"}),
        "oip shape with a boolean": (INFER, oip(shape=(True, 4), data=[0.0] * 4), {}),
        "oip shape with a float": (INFER, oip(shape=(2.0, 4)), {}),
        "oip shape of 2^64 values": (SEQ_INFER, oip(shape=(1, 2**32, 2**32), data=[]), {}),
        "oip shape of 2^63 rows": (SEQ_INFER, oip(shape=(1, 2**63, 3), data=[]), {}),
        "oip shape with a 100-bit dimension": (SEQ_INFER, oip(shape=(1, 2**100, 3), data=[]), {}),
        "oip binary size for a 2^64 shape": (SEQ_INFER, oip(shape=(1, 2**32, 2**32), data=None,
                                                            parameters={"binary_data_size": 0}), {}),
        "oip datatype is a list": (INFER, oip(datatype=["FP32"]), {}),
        "oip binary size is true": (INFER, truthy, {length: str(len(truthy))}),
        "oip parameters is a list": (INFER, oip(parameters=[1]), {}),
        "oip two tensors of one name": (INFER, json.dumps({"inputs": [json.loads(oip())["inputs"][0]] * 2}), {}),
        "oip outputs name a list": (INFER, json.dumps({**json.loads(oip()), "outputs": [{"name": ["y"]}]}), {}),
        "oip inputs is an object": (INFER, json.dumps({"inputs": {"name": "x"}}), {}),
    })
    return cases


def cases() -> dict[str, tuple[str, str | bytes, str, dict]]:
    """Every named hostile body: name -> (path, body, content type, headers)."""
    found = {name: (PREDICT, body, NPY, {}) for name, body in npy_cases().items()}
    found.update({name: (PREDICT, body, NPZ, {}) for name, body in npz_cases().items()})
    found.update({name: (path, body, "application/octet-stream" if headers else JSON, headers)
                  for name, (path, body, headers) in oip_cases().items()})
    return found


CASES = cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_malformed_body_is_a_4xx_naming_the_field_on_lambda(tmp_path, import_fresh, capsys, name):
    path, body, ctype, headers = CASES[name]
    folder = free_dim_dir(tmp_path / "seq") if path == SEQ_INFER else function_dir(tmp_path / "fn")
    handler = import_fresh(folder, "handler")
    status, answer = check_strict(handler.handler(event(body, ctype, path, **headers), None))
    assert 400 <= status < 500, (name, status, answer)
    assert any(field in answer["error"] for field in ("'x'", "Inference-Header-Content-Length", ".npy", ".npz",
                                                       "inputs", "name")), (name, answer)
    log_lines(capsys.readouterr().out)


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_malformed_body_is_a_4xx_naming_the_field_on_azure(tmp_path, import_fresh, name):
    path, body, ctype, headers = CASES[name]
    folder = free_dim_dir(tmp_path / "seq") if path == SEQ_INFER else function_dir(tmp_path / "fn")
    call = azure_caller(import_fresh(with_azure_app(folder), "function_app"))
    data = body.encode() if isinstance(body, str) else body
    status, _, answer = call("POST", path, data, {"content-type": ctype, **headers})
    assert 400 <= status < 500, (name, status, answer)
    assert strict(answer)["error"], name


def mutations(seed: int, body: bytes, count: int) -> list[bytes]:
    """Seeded damage to a valid body: flipped, inserted and deleted bytes, cuts and duplicated runs."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        data = bytearray(body)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(max(1, len(data)))
            kind = rng.randrange(5)
            if kind == 0 and data:
                data[at] = rng.randrange(256)
            elif kind == 1:
                data[at:at] = bytes([rng.choice(b"0123456789[]{},:\"'()-.eE \x00\xff")])
            elif kind == 2:
                del data[at:at + rng.randint(1, 8)]
            elif kind == 3:
                del data[at:]
            else:
                data[at:at] = data[at:at + rng.randint(1, 64)]
        out.append(bytes(data))
    return out


def seeds() -> dict[str, tuple[str, bytes, str, dict]]:
    """The valid bodies the fuzzer damages: name -> (path, body, content type, headers)."""
    binary_header = json.dumps({"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP32",
                                            "parameters": {"binary_data_size": 32}}]}).encode()
    return {
        "npy": (PREDICT, npy(X), NPY, {}),
        "npz": (PREDICT, npz_bytes(x=X), NPZ, {}),
        "compressed npz": (PREDICT, _compressed(x=X), NPZ, {}),
        "oip json": (INFER, oip().encode(), JSON, {}),
        "oip binary": (INFER, binary_header + X.tobytes(), "application/octet-stream",
                       {"inference-header-content-length": str(len(binary_header))}),
        "tf serving json": (PREDICT, json.dumps({"instances": X.tolist()}).encode(), JSON, {}),
    }


def _compressed(**arrays) -> bytes:
    out = io.BytesIO()
    np.savez_compressed(out, **arrays)
    return out.getvalue()


FUZZ_PER_FORMAT = 250


@pytest.mark.parametrize("fmt", sorted(seeds()))
def test_no_mutation_of_a_valid_body_gets_a_5xx(tmp_path, import_fresh, capsys, fmt):
    """The class, not the examples: whatever a decoder makes of damaged bytes, the answer is 2xx or 4xx."""
    handler = import_fresh(function_dir(tmp_path / "fn"), "handler")
    path, body, ctype, headers = seeds()[fmt]
    statuses = {}
    for i, data in enumerate(mutations(sorted(seeds()).index(fmt), body, FUZZ_PER_FORMAT)):
        status, answer = check_strict(handler.handler(event(data, ctype, path, **headers), None))
        statuses[status] = statuses.get(status, 0) + 1
        assert status < 500, (fmt, i, data[:120], answer)
        assert status == 200 or answer["error"]
    assert sum(n for s, n in statuses.items() if s >= 400) > FUZZ_PER_FORMAT // 3, statuses  # damage was seen
    log_lines(capsys.readouterr().out)
