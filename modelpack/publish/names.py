"""The names `publish --target lambda` will send, checked against the services' documented patterns before any
call, so a bad name is refused here instead of by the service after a layer version and a role exist."""

from __future__ import annotations

import re

from modelpack.errors import UsageError

# Lambda CreateFunction FunctionName (a name; publish also names the role after it), PublishLayerVersion
# LayerName, IAM CreateRole RoleName and a role ARN, S3 bucket names: as the services' API references state them.
FUNCTION_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
LAYER_NAME = re.compile(r"[A-Za-z0-9_-]{1,140}")
ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}", re.ASCII)
ROLE_ARN = re.compile(r"arn:aws[a-zA-Z-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-/]{1,512}")
BUCKET = re.compile(r"(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 80 else repr(value[:77] + "...")


def check_function_name(name: str, given: bool) -> None:
    where = "--function-name" if given else "the function name (the build's name; pass --function-name to choose one)"
    if name.startswith("arn:"):
        raise UsageError(f"{where} {_shown(name)} is an ARN; publish takes the function's name (the part after "
                         "`function:`), because it also names the role and the URL after it.")
    if not FUNCTION_NAME.fullmatch(name):
        raise UsageError(f"{where} {_shown(name)} is not a Lambda function name: 1 to 64 letters, digits, hyphens "
                         "or underscores. Nothing was created.")


def check_layer_name(name: str) -> None:
    if not LAYER_NAME.fullmatch(name):
        raise UsageError(f"the layer name {_shown(name)} in template.yaml is not a Lambda layer name (letters, digits, "
                         "hyphens or underscores, at most 140); it comes from the recipe's name: rename the recipe "
                         "without dots and build again. Nothing was created.")


def check_role(role: str | None, function: str) -> None:
    if role is None:
        if not ROLE_NAME.fullmatch(f"{function}-modelpack"[:64]):
            raise UsageError(f"the role name {function}-modelpack is not an IAM role name; pass --role ARN.")
        return
    if not ROLE_ARN.fullmatch(role):
        raise UsageError(f"--role {_shown(role)} is not an IAM role ARN (arn:aws:iam::<12-digit account>:role/NAME). "
                         "Nothing was created.")


def check_bucket(bucket: str | None) -> None:
    if bucket is not None and not BUCKET.fullmatch(bucket):
        raise UsageError(f"--s3-bucket {_shown(bucket)} is not an S3 bucket name: 3 to 63 lower-case letters, digits, "
                         "dots and hyphens, starting and ending with a letter or digit. Nothing was created.")


def check_region(region: str) -> None:
    """A region botocore knows Lambda in (any partition); a new region needs a newer boto3."""
    import boto3

    session = boto3.session.Session()
    known = {r for partition in session.get_available_partitions()
             for r in session.get_available_regions("lambda", partition_name=partition)}
    if region in known:
        return
    shape = "" if REGION.fullmatch(region) else " (regions look like eu-west-1)"
    raise UsageError(f"--region {_shown(region)} is not a region where Lambda runs{shape}; known regions include "
                     f"{', '.join(sorted(r for r in known if r.count('-') == 2)[:8])}, ... If it is a new region, "
                     "upgrade boto3. Nothing was created.")
