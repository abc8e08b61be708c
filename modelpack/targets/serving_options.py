"""Handler options shared by the function targets: the model from object storage, and a result cache.

Both are off by default and add nothing to a package unless switched on: S3 needs boto3, which the Lambda
Python runtime already carries; an Azure Blob source adds azure-storage-blob and `cache: {kind: redis}` adds
the redis client to the package. Uploading at build time uses credentials from the environment only.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from modelpack.errors import TargetError
from modelpack.recipe.serving import FAST_DECODERS_MIN_NUMBERS
from modelpack.recipe.targets import BLOB_URL, S3_URL, ServedSpec

# Packages a handler gets only when an option needs them (pinned: the same recipe gives the same zip).
REDIS_CLIENT = "redis==8.1.0"
BLOB_CLIENT = "azure-storage-blob==12.31.1"
FAST_DECODERS = ("orjson==3.13.0", "pybase64==1.5.1")
def config(spec: ServedSpec) -> dict:
    """The handler config entries for these options."""
    return {"cache": spec.cache.model_dump() if spec.cache else None}


def extra_packages(spec: ServedSpec, platform_has: tuple[str, ...] = ()) -> tuple[str, ...]:
    packages = []
    if spec.cache is not None and spec.cache.kind == "redis":
        packages.append(REDIS_CLIENT)
    if spec.model_source and BLOB_URL.match(spec.model_source) and "azure-storage-blob" not in platform_has:
        packages.append(BLOB_CLIENT)
    return tuple(packages)


def seed_local_copy(model: Path, sha256: str, directory: Path) -> None:
    """Put a verified copy where the handler looks first, so build-time checks need no storage access."""
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(model, directory / f"{sha256[:32]}{model.suffix}")


def upload(source: str, model: Path) -> dict:
    """Upload `model` to `source`; returns what the report records. Credentials from the environment only."""
    if S3_URL.match(source):
        return _upload_s3(source, model)
    return _upload_blob(source, model)


def _upload_s3(source: str, model: Path) -> dict:
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise TargetError("upload: true to S3 needs boto3 in the build environment: pip install 'modelpack[s3]'.") from None
    url = urlparse(source)
    try:
        boto3.client("s3").upload_file(str(model), url.netloc, url.path.lstrip("/"))
    except (ClientError, BotoCoreError, boto3.exceptions.Boto3Error) as exc:  # S3UploadFailedError is a Boto3Error
        raise TargetError(f"uploading the model to {source} failed: {_first_line(exc)}. Check that the bucket "
                          "exists and that AWS credentials in the environment may write to it.") from None
    return {"uploaded": True, "bytes": model.stat().st_size}


def _upload_blob(source: str, model: Path) -> dict:
    import os

    try:
        from azure.core.exceptions import AzureError
        from azure.storage.blob import BlobClient
    except ImportError:
        raise TargetError("upload: true to Azure Blob Storage needs azure-storage-blob in the build environment: "
                          "pip install 'modelpack[azure-blob]'.") from None
    m = BLOB_URL.match(source)
    assert m is not None
    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    try:
        if conn and not urlparse(source).query:
            client = BlobClient.from_connection_string(conn, m["container"], m["blob"])
        else:
            client = BlobClient.from_blob_url(source)
        with open(model, "rb") as f:
            client.upload_blob(f, overwrite=True, max_concurrency=4)
    except AzureError as exc:
        raise TargetError(f"uploading the model to {source} failed: {_first_line(exc)}. Check that the container "
                          "exists and that AZURE_STORAGE_CONNECTION_STRING (or a SAS token in the URL) may write "
                          "to it.") from None
    return {"uploaded": True, "bytes": model.stat().st_size}


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def describe(spec: ServedSpec) -> dict[str, Any]:
    """Report details of the options in use."""
    out: dict[str, Any] = {}
    if spec.model_source:
        out["model_source"] = spec.model_source
    if spec.cache:
        out["cache"] = spec.cache.model_dump()
    return out


def request_packages(ctx: Any) -> tuple[str, ...]:
    """What the handlers need for the request formats the recipe asks for: Pillow for images (serving.image),
    orjson and pybase64 for big bodies (serving.fast_decoders)."""
    image = ("pillow",) if ctx.recipe.serving.image is not None else ()
    return image + (FAST_DECODERS if fast_decoders(ctx) else ())


def fast_decoders(ctx: Any) -> bool:
    """serving.fast_decoders, with auto decided from the model: images, or big or open-ended inputs."""
    setting = ctx.recipe.serving.fast_decoders
    if setting != "auto":
        return bool(setting)
    if ctx.recipe.serving.image is not None:
        return True
    return any(None in spec["shape"][1:] or math.prod(spec["shape"][1:]) >= FAST_DECODERS_MIN_NUMBERS
               for spec in ctx.info["inputs"])


def request_details(ctx: Any, site: Path) -> dict[str, int]:
    """Bytes the request decoders add to a package, for the report: Pillow (with its bundled libraries) and
    the fast JSON and base64 decoders, each with its metadata."""
    details = {}
    if ctx.recipe.serving.image is not None:
        details["image_decoder_bytes"] = _bytes(site, ("PIL", "pillow.libs", "pillow-*.dist-info"))
    if fast_decoders(ctx):
        details["fast_decoder_bytes"] = _bytes(site, ("orjson", "orjson-*.dist-info", "pybase64",
                                                      "pybase64-*.dist-info", "pybase64.libs"))
    return details


def _bytes(site: Path, patterns: tuple[str, ...]) -> int:
    total = 0
    for pattern in patterns:
        for root in site.glob(pattern):
            total += sum(f.stat().st_size for f in root.rglob("*") if f.is_file())
    return total
