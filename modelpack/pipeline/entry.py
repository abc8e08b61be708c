"""The build's entry points: `build()` writes an output folder atomically, `bench()` only measures."""

from __future__ import annotations

import errno
import tempfile
from pathlib import Path

from modelpack.console.progress import Reporter
from modelpack.errors import ModelpackError
from modelpack.files.cache import default_cache_dir
from modelpack.files.guard import check_output_dir, kept_entries
from modelpack.files.output import atomic_output_dir
from modelpack.pipeline.build import Builder
from modelpack.report.build_report import BuildReport

DISK_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM}


def _cache(cache_dir, reporter: Reporter) -> Path | None:
    """The step cache folder: `...` for the default one (said on stderr), None for no cache."""
    if cache_dir is ...:
        cache_dir = default_cache_dir()
    if cache_dir is not None:
        reporter.info(f"cache: {cache_dir}")
    return None if cache_dir is None else Path(cache_dir)


def bench(recipe_path: str | Path, cache_dir=..., reporter: Reporter | None = None) -> BuildReport:
    """Convert and measure only; nothing is written but the cache (`cache_dir`: a folder, None for no cache,
    or by default the user's cache, files.cache.default_cache_dir())."""
    reporter = reporter or Reporter()
    builder = Builder(recipe_path, _cache(cache_dir, reporter), reporter)
    with tempfile.TemporaryDirectory(prefix="modelpack-") as work:
        return builder.run(Path(work))


def build(recipe_path: str | Path, out: str | Path | None = None, cache_dir=..., reporter: Reporter | None = None,
          images: bool = False) -> BuildReport:
    """Run the whole build and write the output directory atomically; return the report.

    The report says whether every budget passed; the output is written either way. `cache_dir` is a folder,
    None for no cache, or by default the user's cache (files.cache.default_cache_dir()).
    """
    reporter = reporter or Reporter()
    builder = Builder(recipe_path, _cache(cache_dir, reporter), reporter)
    out_dir = Path(out) if out else Path("dist") / builder.recipe.name
    check_output_dir(out_dir, given=out is not None, **builder.protected_paths())
    try:
        return _build(builder, out_dir, images)
    except OSError as exc:
        if exc.errno not in DISK_ERRORS:
            raise
        where = exc.filename or out_dir
        raise ModelpackError(
            f"cannot write {where}: {exc.strerror}. Free some space or choose another --out / --cache-dir; "
            f"the previous contents of {out_dir} are unchanged.") from None


def _build(builder: Builder, out_dir: Path, images: bool) -> BuildReport:
    with tempfile.TemporaryDirectory(prefix="modelpack-") as work, atomic_output_dir(out_dir) as staging:
        report = builder.run(Path(work), staging, images)
    if kept := kept_entries(out_dir):
        builder.reporter.info(f"kept from the previous output in {out_dir}: {', '.join(kept)} (written by sam or "
                              "modelpack publish after that build)")
    return report
