"""Shared fixtures: the shipped example as small recipes, one read-only digits build for the whole session,
and fresh imports of generated serving code that leave sys.path and sys.modules as they found them."""

from __future__ import annotations

import importlib
import importlib.util
import json
import shutil
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "recipes" / "digits"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
SMALL_MEASURE = {"latency": {"warmup": 2, "runs": 10}, "cold_start": {"runs": 1}}
# Module names the generated handlers bring; a fresh import must not find an earlier test's copies.
SERVING_MODULES = ("handler", "function_app",
                   *sorted(p.stem for p in (ROOT / "modelpack" / "serving" / "common").glob("*.py")))


def digits_data(**overrides) -> dict:
    """The shipped digits recipe with absolute paths and few measurement runs; `overrides` replace top-level keys."""
    data = yaml.safe_load((DIGITS / "recipe.yaml").read_text())
    data["model"]["path"] = str(DIGITS / "model.keras")
    data["data"]["path"] = str(DIGITS / "digits.npz")
    data["measure"] = json.loads(json.dumps(SMALL_MEASURE))
    data.update(overrides)
    return data


def write_digits_recipe(path: Path, **overrides) -> Path:
    path.write_text(yaml.safe_dump(digits_data(**overrides), sort_keys=False))
    return path


def run_build(recipe: Path, out: Path, cache: Path, *extra: str) -> dict:
    """`modelpack build` through the CLI; asserts exit 0 and returns report.json."""
    from click.testing import CliRunner

    from modelpack.cli import cli

    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(out), "--cache-dir", str(cache), *extra])
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text())


def digits_samples(n: int):
    import numpy as np

    with np.load(DIGITS / "digits.npz") as npz:
        return npz["x"][:n]


@pytest.fixture
def digits_recipe(tmp_path):
    """Write a copy of the digits recipe into tmp_path with fewer measurement runs; returns a writer."""

    def write(**overrides) -> Path:
        path = tmp_path / f"recipe-{len(list(tmp_path.glob('recipe-*.yaml')))}.yaml"
        return write_digits_recipe(path, **overrides)

    return write


@dataclass(frozen=True)
class Dist:
    """A finished build: its output folder, the recipe and cache that made it, and its report."""

    out: Path
    recipe: Path
    cache: Path
    report: dict
    variant: str
    seconds: float = 0.0  # how long the build took (the session's build: a cold cache)

    def artifact(self, target: str) -> dict:
        return next(a for a in self.report["artifacts"] if a["target"] == target)


def tree_digest(root: Path) -> dict[str, str]:
    """{relative path: sha256} of every file under `root`."""
    from modelpack.output import sha256_file

    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def digits_dist(tmp_path_factory) -> Iterator[Dist]:
    """One build of the digits example for the whole session (TFLite float32; a Lambda layer and function and an
    Azure app, all for this machine's Python so their checks run). Read-only: a test that changes it fails
    at the end of the session; copy it (`dist_copy`) to tamper with or rebuild into it."""
    from modelpack.interpreters import host_arch, host_python

    tmp = tmp_path_factory.mktemp("digits-dist")
    recipe = write_digits_recipe(tmp / "recipe.yaml", optimize={"variants": ["tflite-fp32"]}, targets=[
        {"kind": "lambda-layer", "python": host_python(), "arch": host_arch()},
        {"kind": "lambda-function", "top_k": 3, "max_batch": 16, "memory_mb": 512, "warmer_schedule": "rate(5 minutes)"},
        {"kind": "azure-functions", "python": host_python(), "route": "score", "top_k": 2, "max_request_mb": 0.05,
         "max_batch": 8},
    ])
    start = time.monotonic()
    report = run_build(recipe, tmp / "out", tmp / "cache")
    dist = Dist(tmp / "out", recipe, tmp / "cache", report, "tflite-fp32", time.monotonic() - start)
    before = tree_digest(dist.out)
    yield dist
    after = tree_digest(dist.out)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    assert not changed, f"a test changed the shared digits build: {changed[:5]}"


