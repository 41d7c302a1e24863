"""The AppConfigData emulator, driven by boto3's own ``appconfigdata`` client (a client nobody here wrote)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError, ReadTimeoutError
from hypothesis import given, settings
from hypothesis import strategies as st

from confstage.testing import AppConfigServer


class FakeClock:
    """Wall seconds that move only when told."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(name="clock")
def fixture_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(name="server")
def fixture_server(clock: FakeClock) -> Iterator[AppConfigServer]:
    with AppConfigServer(clock=clock) as server:
        yield server


def client(server: AppConfigServer, **config: Any) -> Any:
    settings_ = BotoConfig(retries={"mode": "standard", "total_max_attempts": 1}, **config)
    return boto3.client("appconfigdata", endpoint_url=server.endpoint, region_name="us-east-1", config=settings_)


def start(data: Any, app: str = "app", env: str = "PRD", profile: str = "main", **extra: Any) -> str:
    answer = data.start_configuration_session(
        ApplicationIdentifier=app, EnvironmentIdentifier=env, ConfigurationProfileIdentifier=profile, **extra
    )
    token: str = answer["InitialConfigurationToken"]
    return token


def code_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, int]:
    return exc.value.response["Error"]["Code"], exc.value.response["ResponseMetadata"]["HTTPStatusCode"]


def test_a_session_answers_the_deployed_content_then_nothing_until_it_changes(
    server: AppConfigServer, clock: FakeClock
) -> None:
    """The first poll carries the content and headers; later polls are empty until a new deployment."""
    server.deploy("app", "PRD", "main", {"db_url": "postgres://prd", "port": 5432})
    data = client(server)
    first = data.get_latest_configuration(ConfigurationToken=start(data, RequiredMinimumPollIntervalInSeconds=30))
    assert json.loads(first["Configuration"].read()) == {"db_url": "postgres://prd", "port": 5432}
    assert first["ContentType"] == "application/json"
    assert first["VersionLabel"] == "1"
    assert first["NextPollIntervalInSeconds"] == 30
    clock.tick(30)
    second = data.get_latest_configuration(ConfigurationToken=first["NextPollConfigurationToken"])
    assert second["Configuration"].read() == b""
    assert server.deploy("app", "PRD", "main", "plain text", content_type="text/plain") == "2"
    clock.tick(30)
    third = data.get_latest_configuration(ConfigurationToken=second["NextPollConfigurationToken"])
    assert third["Configuration"].read() == b"plain text"
    assert (third["ContentType"], third["VersionLabel"]) == ("text/plain", "2")
    assert server.requests == ["StartConfigurationSession", *["GetLatestConfiguration"] * 3]


def test_a_token_is_single_use(server: AppConfigServer) -> None:
    """A token already used is a BadRequestException; the token it returned still works."""
    server.deploy("app", "PRD", "main", {"a": "1"})
    data = client(server)
    token = start(data)
    answer = data.get_latest_configuration(ConfigurationToken=token)
    with pytest.raises(ClientError) as exc:
        data.get_latest_configuration(ConfigurationToken=token)
    assert code_of(exc) == ("BadRequestException", 400)
    assert exc.value.response["Details"]["InvalidParameters"]["ConfigurationToken"]["Problem"] == "Corrupted"
    assert answer["NextPollConfigurationToken"] != token


def test_an_early_poll_is_refused_and_leaves_the_token_usable(server: AppConfigServer, clock: FakeClock) -> None:
    """Polling before the interval is PollIntervalNotSatisfied; after it, the same token answers."""
    server.deploy("app", "PRD", "main", {"a": "1"})
    data = client(server)
    token = data.get_latest_configuration(ConfigurationToken=start(data))["NextPollConfigurationToken"]
    clock.tick(59)
    with pytest.raises(ClientError) as exc:
        data.get_latest_configuration(ConfigurationToken=token)
    assert code_of(exc) == ("BadRequestException", 400)
    assert exc.value.response["Details"]["InvalidParameters"]["ConfigurationToken"]["Problem"] == (
        "PollIntervalNotSatisfied"
    )
    clock.tick(1)
    assert data.get_latest_configuration(ConfigurationToken=token)["Configuration"].read() == b""


