"""A recipe for `modelpack bench MODEL --data DATA.npz`, written where no recipe exists."""

from __future__ import annotations

import re
from pathlib import Path

import yaml


def recipe_for_model(model: Path, data: Path | None, variants: str | None, directory: Path) -> Path:
    """Write a recipe that measures MODEL (with DATA's x / y arrays, or synthetic inputs) and return its path."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "-", model.stem).strip("-.") or "model"
    recipe: dict = {"name": name[:64], "model": {"path": str(model.resolve())}}
    if data is not None:
        recipe["data"] = {"path": str(data.resolve()), "calibration": 0.3, "evaluation": 0.7}
    else:
        recipe["data"] = {"synthetic": True, "evaluation": 64, "calibration": 64}
    if variants:
        recipe["optimize"] = {"variants": [v.strip() for v in variants.split(",") if v.strip()]}
    path = directory / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, sort_keys=False))
    return path
