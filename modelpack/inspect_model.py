"""`modelpack inspect MODEL`: the model's signature and the positions where it can be split."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from modelpack import safety
from modelpack.errors import InputError
from modelpack.limits import MB
from modelpack.modelfile import detect
from modelpack.records import StepResult
from modelpack.steps import StepJob
from modelpack.worker import run_jobs

KB = 1_000


def inspect(path: Path, trust_code: bool = False) -> dict:
    """{"model": inputs/outputs/params, "cuts": every position with legality, sizes and the crossing tensor}."""
    model = detect(path)
    safety.check(model, trust_code, str(path))
    with tempfile.TemporaryDirectory(prefix="modelpack-inspect-") as tmp:
        jobs = [StepJob(name, str(model.path), model.format, str(Path(tmp) / name), trust_code=trust_code)
                for name in ("inspect", "cuts")]
        results = run_jobs(jobs, Path(tmp) / "worker.log")
        info, cuts = (StepResult.from_json(results[j.out_dir], j.out_dir) for j in jobs)
        if info.is_error("UnservableInputError"):
            raise InputError(f"{path}: {info.message}")
        if not info.ok:
            raise InputError(f"{path}: the model could not be loaded ({info.error}).")
        out = {"model": info.details, "format": model.format, "cuts": None, "cuts_error": None}
        if cuts.ok:
            out["cuts"] = json.loads((Path(jobs[1].out_dir) / "cuts.json").read_text())
        else:
            out["cuts_error"] = cuts.message if cuts.error_type == "SplitError" else cuts.error
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
