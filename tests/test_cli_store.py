"""Store commands of the console script against the local endpoint, each effect checked with boto3."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ._cli import run

pytestmark = pytest.mark.integration

TABLE = "dynamodb://app-config"
BUCKET = "s3://app-config-bucket/app"
SECRET = "sk_live_never_printed"


def ok(*args: str, input: str | None = None) -> bytes:
    result = run(*args, input=input)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def dynamo_value(boto: Any, stage: str, key: str) -> str:
    item = boto("dynamodb").get_item(TableName="app-config", Key={"stage": {"S": stage}, "key": {"S": key}})["Item"]
    return str(item["value"]["S"])


@pytest.fixture(name="table")
def fixture_table(aws_endpoint: str) -> str:
    """The app-config table, made by ``confstage init``."""
    ok("init", "--source", TABLE)
    return TABLE


def test_init_creates_an_on_demand_table_with_the_stage_key_schema(boto: Any, aws_endpoint: str) -> None:
    """``init`` makes the table with stage (HASH) and key (RANGE), on-demand; a second run is harmless."""
    ok("init", "--source", TABLE)
    ok("--source", TABLE, "init")
    table = boto("dynamodb").describe_table(TableName="app-config")["Table"]
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [("stage", "HASH"), ("key", "RANGE")]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


def test_init_of_the_flat_layout_has_one_hash_key(boto: Any, aws_endpoint: str) -> None:
    """The flat layout's table has the single hash key ``stage``."""
    ok("init", "--source", "dynamodb://legacy?layout=flat")
    table = boto("dynamodb").describe_table(TableName="legacy")["Table"]
    assert [(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]] == [("stage", "HASH")]


def test_init_creates_a_versioned_private_bucket(boto: Any, aws_endpoint: str) -> None:
    """``init`` on s3:// makes the bucket, turns versioning on and blocks public access; twice is harmless."""
    ok("init", "--source", BUCKET)
    ok("init", "--source", BUCKET)
    s3 = boto("s3")
    assert s3.get_bucket_versioning(Bucket="app-config-bucket")["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket="app-config-bucket")["PublicAccessBlockConfiguration"]
    assert all(block.values())


def test_put_then_get_prints_exactly_the_value(table: str, boto: Any) -> None:
    """``put KEY VALUE`` stores the value; ``get`` prints it alone on stdout."""
    ok("put", "db_url", "postgres://dev/db", "--stage", "DEV", "--source", table)
    assert dynamo_value(boto, "DEV", "db_url") == "postgres://dev/db"
    assert ok("--stage", "DEV", "--source", table, "get", "db_url") == b"postgres://dev/db\n"


def test_stdin_and_file_values_lose_exactly_one_trailing_newline(table: str, boto: Any, tmp_path: Path) -> None:
    """A value from stdin or --file loses one trailing newline, not two, and keeps inner ones."""
    ok("put", "a", "--stage", "DEV", "--source", table, input="line1\nline2\n\n")
    assert dynamo_value(boto, "DEV", "a") == "line1\nline2\n"
    path = tmp_path / "value.txt"
    path.write_bytes(b"from file\r\n")
    ok("put", "b", "--file", str(path), "--stage", "DEV", "--source", table)
    assert dynamo_value(boto, "DEV", "b") == "from file"


def test_secure_put_stores_ciphertext_and_get_masks_it(table: str, boto: Any, kms_key: str) -> None:
    """``put --secure`` stores an envelope, not the plaintext; ``get`` masks it unless ``--reveal``."""
    result = run("put", "stripe", "--secure", "--kms-key", kms_key, "--stage", "PRD", "--source", table, input=SECRET)
    assert result.returncode == 0
    assert SECRET not in (result.stdout + result.stderr).decode()
    stored = dynamo_value(boto, "PRD", "stripe")
    assert SECRET not in stored
    assert stored.startswith("cs1:")
    assert ok("get", "stripe", "--stage", "PRD", "--source", table) == b"********\n"
    assert ok("get", "stripe", "--reveal", "--stage", "PRD", "--source", table) == f"{SECRET}\n".encode()


def test_list_json_is_an_object_with_secure_values_masked(table: str, kms_key: str) -> None:
    """``list --output json`` prints {key: value} with secure values masked, and reveals them on request."""
    ok("put", "plain", "v1", "--stage", "PRD", "--source", table)
    ok("put", "secret", SECRET, "--secure", "--kms-key", kms_key, "--stage", "PRD", "--source", table)
    listing = json.loads(ok("list", "--stage", "PRD", "--source", table, "--output", "json"))
    assert listing == {"plain": "v1", "secret": "********"}
    revealed = json.loads(ok("--output", "json", "list", "--reveal", "--stage", "PRD", "--source", table))
    assert revealed == {"plain": "v1", "secret": SECRET}
    table_text = ok("list", "--stage", "PRD", "--source", table).decode()
    assert "plain" in table_text
    assert SECRET not in table_text


def test_expect_version_refuses_a_stale_write(table: str, boto: Any) -> None:
    """``--expect-version`` fails with exit 1, leaving the value alone, when someone wrote in between."""
    ok("put", "k", "one", "--stage", "DEV", "--source", table)
    ok("put", "k", "two", "--expect-version", "1", "--stage", "DEV", "--source", table)
    stale = run("put", "k", "three", "--expect-version", "1", "--stage", "DEV", "--source", table)
    assert stale.returncode == 1
    assert len(stale.stderr.decode().splitlines()) == 1
    assert dynamo_value(boto, "DEV", "k") == "two"


def test_delete_removes_and_then_reports_not_found(table: str, boto: Any) -> None:
    """``delete`` removes the item (exit 0), and a second delete exits 1."""
    ok("put", "gone", "x", "--stage", "DEV", "--source", table)
    ok("delete", "gone", "--stage", "DEV", "--source", table)
    assert "Item" not in boto("dynamodb").get_item(
        TableName="app-config", Key={"stage": {"S": "DEV"}, "key": {"S": "gone"}}
    )
    assert run("delete", "gone", "--stage", "DEV", "--source", table).returncode == 1


def test_import_dotenv_writes_every_value_with_a_progress_bar(table: str, boto: Any, tmp_path: Path) -> None:
    """A long .env import writes every value (quotes, ``=`` and comments handled) and shows progress on stderr."""
    lines = ["# generated", "export url='postgres://h/db?a=b'", 'motd="hello # not a comment"']
    lines += [f"key_{i:03d}=value {i}  # comment" for i in range(120)]
    path = tmp_path / "dev.env"
    path.write_text("\n".join(lines) + "\n")
    result = run("import", str(path), "--stage", "DEV", "--source", table)
    assert result.returncode == 0, result.stderr
    assert result.stdout == b""
    assert "importing" in result.stderr.decode()
    items = boto("dynamodb").query(
        TableName="app-config",
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "stage"},
        ExpressionAttributeValues={":s": {"S": "DEV"}},
    )["Items"]
    values = {i["key"]["S"]: i["value"]["S"] for i in items}
    assert len(values) == 122
    assert values["url"] == "postgres://h/db?a=b"
    assert values["motd"] == "hello # not a comment"
    assert values["key_007"] == "value 7"


