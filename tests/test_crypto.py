"""Envelope encryption: the cs1: format, binding to stage and key, data-key caching, errors without values."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from confstage import crypto
from confstage.errors import DecryptError, SourceError
from confstage.sources.dynamodb import DynamoDBSource
from confstage.stores.dynamodb import DynamoDBStore
from confstage.transport.botocore import BotocoreTransport

from .envelopes import fields, fixture_no_cached_keys, reencode  # noqa: F401  (the fixture is autouse)

pytestmark = pytest.mark.integration


def test_round_trip_and_format(kms_key: str) -> None:
    """encrypt gives a one-line cs1: envelope (wrapped key, 12-byte nonce, ciphertext+tag) that decrypt reverses."""
    envelope = crypto.encrypt("hunter2 ✓", stage="PRD", key="password", kms_key=kms_key)

    assert crypto.is_envelope(envelope)
    assert envelope.isascii()
    assert "\n" not in envelope
    wrapped, nonce, sealed = fields(envelope)
    assert len(nonce) == 12
    assert len(sealed) == len("hunter2 ✓".encode()) + 16
    assert wrapped
    assert crypto.decrypt(envelope, stage="PRD", key="password") == "hunter2 ✓"


def test_empty_and_large_values_round_trip(kms_key: str) -> None:
    """An empty value and a 300 kB unicode value survive encryption."""
    for value in ("", "ß" * 150_000):
        envelope = crypto.encrypt(value, stage="DEV", key="k", kms_key=kms_key)
        assert crypto.decrypt(envelope, stage="DEV", key="k") == value


@pytest.mark.parametrize(
    "text",
    ["", "plain", "cs1:", "cs1:abc", "cs1:a.b.c", "cs2:" + "A" * 20 + "." + "B" * 16 + "." + "C" * 30, "x" * 100],
)
def test_plain_strings_are_not_envelopes(text: str) -> None:
    """Ordinary values, and strings that merely start with cs1:, are not taken for envelopes."""
    assert not crypto.is_envelope(text)


def test_fresh_data_key_per_encrypt(kms_key: str, requests_made: Counter[str]) -> None:
    """Each encrypt asks KMS for a new data key and a new nonce, so equal values give unrelated envelopes."""
    one = crypto.encrypt("same", stage="DEV", key="k", kms_key=kms_key)
    two = crypto.encrypt("same", stage="DEV", key="k", kms_key=kms_key)

    assert requests_made == Counter({"kms.GenerateDataKey": 2})
    assert fields(one)[0] != fields(two)[0]
    assert fields(one)[1] != fields(two)[1]


def test_data_keys_are_cached_in_memory(kms_key: str, requests_made: Counter[str]) -> None:
    """Decrypting the same envelope again (a refresh after the TTL) costs no further KMS call."""
    envelope = crypto.encrypt("v", stage="DEV", key="k", kms_key=kms_key)
    for _ in range(5):
        assert crypto.decrypt(envelope, stage="DEV", key="k") == "v"

    assert requests_made["kms.Decrypt"] == 1
    crypto.clear_data_keys()
    crypto.decrypt(envelope, stage="DEV", key="k")
    assert requests_made["kms.Decrypt"] == 2


@pytest.fixture(name="admin")
def fixture_admin(aws_endpoint: str) -> BotocoreTransport:
    """A transport of the test's own, its clients made before request counting starts (never counted)."""
    transport = BotocoreTransport()
    transport.client("dynamodb")
    transport.client("kms")
    transport.client("sts")  # the writer's ARN, which a store's writes record
    return transport


