"""The model file the build measured: fetched from object storage at cold start when it has a source, and
verified against the build manifest's sha256 wherever it comes from.

Shipped inside generated handlers; standard library only until a source is used. S3 (`s3://bucket/key`)
needs boto3, which the Lambda Python runtime already has; Azure Blob Storage (`https://<account>.blob.
core.windows.net/<container>/<blob>`) needs azure-storage-blob, which modelpack adds to the Azure package
only when a blob source is configured. Credentials come from the environment only (the function's role,
AWS_* / AZURE_STORAGE_CONNECTION_STRING variables, or a SAS token in the URL).

The file is written to MODELPACK_MODEL_DIR (default /tmp/modelpack) under a name derived from its sha256,
so an execution environment downloads it once and a restarted process in the same environment reuses it.
"""

from __future__ import annotations

import hashlib
import os
import time

from errors import IntegrityError, LoadError, SourceError

PART_BYTES = 8 * 1024 * 1024
WORKERS = 8


def local_path(sha256: str, suffix: str) -> str:
    return os.path.join(os.environ.get("MODELPACK_MODEL_DIR", "/tmp/modelpack"), f"{sha256[:32]}{suffix}")


def fetch(source: str, sha256: str, suffix: str) -> tuple[str, float]:
    """Return (local path, download ms); 0 ms when a verified copy is already on local disk."""
    from urllib.parse import urlparse  # imported here: a handler without a model source never pays for it

    path = local_path(sha256, suffix)
    if os.path.exists(path) and sha256_of(path) == sha256:
        return path, 0.0
    os.makedirs(os.path.dirname(path), exist_ok=True)
    partial = f"{path}.{os.getpid()}.part"
    started = time.perf_counter()
    try:
        scheme = urlparse(source).scheme
        if scheme == "s3":
            _from_s3(source, partial)
        elif scheme == "https" and ".blob." in urlparse(source).netloc:
            _from_blob(source, partial)
        else:
            raise SourceError(f"model source {source} is neither s3://bucket/key nor an Azure Blob URL")
        ms = (time.perf_counter() - started) * 1e3
        digest = sha256_of(partial)
        if digest != sha256:
            raise IntegrityError(f"the model at {source} has sha256 {digest}; the build manifest says {sha256}")
        os.replace(partial, path)
        return path, ms
    finally:
        if os.path.exists(partial):
            os.remove(partial)


def _ranges(size: int) -> list[tuple[int, int]]:
    return [(start, min(start + PART_BYTES, size) - 1) for start in range(0, size, PART_BYTES)]


def _from_s3(source: str, dest: str) -> None:
    """Parallel ranged GETs, all pinned to the ETag the HEAD saw, so a concurrent overwrite cannot mix versions."""
    from concurrent.futures import ThreadPoolExecutor
    from urllib.parse import urlparse

    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    url = urlparse(source)
    bucket, key = url.netloc, url.path.lstrip("/")
    client = boto3.client("s3", config=Config(max_pool_connections=WORKERS, connect_timeout=5, read_timeout=30,
                                              retries={"max_attempts": 3, "mode": "standard"}))
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchKey", "NotFound", "NoSuchBucket"):
            raise SourceError(f"model object {source} does not exist; upload it (modelpack build with "
                              f"upload: true) or fix MODELPACK_MODEL_SOURCE") from None
        raise SourceError(f"cannot read {source}: {code or exc}") from None
    except BotoCoreError as exc:
        raise SourceError(f"cannot reach S3 for {source}: {exc}") from None
    size, etag = int(head["ContentLength"]), head["ETag"]
    with open(dest, "wb") as f:
        f.truncate(size)

    def part(span: tuple[int, int]) -> None:
        body = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={span[0]}-{span[1]}", IfMatch=etag)["Body"]
        data = body.read()
        with open(dest, "r+b") as f:
            f.seek(span[0])
            f.write(data)

    try:
        with ThreadPoolExecutor(WORKERS) as pool:
            list(pool.map(part, _ranges(size)))
    except ClientError as exc:
        raise SourceError(f"downloading {source} failed: {exc.response.get('Error', {}).get('Code', exc)}") from None
    except BotoCoreError as exc:
        raise SourceError(f"downloading {source} failed: {exc}") from None


def _from_blob(source: str, dest: str) -> None:
    """azure-storage-blob's parallel download (ranged GETs, max_concurrency)."""
    from urllib.parse import urlparse

    from azure.core.exceptions import AzureError, ResourceNotFoundError
    from azure.storage.blob import BlobClient

    conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    url = urlparse(source)
    try:
        if conn and not url.query:
            container, _, blob = url.path.lstrip("/").partition("/")
            client = BlobClient.from_connection_string(conn, container, blob)
        else:
            client = BlobClient.from_blob_url(source)
        with open(dest, "wb") as f:
            client.download_blob(max_concurrency=WORKERS).readinto(f)
    except ResourceNotFoundError:
        raise SourceError(f"model blob {source} does not exist; upload it (modelpack build with upload: true) "
                          f"or fix MODELPACK_MODEL_SOURCE") from None
    except AzureError as exc:
        raise SourceError(f"cannot read {source}: {str(exc).splitlines()[0][:200]}") from None


def sha256_of(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(path: str, expected: str) -> None:
    """Refuse a model file whose bytes are not the ones the build measured (or that cannot be read)."""
    try:
        digest = sha256_of(path)
    except OSError as exc:  # missing or unreadable: the package is incomplete, not the request wrong
        raise LoadError(f"model file {path} cannot be read ({exc.strerror or type(exc).__name__}); the package "
                        "is incomplete: redeploy it") from None
    if digest != expected:
        raise IntegrityError(f"model file {path} has sha256 {digest}, the build manifest says {expected}")
