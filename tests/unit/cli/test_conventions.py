"""The conventions the CLI follows: --json, -q/-v, --color and NO_COLOR, MODELPACK_* variables, stdin events,
progress on a terminal and in logs. None of these needs TensorFlow."""

from __future__ import annotations

import io
import json

import pytest
from click.testing import CliRunner
from rich.console import Console

from modelpack.cli.main import cli
from modelpack.console.progress import Reporter, make_console
from tests.helpers.paths import DIGITS, FIXTURES


def test_validate_json_ok_and_error():
    ok = CliRunner().invoke(cli, ["validate", "--json", str(DIGITS / "recipe.yaml")])
    assert ok.exit_code == 0
    doc = json.loads(ok.stdout)
    assert doc["ok"] is True and doc["name"] == "digits" and "lambda-function" in doc["targets"]
    bad = CliRunner().invoke(cli, ["validate", "--json", str(FIXTURES / "recipes" / "bad-unknown-target.yaml")])
    assert bad.exit_code == 2
    err = json.loads(bad.stdout)  # stdout is one JSON object; the sentence also goes to stderr
    assert err["ok"] is False and err["exit_code"] == 2 and "unknown kind 'gcp-function'" in err["error"]
    assert "unknown kind" in bad.stderr


def test_build_json_reports_a_bad_recipe_as_json(tmp_path):
    result = CliRunner().invoke(cli, ["build", "--json", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2
    assert "recipe file not found" in json.loads(result.stdout)["error"]


def test_quiet_and_verbose_contradict():
    result = CliRunner().invoke(cli, ["-q", "-v", "validate", str(DIGITS / "recipe.yaml")])
    assert result.exit_code == 2 and "contradict" in result.output


def test_options_from_modelpack_environment_variables():
    runner = CliRunner()
    as_json = runner.invoke(cli, ["validate", str(DIGITS / "recipe.yaml")], env={"MODELPACK_VALIDATE_JSON": "1"})
    assert as_json.exit_code == 0 and json.loads(as_json.stdout)["name"] == "digits"
    bad = runner.invoke(cli, ["validate", str(DIGITS / "recipe.yaml")], env={"MODELPACK_COLOR": "purple"})
    assert bad.exit_code == 2 and "'purple' is not one of 'auto', 'always', 'never'" in bad.output
    quiet = runner.invoke(cli, ["--help"], env={"MODELPACK_QUIET": "1"})
    assert quiet.exit_code == 0 and "MODELPACK_<COMMAND>_<OPTION>" in quiet.output


def _progress_output(console: Console, **kwargs) -> str:
    reporter = Reporter(console, **kwargs)
    for i in (1, 2):
        with reporter.stage(i, 2, f"s{i}", f"stage {i} [x]"):
            with reporter.step("inner step"):
                pass
    return console.file.getvalue()


def test_progress_in_a_log_is_timestamped_lines():
    out = _progress_output(Console(file=io.StringIO(), width=120))
    lines = out.splitlines()
    assert lines[0].endswith("] [1/2] stage 1 [x] ...") and lines[0].startswith("[   0.0s]")
    assert any(line.endswith("[2/2] stage 2 [x]: done in 0.0 s") for line in lines)
    assert "\x1b[" not in out


def test_progress_lines_in_a_log_are_never_wrapped():
    """A CI log keeps one timestamped line per message, however narrow the console thinks it is."""
    out = io.StringIO()
    reporter = Reporter(Console(file=out, width=40, color_system=None))
    purpose = "measure size, accuracy, fidelity, latency and cold start of every variant"
    with reporter.stage(6, 11, "measure", purpose):
        pass
    lines = out.getvalue().splitlines()
    assert lines and all(line.startswith("[") for line in lines), lines
    assert any(purpose in line for line in lines)


def test_progress_on_a_terminal_shows_n_of_m_elapsed_and_estimate():
    out = _progress_output(Console(file=io.StringIO(), width=160, force_terminal=True, color_system=None))
    assert "[1/2] stage 1 [x]" in out and "inner step" in out and "1/2" in out and "left ~" in out
    assert "0:00:00" in out  # elapsed and remaining columns


@pytest.mark.parametrize("flags", [{"verbose": True}, {"quiet": True}])
def test_verbose_on_a_terminal_prints_lines_and_quiet_prints_nothing(flags):
    out = _progress_output(Console(file=io.StringIO(), width=160, force_terminal=True, color_system=None), **flags)
    if flags.get("quiet"):
        assert out == ""
    else:
        assert "[1/2] stage 1 [x] ..." in out and "left ~" not in out


def test_color_choices_and_no_color(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    buf = io.StringIO()
    Reporter(make_console("always", buf)).info("[bold]hello[/]")  # markup in a message is printed as is
    assert "\x1b[" in buf.getvalue() and "[bold]hello[/]" in buf.getvalue()
    buf = io.StringIO()
    Reporter(make_console("never", buf)).info("plain")
    assert "\x1b[" not in buf.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    assert make_console("auto").no_color is True
    assert make_console("always").no_color is False  # an explicit --color always wins


def test_invoke_reads_stdin_and_names_a_bad_line(tmp_path):
    result = CliRunner().invoke(cli, ["invoke", str(tmp_path), "--event", "-"], input='{"instances": []}\nnot json\n')
    assert result.exit_code == 2
    assert "standard input, line 2: not valid JSON" in result.stderr and "Traceback" not in result.output


def test_read_events_one_document_or_lines():
    from modelpack.local.invoke_events import read_events

    one = read_events(("-",), io.StringIO('{\n "instances": [[1]]\n}\n'))
    assert [(e.name, e.payload) for e in one] == [("stdin", {"instances": [[1]]})]
    many = read_events(("-",), io.StringIO('{"a": 1}\n\n{"b": 2}\n'))
    assert [(e.name, e.payload) for e in many] == [("stdin:1", {"a": 1}), ("stdin:3", {"b": 2})]


def test_first_invoke_says_what_it_downloads_and_where(tmp_path, monkeypatch):
    from modelpack.local import tools

    monkeypatch.setattr(tools, "CACHE", tmp_path)
    todo = tools.tools_to_fetch("3.12", "x86_64")
    assert len(todo) == 2
    assert "aws-sam-cli" in todo[0] and "48 MB" in todo[0] and str(tmp_path / "rie") in todo[0]
    assert "awslambdaric" in todo[1] and str(tmp_path / "lambda-runtime" / "3.12") in todo[1]
    (tmp_path / "lambda-runtime" / "3.12").mkdir(parents=True)
    (tmp_path / "lambda-runtime" / "3.12" / ".complete").touch()
    assert len(tools.tools_to_fetch("3.12", "x86_64")) == 1


def test_a_step_outside_stages_shows_elapsed_time_on_a_terminal():
    console = Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None)
    with Reporter(console).step("measuring keras"):
        pass
    out = console.file.getvalue()
    assert "measuring keras" in out and "0:00:00" in out and "measuring keras: done in" in out


@pytest.mark.parametrize("width", [60, 80, 100])
def test_the_live_line_keeps_counts_and_times_whole(width):
    """The stage and step texts give way (with an ellipsis); `6/11 0:00:00 left ~ 0:00:00` never does."""
    import re

    console = Console(file=io.StringIO(), width=width, force_terminal=True, color_system=None)
    reporter = Reporter(console)
    with reporter.stage(6, 11, "measure", "measure size, accuracy, fidelity, latency and cold start of every variant"):
        with reporter.step("cold start of tflite-int8 (process 3 of 5)"):
            reporter._progress.refresh()
    reporter._stop_progress()
    lines = [s for s in re.split(r"[\r\n]|\x1b\[[0-9;?]*[A-Za-z]", console.file.getvalue()) if " left ~ " in s]
    assert lines and all(re.search(r"\b\d{1,2}/11 0:00:00 left ~ (0:00:\d\d|-:--:--)\s*$", s) for s in lines), lines
    assert all(len(s.rstrip()) <= width for s in lines)
