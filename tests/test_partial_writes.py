"""``put_many`` of every store: everything checked before the first write, and a failure midway named exactly.

The midway failures are real: the stores talk to the local endpoint through the fault proxy, which
lets the first N requests through and fails every later one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from confstage import aws
from confstage.errors import KeyNameError, SourceError, StageError
from confstage.stores import PartialWriteError, Store, build_store
from confstage.transport.botocore import BotocoreTransport

from ._cli import invoke
from .faultproxy import FaultProxy

pytestmark = pytest.mark.integration

KEYS = [f"key_{i:02d}" for i in range(60)]
VALUES = {key: f"value of {key}" for key in KEYS}

# url -> requests put_many makes before its first write of these 60 values, and how many to let through
# after them: DynamoDB reads the current versions with one Query, then writes 25 items a BatchWriteItem;
# S3 objects and SSM write one request a value; the S3 document and Secrets Manager read once and write once;
# Secrets Manager's secrets layout lists the stage's secrets once, then writes one request a value.
MIDWAY = {
    "dynamodb://cfg": (1, 2),  # two BatchWriteItems of 25, then the third fails
    "s3://cfg-bucket/app": (0, 20),
    "ssm:///app": (0, 20),
    "s3://cfg-bucket/doc?layout=document": (1, 0),
    "secretsmanager://app": (1, 0),
    "secretsmanager://app?layout=secrets": (1, 20),
}


@pytest.fixture(name="proxy")
def fixture_proxy(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[FaultProxy]:
    """The fault proxy in front of the local endpoint; one attempt per request, so a fault is final at once."""
    proxy = FaultProxy(aws_endpoint).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
    monkeypatch.setenv("CONFSTAGE_MAX_ATTEMPTS", "1")
    aws.reset()
    yield proxy
    proxy.stop()


def make_store(url: str) -> Store:
    """The store of ``url``, created and warmed up (moto's first SSM call loads its public parameters; the writer's
    ARN, which DynamoDB and S3 writes record, is asked once per store)."""
    store = build_store(url)
    assert store is not None
    store.init()
    store.items("WARM")
    store.writer()
    return store


@pytest.mark.parametrize("url", sorted(MIDWAY))
def test_put_many_failing_midway_names_exactly_the_keys_written(url: str, proxy: FaultProxy) -> None:
    """A store that fails partway raises PartialWriteError whose ``written`` are exactly the keys it holds."""
    store = make_store(url)
    reads, writes = MIDWAY[url]
    confirmed: list[int] = []
    proxy.fail_after(reads + writes, "throttle")
    with pytest.raises(PartialWriteError) as info:
        store.put_many("DEV", VALUES, progress=confirmed.append)
    proxy.heal()
    error = info.value
    held = set(store.items("DEV"))
    assert set(error.written) == held
    assert set(error.written) | set(error.not_written) == set(KEYS)
    assert not set(error.written) & set(error.not_written)
    assert sum(confirmed) == len(error.written)
    per_request = 25 if url.startswith("dynamodb") else 1
    assert len(error.written) == writes * per_request
    assert isinstance(error.__cause__, SourceError)
    assert "value of" not in str(error)
    if not url.startswith("s3://cfg-bucket/app"):  # one request at a time: the order is the file's
        assert list(error.written) == KEYS[: len(error.written)]


@pytest.mark.parametrize("through", ["store", "cli"])
def test_a_write_answered_after_the_runtime_read_timeout_is_sent_once(
    through: str, aws_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes wait ADMIN_READ_TIMEOUT, not the runtime's short CONFSTAGE_READ_TIMEOUT: a PutParameter answered
    late has landed, and botocore's retry after a read timeout would land it again (a second version)."""
    proxy = FaultProxy(aws_endpoint, slow_seconds=1.0).start()
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        monkeypatch.setenv("CONFSTAGE_READ_TIMEOUT", "0.3")
        monkeypatch.setenv("CONFSTAGE_MAX_ATTEMPTS", "3")
        aws.reset()
        store = make_store("ssm:///app")
        proxy.fault = "slow"
        before = proxy.requests
        started = time.monotonic()
        if through == "store":
            assert store.put("PRD", "token", "first") == "1"
        else:
            result = invoke("--source", "ssm:///app", "--stage", "PRD", "put", "token", "first")
            assert result.exit_code == 0, result.output
        elapsed = time.monotonic() - started
        proxy.heal()
        assert proxy.requests - before == 1
        assert elapsed < 10
        assert [v.version for v in store.history("PRD", "token")] == ["1"]
    finally:
        proxy.stop()


