"""``dynamodb://``: both layouts over HTTP against the local endpoint, request counts, secure values, writing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import confstage
from confstage import crypto
from confstage.errors import ConfigurationError, DecryptError, KeyNotFoundError, SourceError, StageError
from confstage.sources import build_source
from confstage.sources.dynamodb import DynamoDBSource
from confstage.stores.dynamodb import DynamoDBStore
from confstage.testing import MockTransport
from confstage.transport import AwsRequest
from confstage.transport.botocore import BotocoreTransport

pytestmark = pytest.mark.integration

TABLE = "config"


def seed(boto: Any, stage: str, values: dict[str, str]) -> None:
    """Write stage-key items with the plain boto3 client."""
    client = boto("dynamodb")
    for key, value in values.items():
        client.put_item(TableName=TABLE, Item={"stage": {"S": stage}, "key": {"S": key}, "value": {"S": value}})


def seed_flat(boto: Any, stage: str, values: dict[str, str]) -> None:
    """Write flat items (``{key}_{STAGE}``) with the plain boto3 client."""
    client = boto("dynamodb")
    for key, value in values.items():
        client.put_item(TableName="flat-config", Item={"stage": {"S": f"{key}_{stage}"}, "value": {"S": value}})


def config(*urls: str, **kwargs: Any) -> confstage.Config:
    return confstage.Config(sources=list(urls), stage="DEV", cache_dir=kwargs.pop("cache_dir", ""), **kwargs)


# -- reading: stage-key ----------------------------------------------------------------------


def test_whole_stage_of_60_keys_costs_one_query(table: DynamoDBStore, boto: Any, requests_made: Counter[str]) -> None:
    """The first get loads all 60 keys of the stage with exactly one Query; the rest are cache hits."""
    values = {f"key{i:02}": f"value {i}" for i in range(60)}
    seed(boto, "DEV", values)
    seed(boto, "PRD", {"key00": "prod"})
    cfg = config(f"dynamodb://{TABLE}")

    assert cfg.get("key00") == "value 0"
    assert cfg.get_many(list(values)) == values
    assert all(cfg.get(key) == value for key, value in values.items())
    assert requests_made == Counter({"dynamodb.Query": 1})


def test_absent_key_of_a_loaded_stage_costs_nothing_more(
    table: DynamoDBStore, boto: Any, requests_made: Counter[str]
) -> None:
    """A key missing from a loaded stage is known absent without another request."""
    seed(boto, "DEV", {"a": "1"})
    cfg = config(f"dynamodb://{TABLE}")

    assert cfg.get("a") == "1"
    assert cfg.get("nope", "fallback") == "fallback"
    assert requests_made == Counter({"dynamodb.Query": 1})


def test_stage_over_one_megabyte_follows_pagination(
    table: DynamoDBStore, boto: Any, requests_made: Counter[str]
) -> None:
    """A stage of 60 values of 20 kB (1.2 MB) is read whole by following LastEvaluatedKey."""
    values = {f"big{i:02}": f"{i:02}" + "x" * 20_000 for i in range(60)}
    seed(boto, "DEV", values)

    fetched = DynamoDBSource(TABLE).fetch("DEV", ())

    assert dict(fetched) == values
    assert requests_made["dynamodb.Query"] == 2


@pytest.mark.parametrize("layout", ["stage-key", "flat"])
def test_large_and_unicode_values_survive(layout: str, table: DynamoDBStore, flat: DynamoDBStore, boto: Any) -> None:
    """A 300 kB value and a unicode value come back byte for byte in both layouts."""
    values = {"big": "ü" * 150_000, "unicode": "Grüße, 世界 🚀 \u200b"}
    (seed if layout == "stage-key" else seed_flat)(boto, "DEV", values)
    url = f"dynamodb://{TABLE}" if layout == "stage-key" else "dynamodb://flat-config?layout=flat"

    assert len(values["big"].encode()) == 300_000
    assert config(url).get_many(["big", "unicode"]) == values


def test_chain_falls_through_dynamodb_to_env(table: DynamoDBStore, boto: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A key the table lacks is read from the next source; a key it has wins over the environment."""
    seed(boto, "DEV", {"db_url": "from-dynamodb"})
    monkeypatch.setenv("DEV_db_url", "from-env")
    monkeypatch.setenv("DEV_only_env", "env-value")
    cfg = config(f"dynamodb://{TABLE}", "env://")

    assert cfg.get("db_url") == "from-dynamodb"
    assert cfg.get("only_env") == "env-value"
    with pytest.raises(KeyNotFoundError, match="dynamodb://config"):
        cfg.get("nowhere")


