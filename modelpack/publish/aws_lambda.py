"""`modelpack publish --target lambda`: layer version, function, version, alias, concurrency, function URL.

boto3 finds credentials the standard way (environment, profile, instance role) and honours AWS_ENDPOINT_URL.
The order is the one a rollback-safe deploy needs: the layer first, then the function's code and settings,
then an immutable version, and only then the alias callers use moves to it.
"""

from __future__ import annotations

import json
import os
import time

from modelpack import limits
from modelpack.errors import UsageError
from modelpack.files.output import sha256_file
from modelpack.publish import lambda_plan, names
from modelpack.publish import record as records
from modelpack.publish.base import (
    Echo,
    PublishError,
    PublishOptions,
    PublishResult,
    ServiceRefused,
    show_call,
)
from modelpack.publish.lambda_plan import FunctionPlan
from modelpack.publish.record import PublishRecord, Resource

TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                  "Action": "sts:AssumeRole"}]}
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


class Calls:
    """Runs an API call through boto3, or (dry run) prints it and answers None; keeps the record of what the
    calls created (written to the dist as each is created, never in a dry run)."""

    def __init__(self, region: str, dry_run: bool, echo: Echo, record: PublishRecord | None = None,
                 dist=None):
        self.dry_run, self.echo, self.region, self._clients = dry_run, echo, region, {}
        self.record, self.dist = record, dist
        self.created: list[Resource] = []

    def made(self, kind: str, name: str, detail: str = "") -> None:
        if self.dry_run or self.record is None:
            return
        resource = Resource(kind, name, str(detail))
        self.created.append(resource)
        self.record.add(resource, self.dist)

    def __call__(self, service: str, operation: str, **params):
        if self.dry_run:
            show_call(self.echo, service, operation, **params)
            return None
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(service, region_name=self.region)
        return getattr(self._clients[service], operation)(**params)

    def exists(self, service: str, operation: str, **params) -> dict | None:
        """The answer of a read call, or None when the resource does not exist (never called in a dry run)."""
        if self.dry_run:
            return None
        try:
            return self(service, operation, **params)
        except Exception as exc:  # botocore's ClientError; boto3 stays an optional import
            if _code(exc) in ("ResourceNotFoundException", "NoSuchEntity", "404"):
                return None
            raise


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def service_message(exc: Exception) -> str:
    """The service's own words for a refused call (botocore's ClientError), or the exception's."""
    error = getattr(exc, "response", {}).get("Error", {})
    operation = getattr(exc, "operation_name", None)
    text = f"{error.get('Code', type(exc).__name__)}: {error.get('Message', exc)}" if error else str(exc)
    return f"{operation} refused ({text})" if operation else text


def region_of(options: PublishOptions) -> str:
    region = options.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region and options.dry_run:
        return "<region>"
    if not region:
        raise UsageError("publish needs an AWS region: pass --region (e.g. --region us-east-1) or set AWS_REGION.")
    names.check_region(region)
    return region


def _code_source(call: Calls, options: PublishOptions, path, kind: str) -> dict:
    """ZipFile for a direct upload; above Lambda's 50 MB direct-upload limit, an object in --s3-bucket."""
    size = path.stat().st_size
    if size <= limits.LAMBDA_ZIP_DIRECT_UPLOAD_BYTES:
        return {"ZipFile": path.read_bytes()}
    if not options.s3_bucket:
        raise UsageError(f"{path} is {size / limits.MB:.1f} MB zipped, over Lambda's direct upload limit of "
                         f"{limits.LAMBDA_ZIP_DIRECT_UPLOAD_BYTES / limits.MB:.1f} MB; pass --s3-bucket BUCKET and "
                         f"publish uploads the {kind} there first.")
    # Hashed and uploaded from the file, never read whole: a big model's zip costs its size on disk only.
    key = f"modelpack/{sha256_file(path)}/{path.name}"
    existed = call.exists("s3", "head_object", Bucket=options.s3_bucket, Key=key)
    with path.open("rb") as body:
        call("s3", "put_object", Bucket=options.s3_bucket, Key=key, Body=body)
    if not existed:
        call.made("s3-object", options.s3_bucket, key)
    return {"S3Bucket": options.s3_bucket, "S3Key": key}