@pytest.fixture(scope="session")
def digits_rebuild(digits_dist, tmp_path_factory) -> dict:
    """The report of a second clean build of the same recipe (fresh cache), for determinism checks."""
    tmp = tmp_path_factory.mktemp("digits-rebuild")
    return run_build(digits_dist.recipe, tmp / "out", tmp / "cache")


def copy_dist(dist: Dist, dest: Path, cache: bool = True) -> Dist:
    """A private copy of `dist` (and of its cache) that a test may change or rebuild into."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(dist.out, dest / "out", symlinks=True)
    if cache:
        shutil.copytree(dist.cache, dest / "cache", symlinks=True)
    recipe = shutil.copyfile(dist.recipe, dest / "recipe.yaml")
    return Dist(dest / "out", Path(recipe), dest / "cache", dist.report, dist.variant, dist.seconds)


@contextmanager
def fresh_import(directory: Path, module: str) -> Iterator[ModuleType]:
    """Import `module` from `directory` as a cold start would (no cached serving modules); on exit sys.path and
    the serving modules in sys.modules are as before."""
    saved_path = list(sys.path)
    saved = {name: sys.modules.pop(name) for name in SERVING_MODULES if name in sys.modules}
    sys.path.insert(0, str(directory))
    try:
        yield importlib.import_module(module)
    finally:
        sys.path[:] = saved_path
        for name in SERVING_MODULES:
            sys.modules.pop(name, None)
        sys.modules.update(saved)


def serving_module(name: str) -> ModuleType:
    """A module of the shipped serving runtime (modelpack/serving/common/NAME.py), loaded by path under a
    private name: neither sys.path nor sys.modules changes."""
    path = ROOT / "modelpack" / "serving" / "common" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_modelpack_serving_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture
def import_fresh() -> Iterator:
    """`import_fresh(directory, module)` imports generated serving code as a cold start would (see fresh_import);
    everything it changed in sys.path and sys.modules is undone when the test ends."""
    with ExitStack() as stack:
        yield lambda directory, module: stack.enter_context(fresh_import(directory, module))


def variant_predictions(dist: Dist, x):
    """What the selected variant answers for `x`, one sample at a time, through the shipped model_runtime."""
    import numpy as np

    suffix = ".onnx" if dist.variant.startswith("onnx") else ".tflite"
    model = serving_module("model_runtime").load(str(dist.out / "variants" / (dist.variant + suffix)))
    return np.concatenate([model.predict({"image": x[i : i + 1]})[0] for i in range(len(x))])


@pytest.fixture(scope="session")
def container_engine() -> Iterator[str]:
    """A running container engine through the project's script (installs and starts podman if needed and makes
    the local base image); DOCKER_HOST points at it for the session and is restored afterwards."""
    import os
    import subprocess

    proc = subprocess.run(["bash", str(ROOT / "scripts" / "container-engine.sh")], capture_output=True, text=True,
                          check=False, timeout=900)
    assert proc.returncode == 0, proc.stderr[-2000:]
    old = os.environ.get("DOCKER_HOST")
    os.environ["DOCKER_HOST"] = proc.stdout.strip().rsplit("=", 1)[-1]
    yield os.environ["DOCKER_HOST"]
    if old is None:
        os.environ.pop("DOCKER_HOST", None)
    else:
        os.environ["DOCKER_HOST"] = old


def children(parent: int, marker: bytes = b"") -> list[int]:
    """Pids whose parent is `parent` and whose command line holds `marker`, read from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])  # the name in parentheses may hold spaces
            if ppid == parent and marker in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except (OSError, ValueError):
            continue  # gone meanwhile
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout_s: float = 30) -> None:
    """Return once something listens on loopback `port` (a server a test started)."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s} s")
