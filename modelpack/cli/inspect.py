"""`modelpack inspect MODEL`: the model's signature and the positions where it can be split."""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import click

from modelpack.cli.common import handle_errors
from modelpack.cli.help import examples
from modelpack.errors import InputError, SplitError, UnservableInputError
from modelpack.files.jsonio import dumps_strict
from modelpack.limits import MB

KB = 1_000


def inspect(path: Path, trust_code: bool = False, cuts: bool = True) -> dict:
    """{"model": inputs/outputs/params, "cuts": every position with legality, sizes and the crossing tensor}
    (without `cuts`, the model's signature only)."""
    from modelpack.inputs import safety
    from modelpack.inputs.modelfile import detect
    from modelpack.report.records import StepResult
    from modelpack.steps import StepJob
    from modelpack.steps.worker import run_jobs

    model = detect(path)
    safety.check(model, trust_code, str(path))
    with tempfile.TemporaryDirectory(prefix="modelpack-inspect-") as tmp:
        jobs = [StepJob(name, str(model.path), model.format, str(Path(tmp) / name), trust_code=trust_code)
                for name in ("inspect", "cuts")[:2 if cuts else 1]]
        results = run_jobs(jobs, Path(tmp) / "worker.log")
        info, *found = (StepResult.from_json(results[j.out_dir], j.out_dir) for j in jobs)
        if info.is_error(UnservableInputError):
            raise InputError(f"{path}: {info.message}")
        if not info.ok:
            raise InputError(f"{path}: the model could not be loaded ({info.error}).")
        out = {"model": info.details, "format": model.format, "cuts": None, "cuts_error": None}
        if found and found[0].ok:
            out["cuts"] = json.loads((Path(jobs[1].out_dir) / "cuts.json").read_text())
        elif found:
            out["cuts_error"] = found[0].message if found[0].is_error(SplitError) else found[0].error
    return out


def rows(cuts: list[dict]) -> list[list[str]]:
    table = []
    for c in cuts:
        shape = "×".join("N" if d is None else str(d) for d in (c["tensor_shape"] or []))
        table.append([c["after"], "yes" if c["legal"] else "no", f"{c['bytes_before'] / MB:.3f}",
                      f"{c['bytes_after'] / MB:.3f}", shape or "–",
                      "–" if c["tensor_bytes"] is None else f"{c['tensor_bytes'] / KB:.1f}", c["why"]])
    return table


HEADERS = ["cut after", "legal", "MB before", "MB after", "crossing tensor", "KB per sample", "why not"]


@click.command("inspect", epilog=examples(
    "modelpack inspect model.keras",
    "modelpack inspect model.keras --json | jq .model.inputs"))
@click.argument("model", type=click.Path(exists=True, path_type=Path))
@click.option("--trust-code", is_flag=True, help="Allow Lambda layers and custom objects (their code runs).")
@click.option("--json", is_flag=True, help="Print the inspection as JSON.")
@handle_errors
def inspect_cmd(model: Path, trust_code: bool, json: bool) -> None:
    """Show MODEL's inputs and outputs and where it can be split (optimize.split).

    A cut is legal where exactly one tensor crosses from the layers before it to the layers after it;
    the table gives the parameter bytes on each side and the crossing tensor, which becomes the payload
    between parts.
    """
    result = inspect(model, trust_code)
    if json:
        click.echo(dumps_strict(result, indent=2, sort_keys=True))
        return
    info = result["model"]
    click.echo(f"{model} ({result['format']}, {info['params']:,} parameters)")
    for kind in ("inputs", "outputs"):
        for t in info[kind]:
            click.echo(f"  {kind[:-1]} {t['name']}: {t['dtype']} {t['shape']}")
    if result["cuts"] is None:
        click.echo(f"cut points: none ({result['cuts_error']})")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"cut points ({sum(c['legal'] for c in result['cuts'])} legal)")
    for h in HEADERS:
        table.add_column(h)
    for row in rows(result["cuts"]):
        table.add_row(*row)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
