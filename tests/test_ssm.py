"""``ssm:///PATH``: a stage loaded by path, paginated, SecureStrings decrypted and kept off disk."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import confstage
from confstage import Config, ConfigurationError, KeyNotFoundError, SourceError
from confstage.sources import build_source
from confstage.sources.ssm import SSMSource
from confstage.testing import MockTransport
from confstage.transport import AwsError, AwsRequest

pytestmark = pytest.mark.integration


@pytest.fixture(name="ssm")
def fixture_ssm(boto: Any) -> Any:
    """A raw SSM client on the local endpoint."""
    return boto("ssm")


def put(ssm: Any, name: str, value: str, kind: str = "String") -> None:
    ssm.put_parameter(Name=name, Value=value, Type=kind, Overwrite=True)


def test_stage_of_25_keys_costs_three_requests(ssm: Any, requests_made: Counter[str]) -> None:
    """25 parameters load in ⌈25/10⌉ = 3 GetParametersByPath requests, every page followed."""
    for i in range(25):
        put(ssm, f"/app/PRD/key{i:02d}", f"value-{i}")
    put(ssm, "/app/DEV/key00", "dev-value")
    config = Config("ssm:///app")

    values = config.get_many([f"key{i:02d}" for i in range(25)], stage="PRD")

    assert values == {f"key{i:02d}": f"value-{i}" for i in range(25)}
    assert requests_made["ssm.GetParametersByPath"] == 3
    assert config.get("key24", stage="PRD") == "value-24"
    assert requests_made["ssm.GetParametersByPath"] == 3  # the whole stage is cached
    assert config.get("key00", stage="DEV") == "dev-value"


def test_securestring_is_decrypted_and_never_written_to_tmp(ssm: Any, tmp_path: Path) -> None:
    """A SecureString is served decrypted, reported as secret, and absent from the /tmp cache."""
    put(ssm, "/app/PRD/db_password", "hunter2-secret", "SecureString")
    put(ssm, "/app/PRD/db_host", "db.internal")
    config = Config("ssm:///app", cache_dir=str(tmp_path / "cache"))

    assert config.get("db_password", stage="PRD") == "hunter2-secret"
    assert config.get("db_host", stage="PRD") == "db.internal"
    fetched = SSMSource("/app").fetch("PRD", ())
    assert fetched.secret == {"db_password"}
    on_disk = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert b"db.internal" in on_disk  # the plain String was persisted...
    assert b"hunter2-secret" not in on_disk  # ...the SecureString was not


def test_nested_names_become_keys_with_slashes(ssm: Any) -> None:
    """``/app/PRD/db/url`` is the key ``db/url``; ``?recursive=false`` loads direct children only."""
    put(ssm, "/app/PRD/db/url", "postgres://db")
    put(ssm, "/app/PRD/top", "t")
    put(ssm, "/app/PRDX/top", "not this stage")

    assert dict(build_source("ssm:///app").fetch("PRD", ())) == {"db/url": "postgres://db", "top": "t"}
    assert dict(build_source("ssm:///app?recursive=false").fetch("PRD", ())) == {"top": "t"}


def test_missing_key_falls_through_to_the_next_source(ssm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key absent from the stage's path is asked of the next source; absent everywhere it is KeyNotFoundError."""
    put(ssm, "/app/PRD/present", "p")
    monkeypatch.setenv("PRD_only_in_env", "from-env")
    confstage.configure(sources="ssm:///app env://", stage="PRD")

    assert confstage.get("present") == "p"
    assert confstage.get("only_in_env") == "from-env"
    with pytest.raises(KeyNotFoundError, match="ssm:///app"):
        confstage.get("nowhere")


def test_url_forms() -> None:
    """``ssm://app/config`` and ``ssm:///app/config`` name the same path; the root path works too."""
    for url in ("ssm://app/config", "ssm:///app/config/"):
        source = build_source(url)
        assert isinstance(source, SSMSource)
        assert source.stage_path("PRD") == "/app/config/PRD"
        assert source.name("PRD", "db/url") == "/app/config/PRD/db/url"
    root = build_source("ssm:///")
    assert isinstance(root, SSMSource)
    assert root.stage_path("PRD") == "/PRD"
    with pytest.raises(ConfigurationError, match="unknown parameter"):
        build_source("ssm:///app?layout=objects")


def test_unreachable_endpoint_is_a_source_error_naming_path_and_operation() -> None:
    """A failed call raises SourceError naming the operation and the path, with the cause chained."""
    source = build_source("ssm:///app")  # the autouse fixture points boto3 at a closed port
    with pytest.raises(SourceError, match=r"ssm:GetParametersByPath on /app/PRD") as info:
        source.fetch("PRD", ())
    assert info.value.__cause__ is not None


def test_access_denied_does_not_fall_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """An AWS error is a SourceError even when a later source holds the key (the credential-chain rule)."""

    def denied(request: AwsRequest) -> dict[str, Any]:
        raise AwsError("AccessDeniedException", "not allowed", status=400)

    monkeypatch.setenv("PRD_k", "v")
    config = Config([SSMSource("/app", transport=MockTransport(denied)), "env://"], stage="PRD", cache_dir="")
    with pytest.raises(SourceError, match="AccessDeniedException"):
        config.get("k")
