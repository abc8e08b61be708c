"""What `publish --target lambda` deploys, read from the dist's lambda/template.yaml and report.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from modelpack.errors import UsageError
from modelpack.publish.base import PublishOptions, dist_file


@dataclass(frozen=True)
class LayerPlan:
    name: str
    zip_path: Path
    description: str
    runtimes: list[str]
    architectures: list[str]


@dataclass(frozen=True)
class FunctionPlan:
    name: str
    zip_path: Path
    settings: dict  # create_function / update_function_configuration keywords (no code, role or layers)
    layer: LayerPlan | None
    url: dict | None  # FunctionUrlConfig: AuthType and maybe Cors
    endpoint: str  # function-url | http-api | none
    provisioned: int | None
    s3_read_bucket: str | None
    notes: list[str] = field(default_factory=list)


def _template(dist: Path) -> dict:
    path = dist_file(dist, "lambda/template.yaml", "Lambda function (template.yaml)")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise UsageError(f"{path}: not readable YAML ({exc}); rebuild the dist.") from None


def read(options: PublishOptions) -> FunctionPlan:
    dist = options.dist
    report = json.loads((dist / "report.json").read_text())
    resources = _template(dist).get("Resources", {})
    if "ModelFunction" not in resources:
        raise UsageError(f"{dist}/lambda/template.yaml has no ModelFunction; it was not written by a lambda-function "
                         "target. Rebuild with a lambda-function target.")
    props = resources["ModelFunction"]["Properties"]
    notes: list[str] = []
    env = (props.get("Environment") or {}).get("Variables") or {}
    plain = {k: v for k, v in env.items() if isinstance(v, str)}
    for key in sorted(set(env) - set(plain)):
        notes.append(f"environment variable {key} comes from a template parameter; set it on the function yourself "
                     f"(aws lambda update-function-configuration) or deploy the template with sam deploy.")
    settings = {"Runtime": props["Runtime"], "Handler": props["Handler"], "MemorySize": props["MemorySize"],
                "Timeout": props["Timeout"], "Architectures": props["Architectures"],
                "Description": props.get("Description", "")}
    if plain:
        settings["Environment"] = {"Variables": plain}
    if "EphemeralStorage" in props:
        settings["EphemeralStorage"] = props["EphemeralStorage"]
    # Always said, so a function published with SnapStart before has it turned off when the template drops it.
    settings["SnapStart"] = props.get("SnapStart") or {"ApplyOn": "None"}
    layer = None
    if "RuntimeLayer" in resources:
        lp = resources["RuntimeLayer"]["Properties"]
        layer = LayerPlan(lp["LayerName"], dist_file(dist, "lambda/layer.zip", "runtime layer"), lp.get("Description", ""),
                          lp["CompatibleRuntimes"], lp["CompatibleArchitectures"])
    bucket = None
    for policy in props.get("Policies") or []:
        bucket = (policy.get("S3ReadPolicy") or {}).get("BucketName", bucket)
    events = props.get("Events") or {}
    endpoint = "function-url" if "FunctionUrlConfig" in props else ("http-api" if "Http" in events else "none")
    if endpoint == "http-api":
        notes.append("the HTTP API endpoint is created by the template (sam deploy); publish made no API.")
    if "Warmer" in events:
        notes.append("the warmer schedule is created by the template (sam deploy); publish made no schedule.")
    provisioned = (props.get("ProvisionedConcurrencyConfig") or {}).get("ProvisionedConcurrentExecutions")
    return FunctionPlan(options.function_name or report["name"], dist_file(dist, "lambda/function.zip", "function"),
                        settings, layer, props.get("FunctionUrlConfig"), endpoint, provisioned, bucket, notes)
