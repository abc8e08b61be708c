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


def test_a_build_that_made_no_variant_has_its_own_exit_code():
    from modelpack.cli.build import exit_code
    from modelpack.errors import EXIT_BUDGET, EXIT_NO_VARIANT, EXIT_OK
    from modelpack.report.build_report import BuildReport
    from modelpack.report.records import VariantRecord

    def report(*variants, selected=None):
        return BuildReport("0", "r.yaml", "m", {}, {}, variants=list(variants), selected=selected)

    keras, ok, failed = VariantRecord("keras", "keras", "none"), VariantRecord("a", "tflite", "none"), \
        VariantRecord("b", "onnx", "none", status="failed", error="ValueError: no")
    assert exit_code(report(keras, failed)) == EXIT_NO_VARIANT == 4
    assert exit_code(report(keras, ok, failed)) == EXIT_BUDGET  # a variant exists but misses a budget
    assert exit_code(report(keras, ok, selected="a")) == EXIT_OK
    assert len({EXIT_OK, EXIT_BUDGET, 2, 3, EXIT_NO_VARIANT}) == 5
