"""Check a request against the model's input spec before any array is built, and turn it into arrays.

Shipped inside every generated handler; depends only on numpy, the standard library,
decoders.py and errors.py. Memory per request
stays bounded: the raw body's structure (arrays, objects, strings, separators) is counted before it is
parsed and refused when no batch of at most max_batch inputs of the model's shape could hold that much;
the parsed lists are then walked level by level against the per-sample shape, so ragged, oversized or
non-numeric input is refused before numpy sees it.
"""

from __future__ import annotations

from array import array
from itertools import chain

import numpy as np
from decoders import json_loads
from errors import RequestError

NUMBER_TYPES = frozenset((int, float, bool))
LIST = {list}
EXTRA_KEYS = 16  # room for top-level fields other than instances / inputs (signature_name, ...)


class Bounds:
    """The most arrays, objects, strings and separators a valid request body can contain.

    Literal `[`, `{`, `"` and `,` bound what json.loads can build: each array or object starts with a bracket
    outside any string, each string has two quotes, each value but the last in its container is followed by a
    comma. With a per-sample dimension unknown (`known` false) only the body size bounds a request.
    """

    def __init__(self, inputs: list[dict], max_batch: int):
        self.max_batch = max_batch
        self.known = all(d is not None for spec in inputs for d in spec["shape"][1:])
        lists = numbers = 0
        for spec in inputs:
            dims = [int(d) for d in spec["shape"][1:] if d is not None]
            size = 1
            for d in dims:  # one list per prefix of the per-sample shape: [8, 8, 1] -> 1 + 8 + 64
                lists += size
                size *= d
            numbers += size
        keys = 2 + len(inputs) * (max_batch + 1) + EXTRA_KEYS
        self.lists = 1 + len(inputs) + max_batch * lists
        self.objects = 2 + max_batch + EXTRA_KEYS
        self.quotes = 2 * keys
        self.commas = max_batch * numbers + self.lists + self.objects + keys

    def check(self, body: bytes | str) -> None:
        """Refuse a body with more structure than any valid request: counted in C, nothing is allocated."""
        if not self.known:
            return
        text = isinstance(body, str)
        for char, limit, what in (("[", self.lists, "arrays"), ("{", self.objects, "objects"),
                                  ('"', self.quotes, "strings"), (",", self.commas, "values")):
            if body.count(char if text else char.encode()) > limit:
                raise RequestError(f"request holds more {what} than any batch within the limit of {self.max_batch} "
                                   "instances of this model's input shape can; send at most that many, each of "
                                   "that shape", status=413)


def _strict_constant(name: str):
    raise ValueError(f"{name} is not JSON")


def parse_body(body: bytes | str, limit: int, bounds: Bounds | None = None) -> dict:
    """Decode a JSON request body, refusing oversize, non-JSON (NaN and Infinity included), non-object bodies
    and bodies with more structure than the model's inputs allow."""
    size = len(body)
    if isinstance(body, str) and not body.isascii():  # ASCII text (what JSON encoders write) needs no copy
        try:
            size = len(body.encode("utf-8"))
        except UnicodeEncodeError:
            raise RequestError("request body is not valid UTF-8 text (it holds a lone surrogate)") from None
    if size > limit:
        raise RequestError(f"request body is {size} bytes; the limit is {limit}", status=413)
    if bounds is not None:
        bounds.check(body)
    try:
        data = json_loads(body, _strict_constant)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise RequestError(f"request body is not valid JSON: {str(exc)[:120]}") from None
    if not isinstance(data, dict):
        raise RequestError('request must be a JSON object such as {"instances": [...]} or {"inputs": ...}')
    return data


def to_arrays(request: dict, inputs: list[dict], max_batch: int = 1024) -> dict[str, np.ndarray]:
    """Turn an "instances" or "inputs" request into one checked array per model input."""
    names = [i["name"] for i in inputs]
    if ("instances" in request) == ("inputs" in request):
        raise RequestError('give exactly one of "instances" (row format) or "inputs" (columnar format)')
    if "instances" in request:
        rows = request["instances"]
        if not isinstance(rows, list) or not rows:
            raise RequestError('"instances" must be a non-empty list')
        _check_batch(len(rows), max_batch)
        if len(names) == 1 and not isinstance(rows[0], dict):
            columns = {names[0]: rows}
        else:
            if not all(isinstance(r, dict) for r in rows):
                raise RequestError(f"each instance must be an object with keys {names}")
            _check_keys(rows[0], names)
            columns = {n: [r.get(n) for r in rows] for n in names}
    else:
        value = request["inputs"]
        if isinstance(value, dict):
            _check_keys(value, names)
            columns = value
        elif len(names) == 1:
            columns = {names[0]: value}
        else:
            raise RequestError(f'"inputs" must be an object with keys {names} for this model')
    return {spec["name"]: _array(columns.get(spec["name"]), spec, max_batch) for spec in inputs}


def _check_batch(n: int, max_batch: int) -> None:
    if n > max_batch:
        raise RequestError(f"batch is larger than the limit of {max_batch}", status=413)


def _check_keys(obj: dict, names: list[str]) -> None:
    missing = [n for n in names if n not in obj]
    extra = [str(k)[:40] for k in obj if k not in names]
    if missing or extra:
        raise RequestError(f"expected inputs {names}; missing {missing}, unknown {extra[:5]}")


