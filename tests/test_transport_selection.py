"""CONFSTAGE_TRANSPORT: auto picks lite only inside Lambda with everything it needs, and says why it did not."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confstage.errors import ConfigurationError
from confstage.transport.selection import Choice, choose, environment_credentials, environment_region

LAMBDA = {
    "AWS_LAMBDA_FUNCTION_NAME": "helloStagedWorld",
    "AWS_ACCESS_KEY_ID": "ASIAEXAMPLE",
    "AWS_SECRET_ACCESS_KEY": "secret",
    "AWS_SESSION_TOKEN": "token",
    "AWS_REGION": "eu-west-1",
    "AWS_DEFAULT_REGION": "eu-west-1",
    "HOME": "/nonexistent-home",  # the machine's own ~/.aws decides nothing
}


def test_auto_inside_lambda_picks_lite() -> None:
    """A Lambda environment as Lambda makes it (credentials, region, nothing else) gets the lite transport."""
    choice = choose(LAMBDA)
    assert choice == Choice("lite", choice.reason)
    assert "inside Lambda" in choice.reason


FALLBACKS = [
    ({"AWS_LAMBDA_FUNCTION_NAME": ""}, "outside Lambda"),
    ({"AWS_ACCESS_KEY_ID": ""}, "AWS_ACCESS_KEY_ID"),
    ({"AWS_SECRET_ACCESS_KEY": ""}, "AWS_SECRET_ACCESS_KEY"),
    ({"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}, "AWS_REGION"),
    ({"AWS_PROFILE": "dev"}, "AWS_PROFILE"),
    ({"AWS_DEFAULT_PROFILE": "dev"}, "AWS_DEFAULT_PROFILE"),
    ({"AWS_CONFIG_FILE": "/opt/aws/config"}, "AWS_CONFIG_FILE"),
    ({"AWS_SHARED_CREDENTIALS_FILE": "/opt/aws/credentials"}, "AWS_SHARED_CREDENTIALS_FILE"),
    ({"AWS_USE_FIPS_ENDPOINT": "true"}, "AWS_USE_FIPS_ENDPOINT"),
    ({"AWS_USE_DUALSTACK_ENDPOINT": "TRUE"}, "AWS_USE_DUALSTACK_ENDPOINT"),
    ({"AWS_CA_BUNDLE": "/opt/ca.pem"}, "AWS_CA_BUNDLE"),
    ({"REQUESTS_CA_BUNDLE": "/opt/ca.pem"}, "REQUESTS_CA_BUNDLE"),
    ({"HTTPS_PROXY": "http://proxy:3128"}, "HTTPS_PROXY"),
    ({"http_proxy": "http://proxy:3128"}, "http_proxy"),
    ({"AWS_ACCOUNT_ID": "123456789012"}, "AWS_ACCOUNT_ID"),
    ({"CONFSTAGE_SOURCES": "env://, s3://cfg--usw2-az1--x-s3/app"}, "directory bucket"),
    ({"CONFSTAGE_TRANSPORT": "botocore"}, "CONFSTAGE_TRANSPORT=botocore"),
]


@pytest.mark.parametrize(("change", "reason"), FALLBACKS, ids=[reason for _, reason in FALLBACKS])
def test_auto_falls_back_to_botocore_and_says_why(change: dict[str, str], reason: str) -> None:
    """Anything only botocore honours sends auto to botocore, with a reason naming it."""
    choice = choose({**LAMBDA, **change})
    assert choice.name == "botocore"
    assert reason in choice.reason


def test_settings_lite_handles_itself_keep_lite() -> None:
    """Endpoint overrides, the S3/STS endpoint switches and disabled account endpoints do not need botocore."""
    handled = {
        "AWS_ENDPOINT_URL": "http://localhost:4566",
        "AWS_ENDPOINT_URL_DYNAMODB": "http://localhost:8000",
        "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT": "regional",
        "AWS_STS_REGIONAL_ENDPOINTS": "legacy",
        "AWS_ACCOUNT_ID": "123456789012",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "AWS_USE_FIPS_ENDPOINT": "false",
        "CONFSTAGE_SOURCES": "dynamodb://cfg s3://plain-bucket/app",
    }
    assert choose({**LAMBDA, **handled}).name == "lite"


def test_home_aws_config_means_botocore(tmp_path: Path) -> None:
    """A ~/.aws/config shipped in the image is read by botocore, so auto leaves the reads to it."""
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / "config").write_text("[default]\nregion = us-east-1\n")
    environ = {**LAMBDA, "HOME": str(tmp_path)}
    assert "~/.aws/config" in choose(environ).reason


def test_forced_lite() -> None:
    """CONFSTAGE_TRANSPORT=lite is obeyed outside Lambda and with a CA bundle (which lite honours)."""
    environ = {
        **LAMBDA,
        "AWS_LAMBDA_FUNCTION_NAME": "",
        "AWS_CA_BUNDLE": "/opt/ca.pem",
        "CONFSTAGE_TRANSPORT": " Lite ",
    }
    assert choose(environ) == Choice("lite", "CONFSTAGE_TRANSPORT=lite")


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"AWS_ACCESS_KEY_ID": ""}, "AWS_ACCESS_KEY_ID"),
        ({"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}, "AWS_REGION"),
        ({"AWS_USE_FIPS_ENDPOINT": "true"}, "AWS_USE_FIPS_ENDPOINT"),
        ({"ALL_PROXY": "socks5://p"}, "ALL_PROXY"),
    ],
)
def test_forced_lite_it_cannot_serve_is_a_configuration_error(change: dict[str, str], named: str) -> None:
    """Forcing lite where it cannot work fails loudly, naming the variable, instead of quietly using botocore."""
    with pytest.raises(ConfigurationError, match=named):
        choose({**LAMBDA, "CONFSTAGE_TRANSPORT": "lite", **change})


@settings(deadline=None)  # a loaded CI machine is no reason to fail
@given(st.text(max_size=12).filter(lambda v: v.strip().lower() not in ("", "auto", "botocore", "lite")))
def test_unknown_transport_is_a_configuration_error(value: str) -> None:
    """Any other CONFSTAGE_TRANSPORT value is refused, naming the choices."""
    with pytest.raises(ConfigurationError, match="auto, botocore, lite"):
        choose({**LAMBDA, "CONFSTAGE_TRANSPORT": value})


def test_environment_credentials_and_region() -> None:
    """Credentials need both keys (the token is optional, AWS_SECURITY_TOKEN as botocore's fallback); region order."""
    creds = environment_credentials({"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SECURITY_TOKEN": "t"})
    assert creds is not None
    assert (creds.access_key, creds.secret_key, creds.token) == ("a", "s", "t")
    assert environment_credentials({"AWS_ACCESS_KEY_ID": "a"}) is None
    assert environment_region({"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "us-east-2"}) == "us-east-2"
    assert environment_region({"AWS_REGION": "eu-west-1"}) == "eu-west-1"
    assert environment_region({}) is None


SNAPSTART = {  # what a SnapStart function's environment holds instead of key variables
    **{k: v for k, v in LAMBDA.items() if not k.startswith(("AWS_ACCESS_KEY_ID", "AWS_SECRET", "AWS_SESSION"))},
    "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:9001/2021-04-23/credentials",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN": "token",
}


def test_auto_picks_lite_for_container_credentials() -> None:
    """SnapStart's container credentials endpoint (or ECS's relative URI) keeps the reads on lite."""
    choice = choose(SNAPSTART)
    assert choice.name == "lite"
    assert "container credentials" in choice.reason
    ecs = {k: v for k, v in SNAPSTART.items() if not k.startswith("AWS_CONTAINER")}
    assert choose({**ecs, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/x"}).name == "lite"
    assert choose({**SNAPSTART, "CONFSTAGE_TRANSPORT": "lite", "AWS_LAMBDA_FUNCTION_NAME": ""}).name == "lite"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": ""}, "AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        ({"AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.0.0.1/creds"}, "not allowed over http"),
        ({"AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/token", "AWS_ROLE_ARN": "arn:aws:iam::1:role/r"}, "web-identity"),
        ({"AWS_PROFILE": "dev"}, "AWS_PROFILE"),
        ({"AWS_REGION": "", "AWS_DEFAULT_REGION": ""}, "AWS_REGION"),
    ],
)
def test_container_environments_botocore_serves(change: dict[str, str], reason: str) -> None:
    """No endpoint, one on a host botocore refuses, a web identity (botocore tries it first) or anything else
    only botocore honours: auto picks botocore, and a forced lite refuses the credential problems."""
    choice = choose({**SNAPSTART, **change})
    assert choice.name == "botocore"
    assert reason in choice.reason


def test_key_variables_beside_a_container_endpoint_are_the_credentials() -> None:
    """With both, the key variables are used (botocore's order), with the reason for environment credentials."""
    choice = choose({**LAMBDA, "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://10.0.0.1/creds"})
    assert choice.name == "lite"
    assert "credentials and region in the environment" in choice.reason
