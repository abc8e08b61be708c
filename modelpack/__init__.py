"""modelpack: turn a trained Keras model into small, fast-starting, verified serverless artifacts."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("modelpack")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"


def build(recipe_path, out=None, cache_dir=..., reporter=None, images=False):
    """Build a recipe; see modelpack.pipeline.entry.build."""
    from modelpack.pipeline.entry import build as _build

    return _build(recipe_path, out=out, cache_dir=cache_dir, reporter=reporter, images=images)


def bench(recipe_path, cache_dir=..., reporter=None):
    """Convert and measure a recipe's variants; see modelpack.pipeline.entry.bench."""
    from modelpack.pipeline.entry import bench as _bench

    return _bench(recipe_path, cache_dir=cache_dir, reporter=reporter)


__all__ = ["__version__", "build", "bench"]
