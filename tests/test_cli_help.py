"""A CLI that tells the truth and helps (issue 24, items 2 and 6), in this process (click's CliRunner).

Without its extra, the console script names the extra in one line and exits 2; ``python -m confstage``
runs the CLI; every ``--help`` lists the options the command accepts, the global ones included; a
mistyped command or option gets a suggestion; shell completion works; ``NO_COLOR`` is honoured.
"""

from __future__ import annotations

import runpy
import sys

import pytest

from confstage.cli import main, missing_extra
from confstage.cli.app import cli
from confstage.cli.options import GLOBAL_OPTIONS

from ._cli import assert_one_line_error, invoke

COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize(
    ("module", "distribution"), [("click", "click"), ("rich", "rich"), ("dotenv", "python-dotenv")]
)
def test_without_the_cli_extra_one_line_names_it_and_exits_2(
    module: str, distribution: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A runtime-only install (``pip install .``): the script says which extra to install, not a traceback."""
    monkeypatch.setitem(sys.modules, module, None)  # what an interpreter without the module sees
    with pytest.raises(SystemExit) as info:
        main(["get", "k"])
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    assert distribution in lines[0]
    assert "pip install -e '.[cli]'" in lines[0]


def test_with_the_cli_extra_nothing_is_missing() -> None:
    """In this environment (every extra installed) the CLI runs."""
    assert missing_extra() is None


def test_python_m_confstage_runs_the_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """``python -m confstage --help`` is the console script's help."""
    monkeypatch.setattr(sys, "argv", ["confstage", "--help"])
    with pytest.raises(SystemExit) as info:
        runpy.run_module("confstage", run_name="__main__")
    assert info.value.code == 0
    assert "Usage: confstage [OPTIONS] COMMAND" in capsys.readouterr().out


def test_the_demo_without_moto_names_a_command_that_works_from_a_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """``confstage[demo]`` is on no index: the hint is ``make demo`` or an editable install."""
    monkeypatch.setitem(sys.modules, "moto.server", None)
    line = assert_one_line_error(invoke("demo"), status=1)
    assert "make demo" in line
    assert "pip install -e '.[demo]'" in line
    assert "pip install 'confstage[demo]'" not in line


@pytest.mark.parametrize("command", COMMANDS)
def test_every_help_lists_the_global_options(command: str) -> None:
    """``confstage COMMAND --help`` shows the global options it accepts after its name (and its own)."""
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    for option in GLOBAL_OPTIONS:
        assert option in result.stdout, (command, option)
    own = [name for param in cli.commands[command].params for name in getattr(param, "opts", ()) if "--" in name]
    for option in own:
        assert option in result.stdout


@pytest.mark.parametrize(
    ("typed", "meant"), [("gte", "get"), ("promot", "promote"), ("lst", "list"), ("rollbak", "rollback")]
)
def test_a_mistyped_command_gets_a_suggestion(typed: str, meant: str) -> None:
    """An unknown command close to a real one is a usage error that names the real one."""
    line = invoke(typed, "k", "--stage", "DEV").stderr.splitlines()[-1]
    assert line == f"Error: No such command '{typed}'. Did you mean '{meant}'?"


def test_a_command_far_from_any_gets_no_suggestion() -> None:
    """No guess when nothing is close."""
    result = invoke("frobnicate")
    assert result.exit_code == 2
    assert "Did you mean" not in result.stderr


@pytest.mark.parametrize(
    ("args", "meant"),
    [
        (("get", "k", "--stag", "DEV"), "--stage"),
        (("list", "--sorce", "env://"), "--source"),
        (("get", "k", "--revael"), "--reveal"),
        (("put", "k", "v", "--stag", "DEV"), "--stage"),  # a command that may take a secret: the option is not repeated
    ],
)
def test_a_mistyped_option_gets_a_suggestion_global_ones_included(args: tuple[str, ...], meant: str) -> None:
    """Click suggests among a command's own options; the global options, accepted after it, count too."""
    result = invoke(*args)
    assert result.exit_code == 2
    assert meant in result.stderr.splitlines()[-1]


def test_bash_completion_is_generated_and_completes_commands() -> None:
    """``_CONFSTAGE_COMPLETE=bash_source confstage`` prints the script; completing ``pro`` gives ``promote``."""
    script = invoke(env={"_CONFSTAGE_COMPLETE": "bash_source"})
    assert script.exit_code == 0
    assert "_confstage_completion" in script.stdout
    done = invoke(env={"_CONFSTAGE_COMPLETE": "bash_complete", "COMP_WORDS": "confstage pro", "COMP_CWORD": "1"})
    assert done.stdout.split() == ["plain,promote"]
    options = invoke(
        env={"_CONFSTAGE_COMPLETE": "bash_complete", "COMP_WORDS": "confstage get k --rev", "COMP_CWORD": "3"}
    )
    assert "plain,--reveal" in options.stdout.split()