def test_import_dry_run_writes_nothing(table: str, boto: Any, tmp_path: Path) -> None:
    """``import --dry-run`` lists the keys it would write and writes none."""
    path = tmp_path / "values.json"
    path.write_text('{"a": "1", "b": 2}')
    result = run("import", str(path), "--dry-run", "--stage", "DEV", "--source", table)
    assert result.returncode == 0
    assert "would add a" in result.stderr.decode()
    assert boto("dynamodb").scan(TableName="app-config")["Count"] == 0


def test_export_round_trips_through_import(table: str, tmp_path: Path, kms_key: str) -> None:
    """``export`` as .env or JSON is read back by ``import`` unchanged; secure values are left out."""
    ok("put", "multi", 'line "one"\nline two', "--stage", "DEV", "--source", table)
    ok("put", "plain", "x=y", "--stage", "DEV", "--source", table)
    ok("put", "secret", SECRET, "--secure", "--kms-key", kms_key, "--stage", "DEV", "--source", table)
    dotenv = run("export", "--stage", "DEV", "--source", table)
    assert SECRET not in dotenv.stdout.decode()
    assert "secret" in dotenv.stderr.decode()
    (tmp_path / "dev.env").write_bytes(dotenv.stdout)
    ok("import", str(tmp_path / "dev.env"), "--stage", "TST", "--source", table)
    exported = json.loads(ok("export", "--format", "json", "--stage", "TST", "--source", table))
    assert exported == {"multi": 'line "one"\nline two', "plain": "x=y"}


