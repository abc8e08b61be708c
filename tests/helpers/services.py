"""The programs some tests need besides Python packages: a missing one skips those tests with the reason and the
way to install it, except when CI is set: .ci/run installs every one, so there a missing program fails."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

HOW = {
    "redis-server": "apt-get install redis-server (scripts/test-services.sh)",
    "azurite-blob": "npm install azurite@3 (scripts/test-services.sh)",
    "sam": "python3 -m venv .venv-sam && .venv-sam/bin/pip install aws-sam-cli",
    "chromium": "apt-get install chromium",
    "docker-registry": "apt-get install docker-registry",
    "podman": "scripts/container-engine.sh (installs podman with apt and starts it; needs root)",
}


def missing(program: str, why: str) -> None:
    """Skip the test (or fail it under CI) because `program` is not installed."""
    message = f"{program} is not installed (needed by {why}): {HOW[program]}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI installs it, so its absence is a failure)")
    pytest.skip(message)


def need(program: str, why: str, *candidates: str | Path) -> str:
    """The path of `program` (the first existing of `candidates`, else on PATH); see `missing` when absent."""
    for candidate in candidates:
        if Path(candidate).exists():
            return str(candidate)
    found = shutil.which(program)
    if found is None:
        missing(program, why)
    return str(found)
