"""Text models: a string input read by TextVectorization or StringLookup, served by moving the layer's vocabulary
lookup into the handler (worker process only: imports TensorFlow).

`describe` finds the layer and writes down what the handler's text.py needs (settings and vocabulary), refusing a
setting it does not reproduce by naming it. `TextSplitStep` saves the rest of the model, from the layer's output on,
as the numeric model every variant is converted from. `TextTokensStep` turns the sample texts into the layer's
ids and proves that the handler's ids are the layer's on them and on a corpus of awkward strings.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from modelpack.errors import UnservableInputError
from modelpack.files.jsonio import dumps_strict
from modelpack.inputs.keras_io import TEXT_LAYERS
from modelpack.steps.base import Step, StepJob

MODES = {"TextVectorization": ("int", "multi_hot", "count"), "StringLookup": ("int", "one_hot", "multi_hot", "count")}
STANDARDIZE = (None, "lower", "strip_punctuation", "lower_and_strip_punctuation")
SPLIT = (None, "whitespace", "character")
SPLIT_TOLERANCE = 1e-6  # the model from the layer's output on must compute what the whole model computes

# Strings a handler meets that tidy evaluation texts rarely have; the handler's ids must be the layer's on all.
AWKWARD = [
    "", " ", "   \t\n  ", "a", "A", "HELLO World", "hello, world!", "don't stop-believing...", "e-mail: me@x.org",
    "C++ & C# (2024) 3.14 50% $9.99", "#tag @user http://example.com/a?b=c&d=e", "((()))[[{}]]", "'''\"\"\"```",
    "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", "ÉCOLE École école", "İstanbul ıi ß Straße ǅ", "naïve café résumé",
    "Ωmega ΣΊΣΥΦΟΣ", "Москва МОСКВА", "東京 は 晴れ", "😀 😀😀 👍🏽 🇫🇷", "e\u0301 combining", "zero\u200bwidth",
    "\ufeffbom first", "non\u00a0breaking", "em\u2003space thin\u2009space", "line\u2028sep para\u2029sep",
    "unit\x1fsep\x1crecord", "vertical\x0btab form\x0cfeed", "carriage\rreturn", "tab\tand\nnewline",
    "mixed ＦＵＬＬＷＩＤＴＨ ｆｕｌｌ", "ﬁ ligature", "١٢٣ arabic digits", "עברית rtl", "a  b   c    d",
    " leading and trailing ", "repeat " * 40, "word " * 2000, "x" * 5000, "the the the the",
]


@dataclass
class TextInput:
    """The string input and the layer that reads it."""

    index: int
    tensor: Any
    layer: Any
    name: str


def find(model: Any) -> TextInput | None:
    """The model's string input and the one TextVectorization / StringLookup that reads it; None without a string
    input. What cannot be served this way is refused, naming the input, the layer and the way out."""
    from modelpack.inputs.keras_io import readers, safe_name

    strings = [(i, t) for i, t in enumerate(model.inputs) if str(getattr(t.dtype, "name", t.dtype)) in
               ("string", "str", "object")]
    if not strings:
        return None
    index, tensor = strings[0]
    name = safe_name(getattr(tensor, "name", f"input_{index}"))
    layers = readers(model, tensor)
    found = ", ".join(f"'{layer.name}' ({type(layer).__name__})" for layer in layers) or "no layer modelpack can see"
    if len(layers) != 1 or type(layers[0]).__name__ not in TEXT_LAYERS:
        raise UnservableInputError(
            f"model input '{name}' is a string tensor read by {found}; no runtime a serverless layer ships takes "
            "strings. modelpack serves a string input read by exactly one TextVectorization or StringLookup layer "
            "(its vocabulary lookup moves into the handler); otherwise vectorize before the call and save the model "
            "from the token ids on")
    if len(model.inputs) > 1:
        others = ", ".join(safe_name(t.name) for t in model.inputs if t is not tensor)
        raise UnservableInputError(
            f"model input '{name}' is text read by '{layers[0].name}' ({type(layers[0]).__name__}), but the model "
            f"has other inputs too ({others}); modelpack serves text models with one input. Vectorize before the "
            "call and save the model from the token ids on, or serve the text part on its own")
    return TextInput(index, tensor, layers[0], name)


def _refuse(found: TextInput, option: str, value: Any, why: str) -> UnservableInputError:
    kind = type(found.layer).__name__
    return UnservableInputError(
        f"model input '{found.name}' is read by '{found.layer.name}' ({kind}) with {option}={value!r}, which the "
        f"handler's vocabulary lookup does not reproduce ({why}). Use a supported setting, or vectorize before the "
        "call and save the model from the token ids on")


def describe(found: TextInput) -> dict:
    """What the handler's text.py needs to compute the layer's output (text.json), checked option by option."""
    layer, kind = found.layer, type(found.layer).__name__
    config = layer.get_config()
    mode = config.get("output_mode", "int")
    if mode not in MODES[kind]:
        raise _refuse(found, "output_mode", mode, f"supported: {', '.join(MODES[kind])}")
    for option, bad in (("sparse", True), ("ragged", True), ("invert", True)):
        if config.get(option) is bad:
            raise _refuse(found, option, bad, "the model would receive another kind of tensor")
    if config.get("encoding", "utf-8") not in ("utf-8", "UTF-8"):
        raise _refuse(found, "encoding", config["encoding"], "requests are UTF-8 text")
    if kind == "StringLookup" and config.get("num_oov_indices", 1) != 1:
        raise _refuse(found, "num_oov_indices", config["num_oov_indices"], "one out-of-vocabulary index only")
    standardize, split = config.get("standardize"), config.get("split")
    if kind == "TextVectorization":
        if standardize not in STANDARDIZE:
            raise _refuse(found, "standardize", standardize, "a custom function runs TensorFlow code")
        if split not in SPLIT:
            raise _refuse(found, "split", split, "a custom function runs TensorFlow code")
        if config.get("ngrams") and split is None:
            raise _refuse(found, "ngrams", config["ngrams"], "n-grams need split")
    ngrams = config.get("ngrams")
    widths = None if not ngrams else (list(range(1, ngrams + 1)) if isinstance(ngrams, int) else list(ngrams))
    lookup = layer._lookup_layer if kind == "TextVectorization" else layer
    vocabulary = [str(t) for t in layer.get_vocabulary(include_special_tokens=True)]
    oov = str(lookup.oov_token)
    if oov not in vocabulary:
        raise _refuse(found, "num_oov_indices", getattr(lookup, "num_oov_indices", 0), "no out-of-vocabulary index")
    out = layer.output
    per_sample = [int(d) if d is not None else None for d in out.shape[1:]]
    input_shape = [d for d in found.tensor.shape[1:]]
    tokens_per_sample = int(np.prod([d for d in input_shape if d is not None], dtype=np.int64)) if input_shape else 1
    if None in input_shape or (kind == "TextVectorization" and tokens_per_sample != 1):
        raise _refuse(found, "input shape", tuple(input_shape), "one string per sample, or a fixed number for "
                                                               "StringLookup")
    if kind == "StringLookup" and mode == "one_hot" and tokens_per_sample != 1:
        raise _refuse(found, "output_mode", mode, "one_hot takes one string per sample")
    return {
        "input": found.name, "feeds": f"{found.name}_ids", "layer": layer.name, "kind": kind,
        "input_shape": input_shape, "tokens_per_sample": tokens_per_sample,
        "standardize": standardize if kind == "TextVectorization" else None,
        "split": split if kind == "TextVectorization" else None, "ngrams": widths, "output_mode": mode,
        "sequence_length": config.get("output_sequence_length") if mode == "int" else None,
        "output_shape": per_sample, "depth": per_sample[-1] if mode != "int" and per_sample else len(vocabulary),
        "dtype": str(getattr(out.dtype, "name", out.dtype)), "oov_index": vocabulary.index(oov),
        "vocabulary": vocabulary,
    }


def numeric_model(model: Any, found: TextInput, feeds: str) -> Any:
    """The model from the text layer's output on, its input named `feeds`, sharing the model's layers."""
    import keras

    rest = keras.Model(found.layer.output, model.outputs)
    out = found.layer.output
    ids = keras.Input(shape=tuple(out.shape[1:]), dtype=out.dtype, name=feeds)
    return keras.models.clone_model(rest, input_tensors=ids, clone_function=lambda layer: layer)


def rows(texts: np.ndarray) -> list[list[str]]:
    """Sample texts (one string, or a fixed number, per sample) as the handler's rows of strings."""
    flat = np.asarray(texts).reshape(len(texts), -1)
    return [[s.decode("utf-8") if isinstance(s, bytes) else str(s) for s in row] for row in flat]


