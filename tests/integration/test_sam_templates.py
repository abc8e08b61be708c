"""Every template.yaml variant (endpoint, auth, CORS, layouts) passes cfn-lint and `sam validate --lint`.

The templates are written by the same code a build uses, from specs and a small stand-in of the build
context (a template needs only names and settings), so no conversion runs here; test_lambda.py lints the
template of a real build too."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from modelpack.recipe.targets import LambdaFunctionSpec, LambdaSplitSpec
from modelpack.targets import sam
from modelpack.targets.lambda_split import ASL, LambdaSplitTarget, state_machine
from tests.helpers.sam import fake_ctx, layer_info, sam_cli

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
CORS = {"allow_origins": ["https://example.org"], "allow_methods": ["POST", "GET"], "max_age_s": 600}

FUNCTION_VARIANTS = {
    "url-iam": {},
    "url-public-cors": {"auth": "none", "cors": CORS},
    "url-alias-provisioned": {"provisioned_concurrency": 2, "warmer_schedule": "rate(5 minutes)"},
    "api-iam": {"endpoint": "http-api", "route": "v1/predict"},
    "api-public-cors": {"endpoint": "http-api", "auth": "none", "cors": CORS},
    "no-endpoint": {"endpoint": "none"},
    "url-model-source-redis": {"model_source": "s3://models-bucket/digits.onnx", "cache": {"kind": "redis"}},
    "url-snapstart": {"snapstart": True},
    "api-snapstart-source-warmer": {"snapstart": True, "endpoint": "http-api", "warmer_schedule": "rate(5 minutes)",
                                    "model_source": "s3://models-bucket/digits.onnx"},
}
SPLIT_VARIANTS = {
    "single-url": {"layout": "single"},
    "single-api-layers": {"layout": "single", "parts_in": "layers", "endpoint": "http-api"},
    "per-part-api-iam": {"layout": "per-part"},
    "per-part-api-public-cors": {"layout": "per-part", "auth": "none", "cors": CORS},
    "per-part-none": {"layout": "per-part", "endpoint": "none"},
}


@pytest.fixture(scope="module")
def templates(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("templates")
    out: dict[str, Path] = {}
    for name, opts in FUNCTION_VARIANTS.items():
        spec = LambdaFunctionSpec(kind="lambda-function", **opts)
        out[name] = Path(tmp / name / "lambda" / "template.yaml")
        sam.write(fake_ctx(tmp), spec, layer_info(), out[name])
    parts = [{"part": 1}, {"part": 2}]
    for name, opts in SPLIT_VARIANTS.items():
        spec = LambdaSplitSpec(kind="lambda-split", **opts)
        dist = tmp / name
        (dist / "lambda" / "split").mkdir(parents=True)
        (dist / "lambda" / "split" / ASL).write_text(yaml.safe_dump(state_machine(2)))
        art = LambdaSplitTarget(spec)._template(fake_ctx(tmp), spec, layer_info(), dist, parts,
                                                single=spec.layout == "single")
        out[f"split-{name}"] = dist / art.path
    return out


def test_every_variant_passes_cfn_lint(templates):
    cfn_lint = str(Path(sys.executable).parent / "cfn-lint")
    proc = subprocess.run([cfn_lint, *map(str, templates.values())], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_variant_passes_sam_validate_lint(templates):
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "SAM_CLI_TELEMETRY": "0"}

    def validate(path: Path) -> tuple[Path, subprocess.CompletedProcess]:
        return path, subprocess.run([sam_cli(), "validate", "--lint", "-t", str(path)], capture_output=True,
                                    text=True, check=False, env=env, cwd=path.parent, timeout=120)

    with ThreadPoolExecutor(2) as pool:
        for path, proc in pool.map(validate, templates.values()):
            assert proc.returncode == 0, f"{path}:\n{proc.stdout}{proc.stderr}"


def _doc(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_function_url_defaults_to_iam_and_outputs_name_everything(templates):
    doc = _doc(templates["url-iam"])
    fn = doc["Resources"]["ModelFunction"]["Properties"]
    assert fn["FunctionUrlConfig"] == {"AuthType": "AWS_IAM"}
    assert doc["Outputs"]["EndpointUrl"]["Value"] == {"Fn::GetAtt": ["ModelFunctionUrl", "FunctionUrl"]}
    assert doc["Outputs"]["ModelFunctionArn"]["Value"] == {"Fn::GetAtt": ["ModelFunction", "Arn"]}
    assert doc["Outputs"]["LayerVersionArn"]["Value"] == {"Ref": "RuntimeLayer"}


def test_public_access_and_cors_only_when_asked(templates):
    url = _doc(templates["url-public-cors"])["Resources"]["ModelFunction"]["Properties"]["FunctionUrlConfig"]
    assert url["AuthType"] == "NONE" and url["Cors"]["AllowOrigins"] == ["https://example.org"]
    api = _doc(templates["api-iam"])
    assert api["Resources"]["ModelHttpApi"]["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"
    assert api["Resources"]["ModelFunction"]["Properties"]["Events"]["Http"]["Properties"]["Path"] == "/v1/predict"
    assert "Auth" not in _doc(templates["api-public-cors"])["Resources"]["ModelHttpApi"]["Properties"]
    none = _doc(templates["no-endpoint"])
    assert "EndpointUrl" not in none["Outputs"] and "FunctionUrlConfig" not in none["Resources"]["ModelFunction"]["Properties"]


def test_per_part_layout_is_reached_through_its_state_machine(templates):
    doc = _doc(templates["split-per-part-api-iam"])
    integration = doc["Resources"]["ModelHttpApiIntegration"]["Properties"]
    assert integration["IntegrationSubtype"] == "StepFunctions-StartSyncExecution"
    assert doc["Resources"]["ModelHttpApiRoute"]["Properties"]["AuthorizationType"] == "AWS_IAM"
    assert {"EndpointUrl", "StateMachineArn", "Part1FunctionArn", "Part2FunctionArn", "LayerVersionArn"} <= set(doc["Outputs"])
    assert "EndpointUrl" not in _doc(templates["split-per-part-none"])["Outputs"]


@pytest.mark.parametrize("opts, field", [
    ({"kind": "lambda-split", "layout": "per-part", "endpoint": "function-url"}, "endpoint: http-api"),
    ({"kind": "lambda-function", "endpoint": "none", "cors": CORS}, "cors needs an endpoint"),
    ({"kind": "lambda-function", "endpoint": "none", "auth": "none"}, "endpoint is none"),
])
def test_contradicting_endpoint_options_are_refused(opts, field):
    from pydantic import ValidationError
    spec = LambdaSplitSpec if opts["kind"] == "lambda-split" else LambdaFunctionSpec
    with pytest.raises(ValidationError, match=field):
        spec(**opts)


def test_snapstart_applies_to_the_versions_the_alias_publishes(templates):
    for name in ("url-snapstart", "api-snapstart-source-warmer"):
        fn = _doc(templates[name])["Resources"]["ModelFunction"]["Properties"]
        assert fn["SnapStart"] == {"ApplyOn": "PublishedVersions"} and fn["AutoPublishAlias"] == "live"
        assert "ProvisionedConcurrencyConfig" not in fn
    with_source = _doc(templates["api-snapstart-source-warmer"])["Resources"]["ModelFunction"]["Properties"]
    assert with_source["EphemeralStorage"] == {"Size": 512}  # SnapStart refuses more
    assert "SnapStart" not in _doc(templates["url-iam"])["Resources"]["ModelFunction"]["Properties"]
