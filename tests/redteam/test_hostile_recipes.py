"""Recipes and data written to hurt: each is refused with exit 2 at once, in bounded time and memory."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from tests.helpers.paths import DIGITS, ROOT

MODELPACK = ROOT / ".venv" / "bin" / "modelpack"


def alias_bomb(levels: int = 8, width: int = 9) -> str:
    """A "billion laughs": each level lists the previous one `width` times (9**8 values from ~600 bytes)."""
    lines = ["a0: &a0 [" + ", ".join(['"lol"'] * width) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * width) + "]")
    lines.append(f"name: bomb\nmodel: {{path: {DIGITS / 'model.keras'}}}")
    return "\n".join(lines) + "\n"


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def assert_refused(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and "internal error" not in result.output, result.output
    for word in words:
        assert word in result.output, result.output


def test_alias_bomb_is_refused_at_once(tmp_path):
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text(alias_bomb())
    assert len(recipe.read_bytes()) < 700
    for command in ("validate", "build"):
        # Each command runs in its own `bash -c` so the children's usage below is that command's alone.
        script = (f"ulimit -v 2000000; {MODELPACK} {command} {recipe}; code=$?; "
                  "python3 -c 'import resource as r; u = r.getrusage(r.RUSAGE_CHILDREN); "
                  "print(u.ru_utime + u.ru_stime, u.ru_maxrss)' >&2; exit $code")
        start = time.monotonic()
        proc = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
        elapsed = time.monotonic() - start
        assert proc.returncode == 2, proc.stderr
        assert f"{recipe}: the YAML expands to more than" in proc.stderr and "aliases" in proc.stderr
        cpu_s, peak_kb = proc.stderr.split()[-2:]
        # Before the alias budget this took 23 s of CPU and over 3.4 GB. CPU time is the bound that holds on a
        # busy machine (where starting any Python process can take a second of wall time); wall time is
        # bounded too.
        assert float(cpu_s) < 2 and elapsed < 5, f"{command}: {float(cpu_s):.2f} s CPU, {elapsed:.2f} s wall"
        assert int(peak_kb) < 300_000, f"{command}: peak {int(peak_kb) / 1000:.0f} MB"


@pytest.mark.parametrize("text", [
    "a: &a [*a]\nname: x\n",
    "a: &a {b: *a}\nname: x\n",
    "a: &a [1, [2, {c: *a}]]\nname: x\n",
])
def test_recursive_alias(tmp_path, text):
    recipe = tmp_path / "recursive.yaml"
    recipe.write_text(text)
    assert_refused(invoke("validate", str(recipe)), f"{recipe}:1", "refers to a node that contains it")


def test_ordinary_aliases_still_work(tmp_path):
    recipe = tmp_path / "anchors.yaml"
    recipe.write_text(f"model: &m {{path: {DIGITS / 'model.keras'}}}\nname: ok\ndata: {{synthetic: true}}\n"
                      "measure: {latency: &lat {runs: 10, warmup: 1}}\n")
    result = invoke("validate", str(recipe))
    assert result.exit_code == 0, result.output


def test_deep_nesting(tmp_path):
    recipe = tmp_path / "deep.yaml"
    recipe.write_text("name: x\nmodel: " + "[" * 50_000 + "]" * 50_000 + "\n")
    assert_refused(invoke("validate", str(recipe)), str(recipe))


def test_python_tags_are_not_executed(tmp_path):
    marker = tmp_path / "pwned"
    recipe = tmp_path / "tag.yaml"
    recipe.write_text(f"name: !!python/object/apply:os.system ['touch {marker}']\nmodel: {{path: x}}\n")
    assert_refused(invoke("validate", str(recipe)), "malformed YAML")
    assert not marker.exists()


def test_unhashable_key(tmp_path):
    recipe = tmp_path / "key.yaml"
    recipe.write_text("? [a, b]\n: 1\nname: x\n")
    assert_refused(invoke("validate", str(recipe)), str(recipe))


@pytest.fixture
def data_module(tmp_path, monkeypatch):
    folder = tmp_path / "pymods"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))

    def write(name: str, body: str) -> Path:
        (folder / f"{name}.py").write_text(body)
        recipe = tmp_path / "recipe.yaml"
        recipe.write_text(yaml.safe_dump({"name": "hostile", "model": {"path": str(DIGITS / "model.keras")},
                                          "data": {"path": f"{name}:load", "timeout_s": 20},
                                          "optimize": {"variants": ["tflite-fp32"]}}))
        return recipe

    return write


@pytest.mark.parametrize("name, body, words", [
    ("hard_exit", "import os\n\ndef load():\n    os._exit(0)\n", ["ended its process (exit code 0)"]),
    ("crash", "import os, signal\n\ndef load():\n    os.kill(os.getpid(), signal.SIGSEGV)\n", ["exit code -11"]),
    ("not_a_dict", "def load():\n    return [1, 2, 3]\n", ["must return a dict of arrays, not list"]),
    ("objects", "import numpy as np\n\ndef load():\n    return {'x': np.array([{}, []], dtype=object)}\n",
     ["array 'x' holds Python objects"]),
    ("raises", "def load():\n    raise ValueError('no such table')\n", ["ValueError: no such table"]),
    ("missing", "def other():\n    pass\n", ["AttributeError"]),
])
def test_hostile_data_functions(tmp_path, data_module, name, body, words):
    recipe = data_module(name, body)
    result = invoke("build", str(recipe), "--out", str(tmp_path / "out"), "--no-cache")
    assert_refused(result, f"data.path {name}:load", *words)
    assert not (tmp_path / "out").exists()


def test_scalar_array_instead_of_samples(tmp_path):
    npz = tmp_path / "scalar.npz"
    np.savez(npz, x=np.float32(1.0), y=np.int64(3))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"name": "scalar", "model": {"path": str(DIGITS / "model.keras")},
                                      "data": {"path": str(npz)}}))
    assert_refused(invoke("validate", str(recipe)), str(npz), "array 'x' is a single value")


def test_missing_array_name(tmp_path):
    npz = tmp_path / "names.npz"
    np.savez(npz, images=np.zeros((4, 8, 8, 1), np.float32), y=np.zeros(4, np.int64))
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"name": "names", "model": {"path": str(DIGITS / "model.keras")},
                                      "data": {"path": str(npz)}}))
    assert_refused(invoke("validate", str(recipe)), "data.inputs names array 'x'", "it has: images, y")
