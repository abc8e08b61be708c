"""Recipe fuzzing: random mutations of a valid recipe always end in exit 0 or exit 2 with a message —
never a traceback or an internal error."""

from __future__ import annotations

import copy

import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelpack.cli.main import cli
from tests.helpers.paths import FIXTURES

BASE = yaml.safe_load((FIXTURES / "recipes" / "valid-full.yaml").read_text())
BASE["model"]["path"] = str((FIXTURES / "recipes" / BASE["model"]["path"]).resolve())
BASE["data"]["path"] = str((FIXTURES / "recipes" / BASE["data"]["path"]).resolve())
BASE["targets"] = [{"kind": "lambda-layer", "python": "3.12"}, {"kind": "lambda-function", "top_k": 3},
                   {"kind": "azure-functions"}, {"kind": "lambda-image", "build": False}]
CASES = {"recipe": 0}

ODD = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=40),
    st.sampled_from(["../../../etc/passwd", "/", "", "~", "C:\\\\x", "\x00", "model.keras\n", "ü" * 70, "3.12",
                     "tflite-int8", "lambda-layer", "s3://bucket/key", "{{BASE_IMAGE}}"]),
    st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=5), st.integers(), max_size=2),
)


def paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from paths(v, prefix + (i,))


def set_at(doc, path, value):
    if not path:
        return value
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


@st.composite
def mutated(draw):
    doc = copy.deepcopy(BASE)
    for _ in range(draw(st.integers(1, 4))):
        all_paths = list(paths(doc))
        path = draw(st.sampled_from(all_paths))
        action = draw(st.sampled_from(["set", "add", "delete"]))
        if action == "set":
            doc = set_at(doc, path, draw(ODD))
        elif action == "add":
            parent = path if isinstance(_get(doc, path), dict) else path[:-1]
            target = _get(doc, parent)
            if isinstance(target, dict):
                target[draw(st.text(min_size=1, max_size=12))] = draw(ODD)
        elif path and isinstance(_get(doc, path[:-1]), dict):
            del _get(doc, path[:-1])[path[-1]]
    return doc


def _get(doc, path):
    for part in path:
        doc = doc[part]
    return doc


def check(text_or_bytes, tmp_path):
    recipe = tmp_path / "fuzz.yaml"
    (recipe.write_bytes if isinstance(text_or_bytes, bytes) else recipe.write_text)(text_or_bytes)
    result = CliRunner().invoke(cli, ["validate", str(recipe)])
    CASES["recipe"] += 1
    assert result.exit_code in (0, 2), result.output
    assert "Traceback" not in result.output and "internal error" not in result.output
    if result.exit_code == 2:
        assert str(recipe) in result.output


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=mutated())
def test_mutated_recipes_never_crash(doc, tmp_path):
    check(yaml.safe_dump(doc, allow_unicode=True), tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.one_of(
    st.binary(max_size=300),
    st.text(max_size=300).map(lambda t: t.encode("utf-16")),
    st.text(max_size=200).map(lambda t: ("\ufeff" + yaml.safe_dump(BASE) + t).encode("utf-8", "surrogatepass")),
    st.sampled_from([b"&a [*a, *a]", b"!!python/object:os.system {}", b"a: !!binary AAAA", b"[" * 5000,
                     b"name: x\nmodel: {path: " + b"9" * 400 + b"}", yaml.safe_dump(BASE).encode("latin-1", "replace")]),
))
def test_odd_bytes_never_crash(raw, tmp_path):
    check(raw, tmp_path)
