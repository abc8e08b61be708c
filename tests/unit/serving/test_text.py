"""The handlers' text lookup (modelpack/serving/common/text.py) on hand-written settings, without TensorFlow: the ids
worked out by hand from the rules TextVectorization follows, every request form, and refusals. Equality with the
Keras layer itself is proven by the build on every text model (tests/integration/test_text_models.py)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tests.helpers.serving import serving_module

text = serving_module("text")
VOCAB = ["", "[UNK]", "the", "dog", "cat", "a", "the dog", "the cat", "sat", "ran", "dog ran", "cat sat"]
SPEC = {"input": "review", "feeds": "review_ids", "standardize": "lower_and_strip_punctuation", "split": "whitespace",
        "ngrams": [1, 2], "output_mode": "int", "sequence_length": 6, "output_shape": [6], "depth": len(VOCAB),
        "oov_index": 1, "dtype": "int64", "vocabulary": VOCAB, "tokens_per_sample": 1}


def encode(texts, **changes):
    return text.Vectorizer({**SPEC, **changes}).encode([[t] for t in texts]).tolist()


def test_standardize_split_ngrams_lookup_and_pad_as_the_layer_does():
    # Unigrams first, then bigrams; ASCII letters lowered (É stays), punctuation removed, ASCII whitespace only.
    assert encode(["The CAT sat."]) == [[2, 4, 8, 7, 11, 0]]
    assert encode(["ÉCOLE the cat"]) == [[1, 2, 4, 1, 7, 0]]
    assert encode(["cat\u00a0sat the\tdog"]) == [[1, 2, 3, 1, 6, 0]]  # a no-break space joins cat and sat
    assert encode(["", "   "]) == [[0] * 6, [0] * 6]
    assert encode(["the dog ran the cat sat"]) == [[2, 3, 9, 2, 4, 8]]  # cut at 6, before any bigram


def test_other_settings():
    assert encode(["The Cat"], standardize=None, ngrams=None) == [[1, 1, 0, 0, 0, 0]]  # nothing lowered
    assert encode(["dog, cat"], standardize="lower", ngrams=None) == [[1, 4, 0, 0, 0, 0]]  # "dog," is unknown
    free = encode(["cat sat", "the dog ran"], ngrams=None, sequence_length=None, output_shape=[None])
    assert free == [[4, 8, 0], [2, 3, 9]]  # padded to the longest in the batch
    chars = {**SPEC, "split": "character", "ngrams": None, "vocabulary": ["", "[UNK]", "a", "b", "é"]}
    assert text.Vectorizer(chars).encode([["ab é"]]).tolist() == [[2, 3, 1, 4, 0, 0]]
    counts = {**SPEC, "output_mode": "count", "ngrams": None, "sequence_length": None, "output_shape": [1, 5],
              "depth": 5, "oov_index": 0, "dtype": "float32", "vocabulary": ["[UNK]", "the", "cat", "dog", "sat"]}
    assert text.Vectorizer(counts).encode([["the cat the zebra"]]).tolist() == [[[1, 2, 1, 0, 0]]]
    hot = {**counts, "output_mode": "multi_hot"}
    assert text.Vectorizer(hot).encode([["the cat the zebra"]]).tolist() == [[[1, 1, 1, 0, 0]]]


def test_string_lookup_keeps_each_string_whole():
    lookup = {**SPEC, "standardize": None, "split": None, "ngrams": None, "sequence_length": None,
              "output_shape": [2], "vocabulary": ["[UNK]", "red", "green"], "oov_index": 0, "tokens_per_sample": 2}
    vectorizer = text.Vectorizer(lookup)
    request = {"instances": [["red", "blue"], ["green", "red"]]}
    assert text.request_arrays(request, vectorizer, 8)["review_ids"].tolist() == [[1, 0], [2, 1]]


def test_every_request_form_gives_the_same_ids():
    vectorizer = text.Vectorizer(SPEC)
    forms = [{"instances": ["the cat", "a dog"]}, {"instances": [["the cat"], ["a dog"]]},
             {"instances": [{"review": "the cat"}, {"review": "a dog"}]}, {"inputs": ["the cat", "a dog"]},
             {"inputs": {"review": [["the cat"], ["a dog"]]}}]
    results = [text.request_arrays(form, vectorizer, 8)["review_ids"].tolist() for form in forms]
    assert all(r == results[0] for r in results) and results[0][0][:3] == [2, 4, 7]
    assert all(text.holds_text(form, "review") for form in forms)
    assert not text.holds_text({"instances": [[2, 4, 7, 0, 0, 0]]}, "review")  # token ids go through as numbers


@pytest.mark.parametrize("request_body, message", [
    ({"instances": []}, "non-empty list"),
    ({"instances": [1]}, "must be a string"),
    ({"instances": [["a", "b"]]}, "must be a string"),
    ({"instances": ["\ud800"]}, "not valid Unicode"),
    ({"instances": [{"other": "x"}]}, "expected input 'review'"),
    ({"instances": ["a"], "inputs": ["a"]}, "exactly one of"),
    ({"instances": ["a"] * 9}, "limit of 8"),
])
def test_bad_text_requests_are_refused(request_body, message):
    with pytest.raises(text.RequestError, match=message):
        text.request_arrays(request_body, text.Vectorizer(SPEC), 8)


def test_a_long_text_is_read_only_as_far_as_the_output_needs():
    """A fixed sequence length stops reading once it has its ids: a 6 MB string costs what six words cost."""
    vectorizer = text.Vectorizer({**SPEC, "standardize": None, "ngrams": None})
    huge = "cat " * 1_500_000
    start = time.perf_counter()
    ids = vectorizer.encode([[huge]])
    assert ids.tolist() == [[4] * 6] and time.perf_counter() - start < 0.5


def test_the_vectorizer_is_loaded_once_per_package(tmp_path):
    import json

    (tmp_path / text.FILE).write_text(json.dumps(SPEC))
    first = text.load(str(tmp_path))
    assert text.load(str(tmp_path)) is first and np.asarray(first.encode([["the"]])).shape == (1, 6)