def _wait(call: Calls, name: str, version: str | None = None) -> None:
    """Lambda applies code and settings asynchronously; the next change must wait for the last one (and a
    SnapStart version is ready once its snapshot is taken)."""
    if call.dry_run:
        return
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        conf = call("lambda", "get_function_configuration", FunctionName=name,
                    **({"Qualifier": version} if version else {}))
        if conf.get("State", "Active") != "Pending" and conf.get("LastUpdateStatus", "Successful") != "InProgress":
            if conf.get("State") == "Failed" or conf.get("LastUpdateStatus") == "Failed":
                raise ServiceRefused(f"Lambda could not apply the change to {name}: "
                                   f"{conf.get('StateReason') or conf.get('LastUpdateStatusReason')}")
            return
        time.sleep(1)
    raise ServiceRefused(f"{name} was still updating after 300 s; run publish again once it is done.")


def _role(call: Calls, plan: FunctionPlan, options: PublishOptions) -> str:
    if options.role:
        return options.role
    name = f"{plan.name}-modelpack"[:64]
    found = call.exists("iam", "get_role", RoleName=name)
    if found is None:
        found = call("iam", "create_role", RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST),
                     Description=f"execution role of {plan.name} (modelpack publish)")
        call.made("role", name)
    attached = [] if call.dry_run else call("iam", "list_attached_role_policies", RoleName=name)["AttachedPolicies"]
    call("iam", "attach_role_policy", RoleName=name, PolicyArn=BASIC_EXECUTION)  # idempotent, so always
    if BASIC_EXECUTION not in {a["PolicyArn"] for a in attached}:
        call.made("role-policy", name, BASIC_EXECUTION)
    if plan.s3_read_bucket:
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"],
                                                          "Resource": f"arn:aws:s3:::{plan.s3_read_bucket}/*"}]}
        had = call.exists("iam", "get_role_policy", RoleName=name, PolicyName="read-model")
        call("iam", "put_role_policy", RoleName=name, PolicyName="read-model", PolicyDocument=json.dumps(policy))
        if had is None:
            call.made("inline-policy", name, "read-model")
    return found["Role"]["Arn"] if found else f"<role {name}>"


def publish(options: PublishOptions, echo: Echo) -> PublishResult:
    plan = lambda_plan.read(options)
    names.check_function_name(plan.name, options.function_name is not None)
    if plan.layer:
        names.check_layer_name(plan.layer.name)
    names.check_role(options.role, plan.name)
    names.check_bucket(options.s3_bucket)
    region = region_of(options)
    record = None if options.dry_run else records.start(options.dist, "lambda", region, plan.name)
    call = Calls(region, options.dry_run, echo, record, options.dist)
    try:
        return _publish(call, plan, options)
    except (UsageError, PublishError) as exc:
        if call.created:
            raise type(exc)(exc.message + _left_behind(call, options)) from None
        raise
    except Exception as exc:
        if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
            raise UsageError("publish found no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
                             "AWS_PROFILE (or run where an instance role applies); --dry-run needs none.") from None
        if hasattr(exc, "response") or type(exc).__name__ == "EndpointConnectionError":
            raise ServiceRefused(f"AWS refused publishing {plan.name}: {service_message(exc)}."
                                 + _left_behind(call, options)) from None
        raise


def _left_behind(call: Calls, options: PublishOptions) -> str:
    if not call.created:
        return " Nothing was created."
    return (" Created before that: " + "; ".join(r.describe() for r in call.created) + f". They are listed in "
            f"{records.path_of(options.dist)}; remove them with `modelpack publish {options.dist} --delete`, or "
            "fix the cause and publish again (it reuses them).")


