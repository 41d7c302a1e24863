"""The admin side of ``s3://``: the private versioned bucket, puts, history, rollback, document rewrites."""

from __future__ import annotations

import json
from typing import Any

import pytest

from confstage.errors import SourceError
from confstage.sources.s3 import S3Source
from confstage.stores import Store
from confstage.stores.s3 import S3Store
from confstage.testing import MockTransport
from confstage.transport import AwsRequest
from confstage.transport.botocore import BotocoreTransport

pytestmark = pytest.mark.integration

BUCKET = "confstage-config"


def put(boto: Any, key: str, body: str) -> None:
    """Write one object with the plain boto3 client."""
    boto("s3").put_object(Bucket=BUCKET, Key=key, Body=body.encode())


# -- writing ---------------------------------------------------------------------------------


def test_init_makes_a_private_versioned_bucket_once(bucket: S3Store, boto: Any) -> None:
    """init enables versioning and blocks public access, and is harmless when repeated."""
    bucket.init()
    s3 = boto("s3")
    assert s3.get_bucket_versioning(Bucket=BUCKET)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=BUCKET)["PublicAccessBlockConfiguration"]
    assert all(block.values())
    assert isinstance(bucket, Store)


def test_put_history_and_rollback(bucket: S3Store, kms_key: str) -> None:
    """Each put makes an S3 version; history lists them newest first; rollback makes an old one current."""
    first = bucket.put("DEV", "k", "one")
    second = bucket.put("DEV", "k", "two", kms_key=kms_key)
    third = bucket.put("DEV", "k", "three")
    assert first is not None
    assert second is not None
    assert third is not None

    history = bucket.history("DEV", "k")
    assert [v.version for v in history] == [third, second, first]
    assert [v.latest for v in history] == [True, False, False]
    assert [v.secure for v in history] == [False, True, False]

    restored = bucket.rollback("DEV", "k", second)
    assert restored not in (None, first, second, third)
    assert dict(bucket.reader.fetch("DEV", ["k"])) == {"k": "two"}
    assert bucket.history("DEV", "k")[0].version == restored


def test_put_with_expect_version_refuses_lost_updates(bucket: S3Store) -> None:
    """A put expecting a version that is no longer current raises SourceError; "0" means "must not exist"."""
    first = bucket.put("DEV", "k", "one", expect_version="0")
    second = bucket.put("DEV", "k", "two", expect_version=first)
    with pytest.raises(SourceError, match="no longer at version") as caught:
        bucket.put("DEV", "k", "three", expect_version=first)
    assert "three" not in str(caught.value)
    with pytest.raises(SourceError, match="no longer at version 0"):
        bucket.put("DEV", "k", "again", expect_version="0")
    assert bucket.items("DEV")["k"] == ("two", False, second)


def test_put_many_items_and_delete_objects(bucket: S3Store, boto: Any) -> None:
    """put_many writes every key, items lists the stage folder only, delete leaves a delete marker."""
    put(boto, "app/DEVX/k0", "other stage sharing the name prefix")
    bucket.put_many("DEV", {f"k{i}": f"v{i}" for i in range(12)})

    assert {k: v.value for k, v in bucket.items("DEV").items()} == {f"k{i}": f"v{i}" for i in range(12)}
    assert bucket.delete("DEV", "k3") is True
    assert bucket.delete("DEV", "k3") is False
    assert "k3" not in bucket.items("DEV")
    assert len(bucket.history("DEV", "k3")) == 1  # the old version stays, for rollback


def test_document_put_delete_rewrite_the_document(document: S3Store, boto: Any) -> None:
    """In the document layout put, put_many and delete rewrite config.json, keeping the other keys."""
    document.put("DEV", "a", "1")
    document.put_many("DEV", {"b": "2", "c": "ü"})
    assert document.delete("DEV", "a") is True
    assert document.delete("DEV", "a") is False

    body = boto("s3").get_object(Bucket=BUCKET, Key="app/DEV/config.json")["Body"].read()
    assert json.loads(body) == {"b": "2", "c": "ü"}
    assert {k: v.value for k, v in document.items("DEV").items()} == {"b": "2", "c": "ü"}


def test_document_history_and_rollback_of_one_key(document: S3Store) -> None:
    """history lists the document versions holding the key; rollback restores only that key."""
    v1 = document.put("DEV", "a", "old")
    document.put("DEV", "b", "kept")
    document.put("DEV", "a", "new")
    assert v1 is not None

    assert [v.version for v in document.history("DEV", "a")][-1] == v1
    document.rollback("DEV", "a", v1)
    assert dict(document.reader.fetch("DEV", ())) == {"a": "old", "b": "kept"}
    with pytest.raises(SourceError, match="holds no key 'zzz'"):
        document.rollback("DEV", "zzz", v1)


def test_document_put_with_a_stale_version_is_refused(document: S3Store) -> None:
    """A document put expecting an old document version raises SourceError instead of losing an update."""
    v1 = document.put("DEV", "a", "1")
    document.put("DEV", "b", "2")
    with pytest.raises(SourceError, match="no longer at version"):
        document.put("DEV", "a", "3", expect_version=v1)


def racing(real: BotocoreTransport, boto: Any) -> MockTransport:
    """A transport on which someone else rewrites the document just before our first conditional PUT."""
    raced: list[bool] = []

    def handler(request: AwsRequest) -> dict[str, Any]:
        if request.operation == "PutObject" and "IfMatch" in request.params and not raced:
            raced.append(True)
            boto("s3").put_object(Bucket=BUCKET, Key=request.params["Key"], Body=json.dumps({"a": "1", "theirs": "x"}))
        return real.call(request)

    return MockTransport(handler)


def test_document_rewrite_retries_when_someone_else_wrote(
    document: S3Store, admin: BotocoreTransport, boto: Any
) -> None:
    """A concurrent rewrite makes If-Match fail; the put re-reads and keeps both updates."""
    document.put("DEV", "a", "1")
    transport = racing(admin, boto)
    racing_store = S3Store(S3Source(BUCKET, "app", layout="document", transport=transport), transport)

    racing_store.put("DEV", "mine", "y")
    assert dict(document.reader.fetch("DEV", ())) == {"a": "1", "theirs": "x", "mine": "y"}
