"""Every runtime source reads the same through the lite and the botocore transport, and lite needs no SDK.

Over HTTP against the local moto server: each source's stage is seeded through the admin stores (botocore), then read
by ``Config(url, transport=...)`` through each transport in turn. Values, the requests made, ``KeyNotFoundError``
for an absent key or stage, and the ``SourceError`` of a missing table or bucket must be identical. Then, in fresh
interpreters set up as Lambda sets one up, ``auto`` picks lite and a read of each source loads neither boto3 nor
botocore (the /tmp cache on, in a temporary directory); a profile sends ``auto`` to botocore, and the log says so.

Not covered here because the code does not exist (yet): ``get_path`` (``S3Source`` has no ``open_object``) and
``secretsmanager://PREFIX?layout=secrets``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from confstage import Config, crypto
from confstage.errors import ConfstageError, DecryptError, KeyNotFoundError, SourceError
from confstage.stores import build_store
from confstage.transport import AwsError, AwsRequest, Transport
from confstage.transport.botocore import BotocoreTransport
from confstage.transport.lite.transport import LiteTransport

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
FUNCTION = "helloStagedWorld"
PLAIN = {"db_url": "postgres://h/db", "unicode": "ünïcødé 中文 𝄞", "spaces": "  a  b  ", "json": '{"a": [1, 2]}'}
SECURE = {"password": "hunter2-ü"}  # an envelope (a KMS data key) where the store has them, a SecureString in SSM
KEYS = [*PLAIN, *SECURE]
SOURCES = {
    "dynamodb-stage-key": "dynamodb://cfg",
    "dynamodb-flat": "dynamodb://flat?layout=flat",
    "s3-objects": "s3://cfg/app",
    "s3-document": "s3://cfg/doc?layout=document",
    "ssm": "ssm:///app",
    "secretsmanager": "secretsmanager://app",
    "kms-env": "kms-env://",
}
TRANSPORTS: dict[str, Callable[[], Transport]] = {"lite": LiteTransport, "botocore": BotocoreTransport}


class Recording:
    """A transport that records the operations it was asked for, then passes them on."""

    def __init__(self, inner: Transport) -> None:
        self.inner = inner
        self.name = inner.name
        self.seen: Counter[str] = Counter()

    def call(self, request: AwsRequest) -> dict[str, Any]:
        self.seen[f"{request.service}:{request.operation}"] += 1
        return self.inner.call(request)

    def close(self) -> None:
        """Close the inner transport's idle connections (lite keeps them open)."""
        getattr(self.inner, "close", lambda: None)()


Seed = Callable[[str], None]


@pytest.fixture(name="seed")
def fixture_seed(boto: Any, kms_key: str, monkeypatch: pytest.MonkeyPatch) -> Seed:
    """``seed(url)``: stage DEV of the source holds PLAIN and SECURE (kms-env: console ciphertexts, PLAIN's made
    without an encryption context as older tooling made them); AWS_LAMBDA_FUNCTION_NAME names the function."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)  # kms-env's encryption context

    def seed(url: str) -> None:
        if url.startswith("kms-env"):
            kms = boto("kms")
            for key, value in {**PLAIN, **SECURE}.items():
                context = {"LambdaFunctionName": FUNCTION} if key in SECURE else {}
                blob = kms.encrypt(KeyId=kms_key, Plaintext=value.encode(), EncryptionContext=context)
                monkeypatch.setenv(f"DEV_{key}", base64.b64encode(blob["CiphertextBlob"]).decode())
            return
        store = build_store(url)
        assert store is not None
        store.init()
        if url.startswith("secretsmanager"):
            store.put_many("DEV", {**PLAIN, **SECURE})  # every value of a secret is secret
        else:
            store.put_many("DEV", {**PLAIN, **SECURE}, kms_key=kms_key, secure=SECURE)

    return seed


class Read(NamedTuple):
    """What one transport made of a source: values key by key and all at once, failures, requests."""

    one_by_one: dict[str, str]
    all_at_once: dict[str, str]
    failures: dict[str, tuple[type[BaseException], str]]
    requests: Counter[str]


def read(url: str, make: Callable[[], Transport], keys: list[str], *, stage: str = "DEV") -> Read:
    """Read ``keys`` of ``stage`` through a new Config over a new transport (no data key remembered)."""
    crypto.clear_data_keys()
    transport = Recording(make())
    one_by_one: dict[str, str] = {}
    failures: dict[str, tuple[type[BaseException], str]] = {}
    each = Config(url, stage=stage, cache_dir="", transport=transport)
    for key in [*keys, "absent"]:
        try:
            one_by_one[key] = each.get(key)
        except ConfstageError as exc:
            failures[key] = (type(exc), str(exc))
    whole = Config(url, stage=stage, cache_dir="", transport=transport)
    try:
        all_at_once = whole.get_many(keys)
    except ConfstageError as exc:
        all_at_once, failures["get_many"] = {}, (type(exc), str(exc))
    transport.close()
    return Read(one_by_one, all_at_once, failures, transport.seen)


def both(url: str, keys: list[str], *, stage: str = "DEV") -> Read:
    """``read`` through lite and through botocore: identical in every respect; lite's."""
    lite, botocore = (read(url, make, keys, stage=stage) for make in TRANSPORTS.values())
    assert lite == botocore
    return lite


