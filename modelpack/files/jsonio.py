"""Strict JSON for every file modelpack writes: RFC 8259 only, so NaN and infinities become null."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


def finite(value: Any) -> Any:
    """A copy of `value` that strict JSON can hold: non-finite floats become None, numpy scalars and arrays
    become Python numbers and lists, tuples become lists."""
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if type(value).__module__ == "numpy" and hasattr(value, "tolist"):
        return finite(value.tolist())  # arrays and numpy scalars, without importing numpy here
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def dumps_strict(value: Any, **kwargs: Any) -> str:
    """json.dumps that never writes NaN or Infinity: undefined numbers are written as null."""
    return json.dumps(finite(value), allow_nan=False, **kwargs)


def write_json(path: Path, value: Any, **kwargs: Any) -> Path:
    """Write `value` to `path` as strict JSON (see dumps_strict); returns the path."""
    path.write_text(dumps_strict(value, **kwargs))
    return path
