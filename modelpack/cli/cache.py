"""`modelpack cache info|prune|clean`: thin click commands over modelpack.files.cache."""

from __future__ import annotations

from pathlib import Path

import click

from modelpack.cli.common import handle_errors
from modelpack.cli.help import Commands, examples
from modelpack.files.jsonio import dumps_strict


@click.group("cache", cls=Commands, epilog=examples(
    "modelpack cache info                           # where the cache is, its entries and bytes",
    "modelpack cache prune --max-size 500MB",
    "modelpack cache clean --cache-dir /tmp/mp-cache --json"))
def cache_group() -> None:
    """Show, trim or empty the step cache every build uses (or the one given by --cache-dir)."""


def _cache_root(cache_dir: Path | None) -> Path:
    from modelpack.files.cache import default_cache_dir

    return cache_dir or default_cache_dir()


def _cache_command(fn):
    fn = click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                      help="The cache folder [$MODELPACK_CACHE_DIR, or $XDG_CACHE_HOME/modelpack/builds, or "
                           "~/.cache/modelpack/builds: what build uses].")(fn)
    return click.option("--json", is_flag=True, help="Print the result as one JSON object.")(fn)


def _cache_result(summary, json: bool, verb: str) -> None:
    from modelpack.files.cache import human

    if json:
        click.echo(dumps_strict(summary.to_json(), sort_keys=True))
        return
    done = f"{verb} {summary.removed} entries ({human(summary.freed)}); " if verb else ""
    click.echo(f"{summary.root}: {done}{summary.entries} entries, {human(summary.bytes)}")


@cache_group.command("info", epilog=examples("modelpack cache info", "modelpack cache info --json"))
@_cache_command
@handle_errors
def cache_info(cache_dir: Path | None, json: bool) -> None:
    """Where the cache is, how many entries and bytes it holds."""
    from modelpack.files.cache import info

    _cache_result(info(_cache_root(cache_dir)), json, "")


@cache_group.command("prune", epilog=examples("modelpack cache prune --max-size 500MB"))
@_cache_command
@click.option("--max-size", default="2GB", show_default=True, help="Keep at most this much (500MB, 2GB, 1GiB).")
@handle_errors
def cache_prune(cache_dir: Path | None, json: bool, max_size: str) -> None:
    """Remove least recently used entries until the cache fits in --max-size."""
    from modelpack.files.cache import parse_size, prune

    _cache_result(prune(_cache_root(cache_dir), parse_size(max_size)), json, "removed")


@cache_group.command("clean", epilog=examples("modelpack cache clean",
                                                "modelpack cache clean --cache-dir /tmp/mp-cache --json"))
@_cache_command
@handle_errors
def cache_clean(cache_dir: Path | None, json: bool) -> None:
    """Remove every cache entry (files modelpack did not write stay)."""
    from modelpack.files.cache import clean

    _cache_result(clean(_cache_root(cache_dir)), json, "removed")
