"""What a generated handler sends back: a status, a content type, a body and headers, written as strict JSON.

Shipped inside every generated handler; a leaf module (standard library only).
"""

from __future__ import annotations

import json

JSON = "application/json"
# What a JSON body may arrive labelled as: no type at all, and curl -d's default form type, as TensorFlow Serving
# (which reads every predict body as JSON) lets its users send; a real form body then fails as invalid JSON.
JSON_TYPES = ("application/json", "text/json", "", "application/x-www-form-urlencoded")


def dumps(obj) -> str:
    """Strict RFC 8259 JSON: a non-finite number is a bug upstream, never written."""
    return json.dumps(obj, allow_nan=False)


class Reply:
    """What a handler sends back: status, content type, body (text or bytes), extra headers, and for the
    log the inference time (None when no model ran) and the cache outcome."""

    __slots__ = ("status", "content_type", "body", "headers", "infer_ms", "cache")

    def __init__(self, status: int, body, content_type: str = JSON, headers: dict | None = None,
                 infer_ms: float | None = None, cache: str | None = None):
        self.status, self.body, self.content_type = status, body, content_type
        self.headers, self.infer_ms, self.cache = headers or {}, infer_ms, cache


def json_reply(status: int, obj: dict, **extra) -> Reply:
    return Reply(status, dumps(obj), **extra)


def media_type(value: str | None) -> str:
    return (value or "").split(";")[0].strip().lower()
