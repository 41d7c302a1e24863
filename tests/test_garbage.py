"""A 200 that is not a real answer is a SourceError, never "not found" (issue 10, item 2).

Through the fault proxy's ``garbage`` fault every runtime read gets a 200 whose body is an HTML page
(UTF-8 or not), nothing, JSON that is not an object, a truncated answer, or an empty object. botocore
reads most of these as an empty answer (``{}``: no items, no item, no parameters) or raises a bare
``UnicodeDecodeError``/``AttributeError``; confstage must name the source and the AWS operation
instead. A genuinely empty answer through the same proxy stays "not found".
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from confstage import Config, KeyNotFoundError, SourceError, crypto
from confstage.errors import DecryptError
from confstage.sources import Source, build_source
from confstage.stores import Store, build_store
from confstage.transport import NetworkError
from confstage.transport.botocore import BotocoreTransport

from .conftest import seed_secrets, seed_secretsmanager, seed_ssm, seed_stage
from .fakes import DictSource
from .faultproxy import GARBAGE, FaultProxy

pytestmark = pytest.mark.integration

VALUE = "the-real-value"
BOUND_SECONDS = 6.0  # an unparseable answer fails without retrying to the deadline (10 s); room for a loaded 2-core CI

BODIES = {
    "html-not-utf8": GARBAGE,
    "html": b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    "empty": b"",
    "json-null": b"null",
    "json-array": b"[]",
    "truncated": b'{"Items": [{"stage": {"S": "DEV"}, "key": {"S": "k"}, "value": {"S": "the-re',
    "empty-object": b"{}",
}


class Case(NamedTuple):
    seed: Callable[[Callable[[str], Any]], str]  # arranges the store, returns the source URL
    keys: tuple[str, ...]
    operation: str


def store(boto: Callable[[str], Any], url: str) -> Store:
    """The store of ``url`` on the local endpoint itself (not through the proxy), for arranging state."""
    found = build_store(url, transport=BotocoreTransport(endpoint_url=boto("dynamodb").meta.endpoint_url))
    assert found is not None
    return found


# The module's value in each store (conftest's seeders)
ssm = functools.partial(seed_ssm, value=VALUE)
json_secret = functools.partial(seed_secretsmanager, value=VALUE)
secrets = functools.partial(seed_secrets, value=VALUE)


def seed_stage_key(boto: Callable[[str], Any]) -> str:
    return seed_stage(boto, "cfg", "DEV", {"k": VALUE})


def seed_flat(boto: Callable[[str], Any]) -> str:
    store(boto, "dynamodb://flat?layout=flat").init()
    for key in ("k", "j"):
        boto("dynamodb").put_item(TableName="flat", Item={"stage": {"S": f"{key}_DEV"}, "value": {"S": VALUE}})
    return "dynamodb://flat?layout=flat"


def seed_s3(layout: str) -> Callable[[Callable[[str], Any]], str]:
    def seed(boto: Callable[[str], Any]) -> str:
        boto("s3").create_bucket(Bucket="cfg-bucket")
        if layout == "document":
            boto("s3").put_object(Bucket="cfg-bucket", Key="app/DEV/config.json", Body=json.dumps({"k": VALUE}))
        else:
            boto("s3").put_object(Bucket="cfg-bucket", Key="app/DEV/k", Body=VALUE.encode())
        return f"s3://cfg-bucket/app?layout={layout}"

    return seed


CASES = {
    "dynamodb-query": Case(seed_stage_key, ("k",), "dynamodb:Query"),
    "dynamodb-getitem": Case(seed_flat, ("k",), "dynamodb:GetItem"),
    "dynamodb-batchgetitem": Case(seed_flat, ("k", "j"), "dynamodb:BatchGetItem"),
    "ssm": Case(ssm, ("k",), "ssm:GetParametersByPath"),
    "secretsmanager": Case(json_secret, ("k",), "secretsmanager:GetSecretValue"),
    "secretsmanager-secrets": Case(secrets, ("k",), "secretsmanager:BatchGetSecretValue"),
    "s3-objects": Case(seed_s3("objects"), ("k",), "s3:GetObject"),
    "s3-document": Case(seed_s3("document"), ("k",), "s3:GetObject"),
}


@pytest.fixture(name="proxy")
def fixture_proxy(fault_proxy: Callable[..., FaultProxy]) -> FaultProxy:
    """A fault proxy in front of the local endpoint; confstage's clients go through it, ``boto`` does not."""
    return fault_proxy(settings={"CONFSTAGE_MAX_ATTEMPTS": "2"})


def timed_fetch(source: Source, keys: tuple[str, ...]) -> tuple[Any, float]:
    """``source.fetch`` of stage DEV: what it returned or raised, and how long it took."""
    started = time.perf_counter()
    try:
        outcome: Any = source.fetch("DEV", keys)
    except Exception as exc:
        outcome = exc
    return outcome, time.perf_counter() - started


def assert_names_no_value(error: BaseException, *texts: str) -> None:
    """Neither the error nor anything in its chain quotes ``texts``."""
    seen: BaseException | None = error
    while seen is not None:
        shown = f"{seen!r} {seen} {vars(seen) if hasattr(seen, '__dict__') else ''}"
        for text in texts:
            assert text not in shown, f"{text!r} appears in {type(seen).__name__}"
        seen = seen.__cause__ or seen.__context__


# ``{}`` is how GetItem says "no item": that one is the not-found test's, below.
GETITEM_EMPTY = ("dynamodb-getitem", "empty-object")
MATRIX = [(case, body) for case in sorted(CASES) for body in sorted(BODIES) if (case, body) != GETITEM_EMPTY]


