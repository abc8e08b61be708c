"""Strings to token ids for a text model, as the model's own TextVectorization or StringLookup layer computes them.

Shipped beside the handler only for a model whose string input was read by such a layer: the build moved the
layer's vocabulary lookup out of the model (no serverless runtime takes string tensors) and into this file, and
checked that it gives the layer's very ids on the evaluation texts and on a corpus of awkward strings. Standard
library and numpy only; reads `text.json` (the layer's settings and vocabulary) written by the build.

What it reproduces, step by step, as the Keras layer does it:
  standardize  "lower": ASCII letters only (TensorFlow's default lower-casing leaves other letters alone);
               "strip_punctuation": the 32 ASCII punctuation characters removed
  split        "whitespace": runs of ASCII whitespace (space, \\t, \\n, \\v, \\f, \\r) separate tokens;
               "character": one token per Unicode code point; none: the whole string is one token
  ngrams       for each width in order, every run of that many tokens joined by a space
  lookup       the vocabulary's index, or the out-of-vocabulary index
  output       "int": ids padded with 0 or cut to the sequence length (or padded to the longest in the batch);
               "multi_hot" / "count" / "one_hot": a vector over the vocabulary
Work and memory per string stay proportional to what the output needs: tokens are read lazily, and an "int"
output of fixed length stops reading once it has what it keeps.
"""

from __future__ import annotations

import json
import os
import re
import string
import threading
from array import array
from collections import Counter, deque
from itertools import islice

import numpy as np
from errors import RequestError

FILE = "text.json"
_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_STRIP = str.maketrans("", "", string.punctuation)
_LOWER_STRIP = str.maketrans(string.ascii_uppercase, string.ascii_lowercase, string.punctuation)
TABLES = {None: None, "lower": _LOWER, "strip_punctuation": _STRIP, "lower_and_strip_punctuation": _LOWER_STRIP}
_WORD = re.compile(r"[^ \t\n\v\f\r]+")
_loaded: dict[str, Vectorizer] = {}
_lock = threading.Lock()


class Vectorizer:
    """One text input: its settings from text.json, its vocabulary as a dict."""

    def __init__(self, spec: dict):
        self.spec = spec
        self.input, self.feeds = spec["input"], spec["feeds"]
        self.table = TABLES[spec.get("standardize")]
        self.split = spec.get("split")
        self.widths = tuple(spec["ngrams"]) if spec.get("ngrams") else None
        self.mode = spec["output_mode"]
        self.length = spec.get("sequence_length")
        self.depth = int(spec["depth"])
        self.oov = int(spec["oov_index"])
        self.dtype = np.dtype(spec["dtype"])
        self.tokens_per_sample = int(spec.get("tokens_per_sample", 1))
        # The layer's per-sample output shape (a free length as -1): multi_hot over a [batch, 1] input is
        # [batch, 1, depth], StringLookup over a [batch] input is [batch].
        self.shape = tuple(-1 if d is None else int(d) for d in spec.get("output_shape", [-1]))
        index: dict[str, int] = {}
        for i, token in enumerate(spec["vocabulary"]):
            index.setdefault(token, i)
        self.index = index

    # --- one string ---------------------------------------------------------------------------------------

    def _tokens(self, text: str):
        if self.table is not None:
            text = text.translate(self.table)
        if self.split == "whitespace":
            return (m.group() for m in _WORD.finditer(text))
        if self.split == "character":
            return iter(text)
        return iter((text,))

    def _terms(self, text: str):
        """Every term of one string in the layer's order: all n-grams of the first width, then the next..."""
        if self.widths is None:
            yield from self._tokens(text)
            return
        for width in self.widths:
            window: deque = deque(maxlen=width)
            for token in self._tokens(text):
                window.append(token)
                if len(window) == width:
                    yield " ".join(window)

    def ids(self, text: str):
        """The ids of one string's terms, lazily; with a fixed sequence length, only as many as it keeps."""
        get, oov = self.index.get, self.oov
        terms = self._terms(text)
        if self.mode == "int" and self.length is not None:
            terms = islice(terms, self.length)
        return (get(t, oov) for t in terms)

    # --- a batch ------------------------------------------------------------------------------------------

    def _row(self, sample: list[str]):
        """The ids of one input row, lazily: its string's terms, or (without a split) each string as one term."""
        if self.split is not None:
            return self.ids(sample[0])
        get, oov, table = self.index.get, self.oov, self.table
        return (get(t.translate(table) if table is not None else t, oov) for t in sample)

    def encode(self, samples: list[list[str]]) -> np.ndarray:
        """The layer's output for a batch: each sample is the list of strings one input row holds."""
        out = self._encode(samples)
        shape = self.shape if self.shape.count(-1) <= 1 else (-1,)
        return out.reshape((len(samples), *shape)) if out.size or -1 not in shape else out

    def _encode(self, samples: list[list[str]]) -> np.ndarray:
        if self.mode == "int":  # 8 bytes per id kept: what the output holds anyway
            rows = [array("q", self._row(s)) for s in samples]
            width = self.length if self.length is not None else max((len(r) for r in rows), default=0)
            out = np.zeros((len(rows), width), dtype=self.dtype)
            for i, row in enumerate(rows):
                n = min(len(row), width)
                if n:
                    out[i, :n] = np.frombuffer(row, dtype=np.int64, count=n)
            return out
        out = np.zeros((len(samples), self.depth), dtype=self.dtype)
        for i, sample in enumerate(samples):
            counts = Counter(self._row(sample))  # memory: one entry per distinct id, however long the text
            ids = np.fromiter(counts, dtype=np.int64, count=len(counts))
            out[i, ids] = np.fromiter(counts.values(), dtype=np.float64, count=len(counts)) \
                if self.mode == "count" else 1
        return out


