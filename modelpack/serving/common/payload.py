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
    comma. Strings and objects are bounded whatever the shape (names, {"b64": ...} instances). Arrays are bounded
    by the shape while every per-sample dimension but the last is known; below a free one, every array of a
    valid request holds at least one number, and every number a digit (or is true or false), so digits bound
    them. Values are bounded by the shape when every dimension is known; with a free one a valid request may hold
    any number of them, but never more than `max_batch` instances: the commas at the top two levels (outside
    strings) are counted before anything is parsed, which refuses flat, oversized and empty-list batches.
    """

    def __init__(self, inputs: list[dict], max_batch: int, image: bool = False):
        self.max_batch = max_batch
        self.known = all(d is not None for spec in inputs for d in spec["shape"][1:])
        lists = numbers = 0
        self.per_digit = 0.0  # arrays a digit may account for, below a free dimension
        for spec in inputs:
            dims = spec["shape"][1:]
            size = 1
            for depth in range(len(dims)):  # one list per prefix of the per-sample shape: [8, 8, 1] -> 1 + 8 + 64
                if size is None:  # below a free dimension: each of these arrays holds `inner` numbers at least
                    inner = 1
                    for d in dims[depth:]:
                        inner *= d or 1
                    self.per_digit += 1 / inner
                else:
                    lists += size
                    size = None if dims[depth] is None else size * dims[depth]
            numbers += size or 0
        keys = 2 + len(inputs) * (max_batch + 1) + EXTRA_KEYS
        self.lists = 1 + len(inputs) + max_batch * lists
        self.objects = 2 + max_batch + EXTRA_KEYS
        self.quotes = 2 * keys + (4 * max_batch if image else 0)  # {"b64": "..."}: two strings per image
        self.commas = max_batch * numbers + self.lists + self.objects + keys
        self.shallow = max_batch + len(inputs) + 2 * EXTRA_KEYS + 2

    def check(self, body: bytes | str) -> None:
        """Refuse a body with more structure than any valid request: counted in C (and, with free dimensions,
        by numpy over 64 KiB chunks), nothing the size of the body is allocated but one copy of a text body."""
        text = isinstance(body, str)
        counts = {ch: body.count(ch if text else ch.encode()) for ch in '[{",'}
        if self.known:
            self._refuse(counts, (("[", self.lists, "arrays"), ("{", self.objects, "objects"),
                                  ('"', self.quotes, "strings"), (",", self.commas, "values")))
            return
        self._refuse(counts, (("{", self.objects, "objects"), ('"', self.quotes, "strings")))
        data = np.frombuffer(body.encode("utf-8", "surrogatepass") if text else body, dtype=np.uint8)
        shallow, digits = scan(data)
        if shallow > self.shallow:
            raise self._too_many("instances")
        if counts["["] > self.lists + int(digits * self.per_digit):
            raise self._too_many("arrays")

    def _refuse(self, counts: dict, limits: tuple) -> None:
        for char, limit, what in limits:
            if counts[char] > limit:
                raise self._too_many(what)

    def _too_many(self, what: str) -> RequestError:
        return RequestError(f"request holds more {what} than any batch within the limit of {self.max_batch} "
                            "instances of this model's input shape can; send at most that many, each of that "
                            "shape", status=413)


CHUNK = 1 << 14  # 16 KiB: the arrays of one chunk stay near 100 kB
STEP = np.zeros(256, dtype=np.int8)
STEP[[ord("["), ord("{")]] = 1
STEP[[ord("]"), ord("}")]] = -1
DIGIT = np.zeros(256, dtype=bool)
DIGIT[[*b"0123456789tf"]] = True  # outside strings, t and f start true and false


def scan(data: np.ndarray) -> tuple[int, int]:
    """(commas at nesting depth 1 or 2, digits and booleans), both outside strings: the members of the top-level
    object and of the arrays or objects it holds directly (a batch), and what bounds the values."""
    shallow = digits = depth = 0
    for start, stop in _outside_strings(data):
        for at in range(start, stop, CHUNK):
            chunk = data[at:min(at + CHUNK, stop)]
            level = np.cumsum(STEP[chunk], dtype=np.int32)
            level += depth
            shallow += int(np.count_nonzero((chunk == 44) & (level <= 2)))
            digits += int(np.count_nonzero(DIGIT[chunk]))
            depth = int(level[-1])
    return shallow, digits


def _outside_strings(data: np.ndarray) -> list[tuple[int, int]]:
    """The spans of `data` outside JSON strings (the string bound above keeps the quotes few)."""
    quotes = [at + q for at in range(0, len(data), CHUNK) for q in np.flatnonzero(data[at:at + CHUNK] == 34).tolist()]
    spans, inside, begin = [], False, 0
    for q in quotes:
        run = 0
        while run < 64 and q > run and data[q - run - 1] == 92:
            run += 1
        if run == 64:
            raise RequestError("request body holds a run of 64 backslashes, which no request to this model has")
        if run % 2:
            continue  # an escaped quote, inside a string
        if not inside:
            spans.append((begin, q))
        begin, inside = q + 1, not inside
    if not inside:
        spans.append((begin, len(data)))
    return spans


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
    """A numeric array in the input's own dtype: integers within range and whole, floats finite in that dtype,
    and ids within the vocabulary of the Embedding layer an input feeds (config `vocabulary`)."""
    arr = _in_dtype(arr, spec)
    rows = spec.get("vocabulary")
    if rows is not None and arr.size and (arr.min() < 0 or arr.max() >= rows):
        bad = arr[(arr < 0) | (arr >= rows)].flat[0]
        raise RequestError(f"input '{spec['name']}' holds the id {bad.item()!r}, outside its vocabulary: ids go from "
                           f"0 to {int(rows) - 1} (the Embedding layer it feeds has {int(rows)} rows)")
    return arr


def _in_dtype(arr: np.ndarray, spec: dict) -> np.ndarray:
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