@pytest.mark.parametrize("url", list(SOURCES.values()), ids=list(SOURCES))
def test_each_source_reads_the_same_values_through_both_transports(url: str, seed: Seed) -> None:
    """Every key of a seeded stage, secure ones decrypted, one by one and all at once: the same values and
    requests through lite and botocore; an absent key the same KeyNotFoundError."""
    seed(url)
    got = both(url, KEYS)
    assert got.one_by_one == got.all_at_once == {**PLAIN, **SECURE}
    assert set(got.failures) == {"absent"}
    assert got.failures["absent"][0] is KeyNotFoundError
    if url.startswith(("dynamodb://cfg", "s3", "kms-env")):
        assert got.requests["kms:Decrypt"] >= 1


@pytest.mark.parametrize("url", list(SOURCES.values()), ids=list(SOURCES))
def test_a_stage_with_nothing_is_not_found_alike(url: str, seed: Seed) -> None:
    """A stage the source does not hold: the same KeyNotFoundError, after the same requests."""
    seed(url)
    got = both(url, ["db_url"], stage="NONE")
    assert got.one_by_one == got.all_at_once == {}
    assert {kind for kind, _ in got.failures.values()} == {KeyNotFoundError}


MISSING = {
    "dynamodb-stage-key": ("dynamodb://nope", "ResourceNotFoundException"),
    "dynamodb-flat": ("dynamodb://nope?layout=flat", "ResourceNotFoundException"),
    "s3-objects": ("s3://nobucket/app", "NoSuchBucket"),
    "s3-document": ("s3://nobucket/app?layout=document", "NoSuchBucket"),
}


@pytest.mark.parametrize(("url", "code"), list(MISSING.values()), ids=list(MISSING))
def test_a_missing_table_or_bucket_is_the_same_source_error(url: str, code: str, aws_endpoint: str) -> None:
    """A table or bucket that does not exist: a SourceError (not "not found") with the same message, operation
    and source, chained to an AwsError with the same code and status, through either transport."""
    seen = []
    for make in TRANSPORTS.values():
        transport = Recording(make())
        with pytest.raises(SourceError) as raised:
            Config(url, stage="DEV", cache_dir="", transport=transport).get("db_url")
        transport.close()
        error = raised.value
        assert type(error) is SourceError
        assert isinstance(error.__cause__, AwsError)
        seen.append((str(error), error.source, error.operation, error.__cause__.code, error.__cause__.status))
    assert seen[0] == seen[1]
    assert seen[0][3] == code


