"""Lambda's package limits as one check: errors stop the build, warnings go into the report."""

from __future__ import annotations

from modelpack import limits
from modelpack.errors import PackageLimitError, TargetError


def check(unzipped_total: int, zipped: dict[str, int], layers: int) -> tuple[list[str], list[str]]:
    """Check a function and its layers: total unzipped size, layer count, direct-upload size of each zip."""
    errors, warnings = [], []
    if unzipped_total > limits.LAMBDA_UNZIPPED_TOTAL_BYTES:
        errors.append(
            f"function and layers unzip to {unzipped_total / 1e6:.1f} MB, over Lambda's limit of "
            f"{limits.LAMBDA_UNZIPPED_TOTAL_BYTES / 1e6:.1f} MB (262144000 bytes); use a container image target"
        )
    if layers > limits.LAMBDA_MAX_LAYERS:
        errors.append(f"{layers} layers; a Lambda function can use at most {limits.LAMBDA_MAX_LAYERS}")
    for name, size in zipped.items():
        if size > limits.LAMBDA_ZIP_DIRECT_UPLOAD_BYTES:
            warnings.append(
                f"{name} is {size / 1e6:.1f} MB zipped, over the 50 MB direct-upload limit: upload it to S3 and "
                "point Lambda at the object (for SAM: `sam deploy` does this through its S3 bucket)"
            )
    return errors, warnings


def enforce(ctx, label: str, unzipped_total: int, zipped: dict[str, int], layers: int) -> None:
    """`check`, then the first error stops the build as a TargetError and warnings go into the report's notes,
    each prefixed with `label` (the target, and the part where there are several)."""
    errors, warnings = check(unzipped_total, zipped, layers)
    if errors and unzipped_total > limits.LAMBDA_UNZIPPED_TOTAL_BYTES:
        raise PackageLimitError(f"{label}: {errors[0]}.", target=label, limit_bytes=limits.LAMBDA_UNZIPPED_TOTAL_BYTES,
                                actual_bytes=unzipped_total)
    if errors:
        raise TargetError(f"{label}: {errors[0]}.")
    ctx.report.notes += [f"{label}: {w}." for w in warnings]
