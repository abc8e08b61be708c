"""Handler options shared by the function targets: the model from object storage, and a result cache.

Both are off by default and add nothing to a package unless switched on: S3 needs boto3, which the Lambda
Python runtime already carries; an Azure Blob source adds azure-storage-blob and `cache: {kind: redis}` adds
the redis client to the package. Uploading at build time uses credentials from the environment only.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlparse

from pydantic import Field, field_validator, model_validator

from modelpack.errors import TargetError
from modelpack.recipe.base import Strict
from modelpack.targets.base import TargetSpecBase

# Packages a handler gets only when an option needs them (pinned: the same recipe gives the same zip).
REDIS_CLIENT = "redis==8.1.0"
BLOB_CLIENT = "azure-storage-blob==12.31.1"
S3_URL = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(?P<key>[^\s]+)$")
BLOB_URL = re.compile(r"^https://(?P<account>[a-z0-9]{3,24})\.blob\.core\.windows\.net/(?P<container>[a-z0-9-]{3,63})"
                      r"/(?P<blob>[^\s?]+)(\?.*)?$")


class ResultCacheSpec(Strict):
    """Recent predictions per input hash, in the execution environment or shared through Redis."""

    kind: Literal["memory", "redis"] = Field(description="memory: per environment; redis: shared through REDIS_URL.")
    max_items: int = Field(1024, ge=1, le=10_000_000, description="Entries kept (memory), least recently used evicted.")
    ttl_s: int = Field(300, ge=1, le=30 * 86_400, description="Seconds an entry is served.")


class ServedSpec(TargetSpecBase):
    """Options of targets whose handler serves the model."""

    SOURCE: ClassVar[tuple[re.Pattern, str]] = (S3_URL, "s3://bucket/key")

    model_source: str | None = Field(
        None, description="Download the model at cold start from object storage instead of packaging it "
                          "(Lambda: s3://bucket/key; Azure: https://<account>.blob.core.windows.net/<container>/<blob>).")
    upload: bool = Field(False, description="Upload the selected model to model_source during the build.")
    cache: ResultCacheSpec | None = Field(None, description="Cache recent predictions per input; off unless given.")

    @field_validator("model_source")
    @classmethod
    def _source(cls, v: str | None) -> str | None:
        pattern, example = cls.SOURCE
        if v is not None and not pattern.match(v):
            raise ValueError(f"'{v}' is not a model source of this target; write {example}")
        return v

    @model_validator(mode="after")
    def _upload_needs_source(self) -> ServedSpec:
        if self.upload and not self.model_source:
            raise ValueError("upload: true needs model_source (where to upload the model)")
        return self


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
