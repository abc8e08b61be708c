"""`kind: lambda-split`: package a split model (optimize.split) for Lambda, in one of two layouts.

single:   one function whose handler loads every part once (each verified) and runs them in sequence;
          the parts sit in the function zip or, with `parts_in: layers`, one Lambda layer each (so each
          layer stays under its limits).
per-part: one function per part and an AWS Step Functions state machine (ASL JSON) that chains them, each
          part's output becoming the next part's `{"inputs": ...}`; every crossing tensor is checked against
          the Step Functions payload limit.
Both use the runtime layer of the recipe's `lambda-layer` target, and `modelpack invoke --target
lambda-split` runs either layout locally.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import yaml

from modelpack import limits
from modelpack.errors import TargetError
from modelpack.files.jsonio import dumps_strict
from modelpack.files.output import tree_bytes
from modelpack.recipe.targets import LambdaSplitSpec
from modelpack.targets import handler_check, handler_files, lambda_limits, sam_endpoint
from modelpack.targets.base import Artifact, Target

if TYPE_CHECKING:
    from modelpack.targets.context import BuildContext

DIR = "lambda/split"
ASL = "statemachine.asl.json"
RETRY = [{"ErrorEquals": ["Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                          "Lambda.TooManyRequestsException"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2}]


def part_name(k: int) -> str:
    return f"Part{k}"


def state_machine(parts: int) -> dict:
    """Task -> Choice (error?) -> Pass (predictions become the next inputs) ... -> last Task's payload."""
    states: dict = {}
    for k in range(1, parts + 1):
        name, last = part_name(k), k == parts
        states[name] = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                        "Parameters": {"FunctionName": f"${{{name}Function}}", "Payload.$": "$"},
                        "Retry": RETRY, "Next": f"{name}Check"}
        states[f"{name}Check"] = {"Type": "Choice",
                                  "Choices": [{"Variable": "$.Payload.error", "IsPresent": True, "Next": f"{name}Failed"}],
                                  "Default": "Done" if last else f"{name}Handoff"}
        states[f"{name}Failed"] = {"Type": "Fail", "Error": f"{name}Error", "CausePath": "$.Payload.error"}
        if not last:
            states[f"{name}Handoff"] = {"Type": "Pass", "Parameters": {"inputs.$": "$.Payload.predictions"},
                                        "Next": part_name(k + 1)}
    states["Done"] = {"Type": "Pass", "OutputPath": "$.Payload", "End": True}
    return {"Comment": "modelpack: the parts of a split model, each part's output the next part's input",
            "StartAt": part_name(1), "States": states}


