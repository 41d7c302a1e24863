"""Who changed what: ``history`` names each version's writer where the store can know it, and says why where not.

moto's facts these tests lean on: GetCallerIdentity answers ``arn:aws:sts::123456789012:user/moto`` for any
credentials, and SSM's GetParameterHistory answers ``LastModifiedUser: "N/A"`` (AWS gives the writer's ARN).
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timezone
from typing import Any

import pytest

from confstage.sources.dynamodb import DynamoDBSource
from confstage.sources.ssm import SSMSource
from confstage.stores.base import NOT_RECORDED
from confstage.stores.dynamodb import DynamoDBStore
from confstage.stores.s3 import S3Store
from confstage.stores.secretsmanager import UNKNOWN_WRITER
from confstage.stores.ssm import SSMStore
from confstage.testing import MockTransport
from confstage.transport import AwsRequest

from ._cli import invoke

pytestmark = pytest.mark.integration

MOTO_ARN = "arn:aws:sts::123456789012:user/moto"


def test_dynamodb_records_the_writer_once_per_store(aws_endpoint: str, requests_made: Counter[str]) -> None:
    """put and put_many store the caller's ARN in ``by``; STS is asked once for the store's life."""
    table = DynamoDBStore(DynamoDBSource("cfg"))
    table.init()
    table.put("PRD", "a", "1")
    table.put("PRD", "a", "2")
    table.put_many("PRD", {"b": "1", "c": "2"})
    assert requests_made["sts.GetCallerIdentity"] == 1
    for key in ("a", "b", "c"):
        [version] = table.history("PRD", key)
        assert (version.by, version.by_unknown) == (MOTO_ARN, None)


def test_dynamodb_item_written_by_another_tool_has_no_writer(table: DynamoDBStore, boto: Any) -> None:
    """An item without ``by`` is "not recorded", never guessed; a confstage put then records its writer."""
    item = {"stage": {"S": "PRD"}, "key": {"S": "k"}, "value": {"S": "v"}}
    boto("dynamodb").put_item(TableName=table.table, Item=item)
    [version] = table.history("PRD", "k")
    assert (version.by, version.by_unknown) == (None, NOT_RECORDED)
    table.put("PRD", "k", "w")
    assert table.history("PRD", "k")[0].by == MOTO_ARN


def test_s3_records_the_writer_in_object_metadata(bucket: S3Store, boto: Any) -> None:
    """Each object version carries ``x-amz-meta-confstage-by``; history shows it; a rollback names its writer."""
    first = bucket.put("PRD", "flag", "old")
    bucket.put("PRD", "flag", "new")
    head = boto("s3").head_object(Bucket=bucket.bucket, Key="app/PRD/flag")
    assert head["Metadata"]["confstage-by"] == MOTO_ARN
    assert head["Metadata"]["confstage-secure"] == "false"
    boto("s3").put_object(Bucket=bucket.bucket, Key="app/PRD/flag", Body=b"by hand")
    history = bucket.history("PRD", "flag")
    assert [(v.by, v.by_unknown) for v in history] == [(None, NOT_RECORDED), (MOTO_ARN, None), (MOTO_ARN, None)]
    assert first is not None
    bucket.rollback("PRD", "flag", first)
    restored = bucket.history("PRD", "flag")[0]
    assert (restored.latest, restored.by) == (True, MOTO_ARN)
    assert bucket.reader.fetch("PRD", ["flag"])["flag"] == "old"


def test_s3_document_versions_name_their_writer(document: S3Store) -> None:
    """In the document layout each document version that holds the key names who wrote it."""
    document.put("PRD", "a", "1")
    document.put("PRD", "a", "2")
    assert [v.by for v in document.history("PRD", "a")] == [MOTO_ARN, MOTO_ARN]


def test_ssm_shows_last_modified_user_and_not_a_placeholder(aws_endpoint: str) -> None:
    """moto's ``LastModifiedUser`` is "N/A": shown as unknown, with that reason, never as a principal."""
    store = SSMStore(SSMSource("/app"))
    store.put("PRD", "k", "v")
    [version] = store.history("PRD", "k")
    assert version.by is None
    assert version.by_unknown == "SSM's LastModifiedUser is 'N/A', not an ARN"


def test_ssm_gives_each_version_its_last_modified_user() -> None:
    """GetParameterHistory's ``LastModifiedUser`` (an ARN, as AWS sends it) is each version's ``by``."""
    when = datetime(2026, 1, 2, tzinfo=timezone.utc)
    alice, bob = "arn:aws:iam::123456789012:user/alice", "arn:aws:sts::123456789012:assumed-role/deploy/ci"

    def answer(request: AwsRequest) -> dict[str, Any]:
        assert request.operation == "GetParameterHistory"
        entries = [("1", alice), ("2", bob), ("3", "")]
        return {
            "Parameters": [
                {
                    "Name": "/app/PRD/k",
                    "Version": int(n),
                    "Type": "String",
                    "LastModifiedDate": when,
                    "LastModifiedUser": u,
                }
                for n, u in entries
            ]
        }

    transport = MockTransport(answer)
    store = SSMStore(SSMSource("/app", transport=transport), transport)
    history = store.history("PRD", "k")
    assert [(v.version, v.by) for v in history] == [("3", None), ("2", bob), ("1", alice)]
    assert history[0].by_unknown == "SSM returned no LastModifiedUser"


def test_secrets_manager_versions_say_why_the_writer_is_unknown(aws_endpoint: str) -> None:
    """Secrets Manager's versions carry their dates; ``by`` is unknown, with the reason."""
    from confstage.stores import build_store

    store = build_store("secretsmanager://app")
    assert store is not None
    store.put("PRD", "k", "1")
    store.put("PRD", "k", "2")
    history = store.history("PRD", "k")
    assert len(history) == 2
    assert all(v.modified is not None and v.by is None and v.by_unknown == UNKNOWN_WRITER for v in history)


def test_cli_history_json_has_by_and_the_table_a_column(aws_endpoint: str) -> None:
    """``history --output json`` carries ``by``; the table has a ``by`` column and says why one is unknown."""
    source = "dynamodb://hist"
    assert invoke("init", "--source", source).exit_code == 0
    assert invoke("put", "k", "v", "--stage", "PRD", "--source", source).exit_code == 0
    result = invoke("history", "k", "--stage", "PRD", "--source", source, "--output", "json")
    assert result.exit_code == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert (record["by"], record["by_unknown"]) == (MOTO_ARN, None)
    shown = invoke("history", "k", "--stage", "PRD", "--source", source, env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    header = next(line for line in shown.stdout.splitlines() if "version" in line)
    assert header.split() == ["version", "modified", "latest", "by"]
    assert MOTO_ARN in shown.stdout

    secrets = "secretsmanager://app"
    assert invoke("put", "k", "v", "--stage", "PRD", "--source", secrets).exit_code == 0
    unknown = invoke("history", "k", "--stage", "PRD", "--source", secrets, env={"COLUMNS": "200"})
    assert unknown.exit_code == 0, unknown.stderr
    assert "unknown" in unknown.stdout
    assert f"by unknown: {UNKNOWN_WRITER}" in unknown.stderr
