"""Container images built through the Docker SDK against a real engine (podman serving the Docker API),
smoke-tested in containers with networking disabled; and the path where no engine answers."""

from __future__ import annotations

import json
import os
import subprocess

import numpy as np
import pytest
import yaml
from click.testing import CliRunner

from modelpack.cli.main import cli
from modelpack.host.interpreters import host_python
from tests.helpers.builds import write_digits_recipe
from tests.helpers.paths import DIGITS
from tests.helpers.processes import free_port, wait_for_port
from tests.helpers.services import need

pytestmark = pytest.mark.slow
BASE = "localhost/modelpack-base:bookworm"


@pytest.fixture(scope="module")
def engine(container_engine):
    return container_engine


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """Debian's docker-registry on loopback, plain HTTP, storage in a temporary folder."""
    tmp = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = {"version": 0.1, "storage": {"filesystem": {"rootdirectory": str(tmp / "data")}},
              "http": {"addr": f"127.0.0.1:{port}"}}
    (tmp / "config.yml").write_text(yaml.safe_dump(config))
    proc = subprocess.Popen([need("docker-registry", "the image push tests"), "serve", str(tmp / "config.yml")], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port)
        yield f"127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def write_recipe(path, build, push=None):
    common = {"python": host_python(), "base_image": BASE, "glibc": "2.36", "build": build}
    return write_digits_recipe(path, optimize={"variants": ["tflite-fp32"]},
                               targets=[{"kind": "lambda-image", **common, **({"push": push} if push else {})},
                                        {"kind": "azure-image", **common}])


@pytest.fixture(scope="module")
def built(engine, registry, digits_dist, tmp_path_factory):
    """Both images of the session build's variant, built with the session's cache (conversion and measuring
    are reused; the images' site-packages are their own); the Lambda image is pushed to the loopback registry."""
    tmp = tmp_path_factory.mktemp("images")
    recipe = write_recipe(tmp / "recipe.yaml", True, push=f"{registry}/digits/lambda")
    result = CliRunner().invoke(cli, ["build", str(recipe), "--out", str(tmp / "out"),
                                      "--cache-dir", str(digits_dist.cache)])
    assert result.exit_code == 0, result.output
    return {"out": tmp / "out", "report": json.loads((tmp / "out" / "report.json").read_text()), "tmp": tmp,
            "recipe": recipe, "output": result.output, "cache": digits_dist.cache}


@pytest.mark.parametrize("kind", ["lambda-image", "azure-image"])
def test_image_built_and_smoke_run_matches_variant(built, kind):
    art = next(a for a in built["report"]["artifacts"] if a["target"] == kind)
    image = art["details"]["image"]
    assert image is not None and image["image_id"].startswith("sha256:") and image["size_bytes"] > 0
    assert image["smoke"]["ok"] is True and image["smoke"]["network"] == "none"
    assert image["smoke"]["max_abs_err_vs_variant"] <= 1e-5
    assert image["tag"].startswith(f"digits-{kind}:") and "Successfully tagged" in built["output"]
    import docker

    assert docker.from_env().images.get(image["tag"]).id == image["image_id"]


def test_contexts_are_self_contained(built):
    lam = built["out"] / "images" / "lambda-image"
    dockerfile = (lam / "Dockerfile").read_text()
    assert f"FROM {BASE}" in dockerfile and 'ENTRYPOINT ["python3", "-m", "awslambdaric"]' in dockerfile
    assert "RUN" not in dockerfile  # nothing is fetched at image build time
    assert (lam / "python" / "awslambdaric").is_dir() and (lam / "app" / "handler.py").is_file()
    assert (lam / "python" / "numpy" / "__init__.pyc").exists()  # the verified, slimmed runtime was kept
    az = built["out"] / "images" / "azure-image"
    assert "AzureWebJobsScriptRoot=/home/site/wwwroot" in (az / "Dockerfile").read_text()
    assert (az / "app" / "function_app.py").is_file() and (az / "app" / "host.json").is_file()
    assert (az / "app" / ".python_packages" / "lib" / "site-packages" / "azure" / "functions").is_dir()


