"""Help as SAM, az and func users expect it: whole command summaries and examples under every command, each
example a command line the real parser accepts."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from modelpack.cli.main import cli
from tests.unit.docs.test_code_blocks import _make_paths, modelpack_commands, parse, scratch_cwd  # noqa: F401


def commands() -> list[list[str]]:
    found = []
    for name, command in cli.commands.items():
        found.append([name])
        if isinstance(command, click.Group):
            found += [[name, sub] for sub in command.commands]
    return found


def examples_of(help_text: str) -> list[list[str]]:
    _, _, tail = help_text.partition("Examples:\n")
    return modelpack_commands(tail)


def test_top_level_help_shows_whole_summaries():
    text = CliRunner().invoke(cli, ["--help"], terminal_width=100).output
    listed = text.split("Commands:\n", 1)[1].split("Examples:", 1)[0]
    assert "..." not in listed
    for name, command in cli.commands.items():
        first = command.help.split("\n\n")[0].replace("\n", " ").split(". ")[0]
        assert " ".join(first.split()) in " ".join(listed.split()), name
    assert len(examples_of(text)) >= 3


@pytest.mark.parametrize("path", commands(), ids=" ".join)
def test_every_command_has_examples_that_parse(path: list[str], scratch_cwd):  # noqa: F811
    text = CliRunner().invoke(cli, [*path, "--help"]).output
    found = examples_of(text)
    assert found, f"modelpack {' '.join(path)} --help has no examples"
    for args in found:
        _make_paths(args)
        try:
            parse(args)
        except click.exceptions.Exit as exc:
            assert exc.exit_code == 0
