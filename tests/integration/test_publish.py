"""`modelpack publish --target lambda` against moto's server on loopback, on small dists whose template
is written by the build's own template code (the publish of a real build is in test_lambda.py)."""

from __future__ import annotations

import base64
import hashlib
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
    key = next(k for k in keys if k.endswith("/layer.zip"))
    uploaded = client("s3", aws).get_object(Bucket="deploy-bucket", Key=key)["Body"].read()
    # streamed from the file, whole, under the digest of its bytes
    assert uploaded == (dist / "lambda" / "layer.zip").read_bytes()
    assert hashlib.sha256(uploaded).hexdigest() in key
    assert "endpoint: none" in proc.stdout


def test_missing_region_and_non_dist_are_usage_errors(tmp_path):
    dist = make_dist(tmp_path)
    no_region = modelpack("publish", str(dist), env={})
    assert no_region.returncode == 2 and "--region" in no_region.stderr
    not_dist = modelpack("publish", str(tmp_path), "--region", "eu-west-1", env={})
    assert not_dist.returncode == 2 and "report.json" in not_dist.stderr
    wrong = modelpack("publish", str(dist), "--target", "gcp", "--region", "eu-west-1", env={})
    assert wrong.returncode == 2 and "lambda" in wrong.stderr


def _names(aws) -> dict:
    lam, iam = client("lambda", aws), client("iam", aws)
    return {"functions": sorted(f["FunctionName"] for f in lam.list_functions()["Functions"]),
            "roles": sorted(r["RoleName"] for r in iam.list_roles()["Roles"]),
            "layers": sorted((layer["LayerName"], v["Version"]) for layer in lam.list_layers()["Layers"]
                             for v in lam.list_layer_versions(LayerName=layer["LayerName"])["LayerVersions"])}


def test_dry_run_prints_the_notes_a_real_publish_prints(tmp_path, aws):
    dist = make_dist(tmp_path, warmer_schedule="rate(5 minutes)", endpoint="http-api")
    dry = modelpack("publish", str(dist), "--function-name", "dry-notes", "--dry-run", env=aws)
    assert dry.returncode == 0, dry.stderr
    assert "note: the warmer schedule is created by the template (sam deploy); publish made no schedule." in dry.stdout
    assert "note: the HTTP API endpoint is created by the template" in dry.stdout
    assert not (dist / "publish.json").exists()


@pytest.mark.parametrize("args,why", [
    (["--function-name", "bad;name"], "is not a Lambda function name"),
    (["--function-name", "two\nlines"], "is not a Lambda function name"),
    (["--function-name", "x" * 65], "is not a Lambda function name"),
    (["--function-name", "arn:aws:lambda:eu-west-1:123456789012:function:f"], "is an ARN"),
    (["--region", "mars-1"], "is not a region where Lambda runs"),
    (["--role", "my-role"], "is not an IAM role ARN"),
    (["--s3-bucket", "Bad_Bucket"], "is not an S3 bucket name"),
])
def test_bad_names_are_refused_before_any_call(tmp_path, aws, args, why):
    dist = make_dist(tmp_path)
    before = _names(aws)
    proc = modelpack("publish", str(dist), *args, env=aws)
    assert proc.returncode == 2, proc.stderr
    assert why in proc.stderr and "Traceback" not in proc.stderr
    assert _names(aws) == before and not (dist / "publish.json").exists()


def test_a_service_refusal_is_exit_1_and_names_what_to_clean_up(tmp_path, aws):
    dist = make_dist(tmp_path)
    proc = modelpack("publish", str(dist), "--function-name", "tiny-refused",
                     "--role", "arn:aws:iam::123456789012:role/does-not-exist", env=aws)
    assert proc.returncode == 1, proc.stderr
    assert "CreateFunction refused (InvalidParameterValueException: The role defined for the function" in proc.stderr
    version = json.loads((dist / "publish.json").read_text())["resources"][0]["detail"]
    assert f"Created before that: layer version digits-onnxruntime {version}" in proc.stderr
    assert f"modelpack publish {dist} --delete" in proc.stderr and "Traceback" not in proc.stderr
    cleaned = modelpack("publish", str(dist), "--delete", env=aws)
    assert cleaned.returncode == 0, cleaned.stderr
    assert ("digits-onnxruntime", int(version)) not in _names(aws)["layers"]


