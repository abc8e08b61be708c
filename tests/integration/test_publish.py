"""`modelpack publish --target lambda` against moto's server on loopback, on small dists whose template
is written by the build's own template code (the publish of a real build is in test_lambda.py)."""

from __future__ import annotations

import json

import pytest

from tests.helpers.aws_loopback import client, modelpack, moto_server
from tests.helpers.sam import tiny_dist as make_dist

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def aws():
    with moto_server() as env:
        yield env


def test_dry_run_prints_the_calls_and_makes_none(tmp_path, aws):
    dist = make_dist(tmp_path, auth="none", cors={"allow_origins": ["https://example.org"]})
    proc = modelpack("publish", str(dist), "--function-name", "dry-one", "--dry-run", env=aws)
    assert proc.returncode == 0, proc.stderr
    calls = [line.split(" ", 1)[0] for line in proc.stdout.splitlines() if not line.startswith(("#", "dry run"))]
    assert calls == ["lambda.publish_layer_version", "iam.create_role", "iam.attach_role_policy",
                     "lambda.create_function", "lambda.publish_version", "lambda.create_alias",
                     "lambda.create_function_url_config", "lambda.add_permission"]
    assert "AuthType=NONE" in proc.stdout and "MemorySize=1024" in proc.stdout
    assert client("lambda", aws).list_functions()["Functions"] == []


def test_publish_public_url_with_cors_then_update(tmp_path, aws):
    dist = make_dist(tmp_path, auth="none", cors={"allow_origins": ["https://example.org"]}, timeout_s=12)
    first = modelpack("publish", str(dist), "--function-name", "tiny-public", env=aws)
    assert first.returncode == 0, first.stderr
    lam = client("lambda", aws)
    url = lam.get_function_url_config(FunctionName="tiny-public", Qualifier="live")
    assert url["AuthType"] == "NONE" and url["Cors"]["AllowOrigins"] == ["https://example.org"]
    assert f"endpoint: {url['FunctionUrl']}" in first.stdout
    policy = json.loads(lam.get_policy(FunctionName="tiny-public", Qualifier="live")["Policy"])
    assert any(s["Action"] == "lambda:InvokeFunctionUrl" for s in policy["Statement"])
    conf = lam.get_function_configuration(FunctionName="tiny-public")
    assert conf["Timeout"] == 12 and conf["Runtime"] == "python3.12" and conf["Architectures"] == ["arm64"]
    second = modelpack("publish", str(dist), "--function-name", "tiny-public", env=aws)
    assert second.returncode == 0, second.stderr
    assert lam.get_alias(FunctionName="tiny-public", Name="live")["FunctionVersion"] == "2"
    assert len(lam.list_layer_versions(LayerName="digits-onnxruntime")["LayerVersions"]) >= 2


def test_zip_over_direct_upload_limit_goes_through_s3(tmp_path, aws):
    dist = make_dist(tmp_path, layer_bytes=51 * 1024 * 1024, endpoint="none")
    refused = modelpack("publish", str(dist), "--function-name", "tiny-big", env=aws)
    assert refused.returncode == 2 and "--s3-bucket" in refused.stderr and "Traceback" not in refused.stderr
    client("s3", aws).create_bucket(Bucket="deploy-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    proc = modelpack("publish", str(dist), "--function-name", "tiny-big", "--s3-bucket", "deploy-bucket", env=aws)
    assert proc.returncode == 0, proc.stderr
    keys = [o["Key"] for o in client("s3", aws).list_objects_v2(Bucket="deploy-bucket")["Contents"]]
    assert any(k.endswith("/layer.zip") for k in keys)
    assert "endpoint: none" in proc.stdout


def test_missing_region_and_non_dist_are_usage_errors(tmp_path):
    dist = make_dist(tmp_path)
    no_region = modelpack("publish", str(dist), env={})
    assert no_region.returncode == 2 and "--region" in no_region.stderr
    not_dist = modelpack("publish", str(tmp_path), "--region", "eu-west-1", env={})
    assert not_dist.returncode == 2 and "report.json" in not_dist.stderr
    wrong = modelpack("publish", str(dist), "--target", "gcp", "--region", "eu-west-1", env={})
    assert wrong.returncode == 2 and "lambda" in wrong.stderr