def _publish(call: Calls, plan: FunctionPlan, options: PublishOptions) -> PublishResult:
    result = PublishResult("lambda", notes=list(plan.notes))
    snapstart = plan.settings["SnapStart"].get("ApplyOn") == "PublishedVersions"
    if snapstart:  # checked before anything is created
        found = call.exists("lambda", "get_function", FunctionName=plan.name)
        if found and found["Configuration"].get("FileSystemConfigs"):
            raise UsageError(f"{plan.name} mounts an EFS file system, and Lambda SnapStart does not run functions "
                             "with one; detach it (aws lambda update-function-configuration --file-system-configs "
                             "'[]') or rebuild without snapstart. Nothing was changed.")
    layers = []
    if plan.layer:
        answer = call("lambda", "publish_layer_version", LayerName=plan.layer.name, Description=plan.layer.description,
                      Content=_code_source(call, options, plan.layer.zip_path, "layer"),
                      CompatibleRuntimes=plan.layer.runtimes, CompatibleArchitectures=plan.layer.architectures)
        if answer:
            call.made("layer-version", plan.layer.name, answer["Version"])
        layers = [answer["LayerVersionArn"] if answer else f"<new version of layer {plan.layer.name}>"]
        result.resources["layer_version_arn"] = layers[0]
    role = _role(call, plan, options)
    code = _code_source(call, options, plan.zip_path, "function")
    existed = call.exists("lambda", "get_function", FunctionName=plan.name)
    if existed:
        call("lambda", "update_function_code", FunctionName=plan.name, **code)
        _wait(call, plan.name)
        call("lambda", "update_function_configuration", FunctionName=plan.name, Role=role, Layers=layers,
             **{k: v for k, v in plan.settings.items() if k != "Architectures"})
    else:
        if call.dry_run:
            call.echo("# if the function exists: update_function_code, then update_function_configuration")
        call("lambda", "create_function", FunctionName=plan.name, Role=role, Code=code, Layers=layers,
             PackageType="Zip", **plan.settings)
        call.made("function", plan.name)
    _wait(call, plan.name)
    version = call("lambda", "publish_version", FunctionName=plan.name)
    number = version["Version"] if version else "<new version>"
    if version and snapstart:
        _wait(call, plan.name, number)
    if version and existed:  # the function's own versions go with it; in a function publish did not create, only these
        call.made("function-version", plan.name, number)
    result.resources["function_arn"] = version["FunctionArn"].rsplit(":", 1)[0] if version else f"<{plan.name}>"
    result.resources["version"] = number
    if call.exists("lambda", "get_alias", FunctionName=plan.name, Name=options.alias):
        alias = call("lambda", "update_alias", FunctionName=plan.name, Name=options.alias, FunctionVersion=number)
    else:
        alias = call("lambda", "create_alias", FunctionName=plan.name, Name=options.alias, FunctionVersion=number)
        call.made("alias", plan.name, options.alias)
    result.resources["alias_arn"] = alias["AliasArn"] if alias else f"<{plan.name}:{options.alias}>"
    if plan.provisioned:
        had = call.exists("lambda", "get_provisioned_concurrency_config", FunctionName=plan.name,
                          Qualifier=options.alias)
        call("lambda", "put_provisioned_concurrency_config", FunctionName=plan.name, Qualifier=options.alias,
             ProvisionedConcurrentExecutions=plan.provisioned)
        if had is None:
            call.made("provisioned-concurrency", plan.name, options.alias)
    if plan.url is not None:
        result.endpoint = _function_url(call, plan, options.alias)
    return result


def _function_url(call: Calls, plan: FunctionPlan, alias: str) -> str:
    url = {"AuthType": plan.url["AuthType"], **({"Cors": plan.url["Cors"]} if "Cors" in plan.url else {})}
    if call.exists("lambda", "get_function_url_config", FunctionName=plan.name, Qualifier=alias):
        answer = call("lambda", "update_function_url_config", FunctionName=plan.name, Qualifier=alias, **url)
    else:
        answer = call("lambda", "create_function_url_config", FunctionName=plan.name, Qualifier=alias, **url)
        call.made("function-url", plan.name, alias)
        if url["AuthType"] == "NONE":  # a public URL also needs a resource policy that lets anyone call it
            call("lambda", "add_permission", FunctionName=plan.name, Qualifier=alias, StatementId="public-function-url",
                 Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="NONE")
            call.made("permission", plan.name, f"{alias} public-function-url")
    return answer["FunctionUrl"] if answer else f"<function URL of {plan.name}:{alias}>"