@pytest.mark.parametrize("url", ["dynamodb://cfg", "s3://cfg-bucket/app", "s3://cfg-bucket/doc?layout=document"])
def test_put_many_with_an_unusable_kms_key_writes_nothing(url: str, aws_endpoint: str) -> None:
    """Secure values are sealed before the first write, so a KMS key that does not work leaves the stage empty."""
    store = make_store(url)
    with pytest.raises(SourceError, match="kms:GenerateDataKey") as info:
        store.put_many("PRD", VALUES, kms_key="alias/no-such-key", secure=KEYS[40:])
    assert not isinstance(info.value, PartialWriteError)
    assert store.items("PRD") == {}


def test_ssm_writes_a_secure_value_first_so_a_bad_kms_key_fails_before_anything_is_written(
    aws_endpoint: str,
) -> None:
    """SSM encrypts server-side: put_many's first PutParameter is a SecureString, the KMS key's first use."""
    store = make_store("ssm:///app")
    types: list[str] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        types.append(params["Type"])

    transport = store.transport
    assert isinstance(transport, BotocoreTransport)
    transport.client("ssm").meta.events.register("provide-client-params.ssm.PutParameter", record)
    store.put_many("PRD", {"a": "1", "b": "2", "s": "secret", "c": "3"}, kms_key="alias/aws/ssm", secure=["s"])
    assert types == ["SecureString", "String", "String", "String"]


@pytest.mark.parametrize(
    "url",
    [
        "dynamodb://cfg",
        "dynamodb://flat?layout=flat",
        "s3://cfg-bucket/app",
        "ssm:///app",
        "secretsmanager://a",
        "secretsmanager://a?layout=secrets",
    ],
)
def test_put_many_checks_every_key_before_the_first_write(url: str, aws_endpoint: str) -> None:
    """A key that breaks the key rule, last in a batch, fails the whole batch with nothing written."""
    store = make_store(url)
    with pytest.raises(KeyNameError, match="nothing written"):
        store.put_many("DEV", {**VALUES, "a/../b": "x"})
    assert store.items("DEV") == {}
    with pytest.raises(StageError):
        store.put_many("PRD/../DEV", VALUES)


@pytest.mark.parametrize(
    ("url", "key", "value", "reason"),
    [
        ("dynamodb://cfg", "k" * 1000 + "é" * 20, "v", "sort key holds at most 1024"),
        ("dynamodb://cfg", "big", "x" * 500_000, "400 KB|at most 409600"),
        ("dynamodb://flat?layout=flat", "é" * 1024, "v", "partition key holds at most 2048"),
        ("s3://cfg-bucket/app", "é" * 600, "v", "object keys hold at most 1024"),
        ("ssm:///app", "clé", "v", "only letters, digits"),
        ("ssm:///app", "has space", "v", "only letters, digits"),
        ("ssm:///app", "/".join("abcdefghijklmnop"), "v", "at most 15"),
        ("ssm:///app", "x" * 1000, "v", "at most 1011"),
        ("ssm:///app", "blank", "", "empty value"),
        ("ssm:///app", "big", "x" * 9000, "at most 8192"),
        ("secretsmanager://a", "big", "x" * 70_000, "at most 65536"),
        ("secretsmanager://a?layout=secrets", "big", "x" * 70_000, "at most 65536"),
        ("secretsmanager://a?layout=secrets", "blank", "", "empty value"),
        ("secretsmanager://a?layout=secrets", "clé", "v", "only ASCII letters, digits"),
        ("secretsmanager://a?layout=secrets", "has space", "v", "only ASCII letters, digits"),
        ("secretsmanager://a?layout=secrets", "k" * 510, "v", "at most 512"),
    ],
)
def test_store_limits_are_checked_before_writing(
    url: str, key: str, value: str, reason: str, aws_endpoint: str
) -> None:
    """Each store refuses what AWS would refuse (key sizes, SSM's name rules, value sizes), never quoting it."""
    store = make_store(url)
    stage = "DEV"
    refused = store.check_write(stage, {"fine": "1", key: value})
    assert list(refused) == [key]
    assert any(part in refused[key] for part in reason.split("|")), refused[key]
    assert key not in refused[key]
    assert len(value) < 8 or value[:8] not in refused[key]
    with pytest.raises(KeyNameError, match="nothing written"):
        store.put_many(stage, {"fine": "1", key: value})
    assert store.items(stage) == {}


def test_ssm_refuses_stages_that_would_make_reserved_parameter_names(aws_endpoint: str) -> None:
    """Under ``ssm://`` (no path) a stage is the first level, and SSM reserves names that begin with aws or ssm."""
    store = make_store("ssm://")
    assert store.check_write("DEV", {"k": "v"}) == {}
    refused = store.check_write("ssm_DEV", {"k": "v", "j": "w"})
    assert sorted(refused) == ["j", "k"]
    assert "cannot begin with 'aws' or 'ssm'" in refused["k"]