class TextSplitStep(Step):
    """The numeric model (model.keras) and the text layer's settings and vocabulary (text.json)."""

    NAME = "text-split"
    FILE = "model.keras"

    def run(self, job: StepJob, ctx: Any) -> dict:
        model = ctx.model(job).keras_model
        found = find(model)
        if found is None:
            raise UnservableInputError("the model has no string input")
        from modelpack.inputs.keras_io import from_keras

        spec = describe(found)
        numeric = numeric_model(model, found, spec["feeds"])
        numeric.save(job.out / self.FILE)
        (job.out / "text.json").write_text(dumps_strict(spec, sort_keys=True))
        return {"layer": spec["layer"], "kind": spec["kind"], "vocabulary_size": len(spec["vocabulary"]),
                "inputs": from_keras(numeric).inputs}


class TextTokensStep(Step):
    """The layer's ids for every split's texts (tokens.npz), after proving the handler computes the same ids on
    them and on AWKWARD, and that the numeric model on the ids computes what the model computes on the texts."""

    NAME = "text-tokens"
    FILE = "tokens.npz"

    def run(self, job: StepJob, ctx: Any) -> dict:
        import tensorflow as tf

        from modelpack.measure.runner import serving_module

        model = ctx.model(job).keras_model
        found = find(model)
        spec = describe(found)
        vectorizer = serving_module("text").Vectorizer(spec)
        shape = tuple(spec["input_shape"])
        with np.load(job.data["texts"], allow_pickle=False) as npz:
            splits = {k: npz[k] for k in npz.files}
        checked = 0
        for name, texts in [*splits.items(), ("awkward", np.asarray(AWKWARD))]:
            samples = rows(texts)
            strings = tf.constant(np.asarray(samples, dtype=object).reshape((len(samples), *shape)))
            keras_ids = as_declared(np.asarray(found.layer(strings)), spec)
            handler_ids = vectorizer.encode(samples)
            if keras_ids.shape != handler_ids.shape or keras_ids.dtype != handler_ids.dtype or \
                    not np.array_equal(keras_ids, handler_ids):
                raise UnservableInputError(_mismatch(found, spec, samples, keras_ids, handler_ids))
            checked += len(samples)
            if name != "awkward":
                splits[name] = keras_ids
        _same_outputs(model, found, spec, splits.get("evaluation"), job)
        np.savez(job.out / self.FILE, **{k: v for k, v in splits.items()})
        return {"texts_checked": checked, "awkward": len(AWKWARD)}


