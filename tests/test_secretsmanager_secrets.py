"""``secretsmanager://PREFIX?layout=secrets``: one secret per key, a stage loaded 20 secrets a BatchGetSecretValue."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import confstage
from confstage import Config, ConfigurationError, KeyNotFoundError, SourceError
from confstage.sources import build_source
from confstage.sources.secretsmanager import SecretsManagerSource
from confstage.testing import MockTransport
from confstage.transport import AwsError, AwsRequest
from confstage.transport.botocore import add_client_hook

URL = "secretsmanager://app?layout=secrets"
BATCH = "secrets-manager.BatchGetSecretValue"  # botocore's event name for the operation


@pytest.fixture(name="sm")
def fixture_sm(boto: Any) -> Any:
    """A raw Secrets Manager client on the local endpoint."""
    return boto("secretsmanager")


def seed(sm: Any, stage: str, values: dict[str, str], prefix: str = "app") -> None:
    for key, value in values.items():
        sm.create_secret(Name=f"{prefix}/{stage}/{key}", SecretString=value)


def source() -> SecretsManagerSource:
    built = build_source(URL)
    assert isinstance(built, SecretsManagerSource)
    return built


# -- against the local endpoint ------------------------------------------------------------------


@pytest.mark.integration
def test_26_keys_load_in_two_requests_and_stay_off_disk(sm: Any, requests_made: Counter[str], tmp_path: Path) -> None:
    """26 secrets: ⌈26/20⌉ = 2 BatchGetSecretValue requests, every value a secret, none of them in /tmp."""
    values = {f"key{i:02d}": f"s3cr3t-{i:02d}" for i in range(26)}
    seed(sm, "PRD", values)
    config = Config(URL, cache_dir=str(tmp_path / "cache"))

    assert config.get_many(sorted(values), stage="PRD") == values
    assert config.get("key25", stage="PRD") == "s3cr3t-25"
    assert requests_made == {BATCH: 2}
    assert source().fetch("PRD", ()).secret == set(values)
    cached = b"".join(p.read_bytes() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert b"s3cr3t" not in cached


@pytest.mark.integration
@pytest.mark.parametrize(("count", "requests"), [(1, 1), (20, 1), (21, 2), (40, 2), (41, 3)])
def test_pages_of_twenty_are_followed(sm: Any, requests_made: Counter[str], count: int, requests: int) -> None:
    """N secrets cost ⌈N/20⌉ requests here (moto sends no token after a full last page; AWS may, costing one more)."""
    seed(sm, "PRD", {f"k{i:02d}": str(i) for i in range(count)})

    assert len(source().fetch("PRD", ())) == count
    assert requests_made[BATCH] == requests


@pytest.mark.integration
def test_a_stage_never_takes_secrets_of_a_stage_it_prefixes(sm: Any) -> None:
    """Stage PRD reads ``app/PRD/…`` only: not PRD2, PRD_EU, prd or PRDX, nor another prefix's PRD."""
    seed(sm, "PRD", {"db": "prd"})
    seed(sm, "PRD2", {"db": "prd2", "only2": "x"})
    seed(sm, "PRD_EU", {"db": "eu", "only_eu": "x"})
    seed(sm, "prd", {"db": "lower"})
    sm.create_secret(Name="app/PRDX", SecretString="not a key of PRD")
    sm.create_secret(Name="app/PRD", SecretString='{"db": "document layout"}')
    seed(sm, "PRD", {"db": "other app"}, prefix="app2")

    assert dict(source().fetch("PRD", ())) == {"db": "prd"}
    assert dict(source().fetch("PRD2", ())) == {"db": "prd2", "only2": "x"}
    assert dict(source().fetch("PRD_EU", ())) == {"db": "eu", "only_eu": "x"}


@pytest.mark.integration
def test_names_become_keys_verbatim(sm: Any) -> None:
    """``_``, ``/`` and unicode survive (AWS allows ASCII names only; moto takes any); a name that is no legal
    key (``app/PRD/``, an empty segment) is left out; a JSON secret stays a string that ``get_json`` parses."""
    seed(sm, "PRD", {"db_url": "u", "db/pool/size": "5", "clé": "ü", "limits": '{"rps": 10}'})
    seed(sm, "PRD", {"": "empty key", "a//b": "empty segment", "./x": "dot segment"})

    fetched = source().fetch("PRD", ())
    assert dict(fetched) == {"db_url": "u", "db/pool/size": "5", "clé": "ü", "limits": '{"rps": 10}'}
    assert fetched.errors == {}
    config = Config(URL, stage="PRD", cache_dir="")
    assert config.get("limits") == '{"rps": 10}'
    assert config.get_json("limits") == {"rps": 10}