@pytest.mark.parametrize(("case", "body"), MATRIX)
def test_a_garbage_200_is_a_source_error_naming_the_operation(
    case: str, body: str, boto: Callable[[str], Any], proxy: FaultProxy
) -> None:
    """Every runtime read answered by a 200 that is not a real answer raises SourceError naming source and operation."""
    arranged = CASES[case]
    url = arranged.seed(boto)
    source = build_source(url)
    proxy.fault, proxy.garbage_body = "garbage", BODIES[body]

    outcome, elapsed = timed_fetch(source, arranged.keys)

    assert isinstance(outcome, SourceError), f"read as {outcome!r}"
    assert not isinstance(outcome, DecryptError)
    assert (outcome.source, outcome.operation) == (url, arranged.operation)
    assert elapsed < BOUND_SECONDS
    assert_names_no_value(outcome, VALUE, "Bad Gateway", "upstream gone")


@pytest.mark.parametrize("body", sorted(BODIES))
def test_a_garbage_kms_answer_fails_the_fetch_not_the_key(
    body: str,
    boto: Callable[[str], Any],
    kms_key: str,
    aws_endpoint: str,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A KMS Decrypt answered with garbage fails the fetch with SourceError (so stale-on-error applies), not a key."""
    table = store(boto, "dynamodb://cfg")
    table.init()
    table.put("DEV", "k", VALUE, kms_key=kms_key)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", proxy.url)  # only KMS goes through the proxy
    crypto.clear_data_keys()
    source = build_source("dynamodb://cfg")
    proxy.fault, proxy.garbage_body = "garbage", BODIES[body]

    outcome, elapsed = timed_fetch(source, ("k",))

    assert isinstance(outcome, SourceError), f"read as {outcome!r}"
    assert not isinstance(outcome, DecryptError)
    assert (outcome.source, outcome.operation) == ("dynamodb://cfg", "kms:Decrypt")
    assert elapsed < BOUND_SECONDS
    assert_names_no_value(outcome, VALUE)


def test_a_garbage_query_is_not_key_not_found_for_the_caller(boto: Callable[[str], Any], proxy: FaultProxy) -> None:
    """The issue's case: a get whose Query is answered by an HTML page raises SourceError, not KeyNotFoundError."""
    url = seed_stage_key(boto)
    config = Config(url, stage="DEV", cache_dir="")
    proxy.fault, proxy.garbage_body = "garbage", BODIES["html"]

    with pytest.raises(SourceError) as caught:
        config.get("k")
    assert not isinstance(caught.value, KeyNotFoundError)
    assert caught.value.operation == "dynamodb:Query"


def test_an_unparseable_answer_to_an_unchecked_operation_is_still_a_source_error(
    boto: Callable[[str], Any], proxy: FaultProxy
) -> None:
    """botocore's bare UnicodeDecodeError on an unreadable body (here a Scan) becomes a SourceError without it."""
    seed_flat(boto)
    source = build_store("dynamodb://flat?layout=flat")
    assert source is not None
    proxy.fault = "garbage"

    with pytest.raises(SourceError, match="could not parse") as caught:
        source.items("DEV")
    assert caught.value.operation == "dynamodb:Scan"
    failure = caught.value.__cause__  # the transport's NetworkError: the parser's UnicodeDecodeError holds the body
    assert isinstance(failure, NetworkError)
    assert failure.__cause__ is None
    assert failure.__context__ is None


class Empty(NamedTuple):
    seed: Callable[[Callable[[str], Any]], str]
    keys: tuple[str, ...]


EMPTY = {
    "dynamodb-query": Empty(seed_stage_key, ("absent",)),
    "dynamodb-getitem": Empty(seed_flat, ("absent",)),
    "dynamodb-batchgetitem": Empty(seed_flat, ("absent", "gone")),
    "ssm": Empty(ssm, ("absent",)),
    "secretsmanager": Empty(json_secret, ("absent",)),
    "secretsmanager-secrets": Empty(secrets, ("absent",)),
    "s3-objects": Empty(seed_s3("objects"), ("absent",)),
    "s3-document": Empty(seed_s3("document"), ("absent",)),
}


@pytest.mark.parametrize("case", sorted(EMPTY))
def test_a_genuinely_empty_answer_stays_not_found(case: str, boto: Callable[[str], Any], proxy: FaultProxy) -> None:
    """Through the same proxy, a stage with no such key (no items, no item, no secret, no object) is "not found"."""
    source = build_source(EMPTY[case].seed(boto))

    started = time.perf_counter()
    fetched = source.fetch("PRD", EMPTY[case].keys)  # nothing at all is stored for PRD
    assert time.perf_counter() - started < BOUND_SECONDS
    assert (dict(fetched), dict(fetched.errors)) == ({}, {})
    assert proxy.requests >= 1


@pytest.mark.parametrize("body", ["empty-object", "html"])
def test_a_garbage_kms_answer_to_the_cache_sealer_leaves_secrets_out_of_tmp(
    body: str, kms_key: str, proxy: FaultProxy, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """When KMS answers GenerateDataKey with garbage, the get still answers and the secret stays off disk."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_KMS", proxy.url)
    proxy.fault, proxy.garbage_body = "garbage", BODIES[body]
    source = DictSource({"DEV": {"password": VALUE, "host": "db.local"}}, secret={"password"})
    config = Config([source], stage="DEV", cache_dir=str(tmp_path / "cache"), cache_kms_key=kms_key)

    assert config.get_many(["password", "host"]) == {"password": VALUE, "host": "db.local"}
    (path,) = (tmp_path / "cache").iterdir()
    assert VALUE not in path.read_text()
    assert json.loads(path.read_text())["withheld"] == ["password"]