def test_delete_removes_exactly_what_publish_created(tmp_path, aws):
    lam, iam = client("lambda", aws), client("iam", aws)
    dist = make_dist(tmp_path, auth="none", cors={"allow_origins": ["https://example.org"]})
    layer_zip = (dist / "lambda" / "layer.zip").read_bytes()
    theirs = lam.publish_layer_version(LayerName="digits-onnxruntime", Content={"ZipFile": layer_zip})["Version"]
    role = iam.create_role(RoleName="bystander-role", AssumeRolePolicyDocument=json.dumps({}))["Role"]["Arn"]
    lam.create_function(FunctionName="bystander", Role=role, Runtime="python3.12", Handler="handler.handler",
                        Code={"ZipFile": (dist / "lambda" / "function.zip").read_bytes()})
    before = _names(aws)["layers"]
    for _ in range(2):  # create, then update: the second publish adds a layer version and a function version
        proc = modelpack("publish", str(dist), "--function-name", "tiny-delete", env=aws)
        assert proc.returncode == 0, proc.stderr
    assert "tiny-delete" in _names(aws)["functions"] and "tiny-delete-modelpack" in _names(aws)["roles"]
    kinds = [r["kind"] for r in json.loads((dist / "publish.json").read_text())["resources"]]
    assert kinds.count("layer-version") == 2 and kinds.count("function") == 1 and "permission" in kinds

    dry = modelpack("publish", str(dist), "--delete", "--dry-run", env=aws)
    assert dry.returncode == 0 and "lambda.delete_function FunctionName=tiny-delete" in dry.stdout, dry.stderr
    assert "tiny-delete" in _names(aws)["functions"]
    proc = modelpack("publish", str(dist), "--delete", env=aws)
    assert proc.returncode == 0, proc.stderr
    after = _names(aws)
    assert "tiny-delete" not in after["functions"] and "tiny-delete-modelpack" not in after["roles"]
    assert after["layers"] == before and ("digits-onnxruntime", theirs) in after["layers"]
    assert "bystander" in after["functions"] and "bystander-role" in after["roles"]
    assert not (dist / "publish.json").exists()
    again = modelpack("publish", str(dist), "--delete", env=aws)
    assert again.returncode == 2 and "created nothing" in again.stderr


def _body(recorded: dict) -> dict:
    """A recorded request's JSON body (moto's recorder keeps bytes base64-encoded and says so)."""
    body = recorded["body"]
    return json.loads(base64.b64decode(body) if recorded.get("body_encoded") else body)


def test_snapstart_is_sent_and_its_version_awaited(tmp_path):
    """moto accepts SnapStart in create_function but neither stores nor applies it (its answers always say
    ApplyOn: None, and versions are never Pending), so what publish sent is read from moto's request recording;
    that Lambda takes the snapshot and restores from it cannot be tested here."""
    recording = tmp_path / "requests.jsonl"
    dist = make_dist(tmp_path, snapstart=True)
    dry = modelpack("publish", str(dist), "--function-name", "tiny-snap", "--dry-run", env={"AWS_REGION": "eu-west-1"})
    assert dry.returncode == 0 and "SnapStart={ApplyOn: PublishedVersions}" in dry.stdout, dry.stdout + dry.stderr
    with moto_server(recording) as env:
        proc = modelpack("publish", str(dist), "--function-name", "tiny-snap", env=env)
        assert proc.returncode == 0, proc.stderr
        sent = [json.loads(line) for line in recording.read_text().splitlines()]
        create = [r for r in sent if r["method"] == "POST" and r["url"].split("?")[0].endswith("/functions")]
        assert len(create) == 1 and _body(create[0])["SnapStart"] == {"ApplyOn": "PublishedVersions"}
        # The version publish made was awaited (its snapshot) before the alias moved to it.
        awaited = [i for i, r in enumerate(sent) if "/functions/tiny-snap/configuration" in r["url"]
                   and "Qualifier=1" in r["url"]]
        aliased = [i for i, r in enumerate(sent) if r["method"] == "POST" and r["url"].endswith("/aliases")]
        assert awaited and aliased and awaited[0] < aliased[0]
        assert client("lambda", env).get_alias(FunctionName="tiny-snap", Name="live")["FunctionVersion"] == "1"
        # Published again without snapstart, the function is told to turn it off.
        plain = make_dist(tmp_path / "plain")
        again = modelpack("publish", str(plain), "--function-name", "tiny-snap", env=env)
        assert again.returncode == 0, again.stderr
        sent = [json.loads(line) for line in recording.read_text().splitlines()]
        update = [r for r in sent if r["method"] == "PUT" and r["url"].endswith("/functions/tiny-snap/configuration")]
        assert _body(update[-1])["SnapStart"] == {"ApplyOn": "None"}
