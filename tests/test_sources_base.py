"""What every source shares: envelopes opened key by key, and JSON objects of strings parsed without quoting them."""

from __future__ import annotations

from typing import Any

import pytest

from confstage import crypto
from confstage.aws import Caller
from confstage.errors import DecryptError, SourceError
from confstage.sources.base import open_envelopes, parse_json_object
from confstage.testing import MockTransport
from confstage.transport import AwsError, AwsRequest

from .envelopes import fields, fixture_no_cached_keys, reencode  # noqa: F401  (the fixture is autouse)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"a": "1", "b": 2, "c": [3]}', "the value of key 'b' (and 1 more) must be a JSON string, not a JSON number"),
        ("[1]", "must be a JSON object of string values, not a JSON array"),
        ('"hunter2"', "must be a JSON object of string values, not a JSON string"),
        ('{"a": "hunter2"', "is not valid JSON (line 1, column 16)"),
        ("[" * 100_000, "is not valid JSON"),
    ],
)
def test_a_json_object_of_strings_or_an_error_naming_what(text: str, problem: str) -> None:
    """Anything but a JSON object of strings is a SourceError naming the document, a key and a JSON type, no value."""
    with pytest.raises(SourceError) as caught:
        parse_json_object(text, what="document d", source="s3://b", operation="s3:GetObject")
    assert str(caught.value).startswith("document d")
    assert problem in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert parse_json_object('{"a": "1"}', what="d", source="s", operation="o") == {"a": "1"}


@pytest.mark.integration
def broken_envelope(how: str, kms_key: str) -> str:
    """An envelope stored for key ``bad`` of stage DEV that does not open, in one of three ways."""
    if how == "moved":  # written for another key, then copied here
        return crypto.encrypt("hunter2", stage="DEV", key="password", kms_key=kms_key)
    envelope = crypto.encrypt("hunter2", stage="DEV", key="bad", kms_key=kms_key)
    if how == "tampered":
        parts = fields(envelope)
        parts[2] = bytes([parts[2][0] ^ 0x01]) + parts[2][1:]
        return reencode(parts)
    wrapped, nonce, _ = envelope.split(".")  # malformed: an envelope's shape, but 25 characters are not base64
    return f"{wrapped}.{nonce}.{'A' * 25}"


@pytest.mark.parametrize("how", ["moved", "tampered", "malformed"])
def test_an_envelope_that_does_not_open_fails_only_its_key(kms_key: str, how: str) -> None:
    """open_envelopes puts a DecryptError naming the bad key in errors and returns every other value."""
    good = crypto.encrypt("s3cr3t", stage="DEV", key="good", kms_key=kms_key)
    raw = {"plain": "visible", "good": good, "bad": broken_envelope(how, kms_key)}

    fetched = open_envelopes(raw, stage="DEV", kms=Caller("test://"))

    assert dict(fetched) == {"plain": "visible", "good": "s3cr3t"}
    assert fetched.secret == {"good", "bad"}
    assert set(fetched.errors) == {"bad"}
    error = fetched.errors["bad"]
    assert isinstance(error, DecryptError)
    assert "'bad'" in str(error)
    assert "hunter2" not in str(error)


def failing_kms(code: str) -> MockTransport:
    """KMS whose every Decrypt fails with one AWS error code (a service failure, not a bad value)."""

    def handler(request: AwsRequest) -> dict[str, Any]:
        raise AwsError(code, "injected", status=400, operation="kms:Decrypt")

    return MockTransport(handler)


@pytest.mark.integration
@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException", "KMSInternalException"])
def test_a_kms_service_failure_fails_the_whole_fetch(kms_key: str, code: str) -> None:
    """A KMS failure that says nothing about the value raises SourceError, not DecryptError: stale-on-error applies."""
    raw = {"plain": "visible", "secret": crypto.encrypt("s3cr3t", stage="DEV", key="secret", kms_key=kms_key)}

    with pytest.raises(SourceError, match=code) as caught:
        open_envelopes(raw, stage="DEV", kms=Caller("test://", failing_kms(code)))
    assert not isinstance(caught.value, DecryptError)
    assert caught.value.operation == "kms:Decrypt"