@pytest.mark.integration
def test_a_stage_without_secrets_falls_through(
    sm: Any, monkeypatch: pytest.MonkeyPatch, requests_made: Counter[str]
) -> None:
    """No secret below ``app/DEV/``: one request finds nothing, the next source answers, else KeyNotFoundError."""
    seed(sm, "PRD", {"db_url": "prd"})
    monkeypatch.setenv("DEV_db_url", "sqlite://")
    confstage.configure(sources=f"{URL} env://", stage="DEV")

    assert confstage.get("db_url") == "sqlite://"
    with pytest.raises(KeyNotFoundError, match="secretsmanager://app"):
        confstage.get("nowhere")
    assert requests_made[BATCH] == 1


@pytest.fixture(name="between_pages")
def fixture_between_pages() -> Iterator[list[Callable[[], None]]]:
    """Actions run once each, in order, after each BatchGetSecretValue answer confstage's clients receive."""
    actions: list[Callable[[], None]] = []

    def after(**_: Any) -> None:
        if actions:
            actions.pop(0)()

    remove = add_client_hook(lambda client: client.meta.events.register(f"after-call.{BATCH}", after))
    yield actions
    remove()


@pytest.mark.integration
def test_secrets_deleted_between_pages_are_absent(sm: Any, between_pages: list[Callable[[], None]]) -> None:
    """A secret deleted (at once, or with a recovery window) while the stage is being paged is simply absent."""
    values = {f"k{i:02d}": str(i) for i in range(25)}
    seed(sm, "PRD", values)

    def delete() -> None:
        sm.delete_secret(SecretId="app/PRD/k22", ForceDeleteWithoutRecovery=True)
        sm.delete_secret(SecretId="app/PRD/k23", RecoveryWindowInDays=7)

    between_pages.append(delete)
    fetched = source().fetch("PRD", ())
    assert between_pages == []  # the deletion ran, after the first page
    assert dict(fetched) == {k: v for k, v in values.items() if k not in ("k22", "k23")}
    assert fetched.errors == {}