def test_missing_table_is_a_source_error_not_a_fall_through(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing table raises SourceError naming the table and operation instead of trying env://."""
    monkeypatch.setenv("DEV_db_url", "from-env")
    cfg = config("dynamodb://no-such-table", "env://")

    with pytest.raises(SourceError, match=r"dynamodb:Query on table no-such-table failed with ResourceNotFound"):
        cfg.get("db_url")


def test_unreachable_endpoint_is_a_source_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """A network failure becomes a SourceError naming table and operation, keeping the cause."""
    monkeypatch.setenv("CONFSTAGE_MAX_ATTEMPTS", "1")
    with pytest.raises(SourceError, match="dynamodb:Query on table t") as caught:
        DynamoDBSource("t").fetch("DEV", ["a"])
    assert caught.value.__cause__ is not None


def test_non_string_value_names_the_key_not_the_value(table: DynamoDBStore, boto: Any) -> None:
    """A value attribute that is not a string raises SourceError naming the key, never the value."""
    boto("dynamodb").put_item(
        TableName=TABLE,
        Item={"stage": {"S": "DEV"}, "key": {"S": "odd"}, "value": {"L": [{"S": "hidden-secret"}]}},
    )
    with pytest.raises(SourceError, match="'odd'") as caught:
        table.reader.fetch("DEV", ["odd"])
    assert "hidden-secret" not in str(caught.value)


# -- reading: flat ---------------------------------------------------------------------------


def test_flat_get_many_of_three_costs_one_batch_get(
    flat: DynamoDBStore, boto: Any, requests_made: Counter[str]
) -> None:
    """get_many of 3 keys in the flat layout is exactly one BatchGetItem."""
    seed_flat(boto, "DEV", {"db_url": "u", "db_user": "me", "db_port": "5432"})
    seed_flat(boto, "PRD", {"db_url": "prod"})
    cfg = config("dynamodb://flat-config?layout=flat")

    assert cfg.get_many(["db_url", "db_user", "db_port"]) == {"db_url": "u", "db_user": "me", "db_port": "5432"}
    assert requests_made == Counter({"dynamodb.BatchGetItem": 1})


def test_flat_get_of_one_key_is_one_get_item(flat: DynamoDBStore, boto: Any, requests_made: Counter[str]) -> None:
    """A single get in the flat layout is one GetItem on ``{key}_{STAGE}``; absent keys fall through."""
    seed_flat(boto, "DEV", {"db_url": "dev-url"})
    cfg = config("dynamodb://flat-config?layout=flat&consistent=true")

    assert cfg.get("db_url") == "dev-url"
    assert cfg.get("absent", "d") == "d"
    assert requests_made == Counter({"dynamodb.GetItem": 2})


def test_flat_batches_of_100(flat: DynamoDBStore, boto: Any, requests_made: Counter[str]) -> None:
    """150 keys in the flat layout take two BatchGetItem calls (100 + 50)."""
    values = {f"k{i:03}": str(i) for i in range(150)}
    seed_flat(boto, "DEV", values)

    assert dict(DynamoDBSource("flat-config", layout="flat").fetch("DEV", list(values))) == values
    assert requests_made == Counter({"dynamodb.BatchGetItem": 2})


def test_flat_reads_never_cross_stages(flat: DynamoDBStore, boto: Any) -> None:
    """Key db of stage EU_PRD (id db_EU_PRD, as confstage wrote it) is not key db_EU of stage PRD, in either read."""
    boto("dynamodb").put_item(
        TableName="flat-config",
        Item={"stage": {"S": "db_EU_PRD"}, "key": {"S": "db"}, "value": {"S": "eu-only-value"}},
    )
    seed_flat(boto, "PRD", {"other": "prd-value"})
    source = DynamoDBSource("flat-config", layout="flat")

    assert dict(source.fetch("PRD", ["db_EU"])) == {}  # GetItem
    assert dict(source.fetch("PRD", ["db_EU", "other"])) == {"other": "prd-value"}  # BatchGetItem
    with pytest.raises(KeyNotFoundError):
        config("dynamodb://flat-config?layout=flat").get("db_EU", stage="PRD")


@pytest.mark.parametrize("keys", [["db"], ["db", "other"]], ids=["one-key", "batch"])
def test_flat_layout_refuses_a_stage_with_an_underscore(
    flat: DynamoDBStore, keys: list[str], requests_made: Counter[str]
) -> None:
    """Reading stage EU_PRD in the flat layout is a ConfigurationError naming the rule and the way out, unsent."""
    with pytest.raises(ConfigurationError, match="'EU_PRD'") as caught:
        DynamoDBSource("flat-config", layout="flat").fetch("EU_PRD", keys)
    assert "layout=stage-key" in str(caught.value)
    assert "stage names without '_'" in str(caught.value)
    assert not requests_made


def test_check_stage_is_the_one_rule_for_reads_and_writes() -> None:
    """check_stage refuses '_' in the flat layout only, and a stage outside Lambda's alias rule in both."""
    flat, stage_key = DynamoDBSource("t", layout="flat"), DynamoDBSource("t")
    assert flat.check_stage("PRD") == "PRD"
    assert stage_key.check_stage("EU_PRD") == "EU_PRD"
    with pytest.raises(ConfigurationError):
        flat.check_stage("EU_PRD")
    for layout in (flat, stage_key):
        with pytest.raises(StageError):
            layout.check_stage("PRD/../DEV")


def throttling(real: BotocoreTransport, n: int) -> MockTransport:
    """DynamoDB leaving every key but the first unprocessed on its first ``n`` BatchGetItem calls."""
    calls: list[int] = []

    def handler(request: AwsRequest) -> dict[str, Any]:
        if request.operation != "BatchGetItem":
            return real.call(request)
        calls.append(1)
        if len(calls) > n:
            return real.call(request)
        (table, wanted), *_ = request.params["RequestItems"].items()
        first, rest = wanted["Keys"][:1], wanted["Keys"][1:]
        response = real.call(request._replace(params={"RequestItems": {table: {**wanted, "Keys": first}}}))
        response["UnprocessedKeys"] = {table: {**wanted, "Keys": rest}} if rest else {}
        return response

    return MockTransport(handler)


def test_flat_unprocessed_keys_are_retried_with_backoff(flat: DynamoDBStore, boto: Any, admin: Any) -> None:
    """UnprocessedKeys are asked for again after exponentially growing (injected, here unjittered) sleeps."""
    seed_flat(boto, "DEV", {"a": "1", "b": "2", "c": "3"})
    transport = throttling(admin, n=2)
    slept: list[float] = []
    source = DynamoDBSource("flat-config", layout="flat", transport=transport, sleep=slept.append, random=lambda: 1.0)

    assert dict(source.fetch("DEV", ["a", "b", "c"])) == {"a": "1", "b": "2", "c": "3"}
    assert len(transport.requests) == 3
    assert slept == [0.05, 0.1]


def test_flat_unprocessed_keys_give_up_after_bounded_attempts(flat: DynamoDBStore, boto: Any, admin: Any) -> None:
    """Keys still unprocessed after max_attempts raise a throttled SourceError instead of looping forever."""
    values = {key: key.upper() for key in "abcdef"}
    seed_flat(boto, "DEV", values)
    slept: list[float] = []
    transport = throttling(admin, n=99)
    source = DynamoDBSource("flat-config", layout="flat", transport=transport, sleep=slept.append, max_attempts=4)

    with pytest.raises(SourceError, match="left 2 keys unprocessed after 4 attempts") as caught:
        source.fetch("DEV", list(values))
    assert caught.value.throttled
    assert len(slept) == 3
    assert all(0.025 <= delay <= 0.2 for delay in slept)  # 0.05, 0.1, 0.2, each jittered down to half


# -- URLs ------------------------------------------------------------------------------------


def test_url_parameters() -> None:
    """The URL names the table, the layout and the read consistency; ttl is the registry's."""
    source = build_source("dynamodb://tbl?layout=flat&consistent=true&ttl=30")
    assert isinstance(source, DynamoDBSource)
    assert (source.table, source.layout, source.consistent, source.whole_stage, source.ttl) == (
        "tbl",
        "flat",
        True,
        False,
        30,
    )
    default = build_source("dynamodb://tbl")
    assert isinstance(default, DynamoDBSource)
    assert (default.layout, default.consistent, default.whole_stage) == ("stage-key", False, True)


@pytest.mark.parametrize("url", ["dynamodb://", "dynamodb://t/extra", "dynamodb://t?layout=wide", "dynamodb://t?x=1"])
def test_bad_urls_are_configuration_errors(url: str) -> None:
    """A missing table, a path, an unknown layout or parameter is a ConfigurationError."""
    with pytest.raises(ConfigurationError):
        build_source(url)


# -- secure values ---------------------------------------------------------------------------


def test_secure_round_trip_is_transparent_and_kept_off_disk(
    table: DynamoDBStore, kms_key: str, boto: Any, tmp_path: Path
) -> None:
    """A value put with a KMS key is stored as an envelope, read back in plaintext, and never written to /tmp."""
    table.put("DEV", "password", "hunter2-ü", kms_key=kms_key)
    table.put("DEV", "plain", "visible")
    stored = boto("dynamodb").get_item(TableName=TABLE, Key={"stage": {"S": "DEV"}, "key": {"S": "password"}})
    assert crypto.is_envelope(stored["Item"]["value"]["S"])
    assert stored["Item"]["secure"] == {"BOOL": True}

    fetched = table.reader.fetch("DEV", ())
    assert dict(fetched) == {"password": "hunter2-ü", "plain": "visible"}
    assert fetched.secret == {"password"}

    cache_dir = tmp_path / "disk"
    cfg = config(f"dynamodb://{TABLE}", cache_dir=str(cache_dir))
    assert cfg.get("password") == "hunter2-ü"
    on_disk = b"".join(p.read_bytes() for p in cache_dir.rglob("*") if p.is_file())
    assert b"visible" in on_disk
    assert b"hunter2" not in on_disk


def test_ciphertext_moved_to_another_key_fails_that_key_only(table: DynamoDBStore, kms_key: str, boto: Any) -> None:
    """An envelope copied to another key puts a DecryptError naming that key in errors; every other key is served."""
    table.put("DEV", "password", "hunter2", kms_key=kms_key)
    envelope = table.items("DEV")["password"].value
    seed(boto, "DEV", {"other": envelope, "host": "db.local"})

    fetched = table.reader.fetch("DEV", ())
    assert dict(fetched) == {"password": "hunter2", "host": "db.local"}
    assert set(fetched.errors) == {"other"}
    error = fetched.errors["other"]
    assert isinstance(error, DecryptError)
    assert "'other'" in str(error)
    assert "hunter2" not in str(error)
    assert fetched.secret == {"password", "other"}


def test_flat_secure_values_are_decrypted(flat: DynamoDBStore, kms_key: str) -> None:
    """Secure values work in the flat layout too, for one key and for a batch."""
    flat.put("DEV", "api_key", "s3cr3t", kms_key=kms_key)
    flat.put("DEV", "region", "eu-west-1")

    one = flat.reader.fetch("DEV", ["api_key"])
    many = flat.reader.fetch("DEV", ["api_key", "region"])
    assert (dict(one), one.secret) == ({"api_key": "s3cr3t"}, frozenset({"api_key"}))
    assert (dict(many), many.secret) == ({"api_key": "s3cr3t", "region": "eu-west-1"}, frozenset({"api_key"}))
