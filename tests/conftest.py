"""Shared fixtures: paths to the shipped example and small recipe variants of it."""

from __future__ import annotations

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