def load(base_dir: str) -> Vectorizer:
    """The package's vectorizer, read once per process."""
    path = os.path.join(base_dir, FILE)
    vectorizer = _loaded.get(path)
    if vectorizer is None:
        with _lock:
            vectorizer = _loaded.get(path)
            if vectorizer is None:
                with open(path, encoding="utf-8") as f:
                    vectorizer = _loaded[path] = Vectorizer(json.load(f))
    return vectorizer


def holds_text(request: dict, name: str) -> bool:
    """Whether a TF Serving request sends strings (else it sends token ids, which go through as numbers)."""
    value = request.get("instances", request.get("inputs"))
    if isinstance(value, dict):
        value = value.get(name)
    while isinstance(value, list) and value:
        value = value[0]
    if isinstance(value, dict):
        value = value.get(name)
        while isinstance(value, list) and value:
            value = value[0]
    return isinstance(value, str)


def request_arrays(request: dict, vectorizer: Vectorizer, max_batch: int) -> dict[str, np.ndarray]:
    """The model's token ids for a request that sends strings: {"instances": ["text", ...]} (or [["text"]],
    or [{"<input>": "text"}]), or {"inputs": ["text", ...]} / {"inputs": {"<input>": [...]}}."""
    name = vectorizer.input
    if ("instances" in request) == ("inputs" in request):
        raise RequestError('give exactly one of "instances" (row format) or "inputs" (columnar format)')
    if "instances" in request:
        rows = request["instances"]
        if isinstance(rows, list) and rows and all(isinstance(r, dict) for r in rows):
            rows = [_only(r, name) for r in rows]
    else:
        rows = request["inputs"]
        if isinstance(rows, dict):
            rows = _only(rows, name)
    if not isinstance(rows, list) or not rows:
        raise RequestError(f"input '{name}' must be a non-empty list of strings, one per instance")
    if len(rows) > max_batch:
        raise RequestError(f"batch is larger than the limit of {max_batch}", status=413)
    samples = [_strings(row, name, vectorizer.tokens_per_sample) for row in rows]
    return {vectorizer.feeds: vectorizer.encode(samples)}


def _only(obj: dict, name: str):
    if set(obj) != {name}:
        raise RequestError(f"expected input '{name}' (text); got {sorted(str(k)[:40] for k in obj)[:5]}")
    return obj[name]


def _strings(row, name: str, count: int) -> list[str]:
    """One instance: a string, or a list of `count` strings; each must be valid Unicode text."""
    items = [row] if isinstance(row, str) else row
    if not isinstance(items, list) or len(items) != count or not all(isinstance(s, str) for s in items):
        want = "a string" if count == 1 else f"a list of {count} strings"
        raise RequestError(f"each instance of input '{name}' must be {want}")
    for s in items:
        if not s.isascii():
            try:
                s.encode("utf-8")
            except UnicodeEncodeError:
                raise RequestError(f"input '{name}' holds a string that is not valid Unicode (a lone "
                                   "surrogate)") from None
    return items
