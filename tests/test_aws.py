"""The call layer: one request in, one answer or one SourceError out, pages and unprocessed batches followed."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from confstage import SourceError, _context, aws
from confstage._backoff import Backoff
from confstage.testing import MockTransport
from confstage.transport import AwsError, AwsRequest, NetworkError
from confstage.transport.botocore import BotocoreTransport


@pytest.fixture(name="answer")
def fixture_answer() -> Iterator[Callable[[Callable[[AwsRequest], dict[str, Any]]], MockTransport]]:
    """``answer(handler)``: the runtime's transport answers with ``handler`` for this test."""

    def install(handler: Callable[[AwsRequest], dict[str, Any]]) -> MockTransport:
        transport = MockTransport(handler)
        aws.use_runtime_transport(transport)
        return transport

    yield install
    aws.use_runtime_transport(None)


def failing(error: Exception) -> Callable[[AwsRequest], dict[str, Any]]:
    def handler(request: AwsRequest) -> dict[str, Any]:
        raise error

    return handler


def test_the_default_transport_is_botocore_and_swappable() -> None:
    """choose_transport picks botocore today; use_transport puts another in its place until reset."""
    assert isinstance(aws.runtime_transport(), BotocoreTransport)
    mock = MockTransport(lambda request: {})
    aws.use_runtime_transport(mock)
    assert aws.runtime_transport() is mock
    aws.reset()
    assert isinstance(aws.runtime_transport(), BotocoreTransport)


def test_a_request_names_service_operation_and_params(answer: Any) -> None:
    """``dynamodb:Query`` becomes AwsRequest("dynamodb", "Query", params): botocore's spelling."""
    transport = answer(lambda request: {"Items": []})
    aws.call("dynamodb:Query", {"TableName": "t"}, source="dynamodb://t")
    (request,) = transport.requests
    assert (request.service, request.operation, dict(request.params)) == ("dynamodb", "Query", {"TableName": "t"})
    assert request.deadline is None


def test_the_fetch_deadline_reaches_the_request(answer: Any) -> None:
    """Inside a fetch the cache layer sets a deadline: every request of that fetch carries it."""
    transport = answer(lambda request: {"Items": []})
    token = _context.DEADLINE.set(1234.5)
    try:
        aws.call("dynamodb:Query", {}, source="s")
        aws.call("dynamodb:Query", {}, source="s", deadline=99.0)
    finally:
        _context.DEADLINE.reset(token)
    assert [request.deadline for request in transport.requests] == [1234.5, 99.0]


def test_an_aws_error_is_a_source_error_naming_source_operation_and_target(answer: Any) -> None:
    """AccessDenied becomes SourceError(source, operation) saying where, with the AwsError as its cause."""
    answer(failing(AwsError("AccessDeniedException", "not you", status=400)))
    with pytest.raises(SourceError, match="ssm:GetParametersByPath on /app/PRD failed with AccessDenied") as caught:
        aws.call("ssm:GetParametersByPath", {}, source="ssm:///app", target="/app/PRD")
    assert (caught.value.source, caught.value.operation, caught.value.throttled) == (
        "ssm:///app",
        "ssm:GetParametersByPath",
        False,
    )
    assert isinstance(caught.value.__cause__, AwsError)


@pytest.mark.parametrize("code", ["ThrottlingException", "ProvisionedThroughputExceededException", "SlowDown"])
def test_throttling_codes_are_throttled_source_errors(answer: Any, code: str) -> None:
    """A throttling code is a SourceError with throttled=True (counted apart, backed off from)."""
    answer(failing(AwsError(code, "Rate exceeded")))
    with pytest.raises(SourceError) as caught:
        aws.call("dynamodb:Query", {}, source="dynamodb://t")
    assert caught.value.throttled is True


def test_a_transport_saying_throttled_is_believed(answer: Any) -> None:
    """A 429 with an unlisted code, marked throttled by the transport, stays throttled."""
    answer(failing(AwsError("Whatever", status=429, throttled=True)))
    with pytest.raises(SourceError) as caught:
        aws.call("kms:Decrypt", {}, source="kms-env://")
    assert caught.value.throttled is True


def test_no_answer_is_a_source_error_not_throttled(answer: Any) -> None:
    """A NetworkError (timeout, connection, unparseable body) is a SourceError with its cause."""
    answer(failing(NetworkError("ReadTimeoutError")))
    with pytest.raises(SourceError, match="failed with ReadTimeoutError") as caught:
        aws.call("s3:GetObject", {}, source="s3://b", target="s3://b/k")
    assert caught.value.throttled is False
    assert isinstance(caught.value.__cause__, NetworkError)


def test_an_expected_code_is_an_answer(answer: Any) -> None:
    """A code listed in ``answers`` (no such object) is returned as ErrorAnswer, for the caller to read."""
    answer(failing(AwsError("NoSuchKey", status=404)))
    found = aws.call("s3:GetObject", {}, source="s3://b", answers=("NoSuchKey",))
    assert isinstance(found, aws.ErrorAnswer)
    assert found.code == "NoSuchKey"