def test_a_token_expires_after_24_hours(server: AppConfigServer, clock: FakeClock) -> None:
    """A token older than 24 hours is Expired."""
    server.deploy("app", "PRD", "main", {"a": "1"})
    data = client(server)
    token = start(data)
    clock.tick(24 * 3600 + 1)
    with pytest.raises(ClientError) as exc:
        data.get_latest_configuration(ConfigurationToken=token)
    assert exc.value.response["Details"]["InvalidParameters"]["ConfigurationToken"]["Problem"] == "Expired"


@pytest.fixture(scope="module", name="shared")
def fixture_shared() -> Iterator[tuple[AppConfigServer, Any]]:
    """One server with a deployment, and a boto3 client of it, for generated inputs."""
    with AppConfigServer() as server:
        server.deploy("app", "PRD", "main", {"a": "1"})
        yield server, client(server)


@settings(max_examples=25, deadline=None)
@given(made_up=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=80))
def test_a_made_up_token_is_corrupted(shared: tuple[AppConfigServer, Any], made_up: str) -> None:
    """Any token the server did not issue is refused as a BadRequestException, never served."""
    with pytest.raises(ClientError) as exc:
        shared[1].get_latest_configuration(ConfigurationToken=made_up)
    assert code_of(exc) == ("BadRequestException", 400)


@pytest.mark.parametrize(
    ("app", "env", "profile", "kind"),
    [
        ("nope", "PRD", "main", "Application"),
        ("app", "nope", "main", "Environment"),
        ("app", "PRD", "nope", "ConfigurationProfile"),
    ],
)
def test_unknown_identifiers_are_resource_not_found(
    server: AppConfigServer, app: str, env: str, profile: str, kind: str
) -> None:
    """Starting a session on an unknown application, environment or profile names which one."""
    server.deploy("app", "PRD", "main", {"a": "1"})
    with pytest.raises(ClientError) as exc:
        start(client(server), app, env, profile)
    assert code_of(exc) == ("ResourceNotFoundException", 404)
    assert exc.value.response["ResourceType"] == kind


def test_a_poll_interval_out_of_bounds_is_a_bad_request(server: AppConfigServer) -> None:
    """RequiredMinimumPollIntervalInSeconds below 15 is refused (boto3 refuses it before sending; a raw POST)."""
    server.deploy("app", "PRD", "main", {"a": "1"})
    body = {
        "ApplicationIdentifier": "app",
        "EnvironmentIdentifier": "PRD",
        "ConfigurationProfileIdentifier": "main",
        "RequiredMinimumPollIntervalInSeconds": 5,
    }
    url = f"{server.endpoint}/configurationsessions"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")  # noqa: S310
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(request, timeout=5)  # noqa: S310 - the loopback emulator
    assert exc.value.code == 400
    assert exc.value.headers["x-amzn-ErrorType"] == "BadRequestException"
    exc.value.close()


def test_fail_next_injects_errors_then_recovers(server: AppConfigServer) -> None:
    """``fail_next(1, status=503)`` fails one request with an AWS error; the next one is served."""
    server.deploy("app", "PRD", "main", {"a": "1"})
    data = client(server)
    server.fail_next(1, status=503)
    with pytest.raises(ClientError) as exc:
        start(data)
    assert code_of(exc) == ("InternalServerException", 503)
    assert start(data)
    assert server.requests == ["StartConfigurationSession", "StartConfigurationSession"]


def test_a_hanging_request_times_the_client_out(server: AppConfigServer) -> None:
    """``fail_next(hang=…)`` holds an answer: a client with a short read timeout gives up."""
    server.deploy("app", "PRD", "main", {"a": "1"})
    server.fail_next(1, status=None, hang=5.0)
    with pytest.raises(ReadTimeoutError):
        start(client(server, read_timeout=0.2))


def test_the_agent_path_serves_the_deployment_without_a_session(server: AppConfigServer) -> None:
    """The extension's local path answers the content, its type and version; 404 for what is not deployed."""
    server.deploy("app", "PRD", "main", {"a": "1"})
    url = f"{server.agent_url}/applications/app/environments/PRD/configurations/main"
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the loopback emulator
        assert json.loads(response.read()) == {"a": "1"}
        assert response.headers["Configuration-Version"] == "1"
        assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(urllib.error.HTTPError) as exc:
        urllib.request.urlopen(url.replace("PRD", "DEV"), timeout=5)  # noqa: S310
    assert exc.value.code == 404
    exc.value.close()
    assert server.requests == ["Agent", "Agent"]
