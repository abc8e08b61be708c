"""Azure Functions with the model in Blob Storage: uploaded by the build, downloaded by the app at cold start,
against a real Azure Storage emulator (Azurite, started by the test on loopback)."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from modelpack.host.interpreters import host_python
from modelpack.local.azure_app import AzureApp
from tests.helpers.builds import run_build, write_digits_recipe
from tests.helpers.paths import DIGITS
from tests.helpers.processes import free_port, wait_for_port
from tests.helpers.services import need

pytestmark = pytest.mark.slow
AZURITE = Path(os.environ.get("MODELPACK_AZURITE", "~/.cache/modelpack/azurite")).expanduser()
SOURCE = "https://devstoreaccount1.blob.core.windows.net/models/digits/model.tflite"
# Azurite's fixed development account (published in its documentation), reachable on loopback only.
DEV_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="



@pytest.fixture(scope="module")
def container(tmp_path_factory):
    from azure.storage.blob import BlobServiceClient

    binary = need("azurite-blob", "the Blob Storage model source tests", AZURITE / "node_modules" / ".bin" / "azurite-blob")
    port = free_port()
    proc = subprocess.Popen([binary, "--blobHost", "127.0.0.1", "--blobPort", str(port), "--silent",
                             "--location", str(tmp_path_factory.mktemp("azurite")), "--skipApiVersionCheck"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(port, 30)
    conn = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={DEV_KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
    saved = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    os.environ["AZURE_STORAGE_CONNECTION_STRING"] = conn
    client = BlobServiceClient.from_connection_string(conn).create_container("models")
    yield client
    proc.terminate()
    proc.wait(10)
    if saved is None:
        os.environ.pop("AZURE_STORAGE_CONNECTION_STRING", None)
    else:
        os.environ["AZURE_STORAGE_CONNECTION_STRING"] = saved


@pytest.fixture(scope="module")
def dist(container, digits_dist, tmp_path_factory):
    """The session build's variant with the Azure app loading it from Blob Storage; built with the session's
    cache, so conversion and measuring are reused."""
    tmp = tmp_path_factory.mktemp("azure-blob")
    recipe = write_digits_recipe(tmp / "recipe.yaml", optimize={"variants": ["tflite-fp32"]}, targets=[
        {"kind": "azure-functions", "python": host_python(), "model_source": SOURCE, "upload": True,
         "cache": {"kind": "memory", "max_items": 16, "ttl_s": 60}}])
    run_build(recipe, tmp / "out", digits_dist.cache)
    return tmp / "out"


def _x() -> list:
    with np.load(DIGITS / "digits.npz") as npz:
        return npz["x"][:1].tolist()


def _call(dist: Path, tmp: Path, calls: list[dict]) -> dict:
    os.environ["MODELPACK_MODEL_DIR"] = str(tmp / "model-dir")
    try:
        return AzureApp(dist, tmp).call(calls)
    finally:
        os.environ.pop("MODELPACK_MODEL_DIR", None)


def _put(container, data: bytes) -> None:
    container.get_blob_client("digits/model.tflite").upload_blob(data, overwrite=True)


def test_package_adds_the_blob_client_and_leaves_the_model_out(dist, container):
    report = json.loads((dist / "report.json").read_text())
    art = next(a for a in report["artifacts"] if a["target"] == "azure-functions")
    assert art["details"]["model_in"] == "source" and art["details"]["upload"]["uploaded"] is True
    with zipfile.ZipFile(dist / "azure" / "functionapp.zip") as zf:
        names = zf.namelist()
        requirements = zf.read("requirements.txt").decode()
    assert not [n for n in names if n.startswith("model/")]
    assert any(n.startswith(".python_packages/lib/site-packages/azure/storage/blob/") for n in names)
    assert "azure-storage-blob==" in requirements
    uploaded = container.get_blob_client("digits/model.tflite").download_blob().readall()
    assert uploaded == (dist / "variants" / "tflite-fp32.tflite").read_bytes()


def test_app_downloads_the_model_and_caches_results(dist, tmp_path):
    body = {"instances": _x()}
    out = _call(dist, tmp_path, [{"function": "health", "method": "GET", "route": "health"},
                                 {"body": body}, {"body": body}])
    health, first, second = out["results"]
    assert health["status"] == 200 and health["body"]["download_ms"] > 0
    assert first["status"] == 200 and second["body"] == first["body"] and out["loads"] == 1
    assert [p.suffix for p in (tmp_path / "model-dir").iterdir()] == [".tflite"]


def test_tampered_and_missing_blobs_are_refused(dist, container, tmp_path):
    good = (dist / "variants" / "tflite-fp32.tflite").read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    try:
        _put(container, bytes(bad))
        tampered = _call(dist, tmp_path / "a", [{"body": {"instances": _x()}}])["results"][0]
        container.delete_blob("digits/model.tflite")
        missing = _call(dist, tmp_path / "b", [{"body": {"instances": _x()}}] * 2)["results"]
    finally:
        _put(container, good)
    assert tampered["status"] == 500 and "integrity" in tampered["body"]["error"]
    for r in missing:
        assert r["status"] == 503 and "does not exist" in r["body"]["error"]
