"""`modelpack build` and `modelpack bench`: run the pipeline, print the result, the next steps and CI outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from modelpack.cli.common import handle_errors, settings
from modelpack.cli.help import examples
from modelpack.errors import EXIT_BUDGET, EXIT_OK, UsageError
from modelpack.files.jsonio import dumps_strict


def _reporter(quiet: bool = False):
    from modelpack.console.progress import Reporter, make_console

    opts = settings()
    return Reporter(make_console(opts.color), quiet=quiet or opts.quiet, verbose=opts.verbose)


@click.command(epilog=examples(
    "modelpack build recipe.yaml                      # writes dist/<name>/",
    "modelpack build recipe.yaml --out dist/digits --cache-max-size 500MB",
    "modelpack -q build recipe.yaml --json | jq -r .selected"))
@click.argument("recipe", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Output directory [dist/<name>].")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Step cache [$MODELPACK_CACHE_DIR, or $XDG_CACHE_HOME/modelpack/builds, or "
                   "~/.cache/modelpack/builds].")
@click.option("--cache-max-size", default="2GB", show_default=True,
              help="After the build, remove least recently used cache entries beyond this size.")
@click.option("--no-cache", is_flag=True, help="Rebuild every step; neither read nor write the cache.")
@click.option("-q", "--quiet", is_flag=True, help="Print only the result line.")
@click.option("--images", is_flag=True, help="Build and smoke-test image targets through the container engine.")
@click.option("--json", is_flag=True, help="Print the result as one JSON object (progress stays on stderr).")
@click.option("--summary", is_flag=True, help="Append report.md to $GITHUB_STEP_SUMMARY (GitHub Actions).")
@handle_errors
def build(recipe: Path, out: Path | None, cache_dir: str | None, cache_max_size: str, no_cache: bool, quiet: bool,
          images: bool, json: bool, summary: bool) -> None:
    """Build RECIPE: convert, measure, check budgets, select, and write artifacts and reports."""
    from modelpack.files import cache
    from modelpack.pipeline.entry import build as run_build

    quiet = quiet or settings().quiet  # `modelpack -q build` and `modelpack build -q` mean the same
    cap = cache.parse_size(cache_max_size)
    cache_root = Path(cache_dir) if cache_dir else cache.default_cache_dir()
    reporter = _reporter(quiet)
    report = run_build(recipe, out=out, cache_dir=None if no_cache else cache_root, reporter=reporter, images=images)
    try:
        pruned = None if no_cache else cache.prune(cache_root, cap)
    except cache.CacheBusy:  # another build is using the cache: it is trimmed after a later build
        pruned = None
    if pruned is not None and pruned.removed:
        reporter.info(f"cache over {cache_max_size}: removed {pruned.removed} least recently used entries "
                      f"({cache.human(pruned.freed)})")
    out_dir = out or Path("dist") / report.name
    _github_actions(report, recipe, out_dir, summary)
    if json:
        click.echo(dumps_strict({"ok": report.passed, "out": str(out_dir), "report": str(out_dir / "report.json"),
                                 "passed": report.passed, "selected": report.selected,
                                 "selection_reason": report.selection_reason, "closest": report.closest,
                                 "failed_budgets": [b["name"] for b in report.budgets if not b["passed"]]},
                                sort_keys=True))
        sys.exit(EXIT_OK if report.passed else EXIT_BUDGET)
    if report.passed:
        click.echo(f"built {out_dir}: selected {report.selected} ({report.selection_reason})")
        _print_next_steps(report, out_dir, quiet)
        sys.exit(EXIT_OK)
    closest = f"; closest: {report.closest}" if report.closest else ""
    failed = ", ".join(b["name"] for b in report.budgets if not b["passed"]) or "no variant built"
    click.echo(f"built {out_dir}, but budgets failed ({failed}){closest}. See {out_dir}/report.md.", err=True)
    sys.exit(EXIT_BUDGET)


def _github_actions(report, recipe: Path, out_dir: Path, summary: bool) -> None:
    from modelpack.console import github

    data = report.to_json()
    github.write_outputs(github.build_outputs(data, out_dir))
    github.budget_errors(data, recipe)
    if summary and not github.append_summary((out_dir / "report.md").read_text()):
        click.echo("note: --summary needs $GITHUB_STEP_SUMMARY (set by GitHub Actions); no summary written.", err=True)


def _print_next_steps(report, out_dir: Path, quiet: bool) -> None:
    from modelpack.report.next_steps import next_steps_text

    text = "" if quiet else next_steps_text(report.to_json(), out_dir)
    if text:
        click.echo(text)


@click.command(epilog=examples(
    "modelpack bench recipe.yaml",
    "modelpack bench model.keras --data data.npz --variants tflite-int8,onnx-int8"))
@click.argument("source", type=click.Path(exists=True, path_type=Path))
@click.option("--data", "data_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With a model instead of a recipe: a .npz with arrays x (inputs) and y (labels).")
@click.option("--variants", help="With a model: comma-separated variants to build [all].")
@click.option("--cache-dir", type=click.Path(file_okay=False),
              help="Step cache [$MODELPACK_CACHE_DIR, or $XDG_CACHE_HOME/modelpack/builds, or "
                   "~/.cache/modelpack/builds].")
@click.option("--json", is_flag=True, help="Print the measurements as JSON.")
@handle_errors
def bench(source: Path, data_path: Path | None, variants: str | None, cache_dir: str | None, json: bool) -> None:
    """Convert and measure the variants of SOURCE (a recipe, or a model file) and print a comparison table.

    Writes nothing but the cache. `modelpack bench model.keras --data data.npz` needs no recipe.
    """
    import tempfile

    from modelpack.pipeline.entry import bench as run_bench
    from modelpack.recipe.adhoc import recipe_for_model

    with tempfile.TemporaryDirectory(prefix="modelpack-bench-") as tmp:
        if source.suffix in (".yaml", ".yml"):
            if data_path or variants:
                raise UsageError("--data and --variants go with a model file; a recipe names its own.")
            recipe = source
        else:
            recipe = recipe_for_model(source, data_path, variants, Path(tmp))
        report = run_bench(recipe, cache_dir=cache_dir or ..., reporter=_reporter(json))
    if json:
        click.echo(dumps_strict({"variants": [v.to_json() for v in report.variants], "selected": report.selected,
                                 "selection_reason": report.selection_reason, "search": report.search},
                                indent=2, sort_keys=True))
        return
    from modelpack.cli.tables import print_variants

    print_variants(report)
