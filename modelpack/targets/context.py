"""BuildContext: what every target builds against (the recipe, the model, the selected variant, the cache)."""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from modelpack.console.progress import Reporter
from modelpack.errors import TargetError
from modelpack.files.arrays import load_outputs
from modelpack.files.cache import Cache, cache_key
from modelpack.files.jsonio import dumps_strict
from modelpack.files.output import sha256_file, write_zip
from modelpack.inputs.data import Samples
from modelpack.inputs.modelfile import ModelFile
from modelpack.recipe.models import Recipe
from modelpack.recipe.targets import LambdaLayerSpec
from modelpack.report.build_report import BuildReport
from modelpack.targets.runtimes import Runtime

TREE_INFO = "modelpack-tree.json"


@dataclass(frozen=True)
class BuiltLayer:
    """The Lambda layer a lambda-layer target made, for the targets that declare they run on it."""

    dir: Path  # the unzipped layer (python/ and, with model_in: layer, model/)
    spec: LambdaLayerSpec
    runtime: Runtime
    interpreter: str | None  # a local Python of the layer's version, when one was found
    can_run: bool  # the layer's code runs on this machine (interpreter found, same architecture)
    unzipped_bytes: int
    info: dict


@dataclass
class BuildContext:
    """What targets see: the recipe, the model, the selected variant and where things are."""

    recipe: Recipe
    recipe_path: Path
    model: ModelFile
    info: dict
    samples: Samples
    work: Path
    report: BuildReport
    variant_files: dict[str, Path] = field(default_factory=dict)
    reporter: Reporter = field(default_factory=Reporter)
    cache: Cache | None = None
    versions_key: str = ""
    layer: BuiltLayer | None = None  # set by the lambda-layer target, which those that use it are built after
    split_files: dict[int, Path] = field(default_factory=dict)  # part number -> converted part in the output
    split_outputs: Path | None = None  # the verified chain's outputs on the evaluation samples
    options: dict = field(default_factory=dict)  # command-line switches targets honour (images)

    @property
    def selected_file(self) -> Path:
        """The selected variant's model file; targets only run when a variant was selected."""
        path = self.variant_files.get(self.report.selected or "")
        if path is None:
            raise TargetError("no variant was selected, so there is no model to package.")
        return path

    def selected_outputs_first(self) -> list[np.ndarray] | None:
        """The selected variant's measured outputs for the first evaluation sample."""
        path = self.work / f"out-{self.report.selected}.npz"
        return [o[:1] for o in load_outputs(path)] if path.exists() else None

    def cached_tree(self, key: str, make) -> Path:
        """A directory built by `make(dest) -> info`, reused from the cache when an intact copy exists."""
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            self.reporter.info(f"reused cached tree {key[:12]}")
            return hit
        dest = self.work / "trees" / key
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir(parents=True)
        info = make(dest)
        (dest / TREE_INFO).write_text(dumps_strict(info, indent=1, sort_keys=True))
        return self.cache.put(key, dest) if self.cache is not None else dest

    def zip_tree(self, source: Path, dest: Path, exclude: tuple[str, ...] = ()) -> Path:
        """write_zip through the cache: the same files (names and bytes) give the same zip, so reuse it."""
        files = sorted(p for p in source.rglob("*") if p.is_file() and p.relative_to(source).as_posix() not in exclude)
        key = cache_key("zip", [(p.relative_to(source).as_posix(), sha256_file(p), os.access(p, os.X_OK)) for p in files])
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(hit / "archive.zip", dest)
            return dest
        write_zip(source, dest, exclude=exclude)
        if self.cache is not None:
            entry = self.work / "zips" / key
            entry.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(dest, entry / "archive.zip")
            self.cache.put(key, entry)
        return dest

    @staticmethod
    def read_tree_info(tree: Path) -> dict:
        """The info `make` returned when the cached tree was built."""
        return json.loads((tree / TREE_INFO).read_text())
