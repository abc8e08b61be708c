"""template.yaml for AWS SAM: the layer, the function, and the options the recipe asks for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from modelpack.targets import monitoring, sam_endpoint, snapstart
from modelpack.targets.base import Artifact


def write(ctx: Any, spec: Any, layer: Any, path: Path) -> Artifact:
    python = layer.spec.python if layer else "3.12"
    arch = layer.spec.arch if layer else "x86_64"
    resources: dict = {}
    memory = spec.memory_mb
    if memory == "auto":
        memory = ((ctx.report.memory or {}).get("recommendations") or {}).get("balanced")
        if memory is None:
            memory = 1024
            ctx.report.notes.append("lambda-function: memory_mb is auto but measure.memory did not run or found no "
                                    "possible size; the template uses 1024 MB.")
    fn: dict = {
        "CodeUri": "function.zip",
        "Handler": "handler.handler",
        "Runtime": f"python{python}",
        "Architectures": [arch],
        "MemorySize": memory,
        "Timeout": spec.timeout_s,
        "Description": f"modelpack: {ctx.recipe.name} ({ctx.report.selected})",
    }
    if layer:
        resources["RuntimeLayer"] = {
            "Type": "AWS::Serverless::LayerVersion",
            "Properties": {
                "LayerName": f"{ctx.recipe.name}-{layer.runtime.name}",
                "Description": f"{layer.runtime.name} and numpy for python{python} {arch} (modelpack)",
                "ContentUri": "layer.zip",
                "CompatibleRuntimes": [f"python{python}"],
                "CompatibleArchitectures": [arch],
            },
        }
        fn["Layers"] = [{"Ref": "RuntimeLayer"}]
    if spec.provisioned_concurrency:
        fn["AutoPublishAlias"] = "live"
        fn["ProvisionedConcurrencyConfig"] = {"ProvisionedConcurrentExecutions": spec.provisioned_concurrency}
    if spec.snapstart:
        snapstart.template(fn)
    if spec.warmer_schedule:
        fn["Events"] = {"Warmer": {"Type": "Schedule",
                                   "Properties": {"Schedule": spec.warmer_schedule, "Input": '{"warmer": true}'}}}
    parameters: dict = {}
    env: dict = {}
    if spec.model_source:  # read access to exactly the model object; the handler downloads it at cold start
        bucket = spec.model_source.removeprefix("s3://").split("/", 1)[0]
        env["MODELPACK_MODEL_SOURCE"] = spec.model_source
        fn["Policies"] = [{"S3ReadPolicy": {"BucketName": bucket}}]
        size = max(512, min(10_240, 512 + ctx.selected_file.stat().st_size // 1_000_000 * 2))
        fn["EphemeralStorage"] = {"Size": 512 if spec.snapstart else size}  # SnapStart: checked to fit in 512 MB
    if spec.cache is not None and spec.cache.kind == "redis":
        parameters["RedisUrl"] = {"Type": "String", "NoEcho": True,
                                  "Description": "redis:// or rediss:// URL of the shared result cache"}
        env["REDIS_URL"] = {"Ref": "RedisUrl"}
    if env:
        fn["Environment"] = {"Variables": env}
    outputs: dict = {}
    sam_endpoint.attach_to_function(spec, spec.endpoint, "ModelFunction", fn, resources, outputs)
    sam_endpoint.function_outputs(["ModelFunction"], "RuntimeLayer" if layer else None, outputs)
    resources["ModelFunction"] = {"Type": "AWS::Serverless::Function", "Properties": fn}
    resources.update(monitoring.resources(ctx, spec, "ModelFunction"))  # opt-in alarms and dashboard
    template = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Transform": "AWS::Serverless-2016-10-31",
        "Description": f"modelpack build of {ctx.recipe.name}",
        **({"Parameters": parameters} if parameters else {}),
        "Resources": resources,
        "Outputs": outputs,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(template, sort_keys=False))
    return Artifact("lambda-function", path.relative_to(path.parents[1]).as_posix(), None,
                    {"kind": "sam-template", "endpoint": spec.endpoint, "auth": spec.auth})
