"""`modelpack publish --target lambda`: layer version, function, version, alias, concurrency, function URL.

boto3 finds credentials the standard way (environment, profile, instance role) and honours AWS_ENDPOINT_URL.
The order is the one a rollback-safe deploy needs: the layer first, then the function's code and settings,
then an immutable version, and only then the alias callers use moves to it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time

from modelpack import limits
from modelpack.errors import UsageError
from modelpack.publish import lambda_plan
from modelpack.publish.base import Echo, PublishError, PublishOptions, PublishResult, show_call
from modelpack.publish.lambda_plan import FunctionPlan

TRUST = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                  "Action": "sts:AssumeRole"}]}
BASIC_EXECUTION = "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"


class Calls:
    """Runs an API call through boto3, or (dry run) prints it and answers None."""

    def __init__(self, region: str, dry_run: bool, echo: Echo):
        self.dry_run, self.echo, self.region, self._clients = dry_run, echo, region, {}

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


def _region(options: PublishOptions) -> str:
    region = options.region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    if not region and options.dry_run:
        return "<region>"
    if not region:
        raise UsageError("publish needs an AWS region: pass --region (e.g. --region us-east-1) or set AWS_REGION.")
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
    key = f"modelpack/{hashlib.sha256(path.read_bytes()).hexdigest()}/{path.name}"
    call("s3", "put_object", Bucket=options.s3_bucket, Key=key, Body=path.read_bytes())
    return {"S3Bucket": options.s3_bucket, "S3Key": key}


def _wait(call: Calls, name: str) -> None:
    """Lambda applies code and settings asynchronously; the next change must wait for the last one."""
    if call.dry_run:
        return
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        conf = call("lambda", "get_function_configuration", FunctionName=name)
        if conf.get("State", "Active") != "Pending" and conf.get("LastUpdateStatus", "Successful") != "InProgress":
            if conf.get("State") == "Failed" or conf.get("LastUpdateStatus") == "Failed":
                raise PublishError(f"Lambda could not apply the change to {name}: "
                                   f"{conf.get('StateReason') or conf.get('LastUpdateStatusReason')}")
            return
        time.sleep(1)
    raise PublishError(f"{name} was still updating after 300 s; run publish again once it is done.")


def _role(call: Calls, plan: FunctionPlan, options: PublishOptions) -> str:
    if options.role:
        return options.role
    name = f"{plan.name}-modelpack"[:64]
    found = call.exists("iam", "get_role", RoleName=name) or call(
        "iam", "create_role", RoleName=name, AssumeRolePolicyDocument=json.dumps(TRUST),
        Description=f"execution role of {plan.name} (modelpack publish)")
    call("iam", "attach_role_policy", RoleName=name, PolicyArn=BASIC_EXECUTION)  # idempotent, so always
    if plan.s3_read_bucket:
        policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"],
                                                          "Resource": f"arn:aws:s3:::{plan.s3_read_bucket}/*"}]}
        call("iam", "put_role_policy", RoleName=name, PolicyName="read-model", PolicyDocument=json.dumps(policy))
    return found["Role"]["Arn"] if found else f"<role {name}>"


def publish(options: PublishOptions, echo: Echo) -> PublishResult:
    plan = lambda_plan.read(options)
    call = Calls(_region(options), options.dry_run, echo)
    try:
        return _publish(call, plan, options)
    except (UsageError, PublishError):
        raise
    except Exception as exc:
        if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
            raise UsageError("publish found no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or "
                             "AWS_PROFILE (or run where an instance role applies); --dry-run needs none.") from None
        if hasattr(exc, "response") or type(exc).__name__ == "EndpointConnectionError":
            raise PublishError(f"AWS refused publishing {plan.name}: {exc}") from None
        raise


def _publish(call: Calls, plan: FunctionPlan, options: PublishOptions) -> PublishResult:
    result = PublishResult("lambda", notes=list(plan.notes))
    layers = []
    if plan.layer:
        answer = call("lambda", "publish_layer_version", LayerName=plan.layer.name, Description=plan.layer.description,
                      Content=_code_source(call, options, plan.layer.zip_path, "layer"),
                      CompatibleRuntimes=plan.layer.runtimes, CompatibleArchitectures=plan.layer.architectures)
        layers = [answer["LayerVersionArn"] if answer else f"<new version of layer {plan.layer.name}>"]
        result.resources["layer_version_arn"] = layers[0]
    role = _role(call, plan, options)
    code = _code_source(call, options, plan.zip_path, "function")
    if call.exists("lambda", "get_function", FunctionName=plan.name):
        call("lambda", "update_function_code", FunctionName=plan.name, **code)
        _wait(call, plan.name)
        call("lambda", "update_function_configuration", FunctionName=plan.name, Role=role, Layers=layers,
             **{k: v for k, v in plan.settings.items() if k != "Architectures"})
    else:
        if call.dry_run:
            call.echo("# if the function exists: update_function_code, then update_function_configuration")
        call("lambda", "create_function", FunctionName=plan.name, Role=role, Code=code, Layers=layers,
             PackageType="Zip", **plan.settings)
    _wait(call, plan.name)
    version = call("lambda", "publish_version", FunctionName=plan.name)
    number = version["Version"] if version else "<new version>"
    result.resources["function_arn"] = version["FunctionArn"].rsplit(":", 1)[0] if version else f"<{plan.name}>"
    result.resources["version"] = number
    if call.exists("lambda", "get_alias", FunctionName=plan.name, Name=options.alias):
        alias = call("lambda", "update_alias", FunctionName=plan.name, Name=options.alias, FunctionVersion=number)
    else:
        alias = call("lambda", "create_alias", FunctionName=plan.name, Name=options.alias, FunctionVersion=number)
    result.resources["alias_arn"] = alias["AliasArn"] if alias else f"<{plan.name}:{options.alias}>"
    if plan.provisioned:
        call("lambda", "put_provisioned_concurrency_config", FunctionName=plan.name, Qualifier=options.alias,
             ProvisionedConcurrentExecutions=plan.provisioned)
    if plan.url is not None:
        result.endpoint = _function_url(call, plan, options.alias)
    return result


def _function_url(call: Calls, plan: FunctionPlan, alias: str) -> str:
    url = {"AuthType": plan.url["AuthType"], **({"Cors": plan.url["Cors"]} if "Cors" in plan.url else {})}
    if call.exists("lambda", "get_function_url_config", FunctionName=plan.name, Qualifier=alias):
        answer = call("lambda", "update_function_url_config", FunctionName=plan.name, Qualifier=alias, **url)
    else:
        answer = call("lambda", "create_function_url_config", FunctionName=plan.name, Qualifier=alias, **url)
        if url["AuthType"] == "NONE":  # a public URL also needs a resource policy that lets anyone call it
            call("lambda", "add_permission", FunctionName=plan.name, Qualifier=alias, StatementId="public-function-url",
                 Action="lambda:InvokeFunctionUrl", Principal="*", FunctionUrlAuthType="NONE")
    return answer["FunctionUrl"] if answer else f"<function URL of {plan.name}:{alias}>"
