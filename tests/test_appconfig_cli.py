"""The CLI on ``appconfig://``: reads through get/list/diff, writes refused in one line, the IAM policy."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from confstage.cli.iam import Account, build_policy
from confstage.testing import AppConfigServer

from ._cli import assert_one_line_error, invoke

URL = "appconfig://app/main"


@pytest.fixture(name="server")
def fixture_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[AppConfigServer]:
    """The emulator with a prd and a dev deployment, AppConfigData pointed at it."""
    with AppConfigServer() as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_APPCONFIGDATA", server.endpoint)
        server.deploy("app", "prd", "main", {"db_url": "postgres://prd", "port": 5432, "only_prd": "x"})
        server.deploy("app", "dev", "main", {"db_url": "postgres://dev", "port": 5432, "only_dev": "y"})
        yield server


def test_get_reads_a_key(server: AppConfigServer) -> None:
    """``get`` reads through the chain: a non-string value as its JSON text."""
    result = invoke("--source", URL, "--stage", "PRD", "get", "port")
    assert (result.exit_code, result.stdout) == (0, "5432\n")


def test_list_shows_the_stage_with_its_version_label(server: AppConfigServer) -> None:
    """``list --output json`` gives every key of the deployed document."""
    result = invoke("--source", URL, "--stage", "DEV", "--output", "json", "list")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"db_url": "postgres://dev", "only_dev": "y", "port": "5432"}


def test_diff_compares_two_environments(server: AppConfigServer) -> None:
    """``diff DEV PRD`` reads both environments."""
    result = invoke("--source", URL, "--output", "json", "diff", "DEV", "PRD")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["added"] == {"only_prd": "x"}
    assert report["removed"] == {"only_dev": "y"}
    assert report["changed"] == {"db_url": {"from": "postgres://dev", "to": "postgres://prd"}}


@pytest.mark.parametrize(
    "args",
    [
        ("put", "db_url", "postgres://hunter2"),
        ("delete", "db_url"),
        ("rollback", "db_url", "--to", "1"),
        ("init",),
        ("promote", "DEV", "PRD"),
    ],
)
def test_writes_are_refused_in_one_line(server: AppConfigServer, args: tuple[str, ...]) -> None:
    """Every write says, in one line, that AppConfig deployments belong to the deployment pipeline."""
    result = invoke("--source", URL, "--stage", "PRD", *args)
    line = assert_one_line_error(result, status=2, secret="hunter2")
    assert "appconfig://app/main is read-only here" in line
    assert "deployments belong to the deployment pipeline" in line
    if args[0] != "promote":  # promote reads the stage it copies first
        assert server.requests == []


def test_iam_policy_names_the_profile_for_each_stage() -> None:
    """IDs go into the ARN as they are, one environment per stage through the template; both actions."""
    policy = build_policy(
        ["appconfig://abc1234/pro5678?environment=env{STAGE}"],
        account=Account("aws", "eu-west-1", "123456789012"),
        stages=["1a2b", "9z8y"],
    )
    (statement,) = policy["Statement"]
    assert statement["Action"] == ["appconfig:StartConfigurationSession", "appconfig:GetLatestConfiguration"]
    assert statement["Resource"] == [
        "arn:aws:appconfig:eu-west-1:123456789012:application/abc1234/environment/env1a2b/configuration/pro5678",
        "arn:aws:appconfig:eu-west-1:123456789012:application/abc1234/environment/env9z8y/configuration/pro5678",
    ]


def test_iam_policy_wildcards_names_iam_cannot_match() -> None:
    """Names (IAM matches ids only) are ``*`` in the ARN; no stage asked: every environment."""
    policy = build_policy(["appconfig://my-application/pro5678?via=agent&ttl=30"])
    (statement,) = policy["Statement"]
    assert statement["Resource"] == [
        "arn:${AWS::Partition}:appconfig:${AWS::Region}:${AWS::AccountId}:"
        "application/*/environment/*/configuration/pro5678"
    ]


def test_iam_policy_through_the_cli() -> None:
    """``confstage iam-policy`` prints the AppConfig statement."""
    result = invoke("--source", URL, "--stage", "PRD", "iam-policy")
    assert result.exit_code == 0, result.output
    assert "appconfig:GetLatestConfiguration" in result.stdout


def test_the_demo_deploys_and_reads_an_appconfig_profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """``confstage demo``'s AppConfig part: every key of each stage's deployment read back (JSON text for the rest)."""
    from confstage.cli.demo import APPCONFIG_SEED, _appconfig

    monkeypatch.setenv("AWS_ENDPOINT_URL_APPCONFIGDATA", "set by the demo, restored after the test")
    rows = _appconfig()
    for stage, document in APPCONFIG_SEED.items():
        got = {row["key"]: row["value"] for row in rows if row["stage"] == stage}
        assert got == {
            k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":")) for k, v in document.items()
        }


def test_history_names_the_deployed_version_label(server: AppConfigServer) -> None:
    """``history KEY``: the version label of the document that holds KEY now (AppConfig versions documents)."""
    server.deploy("app", "prd", "main", {"db_url": "postgres://prd2"})
    result = invoke("--source", URL, "--stage", "PRD", "--output", "json", "history", "db_url")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == [
        {
            "version": "2",
            "modified": None,
            "latest": True,
            "secure": False,
            "by": None,
            "by_unknown": "AppConfigData does not say who deployed a version",
        }
    ]
    assert invoke("--source", URL, "--stage", "PRD", "history", "port").exit_code == 1  # gone in version 2