def test_an_answer_without_what_the_operation_promises_is_an_error(answer: Any) -> None:
    """A 2xx lacking a promised field (a proxy's empty answer) is a SourceError; a streamed body is closed."""
    body = io.BytesIO(b"<html>")
    answer(lambda request: {"Body": body})
    with pytest.raises(SourceError, match="without ETag"):
        aws.call("s3:GetObject", {}, source="s3://b")
    assert body.closed


def test_pages_follow_their_tokens_until_there_is_none(answer: Any) -> None:
    """ListObjectVersions follows both markers; a page without them is the last."""
    pages: list[dict[str, Any]] = [
        {"Versions": [1], "NextKeyMarker": "k1", "NextVersionIdMarker": "v1"},
        {"Versions": [2], "NextKeyMarker": "k2"},
        {"Versions": [3]},
    ]
    sent_so_far: list[AwsRequest] = []

    def handler(request: AwsRequest) -> dict[str, Any]:
        sent_so_far.append(request)
        return pages[len(sent_so_far) - 1]

    transport = answer(handler)
    got = list(aws.Caller("s3://b").pages("s3:ListObjectVersions", {"Bucket": "b"}))
    assert [page["Versions"] for page in got] == [[1], [2], [3]]
    sent = [dict(request.params) for request in transport.requests]
    assert sent[1] == {"Bucket": "b", "KeyMarker": "k1", "VersionIdMarker": "v1"}
    assert sent[2] == {"Bucket": "b", "KeyMarker": "k2"}


def test_an_expected_code_ends_the_pages(answer: Any) -> None:
    """A parameter that does not exist has no history: the walk ends without a page."""
    answer(failing(AwsError("ParameterNotFound")))
    caller = aws.Caller("ssm:///p")
    assert list(caller.pages("ssm:GetParameterHistory", {"Name": "/p/k"}, answers=("ParameterNotFound",))) == []


def batch(left: list[int]) -> Callable[[AwsRequest], dict[str, Any]]:
    """BatchGetItem leaving ``left[n]`` keys unprocessed on the n-th call."""
    calls: list[int] = []

    def handler(request: AwsRequest) -> dict[str, Any]:
        keys = request.params["RequestItems"]["t"]["Keys"]
        unprocessed = left[len(calls)] if len(calls) < len(left) else 0
        calls.append(len(keys))
        done, rest = keys[: len(keys) - unprocessed], keys[len(keys) - unprocessed :]
        return {"Responses": {"t": done}, "UnprocessedKeys": {"t": {"Keys": rest}} if rest else {}}

    return handler


def test_unprocessed_keys_are_asked_again_after_jittered_backoff(answer: Any) -> None:
    """What a batch leaves unprocessed is sent again, after base·2^(n-1) times 0.5 to 1."""
    transport = answer(batch([2, 1]))
    slept: list[float] = []
    retry = aws.Retry(8, Backoff(0.05, 2.0, random=lambda: 1.0), slept.append)
    request = {"RequestItems": {"t": {"Keys": [1, 2, 3]}}}
    pages = list(aws.Caller("dynamodb://t").pages("dynamodb:BatchGetItem", request, retry=retry))
    assert [page["Responses"]["t"] for page in pages] == [[1], [2], [3]]
    assert [len(r.params["RequestItems"]["t"]["Keys"]) for r in transport.requests] == [3, 2, 1]
    assert slept == [0.05, 0.1]


def test_unprocessed_keys_give_up_after_the_attempts_as_throttled(answer: Any) -> None:
    """Still unprocessed after the last attempt: a throttled SourceError saying how many were left."""
    answer(batch([2, 2, 2, 2]))
    retry = aws.Retry(3, Backoff(0.05, 2.0, random=lambda: 0.0), lambda seconds: None)
    request = {"RequestItems": {"t": {"Keys": [1, 2, 3]}}}
    with pytest.raises(SourceError, match="left 2 keys unprocessed after 3 attempts") as caught:
        list(aws.Caller("dynamodb://t").pages("dynamodb:BatchGetItem", request, target="table t", retry=retry))
    assert caught.value.throttled is True


def test_a_store_is_named_by_the_environment_without_a_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """With credentials and region in the environment and no config file, no transport is asked."""
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://ddb.local")
    found = aws.endpoint_identity("dynamodb")
    assert found.startswith("region=us-east-1 endpoint=http://ddb.local principal=")
    assert "testing" not in found


def test_a_transport_without_identity_names_itself() -> None:
    """A transport that cannot say where it reaches is known to this process only."""
    mock = MockTransport(lambda request: {})
    assert aws.endpoint_identity("s3", transport=mock) == f"transport=mock-{id(mock):x}"
