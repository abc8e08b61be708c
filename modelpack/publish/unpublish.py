"""`modelpack publish DIST --delete`: remove exactly what the dist's publish record lists, newest first.

A resource that is already gone counts as removed; one the service refuses to remove stays in the record
(and the command exits 1 naming it), so running --delete again retries only what is left. A function publish
created takes its versions, alias, URL, permissions and provisioned concurrency with it.
"""

from __future__ import annotations

from modelpack.errors import UsageError
from modelpack.publish import names
from modelpack.publish import record as records
from modelpack.publish.aws_lambda import Calls, service_message
from modelpack.publish.base import Echo, PublishOptions, PublishResult, ServiceRefused
from modelpack.publish.record import Resource

GONE = {"ResourceNotFoundException", "NoSuchEntity", "NoSuchKey", "NoSuchBucket", "404"}
OF_FUNCTION = {"function-version", "alias", "provisioned-concurrency", "function-url", "permission"}


def _calls(resource: Resource) -> list[tuple[str, str, dict]]:
    r = resource
    if r.kind == "s3-object":
        return [("s3", "delete_object", {"Bucket": r.name, "Key": r.detail})]
    if r.kind == "layer-version":
        return [("lambda", "delete_layer_version", {"LayerName": r.name, "VersionNumber": int(r.detail)})]
    if r.kind == "role":
        return [("iam", "delete_role", {"RoleName": r.name})]
    if r.kind == "role-policy":
        return [("iam", "detach_role_policy", {"RoleName": r.name, "PolicyArn": r.detail})]
    if r.kind == "inline-policy":
        return [("iam", "delete_role_policy", {"RoleName": r.name, "PolicyName": r.detail})]
    if r.kind == "function":  # publish created the whole function
        return [("lambda", "delete_function", {"FunctionName": r.name})]
    if r.kind == "function-version":  # only that version: the function may be older than publish
        return [("lambda", "delete_function", {"FunctionName": r.name, "Qualifier": r.detail})]
    if r.kind == "alias":
        return [("lambda", "delete_alias", {"FunctionName": r.name, "Name": r.detail})]
    if r.kind == "provisioned-concurrency":
        return [("lambda", "delete_provisioned_concurrency_config", {"FunctionName": r.name, "Qualifier": r.detail})]
    if r.kind == "function-url":
        return [("lambda", "delete_function_url_config", {"FunctionName": r.name, "Qualifier": r.detail})]
    qualifier, _, sid = r.detail.partition(" ")  # permission: "<qualifier> <statement id>"
    return [("lambda", "remove_permission", {"FunctionName": r.name, "StatementId": sid, "Qualifier": qualifier})]


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def delete(options: PublishOptions, echo: Echo) -> PublishResult:
    record = records.read(options.dist)
    if record is None or not record.resources:
        raise UsageError(f"{options.dist} has no {records.path_of(options.dist).name} listing resources, so publish "
                         "created nothing from it that --delete could remove (a function or role that existed "
                         "before publish is never removed).")
    if options.region and options.region != record.region:
        raise UsageError(f"{records.path_of(options.dist)} records resources in {record.region}, not {options.region}; "
                         "leave out --region.")
    names.check_region(record.region)
    call = Calls(record.region, options.dry_run, echo)
    functions = {r.name for r in record.resources if r.kind == "function"}
    result = PublishResult("lambda")
    left: list[Resource] = []
    refused: list[str] = []
    for resource in reversed(record.resources):
        if resource.kind in OF_FUNCTION and resource.name in functions:
            result.notes.append(f"{resource.describe()} goes with the function")
            continue
        try:
            for service, operation, params in _calls(resource):
                call(service, operation, **params)
            result.resources[resource.describe()] = "would be removed" if options.dry_run else "removed"
        except Exception as exc:
            if type(exc).__name__ in ("NoCredentialsError", "PartialCredentialsError"):
                raise UsageError("publish --delete found no AWS credentials: set AWS_ACCESS_KEY_ID/"
                                 "AWS_SECRET_ACCESS_KEY or AWS_PROFILE.") from None
            if not hasattr(exc, "response"):
                raise
            if _code(exc) in GONE:
                result.resources[resource.describe()] = "already gone"
                continue
            left.insert(0, resource)
            refused.append(f"{resource.describe()}: {service_message(exc)}")
    if options.dry_run:
        return result
    record.resources = left
    if left:
        records.write(options.dist, record)
        raise ServiceRefused(f"AWS refused to remove {len(left)} resource(s): " + "; ".join(refused) + ". They stay "
                             f"listed in {records.path_of(options.dist)}; fix the cause and run --delete again.")
    records.path_of(options.dist).unlink()
    return result