def as_declared(ids: np.ndarray, spec: dict) -> np.ndarray:
    """The layer's eager output in the shape and dtype its symbolic output declares, which the rest of the model
    was built on (TextVectorization's multi_hot over a [batch, 1] input declares float32 [batch, 1, depth] and
    computes int64 [batch, depth])."""
    ids = ids.astype(spec["dtype"], copy=False)
    shape = [-1 if d is None else int(d) for d in spec["output_shape"]]
    if ids.ndim == len(shape) + 1 or not ids.size or shape.count(-1) > 1:
        return ids
    return ids.reshape((len(ids), *shape))


def _mismatch(found: TextInput, spec: dict, samples: list[list[str]], keras_ids: np.ndarray,
              handler_ids: np.ndarray) -> str:
    bad = next((i for i in range(len(samples)) if keras_ids.shape != handler_ids.shape
                or not np.array_equal(keras_ids[i], handler_ids[i])), 0)
    settings = ", ".join(f"{k}={spec[k]!r}" for k in ("standardize", "split", "ngrams", "output_mode") if spec[k])
    return (f"model input '{found.name}': the handler's vocabulary lookup gives other ids than layer "
            f"'{found.layer.name}' ({spec['kind']}, {settings}) for {json.dumps(samples[bad][0][:80])}: "
            f"{handler_ids[bad].tolist()[:12]} instead of {keras_ids[bad].tolist()[:12]}; this setting is not "
            "reproduced exactly. Vectorize before the call and save the model from the token ids on")


def _same_outputs(model: Any, found: TextInput, spec: dict, ids: np.ndarray | None, job: StepJob) -> None:
    """The numeric model on the layer's ids computes the whole model's outputs on the texts (a sample of them)."""
    if ids is None:
        return
    import tensorflow as tf

    from modelpack.inputs.keras_io import call_keras

    with np.load(job.data["texts"], allow_pickle=False) as npz:
        texts = rows(npz["evaluation"][:32])
    strings = tf.constant(np.asarray(texts, dtype=object).reshape((len(texts), *spec["input_shape"])))
    whole = [np.asarray(o) for o in call_keras(model, [strings])]
    numeric = numeric_model(model, found, spec["feeds"])
    part = [np.asarray(o) for o in call_keras(numeric, [tf.constant(ids[: len(texts)])])]
    worst = max(float(np.max(np.abs(a.astype(np.float64) - b), initial=0.0)) for a, b in zip(whole, part))
    if not worst <= SPLIT_TOLERANCE:
        raise UnservableInputError(f"model input '{found.name}': the model from layer '{found.layer.name}' on "
                                   f"differs from the whole model by {worst:.2e}; it cannot be served split")


STEPS = (TextSplitStep, TextTokensStep)
