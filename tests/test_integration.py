"""End to end over HTTP: a handler invoked through aliases, $LATEST and versions, reading a DynamoDB
stage and console-encrypted variables from the local endpoint; and 16 threads on one cold stage."""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from typing import Any

import pytest

import confstage
from confstage import Config, SourceError, aws
from confstage.sources.dynamodb import DynamoDBSource
from confstage.stores.dynamodb import DynamoDBStore
from confstage.testing import lambda_context

FUNCTION = "helloStagedWorld"


@pytest.fixture(name="table")
def fixture_table(boto: Any) -> str:
    """A stage-key table with DEV and PRD values."""
    ddb = boto("dynamodb")
    DynamoDBStore(DynamoDBSource("app-config")).init()  # the stage-key table, as `confstage init` makes it
    for stage in ("DEV", "PRD"):
        for key in ("db_url", "timeout_ms"):
            value = f"{key}-{stage}" if key == "db_url" else str(len(stage) * 1000)
            ddb.put_item(TableName="app-config", Item={"stage": {"S": stage}, "key": {"S": key}, "value": {"S": value}})
    aws.reset()  # the function under test starts with its own clients
    return "app-config"


@pytest.mark.integration
def test_handler_resolves_each_invocation_from_its_alias(
    table: str, boto: Any, kms_key: str, monkeypatch: pytest.MonkeyPatch, requests_made: Counter[str]
) -> None:
    """Aliases pick their stage; $LATEST and version numbers fall back to CONFSTAGE_STAGE; one Query per stage."""
    kms = boto("kms")
    for stage in ("DEV", "PRD"):
        blob = kms.encrypt(
            KeyId=kms_key, Plaintext=f"key-{stage}".encode(), EncryptionContext={"LambdaFunctionName": FUNCTION}
        )["CiphertextBlob"]
        monkeypatch.setenv(f"{stage}_api_key", base64.b64encode(blob).decode())
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
    monkeypatch.setenv("CONFSTAGE_SOURCES", f"kms-env://?keys=api_key dynamodb://{table}")
    monkeypatch.setenv("CONFSTAGE_ALIASES", "live=PRD")
    monkeypatch.setenv("CONFSTAGE_STAGE", "DEV")

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> tuple[str, str, int, str]:
        return (
            confstage.current_stage(),
            confstage.get("db_url"),
            confstage.get_int("timeout_ms"),
            confstage.get("api_key"),
        )

    assert lambda_handler({}, lambda_context("live", function=FUNCTION)) == ("PRD", "db_url-PRD", 3000, "key-PRD")
    assert lambda_handler({}, lambda_context("DEV", function=FUNCTION)) == ("DEV", "db_url-DEV", 3000, "key-DEV")
    assert lambda_handler({}, lambda_context("$LATEST", function=FUNCTION))[0] == "DEV"
    assert lambda_handler({}, lambda_context(None, version="7", function=FUNCTION))[0] == "DEV"
    assert lambda_handler({}, lambda_context(None, function=FUNCTION))[0] == "DEV"
    assert requests_made["dynamodb.Query"] == 2
    assert requests_made["kms.Decrypt"] == 2


@pytest.mark.integration
def test_sixteen_threads_on_a_cold_stage_make_one_request(table: str, requests_made: Counter[str]) -> None:
    """16 threads asking for the same cold key at once cost one DynamoDB Query between them."""
    config = Config(f"dynamodb://{table}", stage="PRD", cache_dir="")
    barrier = threading.Barrier(16)
    results: list[str] = []

    def work() -> None:
        barrier.wait(timeout=10)
        results.append(config.get("db_url"))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert results == ["db_url-PRD"] * 16
    assert requests_made["dynamodb.Query"] == 1


def test_a_dead_endpoint_gives_up_within_seconds_with_default_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the default timeouts and retries, a get against a closed port fails in seconds, not minutes."""
    for name in ("CONFSTAGE_CONNECT_TIMEOUT", "CONFSTAGE_READ_TIMEOUT", "CONFSTAGE_MAX_ATTEMPTS"):
        monkeypatch.delenv(name, raising=False)
    config = Config("dynamodb://app-config", stage="PRD", cache_dir="")
    started = time.perf_counter()
    with pytest.raises(SourceError) as info:
        config.get("db_url")
    assert time.perf_counter() - started < 10
    assert info.value.operation == "dynamodb:Query"
