"""Shared fixtures: paths to the shipped example and small recipe variants of it."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DIGITS = ROOT / "recipes" / "digits"
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture
def digits_recipe(tmp_path):
    """Write a copy of the digits recipe into tmp_path with fewer measurement runs; returns a writer."""

    def write(**overrides) -> Path:
        data = yaml.safe_load((DIGITS / "recipe.yaml").read_text())
        data["model"]["path"] = str(DIGITS / "model.keras")
        data["data"]["path"] = str(DIGITS / "digits.npz")
        data["measure"] = {"latency": {"warmup": 2, "runs": 10}, "cold_start": {"runs": 1}}
        for key, value in overrides.items():
            data[key] = value
        path = tmp_path / f"recipe-{len(list(tmp_path.glob('recipe-*.yaml')))}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


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
