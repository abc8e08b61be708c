"""The split stage: the selected variant as parts cut at single-tensor points, converted and checked."""

from __future__ import annotations

import json
from pathlib import Path

from modelpack import limits
from modelpack.errors import InputError, SplitError, StepFailedError
from modelpack.files.arrays import load_outputs
from modelpack.files.output import sha256_file, zipped_size
from modelpack.inputs.modelfile import detect
from modelpack.judge import split_plan
from modelpack.limits import MB
from modelpack.measure import metrics
from modelpack.pipeline.jobs import Job, run_step, run_steps
from modelpack.pipeline.state import BuildState
from modelpack.report.records import StepResult
from modelpack.steps import STEPS
from modelpack.steps.int8_mixed import MIXED

SPLIT_FP32_TOLERANCE = 1e-5


def run(state: BuildState) -> None:
    """Set the report's `split` section and `state.split_outputs`, the verified chain's outputs."""
    state.split = _split(state, state.selection.selected)


def _split(state: BuildState, selected: str | None) -> dict | None:
    spec = state.recipe.optimize.split
    if spec is None:
        return None
    if selected is None:
        return {"status": "skipped", "reason": "no variant meets every budget, so there is nothing to split"}
    res = run_step(state, Job("cuts", "cuts"))
    if not res.ok:
        raise _split_error(state, res)
    points = json.loads((res.dir / "cuts.json").read_text())
    at = split_plan.choose(points, spec, state.origin)
    res = run_step(state, Job("split", "split", {"at": at}))
    if not res.ok:
        raise _split_error(state, res)
    folder, details = res.dir, res.details
    variant = next((base for base, mixed in MIXED.items() if mixed == selected), selected)
    step = STEPS.get(variant)
    plan = []
    for part in details["parts"]:
        k = part["part"]
        source = detect(folder / part["file"])
        data = {"calibration": str(folder / f"part{k}-calibration.npz")}
        if step.REQUIRES:
            plan.append(Job(f"part{k}/{step.REQUIRES}", step.REQUIRES, STEPS.get(step.REQUIRES)().options(state.recipe),
                            None, source, data))
        plan.append(Job(f"part{k}/{variant}", variant, step().options(state.recipe),
                        f"part{k}/{step.REQUIRES}" if step.REQUIRES else None, source, data))
    converted = run_steps(state, plan)
    failed = [label for label, r in converted.items() if not r.ok]
    if failed:
        raise StepFailedError(f"converting split part {failed[0]} failed: {converted[failed[0]].error}")
    files = {f"part{p['part']}": str(converted[f"part{p['part']}/{variant}"].dir / step.FILE)
             for p in details["parts"]}
    verify = run_step(state, Job("split-verify", "split-verify",
                                 {"task": state.recipe.task, "parts": [p["input"] for p in details["parts"]]},
                                 data={**files, "unsplit": str(state.work / f"out-{selected}.npz")}))
    if not verify.ok:
        raise StepFailedError(f"running the split parts in a chain failed: {verify.error}")
    state.split_outputs = verify.dir / "outputs.npz"
    chained = load_outputs(state.split_outputs)
    payloads = verify.details["payload_json_bytes"]
    parts = []
    for p in details["parts"]:
        path = Path(files[f"part{p['part']}"])
        parts.append({**p, "file": path.name, "path": str(path), "variant": variant, "size_bytes": path.stat().st_size,
                      "zipped_bytes": zipped_size(path), "sha256": sha256_file(path),
                      "request_json_bytes": payloads[p["part"] - 1] or None})
    cut_info = {c["after"]: c for c in points}
    return {
        "status": "ok", "at": at, "variant": variant, "parts": parts,
        "cuts": [{"after": a, "tensor_shape": cut_info[a]["tensor_shape"], "tensor_bytes": cut_info[a]["tensor_bytes"],
                  "request_json_bytes": payloads[i + 1]} for i, a in enumerate(at)],
        "keras_chain_max_abs_err": details["keras_chain_max_abs_err"],
        "keras_chain_ok": details["keras_chain_max_abs_err"] <= SPLIT_FP32_TOLERANCE,
        "vs_unsplit": verify.details["vs_unsplit"],
        "accuracy": metrics.accuracy(chained, state.samples.eval_y, state.recipe.task, scored=state.scored),
        "layouts": split_layouts(parts, [payloads[i + 1] for i in range(len(at))]),
        "note": (f"{selected} is a searched variant; its parts use plain {variant}"
                 if variant != selected else ""),
    }


def _split_error(state: BuildState, res: StepResult) -> Exception:
    if res.is_error(SplitError):
        return InputError(f"{state.origin}: optimize.split: {res.message}.")
    return StepFailedError(f"splitting failed: {res.error}")


def split_layouts(parts: list[dict], payloads: list[int]) -> dict:
    """Which ways of deploying the parts fit the platform limits, and why (from model sizes and measured
    request sizes; the split targets refine this with the real package sizes)."""
    models = sum(p["size_bytes"] for p in parts)
    biggest = max(payloads, default=0)
    sfn, sync = limits.STEP_FUNCTIONS_PAYLOAD_BYTES, limits.LAMBDA_SYNC_PAYLOAD_BYTES
    return {
        "single-function": {
            "possible": models <= limits.LAMBDA_UNZIPPED_TOTAL_BYTES,
            "why": f"the parts hold {models / MB:.3f} MB of model; a function and its layers may unzip to "
                   f"{limits.LAMBDA_UNZIPPED_TOTAL_BYTES / limits.MIB:.0f} MiB (the runtime layer comes on top)"},
        "step-functions": {
            "possible": biggest <= sfn,
            "why": f"the largest request between parts is {biggest / 1e3:.1f} KB as JSON; Step Functions passes at "
                   f"most {sfn / 1024:.0f} KiB between states"},
        "function-per-part-sync": {
            "possible": biggest <= sync,
            "why": f"the largest request between parts is {biggest / 1e3:.1f} KB; a synchronous Lambda invocation "
                   f"takes at most {sync / 1e6:.0f} MB"},
    }