def walk(value, spec: dict, max_batch: int) -> tuple[list, tuple]:
    """Check nesting, lengths and leaf types level by level (C-speed map/set over each level); return the
    leaves, flat, and the shape they fill. numpy then only sees a flat list of numbers: no shape discovery,
    no string or object array, nothing ragged."""
    name, want = spec["name"], spec["shape"]
    if type(value) is not list:
        raise RequestError(f"input '{name}' must be a list (a batch); expected {shape_text(want)} "
                           "(first dimension: batch)")
    if not value:
        raise RequestError(f"input '{name}' is an empty batch")
    _check_batch(len(value), max_batch)
    level, shape = value, [len(value)]
    for depth in range(1, len(want)):
        if set(map(type, level)) != LIST:
            raise RequestError(f"input '{name}' is not nested as deep as its shape; expected {shape_text(want)} "
                               "(first dimension: batch)")
        lengths, dim = set(map(len, level)), want[depth]
        if len(lengths) != 1 or (dim is not None and dim not in lengths):
            got = ", ".join(map(str, sorted(lengths)[:4]))
            raise RequestError(f"input '{name}' has length {got} at dimension {depth}; expected {shape_text(want)} "
                               "(first dimension: batch)")
        shape.append(lengths.pop())
        level = list(chain.from_iterable(level))
    types = set(map(type, level))
    if not types <= NUMBER_TYPES:
        if list in types:
            raise RequestError(f"input '{name}' is nested deeper than its shape {shape_text(want)}")
        raise RequestError(f"input '{name}' must hold numbers of type {spec['dtype']}, shape {shape_text(want)}")
    return level, tuple(shape)


def _array(value, spec: dict, max_batch: int) -> np.ndarray:
    name, want = spec["name"], spec["shape"]
    if value is None:
        raise RequestError(f"input '{name}' is missing")
    if np.dtype(spec["dtype"]).kind == "f" and len(want) > 1:
        fast = _float_rows(value, spec, max_batch)
        if fast is not None:
            return checked(fast, spec)
    leaves, shape = walk(value, spec, max_batch)
    try:
        arr = np.array(leaves).reshape(shape)
    except (ValueError, TypeError, OverflowError):
        raise RequestError(f"input '{name}' is not a rectangular array of shape {shape_text(want)}") from None
    return checked(arr, spec)


def _float_rows(value, spec: dict, max_batch: int) -> np.ndarray | None:
    """The common case for a float input, without a flat list of leaves: check every level but the leaves as
    walk() does, then read the leaves straight into a float64 buffer, which refuses any leaf that is not a
    number. None when the value is not a plain rectangular list of numbers: walk() then names the problem."""
    want = spec["shape"]
    if type(value) is not list or not value or len(value) > max_batch:
        return None
    level, last = value, len(want) - 1
    for depth in range(1, len(want)):
        # The rows holding the leaves need no type check of their own: len() refuses numbers and None, and
        # a string or object of the right length yields strings, which the float buffer below refuses.
        if depth < last and set(map(type, level)) != LIST:
            return None
        try:
            lengths = set(map(len, level))
        except TypeError:
            return None
        if len(lengths) != 1 or (want[depth] is not None and want[depth] not in lengths):
            return None
        if depth < last:
            level = list(chain.from_iterable(level))
    # array("d") takes floats, ints and bools and refuses anything else (strings, None, lists) with TypeError;
    # fromlist converts a whole list in one C loop.
    buffer = array("d")
    try:
        buffer.fromlist(list(chain.from_iterable(level)))
    except (TypeError, OverflowError):
        return None
    flat = np.frombuffer(buffer, dtype=np.float64)
    if flat.size and np.abs(flat).max() >= 2.0 ** 63:
        return None  # maybe an integer beyond 64 bits: walk() and numpy tell it apart from a large float
    shape = [len(value)]
    inner = value
    for _ in range(1, len(want)):
        inner = inner[0]
        shape.append(len(inner))
    return flat.reshape(shape)


def checked(arr: np.ndarray, spec: dict) -> np.ndarray:
    """A numeric array in the input's own dtype: integers within range and whole, floats finite in that dtype."""
    name, dtype = spec["name"], np.dtype(spec["dtype"])
    if arr.dtype.kind not in "biuf":  # integers beyond 64 bits become Python objects
        raise RequestError(f"input '{name}' holds integers too large for {dtype.name}")
    if arr.dtype == bool:
        arr = arr.astype(np.int64)
    if np.issubdtype(dtype, np.integer):
        if arr.dtype.kind == "f" and not np.all(np.isfinite(arr) & (arr == np.round(arr))):
            raise RequestError(f"input '{name}' must hold integers ({dtype.name})")
        if arr.size and arr.dtype.kind in "iu" and np.can_cast(arr.dtype, dtype):
            return arr if arr.dtype == dtype else arr.astype(dtype)
        info = np.iinfo(dtype)
        if arr.size and (arr.min() < info.min or arr.max() > info.max):
            raise RequestError(f"input '{name}' has values outside the {dtype.name} range")
        return arr.astype(dtype)
    # Finiteness in the model's own dtype: 1e39 is a finite float64 but infinity as float32.
    if arr.dtype == dtype:
        cast = arr
    elif arr.dtype.kind == "f":  # float64 from JSON: one reduction decides, and then the cast cannot overflow
        if arr.size and not np.abs(arr).max() <= np.finfo(dtype).max:  # NaN compares false
            raise _not_finite(name, dtype)
        return arr.astype(dtype)
    else:
        with np.errstate(over="ignore", invalid="ignore"):  # integers into float16 may overflow in the cast
            cast = arr.astype(dtype)
    if not np.isfinite(cast).all():
        raise _not_finite(name, dtype)
    return cast


def _not_finite(name: str, dtype: np.dtype) -> RequestError:
    return RequestError(f"input '{name}' has values that are not finite as {dtype.name} (NaN, infinity, or "
                        f"beyond ±{float(np.finfo(dtype).max):.3g})")


def shape_text(shape: list) -> str:
    return "[" + ", ".join("batch" if i == 0 else ("any" if d is None else str(d)) for i, d in enumerate(shape)) + "]"
