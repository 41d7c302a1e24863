"""``import`` and ``promote`` check everything, then write; a store failing midway is reported key by key.

Issue 10, item 7. In-process (click's CliRunner) against the local endpoint, the midway failures
through the fault proxy; each effect is checked with plain boto3 on the endpoint itself.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from confstage.stores import Store, build_store

from ._cli import assert_one_line_error, invoke
from .faultproxy import FaultProxy

pytestmark = pytest.mark.integration

TABLE = "dynamodb://cfg"
SECRET = "sk_live_never_printed"


def stage_keys(boto: Any, stage: str) -> list[str]:
    """The keys of a stage in the cfg table, read with boto3 (not through confstage)."""
    items = boto("dynamodb").query(
        TableName="cfg",
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "stage"},
        ExpressionAttributeValues={":s": {"S": stage}},
    )["Items"]
    return sorted(item["key"]["S"] for item in items)


def make_store(url: str) -> Store:
    store = build_store(url)
    assert store is not None
    store.init()
    store.items("WARM")  # moto's first SSM call loads its public parameters: slow, keep it out of the timing
    return store


@pytest.fixture(name="table")
def fixture_table(aws_endpoint: str) -> Store:
    """The stage-key table cfg on the local endpoint."""
    return make_store(TABLE)


@pytest.fixture(name="proxy")
def fixture_proxy(fault_proxy: Callable[..., FaultProxy]) -> FaultProxy:
    """The fault proxy in front of the local endpoint; one attempt per request, so a fault is final at once."""
    return fault_proxy(settings={"CONFSTAGE_MAX_ATTEMPTS": "1", "CONFSTAGE_READ_TIMEOUT": "20"})


def dotenv(tmp_path: Path, lines: list[str]) -> str:
    """A .env file of ``lines``; returns its path."""
    path = tmp_path / "values.env"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


@pytest.mark.parametrize(
    ("suffix", "bad_entry", "where", "problem"),
    [
        (".env", "a/../b=x", "line 61, column 1", "segment"),  # breaks the key rule
        (".env", "big=" + "x" * 420_000, "line 61, column 1", "at most 409600 bytes"),  # larger than an item
        (".json", '"' + "k" * 1000 + "é" * 20 + '": "x"', "line 62, column 1", "sort key holds at most 1024"),
    ],
)
def test_import_with_a_bad_entry_late_in_the_file_writes_nothing(
    suffix: str, bad_entry: str, where: str, problem: str, table: Store, boto: Any, tmp_path: Path
) -> None:
    """One bad entry at the end, after two and a half batches of good ones: exit 1 naming its line, nothing written."""
    path = tmp_path / f"values{suffix}"
    if suffix == ".env":
        path.write_text("\n".join([*(f"key_{i:02d}=value {i}" for i in range(60)), bad_entry]) + "\n")
    else:
        path.write_text("{\n" + ",\n".join([*(f'"key_{i:02d}": "value {i}"' for i in range(60)), bad_entry]) + "\n}\n")
    result = invoke("import", str(path), "--stage", "DEV", "--source", TABLE)
    line = assert_one_line_error(result, status=1)
    assert where in line
    assert problem in line
    assert line.endswith("nothing written")
    assert "xxxx" not in line
    assert stage_keys(boto, "DEV") == []


@pytest.mark.parametrize("unusable", ["alias/no-such-key", "arn:aws:kms:us-east-1:123456789012:key/gone"])
def test_promote_with_an_unusable_kms_key_writes_nothing(unusable: str, table: Store, boto: Any, kms_key: str) -> None:
    """Secure values are re-encrypted before the first write, so a KMS key that fails leaves TO_STAGE untouched."""
    table.put_many("DEV", {"a": "1", "b": "2"})
    table.put("DEV", "s", SECRET, kms_key=kms_key)
    result = invoke("promote", "DEV", "PRD", "--kms-key", unusable, "--source", TABLE)
    assert result.exit_code == 1, result.output
    assert "nothing written" in result.stderr
    assert "kms:GenerateDataKey" in result.stderr
    assert SECRET not in result.output
    assert stage_keys(boto, "PRD") == []


def test_import_failing_midway_lists_the_keys_written_and_not(proxy: FaultProxy, boto: Any, tmp_path: Path) -> None:
    """DynamoDB throttles the third BatchWriteItem: exit 1, and the report names the 50 keys written and the 10 not."""
    make_store(TABLE)
    keys = [f"key_{i:02d}" for i in range(60)]
    path = dotenv(tmp_path, [f"{key}=value of {key}" for key in keys])
    proxy.fail_after(1 + 1 + 2, "throttle")  # the Query for the current versions, STS (the writer), two batches
    result = invoke("import", path, "--stage", "DEV", "--source", TABLE)
    proxy.heal()
    assert result.exit_code == 1, result.output
    stderr = result.stderr.splitlines()
    lines = stderr[[line.startswith("Error:") for line in stderr].index(True) :]  # after the progress bar
    assert len(lines) == 3
    assert lines[0].startswith(f"Error: import into stage DEV of {TABLE} failed: 50 of 60 value(s) written")
    assert "ThrottlingException" in lines[0]
    assert lines[1] == f"written (50): {', '.join(keys[:50])}"
    assert lines[2] == f"not written (10): {', '.join(keys[50:])}"
    assert stage_keys(boto, "DEV") == keys[:50]
    assert "value of" not in result.output


def test_promote_failing_midway_lists_the_keys_written_and_not(proxy: FaultProxy, aws_endpoint: str) -> None:
    """SSM fails the fifth PutParameter of a promote: the report names the four parameters written."""
    store = make_store("ssm:///app")
    keys = [f"k{i}" for i in range(8)]
    store.put_many("DEV", {key: f"value {key}" for key in keys})
    proxy.fail_after(2 + 4, "500")  # GetParametersByPath of DEV and of PRD, four PutParameters
    result = invoke("promote", "DEV", "PRD", "--source", "ssm:///app")
    proxy.heal()
    assert result.exit_code == 1, result.output
    assert "4 of 8 value(s) written" in result.stderr
    assert f"written (4): {', '.join(keys[:4])}" in result.stderr
    assert f"not written (4): {', '.join(keys[4:])}" in result.stderr
    assert sorted(store.items("PRD")) == keys[:4]


STAGES = ["", "a/b", "..", "PRD/../DEV", "dév", "a\x00b", "x" * 129, "123", "PRD ", "*"]


@pytest.mark.parametrize("stage", STAGES)
@pytest.mark.parametrize(
    "args",
    [
        ("put", "k", "v", "--stage", "{}"),
        ("list", "--stage", "{}"),
        ("import", "-", "--stage", "{}"),
        ("export", "--stage", "{}"),
        ("diff", "{}", "DEV"),
        ("diff", "DEV", "{}"),
        ("promote", "{}", "DEV"),
        ("promote", "DEV", "{}", "--dry-run"),
        ("iam-policy", "--stage", "{}"),
        ("resolve", "arn:aws:lambda:us-east-1:123456789012:function:f", "--stage", "{}"),
    ],
    ids=lambda args: "-".join(a for a in args if a != "{}"),
)
def test_stages_follow_the_alias_rule_before_anything_is_read(args: tuple[str, ...], stage: str) -> None:
    """An illegal stage given as --stage or a stage argument exits 2 naming the rule, before any AWS request."""
    # AWS_ENDPOINT_URL is a closed port here: reaching AWS would fail with exit 1, not 2.
    result = invoke(*(stage if arg == "{}" else arg for arg in args), "--source", TABLE, input="A=1\n")
    line = assert_one_line_error(result, status=2)
    assert "not a valid stage name" in line
    assert "letters, digits, '-' and '_'" in line


def test_an_illegal_confstage_stage_variable_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stage from $CONFSTAGE_STAGE is checked too, and the error says where it came from."""
    monkeypatch.setenv("CONFSTAGE_STAGE", "PRD/../DEV")
    line = assert_one_line_error(invoke("list", "--source", TABLE), status=2)
    assert line.startswith("Error: CONFSTAGE_STAGE: ")
