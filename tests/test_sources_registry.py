"""The source registry: URLs to sources, and clear errors for bad ones."""

from __future__ import annotations

import pytest

from confstage import Config, ConfigurationError
from confstage.sources import build_source, split_urls
from confstage.sources.env import EnvSource


def test_split_urls_by_whitespace_and_commas_keeping_query_lists() -> None:
    """CONFSTAGE_SOURCES splits on whitespace or commas, but keeps ?keys=a,b whole."""
    assert split_urls("env://, kms-env://?keys=a,b,c\n dynamodb://t") == [
        "env://",
        "kms-env://?keys=a,b,c",
        "dynamodb://t",
    ]
    assert split_urls("kms-env://?keys=a,b,env://") == ["kms-env://?keys=a,b", "env://"]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("nope://x", "unknown scheme 'nope'"),
        ("env://?color=red", "unknown parameter(s) color"),
        ("env://?fallback=maybe", "must be true or false"),
        ("env://?ttl=-1", "from 0 to 31536000"),
        ("env://?ttl=soon", "number of seconds"),
        ("env://?template=NOKEY", "must contain {key}"),
        ("env://host", "takes no host"),
        ("kms-env://?keys=", "at least one name"),
        ("just-a-word", "has no scheme"),
        ("env://?ttl=1&ttl=2", "given twice"),
    ],
)
def test_bad_urls_name_the_url_and_the_problem(url: str, problem: str) -> None:
    """A bad source URL raises ConfigurationError naming the URL and what is wrong."""
    with pytest.raises(ConfigurationError) as info:
        build_source(url)
    assert problem in str(info.value)
    if "://" in url:
        assert url in str(info.value)


def test_ttl_parameter_applies_to_any_source() -> None:
    """?ttl= sets the source's TTL."""
    source = build_source("env://?ttl=12.5")
    assert isinstance(source, EnvSource)
    assert source.ttl == 12.5


def test_no_sources_is_a_configuration_error() -> None:
    """An empty source list is rejected with a hint."""
    with pytest.raises(ConfigurationError, match="CONFSTAGE_SOURCES"):
        Config(" , ", stage="DEV", cache_dir="")


@pytest.mark.parametrize(
    ("name", "value", "problem"),
    [("CONFSTAGE_TTL", "abc", "number of seconds"), ("CONFSTAGE_MAX_STALE", "-5", "from 0 to")],
)
def test_bad_settings_are_configuration_errors(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, problem: str
) -> None:
    """A malformed CONFSTAGE_* number names the variable."""
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError, match=name) as info:
        Config(stage="DEV")
    assert problem in str(info.value)


def test_query_values_are_percent_decoded() -> None:
    """URL parameters are percent-decoded, so an encoded template works like a literal one."""
    source = build_source("env://?template=APP_%7BSTAGE%7D_%7Bkey%7D&fallback=false")
    assert isinstance(source, EnvSource)
    assert source.template == "APP_{STAGE}_{key}"
    assert source.fallback is False