@pytest.mark.integration
def test_a_binary_secret_fails_its_own_key_without_its_content(sm: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secret with only SecretBinary is a SourceError for its key, naming the secret; the other keys are served,
    and the key never falls through to a later source."""
    seed(sm, "PRD", {"text": "t"})
    sm.create_secret(Name="app/PRD/blob", SecretBinary=b"hunter2-binary")
    monkeypatch.setenv("PRD_blob", "from env")
    config = Config([URL, "env://"], stage="PRD", cache_dir="")

    assert config.get("text") == "t"
    with pytest.raises(SourceError, match=r"secret app/PRD/blob has no SecretString") as info:
        config.get("blob")
    assert "hunter2" not in str(info.value)
    assert info.value.operation == "secretsmanager:BatchGetSecretValue"


def test_unreachable_endpoint_is_a_source_error_naming_the_stage() -> None:
    """A failed call names the operation and the stage's prefix, cause chained."""
    with pytest.raises(SourceError, match=r"secretsmanager:BatchGetSecretValue on app/PRD/") as info:
        source().fetch("PRD", ())
    assert info.value.__cause__ is not None


# -- AWS's answers, scripted -----------------------------------------------------------------------


def entry(key: str, value: str, stage: str = "PRD") -> dict[str, Any]:
    name = f"app/{stage}/{key}"
    arn = f"arn:aws:secretsmanager:us-east-1:123456789012:secret:{name}-AbCdEf"
    return {"ARN": arn, "Name": name, "VersionId": f"v-{key}", "SecretString": value, "VersionStages": ["AWSCURRENT"]}


def error(secret_id: str, code: str) -> dict[str, str]:
    return {"SecretId": secret_id, "ErrorCode": code, "Message": "hunter2 might be anywhere in here"}


def scripted(*pages: dict[str, Any]) -> tuple[SecretsManagerSource, MockTransport]:
    """A source whose BatchGetSecretValue answers are ``pages``, in order (each a page; NextToken added between)."""
    answers = list(pages)

    def handler(request: AwsRequest) -> dict[str, Any]:
        assert (request.service, request.operation) == ("secretsmanager", "BatchGetSecretValue")
        page = {"SecretValues": [], "Errors": [], **answers.pop(0)}
        if answers:
            page["NextToken"] = f"token-{len(answers)}"
        return page

    transport = MockTransport(handler)
    return SecretsManagerSource("app", layout="secrets", transport=transport), transport


def test_the_request_filters_by_the_stage_prefix_and_follows_every_token() -> None:
    """Filters name = ``PREFIX/STAGE/``, MaxResults 20, and NextToken followed, through an empty page too."""
    built, transport = scripted({"SecretValues": [entry("a", "1")]}, {}, {"SecretValues": [entry("b", "2")]})

    assert dict(built.fetch("PRD", ())) == {"a": "1", "b": "2"}
    first, second, third = (request.params for request in transport.requests)
    assert first == {"Filters": [{"Key": "name", "Values": ["app/PRD/"]}], "MaxResults": 20}
    assert second == {**first, "NextToken": "token-2"}
    assert third == {**first, "NextToken": "token-1"}


def test_names_the_filter_matched_beyond_the_stage_are_dropped() -> None:
    """Whatever the filter lets through, only names below ``app/PRD/`` exactly are keys of PRD."""
    others = [entry("db", "x", stage) for stage in ("PRD2", "PRD_EU", "prd", "PRDX")]
    built, _ = scripted({"SecretValues": [entry("db", "prd"), *others, {**entry("z", "1"), "Name": "app/PRDz"}]})
    assert dict(built.fetch("PRD", ())) == {"db": "prd"}


@pytest.mark.parametrize("code", ["DecryptionFailure", "AccessDeniedException", "InvalidRequestException"])
def test_an_errors_entry_fails_its_key_and_never_reads_as_not_found(code: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A per-secret error fails reads of that key (named, with its code, never AWS's message); the other keys are
    served, and the key does not fall through to env://, which holds it."""
    arn = entry("db_password", "")["ARN"]
    built, _ = scripted({"SecretValues": [entry("db_url", "u")], "Errors": [error(arn, code)]})
    monkeypatch.setenv("PRD_db_password", "from env")
    config = Config([built, "env://"], stage="PRD", cache_dir="")

    assert config.get("db_url") == "u"
    with pytest.raises(SourceError, match=f"could not read secret app/PRD/db_password: {code}") as info:
        config.get("db_password")
    assert "hunter2" not in str(info.value)


def test_an_errors_entry_naming_a_secret_by_name_fails_that_key() -> None:
    """SecretId may be the name rather than the ARN; a value already paged for that key is dropped."""
    built, _ = scripted({"SecretValues": [entry("k", "v")]}, {"Errors": [error("app/PRD/k", "DecryptionFailure")]})
    fetched = built.fetch("PRD", ())
    assert (dict(fetched), sorted(fetched.errors)) == ({}, ["k"])


def test_a_secret_gone_before_its_read_is_absent() -> None:
    """ResourceNotFoundException in Errors (deleted between the listing and the read): no key, no error."""
    built, _ = scripted(
        {"SecretValues": [entry(f"k{i:02d}", str(i)) for i in range(20)]},
        {"SecretValues": [entry("k21", "21")], "Errors": [error(entry("k20", "")["ARN"], "ResourceNotFoundException")]},
    )
    fetched = built.fetch("PRD", ())
    assert sorted(fetched) == [*(f"k{i:02d}" for i in range(20)), "k21"]
    assert fetched.errors == {}


@pytest.mark.parametrize(
    ("errors", "throttled"),
    [
        ([error("app/PRD/k", "ThrottlingException")], True),
        ([error("app/PRD/k", "InternalServiceError")], False),
        ([{"ErrorCode": "AccessDeniedException"}], False),
        ([error("arn:aws:secretsmanager:us-east-1:1:secret:nosuffix", "DecryptionFailure")], False),
    ],
)
def test_an_errors_entry_naming_no_key_or_a_transient_failure_fails_the_fetch(
    errors: list[dict[str, str]], throttled: bool
) -> None:
    """Throttling, an internal error, or an error whose secret cannot be named: the whole fetch is a SourceError
    (stale values are served), never a key silently absent."""
    built, _ = scripted({"SecretValues": [entry("other", "1")], "Errors": errors})
    with pytest.raises(SourceError, match="secretsmanager:BatchGetSecretValue on app/PRD/ failed") as info:
        built.fetch("PRD", ())
    assert info.value.throttled is throttled
    assert "hunter2" not in str(info.value)


def test_access_denied_does_not_fall_through(monkeypatch: pytest.MonkeyPatch) -> None:
    """The call itself refused is a SourceError even when a later source holds the key."""

    def denied(request: AwsRequest) -> dict[str, Any]:
        raise AwsError("AccessDeniedException", "not allowed", status=400)

    monkeypatch.setenv("PRD_k", "v")
    built = SecretsManagerSource("app", layout="secrets", transport=MockTransport(denied))
    with pytest.raises(SourceError, match="AccessDeniedException"):
        Config([built, "env://"], stage="PRD", cache_dir="").get("k")


def test_an_answer_without_secret_values_is_not_an_empty_stage() -> None:
    """A 200 without SecretValues (a proxy's page parsed as ``{}``) is a SourceError, not "no keys"."""
    built = SecretsManagerSource("app", layout="secrets", transport=MockTransport(lambda request: {}))
    with pytest.raises(SourceError, match="without SecretValues"):
        built.fetch("PRD", ())


def test_url_forms_and_errors() -> None:
    """``?layout=secrets`` names ``PREFIX/STAGE/key``; the default stays the document; an unknown layout or a
    prefix no secret name can have is a ConfigurationError."""
    built = build_source("secretsmanager://team/app/?layout=secrets")
    assert isinstance(built, SecretsManagerSource)
    assert (built.layout, built.secret_name("PRD", "db/url")) == ("secrets", "team/app/PRD/db/url")
    document = build_source("secretsmanager://team/app")
    assert isinstance(document, SecretsManagerSource)
    assert (document.layout, document.secret_id("PRD")) == ("document", "team/app/PRD")
    with pytest.raises(ConfigurationError, match="parameter 'layout' must be one of document, secrets, got 'flat'"):
        build_source("secretsmanager://app?layout=flat")
    with pytest.raises(ConfigurationError, match="a secret name holds only"):
        build_source("secretsmanager://app*?layout=secrets")
    with pytest.raises(ConfigurationError, match="secretsmanager layout must be one of"):
        SecretsManagerSource("app", layout="objects")


@pytest.mark.integration
def test_refresh_on_keys_reads_just_those_secrets(sm: Any, requests_made: Counter[str]) -> None:
    """After a rotation, refresh_on(keys=[...]) costs one GetSecretValue per key, not the stage's pages again;
    the other keys keep the load they came from, and the next invocation sees the rotated value."""
    seed(sm, "PRD", {f"key{i:02d}": f"old-{i:02d}" for i in range(45)} | {"db_password": "old"})
    client = Config(URL, stage="PRD", cache_dir="")
    attempts: list[str] = []

    class AuthError(Exception):
        pass

    @confstage.handler(config=client)
    @confstage.refresh_on(AuthError, keys=["db_password"])
    def lambda_handler(event: Any, context: Any) -> str:
        password = confstage.get("db_password")
        attempts.append(password)
        if password != "new":
            raise AuthError("password authentication failed")
        return confstage.get("key44")

    assert client.get("key00") == "old-00"
    assert requests_made == {BATCH: 3}  # 46 secrets: 3 pages
    sm.put_secret_value(SecretId="app/PRD/db_password", SecretString="new")
    from confstage.testing import lambda_context

    assert lambda_handler({}, lambda_context("PRD")) == "old-44"
    assert attempts == ["old", "new"]
    assert requests_made == {BATCH: 3, "secrets-manager.GetSecretValue": 1}
    assert client.get("db_password") == "new"
    assert client.get("db_password", force=True) == "new"
    assert requests_made == {BATCH: 3, "secrets-manager.GetSecretValue": 2}
