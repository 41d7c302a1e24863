"""The global options: declared once on the group, accepted after the command name, passed on as arguments."""

from __future__ import annotations

import os

import click
import pytest

from confstage.cli.options import Settings, hoist
from confstage.transport.botocore import BotocoreTransport

from ._cli import invoke


@pytest.mark.parametrize(
    ("args", "hoisted"),
    [
        (["get", "k", "--stage", "PRD"], ["--stage", "PRD", "get", "k"]),
        (["--stage", "DEV", "get", "k", "--stage=PRD"], ["--stage", "DEV", "--stage=PRD", "get", "k"]),
        (
            ["put", "k", "--file", "f", "--output", "json", "--", "--stage"],
            ["--output", "json", "put", "k", "--file", "f", "--", "--stage"],
        ),
        (["--version"], ["--version"]),
        (["get", "k"], ["get", "k"]),
    ],
)
def test_options_after_the_command_go_in_front_of_it(args: list[str], hoisted: list[str]) -> None:
    """A global option after the command name moves before it (after any given there: it wins); '--' ends the moves."""
    assert hoist(args) == hoisted


def test_sources_after_the_command_replace_those_before() -> None:
    """--source is repeatable: given after the command name, it replaces the ones given before, as a stage would."""
    args = ["--source", "env://", "get", "k", "--source", "ssm:///a", "--source=s3://b"]
    assert hoist(args) == ["--source", "ssm:///a", "--source=s3://b", "get", "k"]


def test_an_option_without_its_value_is_a_usage_error() -> None:
    """``get k --stage`` says the option needs a value instead of taking the command name for one."""
    with pytest.raises(click.UsageError, match="'--stage' requires an argument"):
        hoist(["get", "k", "--stage"])


def test_only_command_line_values_reach_the_transport() -> None:
    """Region, profile and endpoint from the command line configure the transport; the environment's are botocore's."""
    from_env = Settings(region="eu-west-1", endpoint_url="http://env:1", given=frozenset())
    given = Settings(region="eu-west-1", endpoint_url="http://cli:1", given=frozenset({"region", "endpoint_url"}))
    env_transport, cli_transport = from_env.transport(), given.transport()
    assert isinstance(env_transport, BotocoreTransport)
    assert isinstance(cli_transport, BotocoreTransport)
    assert (env_transport.region, env_transport.endpoint_url) == (None, None)
    assert (cli_transport.region, cli_transport.endpoint_url) == ("eu-west-1", "http://cli:1")
    assert given.transport() is cli_transport  # one transport per run


def test_the_cli_never_writes_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """--region, --profile and --endpoint-url leave os.environ as it was."""
    before = dict(os.environ)
    invoke(
        "get",
        "k",
        "--stage",
        "DEV",
        "--region",
        "eu-west-2",
        "--endpoint-url",
        "http://127.0.0.1:9",
        env={"DEV_k": "v"},
    )
    assert dict(os.environ) == before


def test_environment_variables_stand_in_for_options() -> None:
    """CONFSTAGE_STAGE, CONFSTAGE_SOURCES and CONFSTAGE_OUTPUT are the options' defaults, named in --help."""
    result = invoke(
        "get",
        "k",
        env={"CONFSTAGE_STAGE": "DEV", "CONFSTAGE_SOURCES": "env://", "CONFSTAGE_OUTPUT": "json", "DEV_k": "v"},
    )
    assert result.exit_code == 0, result.output
    assert '"value": "v"' in result.stdout
    assert "CONFSTAGE_SOURCES" in invoke("--help").stdout
