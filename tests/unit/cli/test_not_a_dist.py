"""`modelpack invoke` and `modelpack serve` pointed at a folder that is not a build's output: one sentence naming
the folder and what to point at instead, exit 2, for every target."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from modelpack.cli.main import cli

COMMANDS = [["invoke"], ["invoke", "--target", "azure"], ["invoke", "--target", "lambda-split"],
            ["serve", "--port", "0"], ["serve", "--port", "0", "--target", "azure"]]


@pytest.mark.parametrize("report,why", [(None, "has no report.json"),
                                        ('{"name": "x",', "has a report.json that cannot be read"),
                                        ('{"name": "x"}', "has a report.json without the artifacts list")])
def test_a_folder_that_is_not_a_build_output_is_a_usage_error(tmp_path, report, why):
    folder = tmp_path / "notes"
    folder.mkdir()
    if report is not None:
        (folder / "report.json").write_text(report)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"instances": [[0.0]]}))
    for command in COMMANDS:
        result = CliRunner().invoke(cli, [command[0], str(folder), *command[1:],
                                          *(["-e", str(event)] if command[0] == "invoke" else [])])
        text = " ".join(result.output.split())
        assert result.exit_code == 2, (command, result.output)
        assert f"{folder} {why}" in text and "not the output folder of a modelpack build" in text, text
