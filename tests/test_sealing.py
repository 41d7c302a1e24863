"""Secrets in the /tmp cache, sealed under a KMS data key: a restart opens them with one KMS call."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from confstage import Config, aws, crypto
from confstage.sources.dynamodb import DynamoDBSource
from confstage.stores.dynamodb import DynamoDBStore

from .conftest import FakeClock
from .fakes import DictSource

SECRETS = {"password": "pa55-ünïcode-do-not-leak", "token": "tok-1234567890"}


def values() -> dict[str, dict[str, str]]:
    return {"PRD": {**SECRETS, "host": "db.internal"}}


def restart() -> None:
    """What a new process starts without: boto3 clients and plaintext data keys."""
    aws.reset()
    crypto.clear_data_keys()


@pytest.mark.integration
def test_a_restart_opens_every_secret_with_one_kms_call(
    kms_key: str, tmp_path: Path, clock: FakeClock, requests_made: Counter[str]
) -> None:
    """Sealed secrets never appear in plaintext on disk; a new process reads them all with one KMS Decrypt."""
    first = DictSource(values(), secret=SECRETS)
    Config([first], stage="PRD", cache_dir=str(tmp_path), cache_kms_key=kms_key, clock=clock).get_many(
        ["password", "token", "host"]
    )
    (path,) = tmp_path.iterdir()
    content = path.read_text()
    assert all(secret not in content for secret in SECRETS.values())
    stored = json.loads(content)
    assert sorted(stored["sealed"]["values"]) == ["password", "token"]
    assert stored["withheld"] == []
    assert requests_made["kms.GenerateDataKey"] == 1

    restart()
    requests_made.clear()
    again = DictSource(values(), secret=SECRETS)
    config = Config([again], stage="PRD", cache_dir=str(tmp_path), cache_kms_key=kms_key, clock=clock)
    assert config.get_many(["password", "token", "host"]) == {**SECRETS, "host": "db.internal"}
    assert again.fetches == 0
    assert requests_made == Counter({"kms.Decrypt": 1})

    clock.tick(301)  # the restarted process refreshes and writes with the key it unwrapped
    assert config.get("password") == SECRETS["password"]
    assert requests_made["kms.GenerateDataKey"] == 0
    assert all(secret not in path.read_text() for secret in SECRETS.values())


@pytest.mark.integration
def test_a_tampered_sealed_value_is_refetched_not_served(kms_key: str, tmp_path: Path, clock: FakeClock) -> None:
    """A sealed entry that does not authenticate is ignored: the secret comes from the source again."""
    Config(
        [DictSource(values(), secret=SECRETS)], stage="PRD", cache_dir=str(tmp_path), cache_kms_key=kms_key, clock=clock
    ).get("password")
    (path,) = tmp_path.iterdir()
    stored = json.loads(path.read_text())
    blob = stored["sealed"]["values"]["password"][0]
    stored["sealed"]["values"]["token"][0] = blob  # a sealed value moved to another key
    path.write_text(json.dumps(stored))
    restart()
    again = DictSource(values(), secret=SECRETS)
    config = Config([again], stage="PRD", cache_dir=str(tmp_path), cache_kms_key=kms_key, clock=clock)
    assert config.get("token") == SECRETS["token"]
    assert again.fetches == 1


@pytest.mark.integration
def test_when_sealing_fails_secrets_stay_in_memory_with_one_warning(
    aws_endpoint: str, tmp_path: Path, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """A KMS key that cannot be used leaves secrets out of the file (withheld), warns once, and gets still work."""
    source = DictSource({"PRD": {**SECRETS, "host": "h"}, "DEV": {**SECRETS, "host": "h"}}, secret=SECRETS)
    config = Config([source], stage="PRD", cache_dir=str(tmp_path), cache_kms_key="alias/missing", clock=clock)
    with caplog.at_level(logging.WARNING, logger="confstage"):
        assert config.get("password") == SECRETS["password"]
        assert config.get("password", stage="DEV") == SECRETS["password"]
    assert len([r for r in caplog.records if "cannot seal" in r.getMessage()]) == 1
    for path in tmp_path.iterdir():
        stored: dict[str, Any] = json.loads(path.read_text())
        assert stored["sealed"] is None
        assert stored["withheld"] == ["password", "token"]
        assert all(secret not in path.read_text() for secret in SECRETS.values())


@pytest.mark.integration
def test_dynamodb_secure_values_survive_a_restart_without_the_table(
    boto: Any, kms_key: str, tmp_path: Path, requests_made: Counter[str]
) -> None:
    """Envelope-encrypted DynamoDB values: first process Query + one Decrypt per value; a restart, one Decrypt."""
    store = DynamoDBStore(DynamoDBSource("sealed-config"))
    store.init()
    for key, value in SECRETS.items():
        store.put("PRD", key, value, kms_key=kms_key)
    store.put("PRD", "host", "db.internal")
    restart()
    requests_made.clear()
    Config("dynamodb://sealed-config", stage="PRD", cache_dir=str(tmp_path), cache_kms_key=kms_key).get("password")
    assert requests_made["dynamodb.Query"] == 1
    assert requests_made["kms.Decrypt"] == 2  # one data key per secure value
    restart()
    requests_made.clear()
    config = Config("dynamodb://sealed-config", stage="PRD", cache_dir=str(tmp_path), cache_kms_key=kms_key)
    assert config.get_many(["password", "token", "host"]) == {**SECRETS, "host": "db.internal"}
    assert requests_made == Counter({"kms.Decrypt": 1})
