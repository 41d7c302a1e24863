"""boto3 clients: made once per process, bounded in time, region taken from AWS_REGION when alone."""

from __future__ import annotations

import pytest

from confstage import ConfigurationError, aws


def test_clients_are_made_once_and_reused() -> None:
    """The same service gives the same client until reset()."""
    first = aws.client("dynamodb")
    assert aws.client("dynamodb") is first
    aws.reset()
    assert aws.client("dynamodb") is not first


def test_aws_region_alone_sets_the_region(monkeypatch: pytest.MonkeyPatch) -> None:
    """With only AWS_REGION set (as outside Lambda), clients use it rather than failing with NoRegionError."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.setenv("AWS_REGION", "eu-west-3")
    assert aws.client("ssm").meta.region_name == "eu-west-3"


def test_timeouts_and_retries_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """CONFSTAGE_CONNECT_TIMEOUT, CONFSTAGE_READ_TIMEOUT and CONFSTAGE_MAX_ATTEMPTS shape every client."""
    monkeypatch.setenv("CONFSTAGE_CONNECT_TIMEOUT", "0.25")
    monkeypatch.setenv("CONFSTAGE_READ_TIMEOUT", "1.5")
    monkeypatch.setenv("CONFSTAGE_MAX_ATTEMPTS", "4")
    config = aws.client("kms").meta.config
    assert (config.connect_timeout, config.read_timeout) == (0.25, 1.5)
    assert config.retries == {"mode": "standard", "total_max_attempts": 4}


def test_a_bad_timeout_is_a_configuration_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A malformed timeout names the variable."""
    monkeypatch.setenv("CONFSTAGE_READ_TIMEOUT", "soon")
    with pytest.raises(ConfigurationError, match="CONFSTAGE_READ_TIMEOUT"):
        aws.client("kms")
