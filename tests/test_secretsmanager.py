"""``secretsmanager://PREFIX``: one JSON secret per stage, one GetSecretValue, every value a secret."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import confstage
from confstage import Config, ConfigurationError, SourceError
from confstage.sources import build_source
from confstage.sources.secretsmanager import SecretsManagerSource

pytestmark = pytest.mark.integration


@pytest.fixture(name="sm")
def fixture_sm(boto: Any) -> Any:
    """A raw Secrets Manager client on the local endpoint."""
    return boto("secretsmanager")


def test_json_secret_loads_the_stage_in_one_request(sm: Any, requests_made: Counter[str], tmp_path: Path) -> None:
    """Every key of ``PREFIX/{STAGE}`` comes from one GetSecretValue and none is written to /tmp."""
    sm.create_secret(Name="myapp/PRD", SecretString=json.dumps({"db_password": "s3cr3t-pw", "api_key": "k-123"}))
    config = Config("secretsmanager://myapp", cache_dir=str(tmp_path / "cache"))

    assert config.get_many(["db_password", "api_key"], stage="PRD") == {"db_password": "s3cr3t-pw", "api_key": "k-123"}
    assert config.get("api_key", stage="PRD") == "k-123"
    assert requests_made == {"secrets-manager.GetSecretValue": 1}  # botocore names the service "secrets-manager"
    fetched = build_source("secretsmanager://myapp").fetch("PRD", ())
    assert fetched.secret == {"db_password", "api_key"}
    cached = [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert not any(b"s3cr3t-pw" in p.read_bytes() for p in cached)


def test_missing_secret_means_no_keys_so_the_chain_falls_through(monkeypatch: pytest.MonkeyPatch, sm: Any) -> None:
    """A stage without a secret has no keys here: the next source answers."""
    monkeypatch.setenv("DEV_db_url", "sqlite://")
    confstage.configure(sources="secretsmanager://myapp,env://", stage="DEV")

    assert confstage.get("db_url") == "sqlite://"
    assert dict(build_source("secretsmanager://myapp").fetch("DEV", ())) == {}


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("password=hunter2", "not valid JSON"),
        ('["hunter2"]', "must be a JSON object of string values, not a JSON array"),
        ('{"port": 5432, "name": "hunter2"}', "the value of key 'port' must be a JSON string, not a JSON number"),
    ],
)
def test_malformed_secret_is_a_clear_error_without_its_content(sm: Any, body: str, problem: str) -> None:
    """A secret that is not a JSON object of strings raises SourceError naming the secret, never quoting it."""
    sm.create_secret(Name="myapp/PRD", SecretString=body)
    with pytest.raises(SourceError, match="myapp/PRD") as info:
        build_source("secretsmanager://myapp").fetch("PRD", ())
    assert problem in str(info.value)
    assert "hunter2" not in str(info.value)
    assert info.value.__cause__ is None or "hunter2" not in str(info.value.__cause__)


def test_unreachable_endpoint_is_a_source_error_naming_the_secret() -> None:
    """A failed call is a SourceError naming the operation and the secret, cause chained."""
    with pytest.raises(SourceError, match=r"secretsmanager:GetSecretValue on myapp/PRD") as info:
        build_source("secretsmanager://myapp").fetch("PRD", ())
    assert info.value.__cause__ is not None


def test_url_forms() -> None:
    """``secretsmanager://a/b`` is the prefix ``a/b``; an empty prefix is a configuration error."""
    source = build_source("secretsmanager://team/app/")
    assert isinstance(source, SecretsManagerSource)
    assert source.secret_id("PRD") == "team/app/PRD"
    with pytest.raises(ConfigurationError, match="needs a prefix"):
        build_source("secretsmanager://")