def test_envelopes_that_do_not_open_fail_alike(seed: Seed, boto: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A secure value moved to another key (KMS refuses its data key) and a kms-env variable that is not a
    ciphertext: the same DecryptError for that key alone, through either transport."""
    seed("dynamodb://cfg")
    seed("kms-env://")
    moved = boto("dynamodb").get_item(TableName="cfg", Key={"stage": {"S": "DEV"}, "key": {"S": "password"}})["Item"]
    boto("dynamodb").put_item(TableName="cfg", Item={**moved, "key": {"S": "moved"}})
    monkeypatch.setenv("DEV_broken", base64.b64encode(b"not a ciphertext").decode())
    for url, key in (("dynamodb://cfg", "moved"), ("kms-env://", "broken")):
        got = both(url, [key, "db_url"])
        assert got.one_by_one == {"db_url": PLAIN["db_url"]}
        assert got.failures[key][0] is DecryptError
        assert got.failures["get_many"][0] is DecryptError


# -- the lite path in a fresh interpreter: no SDK --------------------------------------------------

CHILD = """
import json, logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s %(message)s")
import confstage
values = confstage.get_many(json.loads(sys.argv[1]))
sdk = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore", "s3transfer"))
print(json.dumps({"values": values, "sdk": sdk}))
"""


def lambda_process(url: str, aws_endpoint: str, home: Path, **extra: str) -> tuple[dict[str, Any], str]:
    """A fresh interpreter as Lambda starts one (credentials and region in variables; no ~/.aws, CA bundle or
    proxy), reading KEYS of DEV from ``url`` with the default /tmp cache under ``home``: its report and its log."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CONFSTAGE_")) and not k.endswith(("CA_BUNDLE", "_PROXY", "_proxy"))
    }
    env.update(
        {
            "HOME": str(home),
            "AWS_LAMBDA_FUNCTION_NAME": FUNCTION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": aws_endpoint,
            "CONFSTAGE_SOURCES": url,
            "CONFSTAGE_STAGE": "DEV",
            "CONFSTAGE_CACHE_DIR": str(home / "cache"),
            "PYTHONPATH": str(ROOT),
            **extra,
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(KEYS)], capture_output=True, text=True, env=env, timeout=60, cwd=home
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return report, done.stderr


@pytest.mark.parametrize("url", list(SOURCES.values()), ids=list(SOURCES))
def test_auto_reads_every_source_in_lambda_without_boto3_or_botocore(
    url: str, seed: Seed, aws_endpoint: str, tmp_path: Path
) -> None:
    """Inside Lambda, CONFSTAGE_TRANSPORT unset: auto picks lite (logged), and import confstage plus a read of the
    seeded stage, secure values included, through the /tmp cache, load neither boto3 nor botocore."""
    seed(url)
    report, log = lambda_process(url, aws_endpoint, tmp_path)
    assert report["values"] == {**PLAIN, **SECURE}
    assert report["sdk"] == []
    assert "confstage transport: lite (inside Lambda" in log


def test_a_sealed_tmp_cache_needs_no_sdk_either(seed: Seed, aws_endpoint: str, kms_key: str, tmp_path: Path) -> None:
    """With CONFSTAGE_CACHE_KMS_KEY the secrets in /tmp are sealed under a KMS data key: a cold process (which
    seals) and the next one (which opens the snapshot) read through lite, with no SDK."""
    seed("dynamodb://cfg")
    for _ in ("seals", "opens"):
        report, _log = lambda_process("dynamodb://cfg", aws_endpoint, tmp_path, CONFSTAGE_CACHE_KMS_KEY=kms_key)
        assert report["values"] == {**PLAIN, **SECURE}
        assert report["sdk"] == []
    assert list((tmp_path / "cache").iterdir())


def test_auto_with_a_profile_reads_through_botocore_and_logs_why(seed: Seed, aws_endpoint: str, tmp_path: Path) -> None:
    """AWS_PROFILE (a profile in a config file) sends auto to botocore; the debug log names the reason."""
    seed("dynamodb://cfg")
    config = tmp_path / "aws-config"
    config.write_text("[profile app]\nregion = us-east-1\n", encoding="utf-8")
    report, log = lambda_process(
        "dynamodb://cfg", aws_endpoint, tmp_path, AWS_PROFILE="app", AWS_CONFIG_FILE=str(config)
    )
    assert report["values"] == {**PLAIN, **SECURE}
    assert "botocore" in report["sdk"]
    assert "confstage transport: botocore (AWS_PROFILE selects a profile)" in log
