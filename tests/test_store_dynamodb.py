"""The admin side of ``dynamodb://``: tables created, versioned puts, batch writes, listings, no rollback."""

from __future__ import annotations

from collections import Counter
from typing import Any

import boto3
import pytest

from confstage import crypto
from confstage.errors import ConfigurationError, SourceError
from confstage.sources.dynamodb import DynamoDBSource
from confstage.stores import Store, build_store
from confstage.stores.dynamodb import DynamoDBStore

pytestmark = pytest.mark.integration

TABLE = "config"


def test_flat_layout_writes_to_a_stage_with_an_underscore_are_refused_unsent(
    flat: DynamoDBStore, requests_made: Counter[str]
) -> None:
    """put, put_many, delete, items, history and rollback of stage EU_PRD in the flat layout send nothing."""
    source = DynamoDBStore(DynamoDBSource("flat-config", layout="flat"))
    for write in (
        lambda: source.put("EU_PRD", "db", "v"),
        lambda: source.put_many("EU_PRD", {"db": "v"}),
        lambda: source.delete("EU_PRD", "db"),
        lambda: source.items("EU_PRD"),
        lambda: source.history("EU_PRD", "db"),
        lambda: source.rollback("EU_PRD", "db", "1"),
    ):
        with pytest.raises(ConfigurationError, match="'EU_PRD'"):
            write()
    assert not requests_made


def test_stores_implement_the_store_protocol(table: DynamoDBStore, flat: DynamoDBStore) -> None:
    """Both layouts implement the Store protocol the CLI calls; build_store gives them from their URL."""
    assert isinstance(table, Store)
    assert isinstance(flat, Store)
    built = build_store("dynamodb://flat-config?layout=flat")
    assert isinstance(built, DynamoDBStore)
    assert built.reader.layout == "flat"


@pytest.mark.parametrize("layout", ["stage-key", "flat"])
def test_init_creates_an_on_demand_table_once(layout: str, aws_endpoint: str, boto: Any) -> None:
    """init creates a PAY_PER_REQUEST table with the layout's key schema, and is harmless when repeated."""
    source = DynamoDBStore(DynamoDBSource("made", layout=layout))
    source.init()
    source.init()
    table = boto("dynamodb").describe_table(TableName="made")["Table"]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert [k["AttributeName"] for k in table["KeySchema"]] == (
        ["stage", "key"] if layout == "stage-key" else ["stage"]
    )


def test_init_refuses_a_table_of_the_other_layout(table: DynamoDBStore) -> None:
    """init on an existing table whose key schema does not fit the layout is a ConfigurationError."""
    with pytest.raises(ConfigurationError, match="does not fit layout 'flat'"):
        DynamoDBStore(DynamoDBSource(TABLE, layout="flat")).init()


@pytest.mark.parametrize("layout", ["stage-key", "flat"])
def test_put_increments_the_version_and_checks_expectations(
    layout: str, table: DynamoDBStore, flat: DynamoDBStore
) -> None:
    """Each put returns the next version; a put expecting a stale version is refused with SourceError."""
    source = table if layout == "stage-key" else flat
    assert source.put("DEV", "k", "one", expect_version="0") == "1"
    assert source.put("DEV", "k", "two") == "2"
    assert source.put("DEV", "k", "three", expect_version="2") == "3"
    with pytest.raises(SourceError, match="no longer at version 2") as caught:
        source.put("DEV", "k", "four", expect_version="2")
    assert "four" not in str(caught.value)
    with pytest.raises(SourceError, match="no longer at version 0"):
        source.put("DEV", "k", "again", expect_version="0")
    assert dict(source.reader.fetch("DEV", ["k"])) == {"k": "three"}
    [version] = source.history("DEV", "k")
    assert (version.version, version.latest, version.secure) == ("3", True, False)
    assert version.modified is not None


@pytest.mark.parametrize("layout", ["stage-key", "flat"])
def test_put_many_items_and_delete(
    layout: str, table: DynamoDBStore, flat: DynamoDBStore, kms_key: str, requests_made: Counter[str]
) -> None:
    """put_many writes in batches of 25, items lists a stage (ciphertext unless decrypt), delete removes a key."""
    reader = DynamoDBSource(table.table) if layout == "stage-key" else DynamoDBSource(flat.table, layout="flat")
    source = DynamoDBStore(reader)
    source.put("DEV", "k00", "old")
    if layout == "stage-key":
        source.put("DEV_X", "k00", "other stage")
    else:  # confstage refuses stage DEV_X in the flat layout; another writer's k00_DEV_X must not show in X or DEV
        item = {"stage": {"S": "k00_DEV_X"}, "key": {"S": "k00"}, "value": {"S": "other stage"}}
        boto3.client("dynamodb").put_item(TableName=flat.table, Item=item)
    values = {f"k{i:02}": f"v{i}" for i in range(60)}
    requests_made.clear()
    source.put_many("DEV", values)
    assert requests_made["dynamodb.BatchWriteItem"] == 3
    source.put_many("DEV", {"secret": "shh"}, kms_key=kms_key)

    listed = source.items("DEV")
    assert {k: v.value for k, v in listed.items() if k != "secret"} == values
    assert listed["k00"].version == "2"
    assert listed["k01"].version == "1"
    assert listed["secret"].secure
    assert crypto.is_envelope(listed["secret"].value)
    assert source.items("DEV", decrypt=True)["secret"].value == "shh"
    assert set(source.items("X")) == set()

    assert source.delete("DEV", "k05") is True
    assert source.delete("DEV", "k05") is False
    assert "k05" not in source.items("DEV")
    assert source.history("DEV", "k05") == []


def test_rollback_is_not_supported(table: DynamoDBStore) -> None:
    """DynamoDB keeps no old versions: rollback to another version raises SourceError saying so."""
    table.put("DEV", "k", "one")
    table.put("DEV", "k", "two")
    assert table.rollback("DEV", "k", "2") == "2"
    with pytest.raises(SourceError, match="not supported for dynamodb"):
        table.rollback("DEV", "k", "1")