def test_diff_reports_added_removed_and_changed_without_secrets(table: str, kms_key: str) -> None:
    """``diff`` sorts keys into added/removed/changed; a changed secure value is reported masked."""
    for stage, values in {"DEV": {"a": "1", "b": "2", "c": "3"}, "PRD": {"b": "2", "c": "30", "d": "4"}}.items():
        for key, value in values.items():
            ok("put", key, value, "--stage", stage, "--source", table)
    ok("put", "s", "dev-secret", "--secure", "--kms-key", kms_key, "--stage", "DEV", "--source", table)
    ok("put", "s", "prd-secret", "--secure", "--kms-key", kms_key, "--stage", "PRD", "--source", table)
    ok("put", "same", "x", "--secure", "--kms-key", kms_key, "--stage", "DEV", "--source", table)
    ok("put", "same", "x", "--secure", "--kms-key", kms_key, "--stage", "PRD", "--source", table)
    result = json.loads(ok("diff", "DEV", "PRD", "--source", table, "--output", "json"))
    assert result == {
        "added": {"d": "4"},
        "removed": {"a": "1"},
        "changed": {"c": {"from": "3", "to": "30"}, "s": {"from": "********", "to": "********"}},
        "unchanged": 2,
    }
    human = run("diff", "DEV", "PRD", "--source", table)
    assert "secret" not in human.stdout.decode()
    assert run("diff", "DEV", "PRD", "--exit-code", "--source", table).returncode == 1


def test_promote_copies_only_what_differs_and_dry_run_writes_nothing(table: str, boto: Any, kms_key: str) -> None:
    """``promote --dry-run`` changes nothing; ``promote`` copies (re-encrypting secure values for the new stage)."""
    ok("put", "a", "1", "--stage", "DEV", "--source", table)
    ok("put", "b", "2", "--stage", "DEV", "--source", table)
    ok("put", "s", SECRET, "--secure", "--kms-key", kms_key, "--stage", "DEV", "--source", table)
    ok("promote", "DEV", "PRD", "--dry-run", "--source", table)
    assert boto("dynamodb").scan(TableName="app-config")["Count"] == 3
    refused = run("promote", "DEV", "PRD", "--source", table)
    assert refused.returncode == 2
    assert "--kms-key" in refused.stderr.decode()
    ok("promote", "DEV", "PRD", "--keys", "a", "--source", table)
    assert json.loads(ok("list", "--stage", "PRD", "--source", table, "--output", "json")) == {"a": "1"}
    ok("promote", "DEV", "PRD", "--kms-key", kms_key, "--source", table)
    assert dynamo_value(boto, "PRD", "s") != dynamo_value(boto, "DEV", "s")  # bound to its own stage
    assert ok("get", "s", "--reveal", "--stage", "PRD", "--source", table) == f"{SECRET}\n".encode()
    missing = run("promote", "DEV", "PRD", "--keys", "nope", "--source", table)
    assert missing.returncode == 1


def test_s3_history_and_rollback_restore_the_old_body(boto: Any, aws_endpoint: str) -> None:
    """``history`` lists S3 object versions; ``rollback --to`` makes the old body current again."""
    ok("init", "--source", BUCKET)
    ok("put", "flag", "old", "--stage", "PRD", "--source", BUCKET)
    ok("put", "flag", "new", "--stage", "PRD", "--source", BUCKET)
    versions = json.loads(ok("history", "flag", "--stage", "PRD", "--source", BUCKET, "--output", "json"))
    assert len(versions) == 2
    assert versions[0]["latest"] is True
    old = versions[1]["version"]
    ok("rollback", "flag", "--to", old, "--stage", "PRD", "--source", BUCKET)
    body = boto("s3").get_object(Bucket="app-config-bucket", Key="app/PRD/flag")["Body"].read()
    assert body == b"old"
    assert ok("get", "flag", "--stage", "PRD", "--source", BUCKET) == b"old\n"


def test_history_of_a_missing_key_exits_one(table: str) -> None:
    """``history`` of a key that was never written exits 1."""
    assert run("history", "never", "--stage", "DEV", "--source", table).returncode == 1


def test_get_reads_through_the_chain_in_order(table: str) -> None:
    """``get`` returns the first source's value: env:// before DynamoDB, DynamoDB when env has none."""
    ok("put", "k", "from-dynamodb", "--stage", "DEV", "--source", table)
    chain = f"env:// {table}"
    assert ok("get", "k", "--stage", "DEV", "--source", chain) == b"from-dynamodb\n"
    result = run("get", "k", "--stage", "DEV", "--source", chain, env={"DEV_k": "from-env"})
    assert result.stdout == b"from-env\n"
    described = json.loads(ok("get", "k", "--stage", "DEV", "--source", chain, "--output", "json"))
    assert described["source"] == table
