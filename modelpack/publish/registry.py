"""Publish targets by name (`modelpack publish --target NAME`)."""

from __future__ import annotations

import importlib

from modelpack.errors import UsageError
from modelpack.publish.base import Echo, PublishOptions, PublishResult

# target name -> "module:function" with `function(options, echo) -> PublishResult`; imported only when used.
TARGETS = {
    "lambda": "modelpack.publish.aws_lambda:publish",
    "lambda-image": "modelpack.publish.image:publish_lambda_image",
    "azure-image": "modelpack.publish.image:publish_azure_image",
}


def publish(target: str, options: PublishOptions, echo: Echo) -> PublishResult:
    if target not in TARGETS:
        raise UsageError(f"--target {target}: not a publish target; choose one of {', '.join(TARGETS)}.")
    if not (options.dist / "report.json").is_file():
        raise UsageError(f"{options.dist} has no report.json, so it is not a modelpack build output; pass the "
                         "folder `modelpack build` wrote (its --out, default dist/<name>).")
    module, function = TARGETS[target].split(":")
    return getattr(importlib.import_module(module), function)(options, echo)
