"""``s3://``: both layouts over HTTP against the local endpoint, ETag revalidation, secure values, writing."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import confstage
from confstage import crypto
from confstage.errors import ConfigurationError, DecryptError, KeyNotFoundError, SourceError
from confstage.sources import build_source
from confstage.sources.s3 import S3Source
from confstage.stores.s3 import S3Store
from confstage.testing import MockTransport
from confstage.transport import AwsError, AwsRequest
from confstage.transport.botocore import add_client_hook

pytestmark = pytest.mark.integration

BUCKET = "confstage-config"


class FakeClock:
    """A wall clock that moves only when told to."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(name="statuses")
def fixture_statuses() -> Iterator[list[tuple[str, int]]]:
    """HTTP status of every response to confstage's clients, as (operation, status)."""
    seen: list[tuple[str, int]] = []

    def record(event_name: str, parsed: dict[str, Any], **_: Any) -> None:
        seen.append((event_name.split(".", 1)[1], parsed["ResponseMetadata"]["HTTPStatusCode"]))

    def hook(client: Any) -> None:
        client.meta.events.register("after-call", record)

    remove = add_client_hook(hook)
    yield seen
    remove()


def put(boto: Any, key: str, body: str | bytes) -> None:
    """Write one object with the plain boto3 client."""
    boto("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)


def config(*urls: str, **kwargs: Any) -> confstage.Config:
    return confstage.Config(sources=list(urls), stage="DEV", cache_dir=kwargs.pop("cache_dir", ""), **kwargs)


# -- reading: objects ------------------------------------------------------------------------


def test_objects_layout_reads_prefix_stage_key(bucket: S3Store, boto: Any, requests_made: Counter[str]) -> None:
    """A key is the object PREFIX/STAGE/key; a get_many asks for each object once."""
    put(boto, "app/DEV/db_url", "postgres://dev")
    put(boto, "app/DEV/db_user", "me")
    put(boto, "app/PRD/db_url", "postgres://prd")
    cfg = config(f"s3://{BUCKET}/app")

    assert cfg.get_many(["db_url", "db_user"]) == {"db_url": "postgres://dev", "db_user": "me"}
    assert cfg.get("db_url") == "postgres://dev"
    assert cfg.get("db_url", stage="PRD") == "postgres://prd"
    assert requests_made == Counter({"s3.GetObject": 3})


def test_missing_object_falls_through_to_env(bucket: S3Store, boto: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing object is "not found", so the next source answers."""
    put(boto, "app/DEV/db_url", "from-s3")
    monkeypatch.setenv("DEV_db_url", "from-env")
    monkeypatch.setenv("DEV_port", "5432")
    cfg = config(f"s3://{BUCKET}/app", "env://")

    assert cfg.get("db_url") == "from-s3"
    assert cfg.get_int("port") == 5432
    with pytest.raises(KeyNotFoundError):
        cfg.get("nowhere")


def test_one_megabyte_and_unicode_values_survive(bucket: S3Store, boto: Any) -> None:
    """A 1 MB value, a 300 kB one and a unicode one come back byte for byte."""
    values = {"mega": "é" * 500_000, "big": "x" * 300_000, "unicode": "Grüße, 世界 🚀\n"}
    for key, value in values.items():
        put(boto, f"app/DEV/{key}", value)

    assert len(values["mega"].encode()) == 1_000_000
    assert config(f"s3://{BUCKET}/app").get_many(list(values)) == values


def test_unchanged_object_after_ttl_costs_a_304(
    bucket: S3Store, boto: Any, requests_made: Counter[str], statuses: list[tuple[str, int]]
) -> None:
    """After the TTL an unchanged object is revalidated with If-None-Match (304); a changed one is read again."""
    put(boto, "app/DEV/flag", "on")
    clock = FakeClock()
    cfg = config(f"s3://{BUCKET}/app", ttl=60, clock=clock)

    assert cfg.get("flag") == "on"
    clock.advance(30)
    assert cfg.get("flag") == "on"  # fresh: no request
    clock.advance(31)
    assert cfg.get("flag") == "on"
    assert statuses == [("s3.GetObject", 200), ("s3.GetObject", 304)]

    put(boto, "app/DEV/flag", "off")
    clock.advance(61)
    assert cfg.get("flag") == "off"
    assert statuses[-1] == ("s3.GetObject", 200)
    assert requests_made == Counter({"s3.GetObject": 3})


def test_object_deleted_after_ttl_is_not_found(bucket: S3Store, boto: Any) -> None:
    """An object removed since the last read is "not found" on revalidation, not a stale hit."""
    put(boto, "app/DEV/gone", "here")
    clock = FakeClock()
    cfg = config(f"s3://{BUCKET}/app", ttl=60, clock=clock)
    assert cfg.get("gone") == "here"

    boto("s3").delete_object(Bucket=BUCKET, Key="app/DEV/gone")
    clock.advance(61)
    assert cfg.get("gone", "default") == "default"


def test_missing_bucket_is_a_source_error_naming_bucket_and_key(
    aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing bucket raises SourceError naming bucket and object, and does not fall through."""
    monkeypatch.setenv("DEV_db_url", "from-env")
    cfg = config("s3://no-such-bucket/app", "env://")

    with pytest.raises(
        SourceError, match=r"s3:GetObject on s3://no-such-bucket/app/DEV/db_url failed with NoSuchBucket"
    ):
        cfg.get("db_url")


def _denied(request: AwsRequest) -> dict[str, Any]:
    """S3 answering every call with AccessDenied."""
    raise AwsError("AccessDenied", "Access Denied", status=403, operation="s3:GetObject")


def test_access_denied_is_a_source_error_with_its_cause() -> None:
    """AccessDenied raises SourceError naming bucket, object and operation, chained to the AwsError."""
    source = S3Source("locked", "p", transport=MockTransport(_denied))

    with pytest.raises(SourceError, match=r"s3:GetObject on s3://locked/p/DEV/k failed with AccessDenied") as caught:
        source.fetch("DEV", ["k"])
    assert caught.value.__cause__ is not None


# -- reading: document -----------------------------------------------------------------------


def test_document_stage_costs_one_get(document: S3Store, boto: Any, requests_made: Counter[str]) -> None:
    """The document layout loads every key of a stage with one GetObject of PREFIX/STAGE/config.json."""
    values = {f"key{i:02}": f"välue {i}" for i in range(40)}
    put(boto, "app/DEV/config.json", json.dumps(values))
    cfg = config(f"s3://{BUCKET}/app?layout=document")

    assert cfg.get("key00") == "välue 0"
    assert cfg.get_many(list(values)) == values
    assert cfg.get("absent", "d") == "d"
    assert requests_made == Counter({"s3.GetObject": 1})


def test_unchanged_document_after_ttl_costs_a_304(
    document: S3Store, boto: Any, statuses: list[tuple[str, int]]
) -> None:
    """The document is revalidated with its ETag after the TTL."""
    put(boto, "app/DEV/config.json", json.dumps({"a": "1"}))
    clock = FakeClock()
    cfg = config(f"s3://{BUCKET}/app?layout=document", ttl=10, clock=clock)

    assert cfg.get("a") == "1"
    clock.advance(11)
    assert cfg.get("a") == "1"
    assert statuses == [("s3.GetObject", 200), ("s3.GetObject", 304)]


def test_missing_document_means_every_key_is_absent(document: S3Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A stage without a document has no keys; the chain falls through."""
    monkeypatch.setenv("DEV_a", "env")
    assert config(f"s3://{BUCKET}/app?layout=document", "env://").get("a") == "env"


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ('["hidden-secret"]', "must be a JSON object of string values, not a JSON array"),
        ('{"port": 5432, "x": "hidden-secret"}', "value of key 'port' must be a JSON string, not a JSON number"),
        ('{"x": "hidden-secret"', "is not valid JSON"),
    ],
)
def test_malformed_document_is_a_source_error_without_values(
    body: str, problem: str, document: S3Store, boto: Any
) -> None:
    """A document that is not an object of strings raises SourceError naming bucket and object, never a value."""
    put(boto, "app/DEV/config.json", body)

    with pytest.raises(SourceError, match=problem) as caught:
        document.reader.fetch("DEV", ())
    assert f"s3://{BUCKET}/app/DEV/config.json" in str(caught.value)
    assert "hidden-secret" not in str(caught.value)
    assert caught.value.__cause__ is None


# -- URLs ------------------------------------------------------------------------------------


def test_url_parameters() -> None:
    """The URL names bucket, optional prefix and layout; only the document layout loads whole stages."""
    source = build_source("s3://bkt/some/prefix/?layout=document&ttl=5")
    assert isinstance(source, S3Source)
    assert (source.bucket, source.prefix, source.layout, source.whole_stage, source.ttl) == (
        "bkt",
        "some/prefix",
        "document",
        True,
        5,
    )
    assert source.object_key("PRD", "anything") == "some/prefix/PRD/config.json"
    plain = build_source("s3://bkt")
    assert isinstance(plain, S3Source)
    assert (plain.object_key("PRD", "db_url"), plain.whole_stage) == ("PRD/db_url", False)


@pytest.mark.parametrize("url", ["s3://", "s3:///prefix", "s3://bkt?layout=tree", "s3://bkt?region=x"])
def test_bad_urls_are_configuration_errors(url: str) -> None:
    """A missing bucket, an unknown layout or parameter is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        build_source(url)


# -- secure values ---------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["objects", "document"])
def test_secure_round_trip_stays_off_disk(
    layout: str, bucket: S3Store, document: S3Store, kms_key: str, tmp_path: Path
) -> None:
    """A value put with a KMS key is stored as an envelope, read in plaintext, and never written to /tmp."""
    source = bucket if layout == "objects" else document
    source.put("DEV", "password", "hunter2 ✓", kms_key=kms_key)
    source.put("DEV", "plain", "visible")

    stored = source.items("DEV")
    assert stored["password"].secure
    assert crypto.is_envelope(stored["password"].value)
    assert not stored["plain"].secure
    assert source.items("DEV", decrypt=True)["password"].value == "hunter2 ✓"

    cache_dir = tmp_path / "disk"
    cfg = config(f"s3://{BUCKET}/app?layout={layout}", cache_dir=str(cache_dir))
    assert cfg.get_many(["password", "plain"]) == {"password": "hunter2 ✓", "plain": "visible"}
    on_disk = b"".join(p.read_bytes() for p in cache_dir.rglob("*") if p.is_file())
    assert b"visible" in on_disk
    assert b"hunter2" not in on_disk


def test_tampered_object_fails_to_decrypt(bucket: S3Store, kms_key: str, boto: Any) -> None:
    """A secure object whose ciphertext was altered is a DecryptError naming the key, in that key's errors only."""
    bucket.put("DEV", "password", "hunter2", kms_key=kms_key)
    bucket.put("DEV", "plain", "visible")
    envelope = bucket.items("DEV")["password"].value
    wrapped, nonce, sealed = envelope[len(crypto.PREFIX) :].split(".")
    flipped = ("B" if sealed[0] == "A" else "A") + sealed[1:]
    put(boto, "app/DEV/password", f"{crypto.PREFIX}{wrapped}.{nonce}.{flipped}")

    fetched = bucket.reader.fetch("DEV", ["password", "plain"])
    assert dict(fetched) == {"plain": "visible"}
    assert isinstance(fetched.errors["password"], DecryptError)
    assert "'password'" in str(fetched.errors["password"])
    assert "hunter2" not in str(fetched.errors["password"])


def test_ciphertext_copied_to_another_stage_fails(document: S3Store, kms_key: str, boto: Any) -> None:
    """An envelope copied into another stage's document is a DecryptError naming that stage; the rest is served."""
    document.put("DEV", "password", "hunter2", kms_key=kms_key)
    envelope = document.items("DEV")["password"].value
    put(boto, "app/PRD/config.json", json.dumps({"password": envelope, "region": "eu-west-1"}))

    fetched = document.reader.fetch("PRD", ())
    assert dict(fetched) == {"region": "eu-west-1"}
    assert set(fetched.errors) == {"password"}
    assert "stage 'PRD'" in str(fetched.errors["password"])
