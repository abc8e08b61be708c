"""The package stage: variants and split parts copied into the output, every target built, reports written."""

from __future__ import annotations

import shutil
from pathlib import Path

from modelpack.errors import PackageLimitError, TargetError
from modelpack.files.cache import Cache, cache_key
from modelpack.files.jsonio import dumps_strict
from modelpack.files.output import normalize_modes, sha256_file, write_manifest
from modelpack.limits import MB
from modelpack.pipeline.state import BuildState
from modelpack.report.build_report import BuildReport
from modelpack.report.charts import write_charts
from modelpack.report.html import to_html
from modelpack.report.markdown import to_markdown
from modelpack.report.next_steps import with_next_steps
from modelpack.report.records import ArtifactRecord
from modelpack.targets import TARGETS, events
from modelpack.targets import catalog as _catalog  # noqa: F401  (registers every target)
from modelpack.targets.base import build_order
from modelpack.targets.context import BuildContext


def run(state: BuildState) -> None:
    """Write everything the report describes into `state.staging` (the output folder being built)."""
    report, staging, images = state.report, state.staging, state.images
    cache = state.cache if state.cache.enabled else None
    ctx = BuildContext(state.recipe, state.recipe_path, state.model, state.info, state.samples, state.work, report,
                       reporter=state.reporter, cache=cache, versions_key=cache_key(state.versions),
                       options={"images": images})
    copy_variants(ctx, report, staging)
    if report.split and report.split.get("status") == "ok":
        ctx.split_outputs = state.split_outputs
        copy_split_parts(ctx, report, staging)
    build_targets(ctx, report, staging)
    if report.selected is not None:
        events.write(ctx, staging)  # sample requests in every format the handlers take
    report.build = state.usage.record()  # the package stage's own peak so far: its targets are built
    write_reports(report, staging, state.recipe.budgets.model_dump(), ctx.cache)
    write_manifest(staging)
    normalize_modes(staging)  # the staging folder itself is a private temporary one


def copy_variants(ctx: BuildContext, report: BuildReport, staging: Path) -> None:
    """Every converted variant that measured ok, under variants/; the report names it by its path there."""
    for v in report.variants:
        if v.ok and v.name != "keras":
            dest = staging / "variants" / f"{v.name}{v.file.suffix}"
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(v.file, dest)
            ctx.variant_files[v.name] = dest
            v.path = dest.relative_to(staging).as_posix()


def copy_split_parts(ctx: BuildContext, report: BuildReport, staging: Path) -> None:
    """The converted split parts under variants/split/."""
    for part in report.split["parts"]:
        source = Path(part.pop("path"))
        dest = staging / "variants" / "split" / f"part{part['part']}{source.suffix}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
        ctx.split_files[part["part"]] = dest
        part["file"] = dest.relative_to(staging).as_posix()


def build_targets(ctx: BuildContext, report: BuildReport, staging: Path) -> None:
    """Every target of the recipe, layers before the functions that use them; none when nothing was selected."""
    targets = build_order(ctx.recipe.targets, {name: TARGETS.get(name) for name in TARGETS.names()})
    if targets and report.selected is None:
        report.notes.append(f"Targets not built ({', '.join(t.identity() for t in targets)}): no variant "
                            "meets every budget, so there is nothing to package.")
        targets = []
    failed: set[str] = set()  # kinds over a platform limit: the targets built on them are skipped
    for spec in targets:
        cls = TARGETS.get(spec.kind)
        if blocked := failed & {*cls.NEEDS, *cls.USES}:
            report.notes.append(f"{spec.identity()}: not built, because {', '.join(sorted(blocked))} is over its "
                                "platform limit (see the failed `fits` budget).")
            continue
        target = cls(spec)
        with ctx.reporter.step(f"target {spec.identity()}"):
            try:
                artifacts = target.build(ctx, staging)
            except PackageLimitError as exc:
                over_limit(report, spec.identity(), exc)
                failed.add(spec.kind)
                continue
            except TargetError as exc:
                prefix = f"{spec.identity()}: "
                raise TargetError(exc.message if exc.message.startswith(prefix) else prefix + exc.message) from None
            for art in artifacts:
                path = staging / art.path
                report.artifacts.append(ArtifactRecord(art.target, art.path, sha256_file(path), path.stat().st_size,
                                                       art.unzipped_bytes, art.details or {}).to_json())


def over_limit(report: BuildReport, identity: str, exc: PackageLimitError) -> None:
    """A target over a hard platform limit: a failed budget row and a note, so the report is written, says what
    did not fit by how much and what would carry it, and the build exits 1."""
    report.budgets.append({"name": f"fits {identity}", "limit": exc.limit_bytes / MB, "value": exc.actual_bytes / MB,
                           "passed": False})
    report.notes.append(f"{exc.message} Nothing was written for {identity}. To serve this variant, add a "
                        "`lambda-image` target (images up to 10 GB), give lambda-function `model_source: "
                        "s3://BUCKET/KEY` (the model is downloaded at cold start), or select a smaller variant.")


def write_reports(report: BuildReport, out_dir: Path, budgets: dict, cache: Cache | None) -> None:
    """report.json, report.md, the charts (report.png, cold.png, memory.png, drawn through `cache`) and
    report.html with the charts inside it; every one rendered from the JSON document, the stable contract
    (which lists every budget with its limit, so `budgets` is not needed to draw them)."""
    doc = report.to_json()
    (out_dir / "report.json").write_text(dumps_strict(doc, indent=2, sort_keys=True) + "\n")
    (out_dir / "report.md").write_text(with_next_steps(to_markdown(doc), doc))
    charts = write_charts(doc, out_dir, cache)
    (out_dir / "report.html").write_text(to_html(doc, charts))
