"""CLI behaviour that needs no TensorFlow: help speed, imports, exit codes."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from modelpack.cli.main import cli
from tests.helpers.paths import DIGITS


def test_help_and_validate_do_not_import_tensorflow():
    code = (
        "import sys; from click.testing import CliRunner; from modelpack.cli.main import cli; "
        "r = CliRunner(); assert r.invoke(cli, ['--help']).exit_code == 0; "
        f"assert r.invoke(cli, ['validate', {str(DIGITS / 'recipe.yaml')!r}]).exit_code == 0; "
        "heavy = [m for m in ('tensorflow', 'keras', 'tf_keras', 'onnxruntime', 'tf2onnx') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_validate_ok_message():
    result = CliRunner().invoke(cli, ["validate", str(DIGITS / "recipe.yaml")])
    assert result.exit_code == 0
    assert "valid recipe 'digits' (7 variants" in result.output


def test_missing_recipe_file_is_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["build", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2
    assert "recipe file not found" in result.output
    assert "Traceback" not in result.output


def test_unknown_command_is_usage_error():
    assert CliRunner().invoke(cli, ["frobnicate"]).exit_code == 2


def test_schema_command_prints_json():
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0 and '"title": "modelpack recipe"' in result.output