def test_aws_base_needs_no_runtime_client(engine, digits_dist, tmp_path):
    data = yaml.safe_load(write_recipe(tmp_path / "r.yaml", False).read_text())
    data["targets"] = [{"kind": "lambda-image", "python": host_python()}]
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(cli, ["build", str(tmp_path / "r.yaml"), "--out", str(tmp_path / "o"),
                                      "--cache-dir", str(digits_dist.cache)])
    assert result.exit_code == 0, result.output
    dockerfile = (tmp_path / "o" / "images" / "lambda-image" / "Dockerfile").read_text()
    assert f"FROM public.ecr.aws/lambda/python:{host_python()}" in dockerfile
    assert "ENTRYPOINT" not in dockerfile and 'CMD ["handler.handler"]' in dockerfile


def test_no_engine_writes_context_and_says_so(built, tmp_path, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["build", str(built["recipe"]), "--out", str(out),
                                      "--cache-dir", str(built["cache"])])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert all(a["details"]["image"] is None for a in report["artifacts"])
    assert any("no image was built" in n and "no container engine answered" in n for n in report["notes"])
    assert (out / "images" / "lambda-image" / "Dockerfile").is_file()

    data = yaml.safe_load(built["recipe"].read_text())
    for t in data["targets"]:
        t["build"] = "required"
    strict = tmp_path / "strict.yaml"
    strict.write_text(yaml.safe_dump(data))
    result = CliRunner().invoke(cli, ["build", str(strict), "--out", str(tmp_path / "o2"),
                                      "--cache-dir", str(built["cache"])])
    assert result.exit_code == 3, result.output
    assert "build: required" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o2").exists()


def _smoke(client, reference: str, tmp_path) -> dict:
    """The Lambda image's own smoke script on one digits sample, networking off, as a non-root user."""
    from modelpack.host import engine as container_engine
    from modelpack.targets.images import LambdaImageTarget

    x = np.load(DIGITS / "digits.npz")["x"][:1]
    (tmp_path / "event.json").write_text(json.dumps({"instances": x.tolist()}))
    os.chmod(tmp_path, 0o755)
    output, _ = container_engine.run(client, reference, ["-c", LambdaImageTarget.smoke_script(None)], files=tmp_path)
    line = next(ln for ln in output.splitlines() if "MODELPACK_SMOKE " in ln)
    return json.loads(line.split("MODELPACK_SMOKE ", 1)[1])


def test_pushed_image_pulls_back_by_digest_and_serves(built, registry, tmp_path):
    import docker

    art = next(a for a in built["report"]["artifacts"] if a["target"] == "lambda-image")
    pushed = art["details"]["image"]["push"]
    assert pushed["digest"].startswith("sha256:") and pushed["pinned"] == f"{registry}/digits/lambda@{pushed['digest']}"
    client = docker.from_env()
    # Pull through podman's own endpoint: its Docker-compatible pull has no switch for a plain-HTTP registry
    # (Docker itself treats loopback registries as plain HTTP and pulls with client.images.pull).
    response = client.api._post(client.api.base_url + "/v4.0.0/libpod/images/pull",
                                params={"reference": pushed["pinned"], "tlsVerify": "false"})
    assert response.status_code == 200, response.text[-500:]
    pulled = client.images.get(pushed["pinned"])
    assert pulled.id == art["details"]["image"]["image_id"]
    answer = _smoke(client, pushed["pinned"], tmp_path)
    assert np.asarray(answer["predictions"]).shape[0] == 1 and answer == _smoke(client, art["details"]["tag"], tmp_path)


def test_publish_pushes_a_built_image_and_prints_its_digest(built, registry):
    from urllib.request import Request, urlopen

    result = CliRunner().invoke(cli, ["publish", str(built["out"]), "--target", "azure-image",
                                      "--repository", f"{registry}/digits/azure"])
    assert result.exit_code == 0, result.output
    digest = next(ln.split(": ", 1)[1] for ln in result.output.splitlines() if ln.startswith("digest: "))
    request = Request(f"http://{registry}/v2/digits/azure/manifests/{digest}", method="HEAD", headers={"Accept": ", ".join([
        "application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"])})
    with urlopen(request, timeout=10) as response:
        assert response.headers["Docker-Content-Digest"] == digest
    refused = CliRunner().invoke(cli, ["publish", str(built["out"]), "--target", "lambda-image", "--repository",
                                       f"{registry}/digits/lambda", "--dry-run"])
    assert refused.exit_code == 0 and "docker.push" in refused.output
