"""Decoding big request bodies: JSON text and base64, fast when the package carries orjson and pybase64.

Shipped inside every generated handler; the two libraries go into the package only when the recipe's
`serving.fast_decoders` asks for them. In benchmarks/run.py orjson parses a 3 MB TensorFlow Serving request about
3x faster than the json module, and pybase64 (SIMD) decodes an 800 KB base64 body about 40x faster than
binascii. Each is imported on the first body of at least LARGE bytes, so cold starts and small requests
never pay for the import. The standard library stays the judge of what is refused: a body the fast decoder
refuses (NaN, a lone surrogate escape, UTF-16, invalid base64) goes through the standard decoder, which
accepts it or raises its own error. One difference remains by design: orjson reads an integer literal beyond
64 bits as the nearest float, as JavaScript does, where the json module makes a Python int; a float input
then takes the value, and an integer input is refused either way (out of range).
"""

from __future__ import annotations

import base64
import binascii
import importlib
import json
import sys

LARGE = 64 * 1024  # bodies at least this big use the fast decoders when the package has them
STRICT_B64 = sys.version_info >= (3, 11)  # binascii's strict mode: validates while it decodes
_loaded: dict[str, object] = {}
_json_decoders: dict = {}


def fast(name: str):
    """The module `name` (orjson or pybase64) when the package carries it, else None; imported once."""
    if name not in _loaded:
        try:
            _loaded[name] = importlib.import_module(name)
        except ImportError:
            _loaded[name] = None
    return _loaded[name]


def json_loads(body: bytes | str, parse_constant):
    """json.loads(body, parse_constant=...) with orjson's parser for big bodies. orjson accepts only RFC 8259
    JSON (no NaN or Infinity): what it parses, the json module parses to the same values (but for the
    integers beyond 64 bits above)."""
    if len(body) >= LARGE and (orjson := fast("orjson")) is not None:
        try:
            return orjson.loads(body)
        except (ValueError, TypeError):
            pass  # the json module decides, with its own message
    # json.loads as it is, but for the decoder: with parse_constant it builds a new one per call (~10 us, a tenth
    # of a small request's time in the handler), here one per parse_constant for the process.
    decoder = _json_decoders.get(parse_constant)
    if decoder is None:
        decoder = _json_decoders[parse_constant] = json.JSONDecoder(parse_constant=parse_constant)
    if isinstance(body, str):
        if body.startswith("\ufeff"):
            raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", body, 0)
    else:
        body = body.decode(json.detect_encoding(body), "surrogatepass")
    return decoder.decode(body)


def b64decode(text: str | bytes) -> bytes:
    """Strict base64 decoding (binascii.Error or ValueError on anything but valid base64), straight from the
    text: one decoded buffer, no ASCII copy first."""
    if len(text) >= LARGE and (pybase64 := fast("pybase64")) is not None:
        try:
            return pybase64.b64decode(text, validate=True)
        except (binascii.Error, ValueError, TypeError):
            pass
    if STRICT_B64:
        return binascii.a2b_base64(text, strict_mode=True)
    return base64.b64decode(text, validate=True)
