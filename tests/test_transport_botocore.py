"""The botocore transport: clients made once per transport, bounded in time, botocore's errors in the interface's."""

from __future__ import annotations

import pytest

from confstage import ConfigurationError
from confstage.transport import AwsError, AwsRequest, NetworkError
from confstage.transport.botocore import BotocoreTransport


def test_clients_are_made_once_and_reused() -> None:
    """The same service gives the same client until reset()."""
    transport = BotocoreTransport()
    first = transport.client("dynamodb")
    assert transport.client("dynamodb") is first
    transport.reset()
    assert transport.client("dynamodb") is not first


def test_aws_region_alone_sets_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """With only AWS_REGION set (as outside Lambda), clients use it rather than failing with NoRegionError."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert BotocoreTransport().client("ssm").meta.region_name == "eu-west-3"


def test_region_and_endpoint_given_win_over_the_environment() -> None:
    """A transport made with a region and an endpoint (the CLI's --region, --endpoint-url) gives them to its clients."""
    made = BotocoreTransport(region="eu-west-1", endpoint_url="http://127.0.0.1:1").client("kms")
    assert (made.meta.region_name, made.meta.endpoint_url) == ("eu-west-1", "http://127.0.0.1:1")


def test_timeouts_and_retries_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """CONFSTAGE_CONNECT_TIMEOUT, CONFSTAGE_READ_TIMEOUT and CONFSTAGE_MAX_ATTEMPTS shape every client."""
    monkeypatch.setenv("CONFSTAGE_CONNECT_TIMEOUT", "0.25")
    monkeypatch.setenv("CONFSTAGE_READ_TIMEOUT", "1.5")
    monkeypatch.setenv("CONFSTAGE_MAX_ATTEMPTS", "4")
    config = BotocoreTransport().client("kms").meta.config
    assert (config.connect_timeout, config.read_timeout) == (0.25, 1.5)
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}


def test_a_bad_timeout_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed timeout names the variable."""
    monkeypatch.setenv("CONFSTAGE_READ_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match="CONFSTAGE_READ_TIMEOUT"):
        BotocoreTransport().client("kms")


def test_an_aws_error_comes_out_as_aws_error_with_its_code(aws_endpoint: str) -> None:
    """A service error is an AwsError: its code, its status, the operation, and whether it was throttling."""
    request = AwsRequest("secretsmanager", "GetSecretValue", {"SecretId": "nope"})
    with pytest.raises(AwsError) as caught:
        BotocoreTransport().call(request)
    assert caught.value.code == "ResourceNotFoundException"
    assert 400 <= caught.value.status < 500
    assert caught.value.operation == "secretsmanager:GetSecretValue"
    assert caught.value.throttled is False


def test_no_answer_comes_out_as_network_error_naming_the_failure() -> None:
    """A dead endpoint is a NetworkError naming botocore's exception type, never the request."""
    request = AwsRequest("ssm", "GetParametersByPath", {"Path": "/p/hunter2"}, endpoint_url="http://127.0.0.1:9")
    with pytest.raises(NetworkError) as caught:
        BotocoreTransport().call(request)
    assert "EndpointConnectionError" in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_parameter_error_is_named_without_the_parameters() -> None:
    """botocore's parameter validation quotes the parameters: only its type is kept."""
    request = AwsRequest("ssm", "GetParametersByPath", {"Path": 12345, "Secret": "hunter2"})
    with pytest.raises(NetworkError) as caught:
        BotocoreTransport().call(request)
    assert str(caught.value) == "ParamValidationError"


def test_an_unknown_profile_is_named() -> None:
    """A profile that does not exist says which (its message names the setting, not a request)."""
    with pytest.raises(NetworkError, match="no-such-profile-xyz"):
        BotocoreTransport(profile="no-such-profile-xyz").call(AwsRequest("kms", "ListKeys", {}))