def test_stage_refetch_decrypts_without_kms(
    admin: BotocoreTransport, kms_key: str, requests_made: Counter[str]
) -> None:
    """A DynamoDB stage of 5 secure values costs 5 KMS Decrypts on the first fetch and none on the next."""
    store = DynamoDBStore(DynamoDBSource("secure-config", transport=admin), admin)
    store.init()
    store.put_many("DEV", {f"s{i}": f"secret {i}" for i in range(5)}, kms_key=kms_key)
    reader = DynamoDBSource("secure-config")

    first = reader.fetch("DEV", ())
    second = reader.fetch("DEV", ())
    assert dict(first) == dict(second) == {f"s{i}": f"secret {i}" for i in range(5)}
    assert second.secret == frozenset(f"s{i}" for i in range(5))
    assert requests_made == Counter({"dynamodb.Query": 2, "kms.Decrypt": 5})


@pytest.mark.parametrize("cached", [True, False], ids=["data-key-cached", "cold"])
@pytest.mark.parametrize(("stage", "key"), [("DEV", "other"), ("PRD", "password")], ids=["other-key", "other-stage"])
def test_ciphertext_moved_elsewhere_fails(kms_key: str, cached: bool, stage: str, key: str) -> None:
    """An envelope read as another key or stage raises DecryptError, whether or not its data key is cached."""
    envelope = crypto.encrypt("hunter2", stage="DEV", key="password", kms_key=kms_key)
    if cached:
        assert crypto.decrypt(envelope, stage="DEV", key="password") == "hunter2"

    with pytest.raises(DecryptError, match=f"key {key!r} for stage {stage!r}") as caught:
        crypto.decrypt(envelope, stage=stage, key=key)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("part", [0, 1, 2], ids=["wrapped-key", "nonce", "ciphertext"])
def test_tampered_envelope_fails(kms_key: str, part: int) -> None:
    """Changing one byte of the wrapped key, the nonce or the ciphertext raises DecryptError."""
    envelope = crypto.encrypt("hunter2", stage="DEV", key="k", kms_key=kms_key)
    parts = fields(envelope)
    damaged = bytearray(parts[part])
    damaged[len(damaged) // 2] ^= 0x01
    parts[part] = bytes(damaged)

    with pytest.raises(DecryptError, match="'k'") as caught:
        crypto.decrypt(reencode(parts), stage="DEV", key="k")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize("text", ["not an envelope", "cs1:", "cs1:a.b", "cs1:!!.??.**", "cs1:QUFB.QUFB.QUFB"])
def test_malformed_envelope_fails_without_quoting_it(text: str) -> None:
    """A malformed envelope raises DecryptError naming the key, never its text, in it or in its cause."""
    with pytest.raises(DecryptError, match="'k'") as caught:
        crypto.decrypt(text, stage="DEV", key="k")
    if len(text) > 8:
        chain = [caught.value, caught.value.__cause__, caught.value.__context__]
        assert not any(text in repr(exc) for exc in chain if exc is not None)


def test_unknown_kms_key_is_a_source_error(aws_endpoint: str) -> None:
    """A KMS key that does not exist fails encrypt with SourceError naming the operation and the key id."""
    with pytest.raises(SourceError, match="kms:GenerateDataKey on KMS key alias/missing") as caught:
        crypto.encrypt("hunter2", stage="DEV", key="k", kms_key="alias/missing")
    assert not isinstance(caught.value, DecryptError)
    assert caught.value.__cause__ is not None


def test_binding_is_written_into_context_and_associated_data() -> None:
    """The KMS encryption context and the GCM associated data both name purpose, stage and key."""
    assert crypto.encryption_context("PRD", "db") == {
        "confstage:purpose": "config-value",
        "confstage:stage": "PRD",
        "confstage:key": "db",
    }
    assert crypto.associated_data("PRD", "db") != crypto.associated_data("PR", "Ddb")


def test_modules_import_nothing_heavy() -> None:
    """Importing confstage.crypto and the S3/DynamoDB sources loads neither boto3, cryptography nor cachetools."""
    code = (
        "import sys, confstage.crypto, confstage.sources.s3, confstage.sources.dynamodb\n"
        "heavy = [m for m in ('boto3', 'botocore', 'cryptography', 'cachetools') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