class LambdaSplitTarget(Target):
    """Split model for Lambda: one chaining function, or a function per part plus a Step Functions machine."""

    NAME = "lambda-split"
    Spec = LambdaSplitSpec
    NEEDS = ("lambda-layer",)  # the part functions run on its runtime

    def build(self, ctx: BuildContext, out_dir: Path) -> list[Artifact]:
        spec: LambdaSplitSpec = self.spec  # type: ignore[assignment]
        split = ctx.report.split
        if not split or split.get("status") != "ok":
            raise TargetError("lambda-split: there are no parts to package; add optimize.split to the recipe.")
        layer = ctx.layer
        if layer is None:
            raise TargetError("lambda-split: add a lambda-layer target; the part functions run on its runtime.")
        parts = [dict(p, local=ctx.split_files[p["part"]]) for p in split["parts"]]
        work = ctx.work / "lambda-split"
        shutil.rmtree(work, ignore_errors=True)
        layouts = split["layouts"]
        if spec.layout == "per-part":
            if not layouts["step-functions"]["possible"]:
                raise TargetError(f"lambda-split: layout per-part is not possible: {layouts['step-functions']['why']}; "
                                  "use layout: single or cut where the crossing tensor is smaller.")
            artifacts = self._per_part(ctx, spec, parts, layer, work, out_dir)
        else:
            artifacts = self._single(ctx, spec, parts, layer, work, out_dir)
        return artifacts

    def _options(self, spec: LambdaSplitSpec, final: bool) -> dict:
        return {**spec.response_options(), **({} if final else {"top_k": None}), "load": "lazy", "route": spec.route,
                "payload_limit_bytes": limits.LAMBDA_SYNC_PAYLOAD_BYTES}

    def _single(self, ctx, spec, parts, layer, work, out_dir) -> list[Artifact]:
        if spec.parts_in == "layers" and len(parts) + 1 > limits.LAMBDA_MAX_LAYERS:
            raise TargetError(f"lambda-split: {len(parts)} part layers plus the runtime layer exceed Lambda's "
                              f"{limits.LAMBDA_MAX_LAYERS} layers; use parts_in: function or fewer parts.")
        fn = work / "function"
        handler_files.copy_code(fn, ("lambda", "handler.py"))
        in_layers = spec.parts_in == "layers"
        entries, artifacts, zips = [], [], {}
        for p in parts:
            rel = f"model/part{p['part']}{p['local'].suffix}"
            if in_layers:
                root = work / f"part{p['part']}-layer"
                (root / "model").mkdir(parents=True)
                shutil.copyfile(p["local"], root / rel)
                path = ctx.zip_tree(root, out_dir / DIR / f"part{p['part']}-layer.zip")
                zips[path.name] = path.stat().st_size
                artifacts.append(Artifact(self.NAME, f"{DIR}/{path.name}", tree_bytes(root),
                                          {"kind": "model-layer", "part": p["part"]}))
            else:
                (fn / "model").mkdir(exist_ok=True)
                shutil.copyfile(p["local"], fn / rel)
            entries.append({"path": rel, "sha256": p["sha256"], "in_layer": in_layers, "input": p["input"]})
        combined = hashlib.sha256("".join(e["sha256"] for e in entries).encode()).hexdigest()
        handler_files.write_config(ctx, fn, {"path": "", "sha256": combined, "in_layer": in_layers, "split": True},
                                   self._options(spec, final=True), parts=entries,
                                   image=None)  # split chains take tensors; images need Pillow beside them
        handler_files.ship_bytecode(fn, layer.interpreter, ctx)
        path = ctx.zip_tree(fn, out_dir / DIR / "function.zip")
        zips[path.name] = path.stat().st_size
        total = tree_bytes(fn) + layer.unzipped_bytes + sum(a.unzipped_bytes or 0 for a in artifacts)
        layers = 1 + (len(parts) if in_layers else 0)
        lambda_limits.enforce(ctx, "lambda-split", total, zips, layers=layers)
        details = {"layout": "single", "parts_in": spec.parts_in, "parts": len(parts), "unzipped_total_bytes": total,
                   "layers": layers, "handler": "handler.handler"}
        if layer.can_run:
            details["handler_check"] = self._check(ctx, fn, layer, work, [a for a in artifacts], out_dir)
        artifacts.insert(0, Artifact(self.NAME, f"{DIR}/function.zip", tree_bytes(fn), details))
        artifacts.append(self._template(ctx, spec, layer, out_dir, parts, single=True))
        return artifacts

    def _check(self, ctx, fn: Path, layer: dict, work: Path, part_layers: list, out_dir: Path) -> dict:
        """Cold start of the chaining handler in fresh processes; its answer must equal the verified chain's."""
        opt = work / "opt"
        opt.mkdir()
        (opt / "python").symlink_to(Path(layer.dir) / "python", target_is_directory=True)
        for art in part_layers:
            shutil.unpack_archive(out_dir / art.path, opt, "zip")
        sample = handler_check.sample(ctx)
        try:
            check = handler_check.cold_start(fn, opt, layer.interpreter, sample, route=self.spec.route)
        except RuntimeError as exc:
            raise TargetError(f"lambda-split: {exc}") from None
        expected = np.load(ctx.split_outputs)["out_0"][:1].astype(np.float64)
        err = handler_check.agree(check["response"], ["output_0"], [expected],
                                  "lambda-split: the chaining handler's prediction", "the verified chain's")
        return {"cold_start_ms": check["cold_start_ms"], "max_abs_err_vs_chain": err, "runs": check["runs"],
                "model_loads": check["model_loads"], "model_load_ms": check["model_load_ms"],
                "served_shapes": handler_check.shapes(sample)}

    def _per_part(self, ctx, spec, parts, layer, work, out_dir) -> list[Artifact]:
        artifacts = []
        for p in parts:
            k, final = p["part"], p["part"] == len(parts)
            fn = work / f"part{k}"
            dtype = ctx.info["inputs"][0]["dtype"]
            inputs = handler_files.served_inputs(ctx.info) if k == 1 else [{"name": p["input"], "shape": p["input_shape"], "dtype": dtype}]
            outputs = ctx.info["outputs"] if final else [{"name": "output_0", "shape": p["output_shape"], "dtype": dtype}]
            handler_files.write(ctx, fn, ("lambda", "handler.py"), model_in_layer=False, model=p["local"],
                                options=self._options(spec, final), inputs=inputs, outputs=outputs, part=k, image=None)
            handler_files.ship_bytecode(fn, layer.interpreter, ctx)
            path = ctx.zip_tree(fn, out_dir / DIR / f"part{k}.zip")
            total = tree_bytes(fn) + layer.unzipped_bytes
            lambda_limits.enforce(ctx, f"lambda-split: part {k}", total, {path.name: path.stat().st_size}, layers=1)
            artifacts.append(Artifact(self.NAME, f"{DIR}/part{k}.zip", tree_bytes(fn),
                                      {"layout": "per-part", "part": k, "function": f"{part_name(k)}Function",
                                       "request_json_bytes": p.get("request_json_bytes"), "unzipped_total_bytes": total}))
        asl = out_dir / DIR / ASL
        asl.write_text(dumps_strict(state_machine(len(parts)), indent=1, sort_keys=True) + "\n")
        artifacts.append(Artifact(self.NAME, f"{DIR}/{ASL}", None, {"kind": "step-functions-asl", "parts": len(parts)}))
        artifacts.append(self._template(ctx, spec, layer, out_dir, parts, single=False))
        return artifacts

    def _template(self, ctx, spec, layer, out_dir: Path, parts: list[dict], single: bool) -> Artifact:
        python, arch = layer.spec.python, layer.spec.arch
        base = {"Handler": "handler.handler", "Runtime": f"python{python}", "Architectures": [arch],
                "MemorySize": spec.memory_mb, "Timeout": spec.timeout_s, "Layers": [{"Ref": "RuntimeLayer"}]}
        resources: dict = {"RuntimeLayer": {"Type": "AWS::Serverless::LayerVersion", "Properties": {
            "LayerName": f"{ctx.recipe.name}-{layer.runtime.name}", "ContentUri": "../layer.zip",
            "CompatibleRuntimes": [f"python{python}"], "CompatibleArchitectures": [arch]}}}
        outputs: dict = {}
        if single:
            fn = {**base, "CodeUri": "function.zip", "Description": f"modelpack: {ctx.recipe.name}, {len(parts)} parts"}
            if spec.parts_in == "layers":
                for p in parts:
                    resources[f"{part_name(p['part'])}Layer"] = {"Type": "AWS::Serverless::LayerVersion", "Properties": {
                        "LayerName": f"{ctx.recipe.name}-part{p['part']}", "ContentUri": f"part{p['part']}-layer.zip"}}
                    fn["Layers"].append({"Ref": f"{part_name(p['part'])}Layer"})
            sam_endpoint.attach_to_function(spec, spec.effective_endpoint(), "ModelFunction", fn, resources, outputs)
            resources["ModelFunction"] = {"Type": "AWS::Serverless::Function", "Properties": fn}
            functions = ["ModelFunction"]
        else:
            for p in parts:
                resources[f"{part_name(p['part'])}Function"] = {"Type": "AWS::Serverless::Function", "Properties": {
                    **base, "CodeUri": f"part{p['part']}.zip",
                    "Description": f"modelpack: {ctx.recipe.name}, part {p['part']} of {len(parts)}"}}
            resources["ModelChain"] = {"Type": "AWS::Serverless::StateMachine", "Properties": {
                "Type": "EXPRESS", "DefinitionUri": ASL,
                "DefinitionSubstitutions": {f"{part_name(p['part'])}Function": {
                    "Fn::GetAtt": [f"{part_name(p['part'])}Function", "Arn"]} for p in parts},
                "Policies": [{"LambdaInvokePolicy": {"FunctionName": {"Ref": f"{part_name(p['part'])}Function"}}}
                             for p in parts]}}
            functions = [f"{part_name(p['part'])}Function" for p in parts]
            if spec.effective_endpoint() == "http-api":
                sam_endpoint.attach_to_state_machine(spec, "ModelChain", resources, outputs)
            outputs["StateMachineArn"] = {"Description": "State machine ARN", "Value": {"Ref": "ModelChain"}}
        sam_endpoint.function_outputs(functions, "RuntimeLayer", outputs)
        template = {"AWSTemplateFormatVersion": "2010-09-09", "Transform": "AWS::Serverless-2016-10-31",
                    "Description": f"modelpack build of {ctx.recipe.name} (split, {spec.layout})", "Resources": resources,
                    "Outputs": outputs}
        path = out_dir / DIR / "template.yaml"
        path.write_text(yaml.safe_dump(template, sort_keys=False))
        return Artifact(self.NAME, f"{DIR}/template.yaml", None,
                        {"kind": "sam-template", "endpoint": spec.effective_endpoint(), "auth": spec.auth})
