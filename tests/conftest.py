"""Shared fixtures: the shipped example as small recipes, one read-only digits build for the whole session,
fresh imports of generated serving code that leave sys.path and sys.modules as they found them, and the
container engine. Plain helpers live in tests/helpers/."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.helpers.builds import Dist, run_build, tree_digest, write_digits_recipe
from tests.helpers.paths import ROOT
from tests.helpers.services import missing
from tests.helpers.serving import fresh_import


@pytest.fixture
def digits_recipe(tmp_path):
    """Write a copy of the digits recipe into tmp_path with fewer measurement runs; returns a writer."""

    def write(**overrides) -> Path:
        path = tmp_path / f"recipe-{len(list(tmp_path.glob('recipe-*.yaml')))}.yaml"
        return write_digits_recipe(path, **overrides)

    return write


@pytest.fixture(scope="session")
def digits_dist(tmp_path_factory) -> Iterator[Dist]:
    """One build of the digits example for the whole session (TFLite float32; a Lambda layer and function and an
    Azure app, all for this machine's Python so their checks run). Read-only: a test that changes it fails
    at the end of the session; copy it (`dist_copy`) to tamper with or rebuild into it."""
    from modelpack.host.interpreters import host_arch, host_python

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


@pytest.fixture
def import_fresh() -> Iterator:
    """`import_fresh(directory, module)` imports generated serving code as a cold start would (see fresh_import);
    everything it changed in sys.path and sys.modules is undone when the test ends."""
    with ExitStack() as stack:
        yield lambda directory, module: stack.enter_context(fresh_import(directory, module))


@pytest.fixture(scope="session")
def container_engine() -> Iterator[str]:
    """A running container engine through the project's script (installs and starts podman if needed and makes
    the local base image); DOCKER_HOST points at it for the session and is restored afterwards."""
    import os
    import subprocess

    if os.geteuid() != 0 and shutil.which("podman") is None:
        missing("podman", "building and running images")
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


