"""The Next steps commands follow from report.json alone: one block per built target, exact paths."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelpack.report.next_steps import next_steps_markdown, next_steps_text, with_next_steps

REPORT = {"name": "digits", "artifacts": [
    {"target": "lambda-function", "path": "lambda/function.zip"},
    {"target": "lambda-function", "path": "lambda/template.yaml",
     "details": {"kind": "sam-template", "endpoint": "function-url", "auth": "iam"}},
    {"target": "lambda-split", "path": "lambda/split/template.yaml",
     "details": {"kind": "sam-template", "endpoint": "http-api", "auth": "none"}},
    {"target": "azure-functions", "path": "azure/functionapp.zip"},
    {"target": "lambda-image", "path": "images/lambda-image/Dockerfile",
     "details": {"tag": "digits-lambda-image:0.1.0-abc", "image": None}},
    {"target": "azure-image", "path": "images/azure-image/Dockerfile",
     "details": {"tag": "digits-azure-image:0.1.0-abc", "image": {"image_id": "sha256:1"}, "push_to": "reg:5000/az"}},
]}


def test_commands_name_the_dist_and_every_target():
    text = next_steps_text(REPORT, Path("out dir/digits"))
    assert "sam deploy --template-file 'out dir/digits/lambda/template.yaml' --stack-name digits" in text
    assert "modelpack publish 'out dir/digits' --target lambda --region" in text
    assert '--aws-sigv4 "aws:amz:$AWS_REGION:lambda"' in text
    assert "sam deploy --template-file 'out dir/digits/lambda/split/template.yaml'" in text
    assert "config-zip" in text and "--src 'out dir/digits/azure/functionapp.zip'" in text
    assert "func azure functionapp publish \"$APP_NAME\" --no-build" in text
    assert "docker build -t digits-lambda-image:0.1.0-abc 'out dir/digits/images/lambda-image'" in text
    assert "modelpack publish 'out dir/digits' --target azure-image --repository \"reg:5000/az\"" in text
    assert "modelpack serve 'out dir/digits'\n" in text and "modelpack serve 'out dir/digits' --target azure" in text
    assert "modelpack invoke 'out dir/digits' --event 'out dir/digits/events/predict.json'" in text
    public = [line for line in text.splitlines() if line.lstrip().startswith("curl")]
    assert len(public) == 3 and "aws-sigv4" not in public[1]  # the split target's HTTP API is public


@pytest.mark.parametrize("level,fetch", [("function", "az functionapp function keys list"),
                                         ("admin", "az functionapp keys list"), ("anonymous", None)])
def test_a_deployed_azure_app_is_called_with_its_function_key(level, fetch):
    report = {"name": "digits", "artifacts": [{"target": "azure-functions", "path": "azure/functionapp.zip",
                                               "details": {"route": "/api/score", "auth_level": level}}]}
    text = next_steps_text(report, Path("dist/digits"))
    call = next(line for line in text.splitlines() if line.lstrip().startswith("curl -H"))
    assert call.rstrip().endswith('"https://$APP_NAME.azurewebsites.net/api/score"'), call
    assert ("x-functions-key: $KEY" in call) == (fetch is not None)
    if fetch:
        assert fetch in text and "-o tsv" in text


def test_report_section_uses_paths_inside_the_dist():
    md = with_next_steps("# Report\n", REPORT)
    assert md.startswith("# Report\n\n## Next steps")
    assert "modelpack publish . --target lambda" in md and "--src azure/functionapp.zip" in md
    assert next_steps_markdown({"name": "x", "artifacts": []}, Path(".")) == ""
    assert with_next_steps("# Report\n", {"name": "x", "artifacts": []}) == "# Report\n"


def test_serve_step_names_the_configured_route():
    report = {"name": "digits", "artifacts": [
        {"target": "lambda-function", "path": "lambda/function.zip", "details": {"route": "/ml/score"}},
        {"target": "azure-functions", "path": "azure/functionapp.zip", "details": {"route": "/api/v1/classify"}}]}
    serves = [line for line in next_steps_text(report, Path("dist/digits")).splitlines() if "Serve it" in line]
    assert len(serves) == 2 and "/predict" not in " ".join(serves), serves
    assert "POST /ml/score, /v2/..." in serves[0] and "POST /api/v1/classify, /api/v2/..." in serves[1], serves
    older = {"name": "digits", "artifacts": [{"target": "lambda-function", "path": "lambda/function.zip"}]}
    serve = next(line for line in next_steps_text(older, Path("d")).splitlines() if "Serve it" in line)
    assert "the routes it lists" in serve and "/predict" not in serve  # a build that did not record its route
