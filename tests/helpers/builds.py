"""Builds of the shipped digits example: small recipes, a build through the CLI, and what a build left."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import yaml

from tests.helpers.paths import DIGITS
from tests.helpers.serving import serving_module

SMALL_MEASURE = {"latency": {"warmup": 2, "runs": 10}, "cold_start": {"runs": 1}}


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

    from modelpack.cli.main import cli

    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(out), "--cache-dir", str(cache), *extra])
    assert result.exit_code == 0, result.output
    return json.loads((out / "report.json").read_text())


def digits_samples(n: int):
    import numpy as np

    with np.load(DIGITS / "digits.npz") as npz:
        return npz["x"][:n]


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
    from modelpack.files.output import sha256_file

    return {p.relative_to(root).as_posix(): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def copy_dist(dist: Dist, dest: Path, cache: bool = True) -> Dist:
    """A private copy of `dist` (and of its cache) that a test may change or rebuild into."""
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copytree(dist.out, dest / "out", symlinks=True)
    if cache:
        shutil.copytree(dist.cache, dest / "cache", symlinks=True)
    recipe = shutil.copyfile(dist.recipe, dest / "recipe.yaml")
    return Dist(dest / "out", Path(recipe), dest / "cache", dist.report, dist.variant, dist.seconds)


def variant_predictions(dist: Dist, x):
    """What the selected variant answers for `x`, one sample at a time, through the shipped model_runtime."""
    import numpy as np

    suffix = ".onnx" if dist.variant.startswith("onnx") else ".tflite"
    model = serving_module("model_runtime").load(str(dist.out / "variants" / (dist.variant + suffix)))
    return np.concatenate([model.predict({"image": x[i : i + 1]})[0] for i in range(len(x))])
