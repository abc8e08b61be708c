"""Opt-in monitoring in template.yaml: alarms and a dashboard that cfn-lint accepts, written without a build."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from modelpack.recipe.models import Recipe
from modelpack.recipe.targets import LambdaFunctionSpec
from modelpack.targets import sam
from tests.helpers.paths import DIGITS

pytestmark = pytest.mark.slow  # cfn-lint runs as a subprocess


def template(tmp_path: Path, monitoring: dict | None, budgets: dict | None = None) -> tuple[Path, dict]:
    recipe = Recipe.model_validate({"name": "digits", "model": {"path": str(DIGITS / "model.keras")}, "budgets": budgets or {}})
    spec = LambdaFunctionSpec.model_validate({"kind": "lambda-function", "memory_mb": 512,
                                              **({"monitoring": monitoring} if monitoring is not None else {})})
    ctx = SimpleNamespace(recipe=recipe, report=SimpleNamespace(memory=None, notes=[], selected="tflite-int8"))
    path = tmp_path / "lambda" / "template.yaml"
    sam.write(ctx, spec, None, path)
    return path, yaml.safe_load(path.read_text())["Resources"]


def cfn_lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(Path(sys.executable).parent / "cfn-lint"), str(path)], capture_output=True, text=True,
                          check=False, env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin"})


def test_alarms_and_dashboard_pass_cfn_lint(tmp_path):
    topic = "arn:aws:sns:us-east-1:123456789012:model-alerts"
    path, resources = template(tmp_path, {"topic": topic}, budgets={"max_p95_ms": 20})
    assert {"ErrorsAlarm", "ThrottlesAlarm", "DurationP99Alarm", "ColdStartRateAlarm", "ModelLoadAlarm",
            "ModelDashboard"} <= set(resources)
    p99 = resources["DurationP99Alarm"]["Properties"]
    assert p99["ExtendedStatistic"] == "p99" and p99["Threshold"] == 20 and p99["AlarmActions"] == [topic]
    cold = resources["ColdStartRateAlarm"]["Properties"]
    # The handler's EMF metrics: namespace and dimension exactly as the handler writes them.
    assert (cold["Namespace"], cold["Dimensions"]) == ("modelpack", [{"Name": "model", "Value": "digits"}])
    handler = (Path(sam.__file__).parents[1] / "serving" / "lambda" / "handler.py").read_text()
    assert '"Namespace": "modelpack", "Dimensions": [["model"]]' in handler
    body = resources["ModelDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    widgets = json.loads(body)["widgets"]
    assert any(["modelpack", "ModelLoadMs", "model", "digits", {"stat": "Maximum"}] in w["properties"]["metrics"]
               for w in widgets)
    proc = cfn_lint(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_monitoring_is_opt_in_and_partial(tmp_path):
    _, plain = template(tmp_path, None)
    assert not any(k.endswith("Alarm") or k == "ModelDashboard" for k in plain)
    path, only_alarms = template(tmp_path, {"dashboard": False, "p99_ms": 250})
    assert "ModelDashboard" not in only_alarms and only_alarms["DurationP99Alarm"]["Properties"]["Threshold"] == 250
    assert "AlarmActions" not in only_alarms["ErrorsAlarm"]["Properties"]
    proc = cfn_lint(path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_bad_topic_is_a_recipe_error():
    with pytest.raises(ValueError, match="monitoring.topic"):
        LambdaFunctionSpec.model_validate({"kind": "lambda-function", "monitoring": {"topic": "alerts"}})
