"""Errors keep their cause when the cause cannot carry a value, and carry no value anywhere in their chain.

A handler that logs an exception with its chain (``logging.exception``, Sentry, a traceback) shows
every ``__cause__`` and ``__context__``, and error trackers also record their attributes. A
``JSONDecodeError`` keeps the whole document in ``doc``, a ``UnicodeDecodeError`` the whole bytes in
``object``: those are never in a chain. binascii's errors and ``InvalidTag`` carry no value, so they
stay as causes.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from confstage import DecryptError, SourceError, crypto
from confstage.sources.kms_env import decrypt_lambda_env
from confstage.sources.s3 import S3Source
from confstage.sources.secretsmanager import parse_document

pytestmark = pytest.mark.integration

SECRET = "hunter2-do-not-leak"


def chain(error: BaseException) -> list[BaseException]:
    """The error and every exception reachable through ``__cause__`` and ``__context__``."""
    found: list[BaseException] = []
    pending: list[BaseException | None] = [error]
    while pending:
        seen = pending.pop()
        if seen is None or any(seen is known for known in found):
            continue
        found.append(seen)
        pending += [seen.__cause__, seen.__context__]
    return found


def shown(error: BaseException) -> str:
    """Everything a log line or an error tracker could record of one exception."""
    parts = [str(error), repr(error), repr(error.args), repr(getattr(error, "__dict__", {}))]
    parts += [repr(getattr(error, name, None)) for name in ("object", "doc", "msg", "reason")]
    return " ".join(parts)


def assert_no_value_in_chain(error: BaseException) -> None:
    for seen in chain(error):
        text = shown(seen)
        assert SECRET not in text, f"the value appears in {type(seen).__name__}"
        assert repr(SECRET.encode())[2:-1] not in text, f"the value's bytes appear in {type(seen).__name__}"


def test_a_secret_that_is_not_json_has_neither_cause_nor_context() -> None:
    """A non-JSON secret's SourceError leaves out the JSONDecodeError, whose ``doc`` is the whole secret."""
    with pytest.raises(SourceError, match="not valid JSON") as caught:
        parse_document(f'{{"password": "{SECRET}", oops', secret_id="app/DEV", source="secretsmanager://app")
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert_no_value_in_chain(caught.value)


def test_a_deeply_nested_secret_is_a_source_error() -> None:
    """A secret nested past the parser's recursion limit is a SourceError, not a RecursionError."""
    with pytest.raises(SourceError, match="not valid JSON"):
        parse_document("[" * 100_000, secret_id="app/DEV", source="secretsmanager://app")


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (f'{{"password": "{SECRET}", oops'.encode(), "not valid JSON"),
        (SECRET.encode() + b"\xff", "not UTF-8"),
        (b"[" * 100_000, "not valid JSON"),
    ],
    ids=["not-json", "not-utf8", "too-deep"],
)
def test_an_s3_document_that_does_not_parse_has_no_value_in_its_chain(boto: Any, body: bytes, problem: str) -> None:
    """A document that is not JSON (or not UTF-8, or too deep) is a SourceError with no cause or context to leak."""
    boto("s3").create_bucket(Bucket="docs")
    boto("s3").put_object(Bucket="docs", Key="app/DEV/config.json", Body=body)

    with pytest.raises(SourceError, match=problem) as caught:
        S3Source("docs", "app", layout="document").fetch("DEV", ())
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert_no_value_in_chain(caught.value)


def test_a_kms_env_value_that_is_not_base64_keeps_its_cause() -> None:
    """A non-base64 kms-env value keeps binascii's error as the cause: it gives counts, never the text."""
    with pytest.raises(DecryptError, match="DEV_token") as caught:
        decrypt_lambda_env(f"{SECRET}!", variable="DEV_token", client=None)
    assert isinstance(caught.value.__cause__, binascii.Error)
    assert_no_value_in_chain(caught.value)


def test_a_kms_env_value_that_decrypts_to_bytes_has_no_context(boto: Any, kms_key: str) -> None:
    """A ciphertext whose plaintext is not UTF-8 fails without the UnicodeDecodeError, whose ``object`` is the value."""
    blob = boto("kms").encrypt(KeyId=kms_key, Plaintext=SECRET.encode() + b"\xff")["CiphertextBlob"]

    with pytest.raises(DecryptError, match="not UTF-8") as caught:
        decrypt_lambda_env(base64.b64encode(blob).decode(), variable="DEV_token", client=boto("kms"))
    assert caught.value.__context__ is None
    assert_no_value_in_chain(caught.value)


def envelope_of(boto: Any, kms_key: str, plaintext: bytes, *, tamper: bool = False) -> str:
    """A cs1: envelope for key ``k`` of stage DEV holding any bytes (crypto.encrypt takes text only)."""
    response = boto("kms").generate_data_key(
        KeyId=kms_key, KeySpec="AES_256", EncryptionContext=crypto.encryption_context("DEV", "k")
    )
    nonce = b"\x01" * 12
    sealed = AESGCM(response["Plaintext"]).encrypt(nonce, plaintext, crypto.associated_data("DEV", "k"))
    if tamper:
        sealed = bytes([sealed[0] ^ 1]) + sealed[1:]
    parts = (response["CiphertextBlob"], nonce, sealed)
    return crypto.PREFIX + ".".join(base64.urlsafe_b64encode(part).decode().rstrip("=") for part in parts)


def test_an_envelope_that_fails_authentication_keeps_invalid_tag_as_its_cause(boto: Any, kms_key: str) -> None:
    """A tampered envelope's DecryptError is chained to InvalidTag, which carries nothing."""
    crypto.clear_data_keys()
    with pytest.raises(DecryptError, match="failed authentication") as caught:
        crypto.decrypt(envelope_of(boto, kms_key, SECRET.encode(), tamper=True), stage="DEV", key="k")
    assert isinstance(caught.value.__cause__, InvalidTag)
    assert_no_value_in_chain(caught.value)


def test_an_envelope_that_opens_to_bytes_has_no_context(boto: Any, kms_key: str) -> None:
    """An envelope whose plaintext is not UTF-8 fails without the UnicodeDecodeError that holds the plaintext."""
    crypto.clear_data_keys()
    with pytest.raises(DecryptError, match="not UTF-8") as caught:
        crypto.decrypt(envelope_of(boto, kms_key, SECRET.encode() + b"\xff"), stage="DEV", key="k")
    assert caught.value.__context__ is None
    assert_no_value_in_chain(caught.value)


def test_the_chain_walk_sees_a_value_where_there_is_one() -> None:
    """The checker itself: a JSONDecodeError kept as context would be caught."""
    try:
        try:
            json.loads(f"{SECRET} oops")
        except ValueError:
            raise SourceError("not valid JSON") from None
    except SourceError as error:
        with pytest.raises(AssertionError, match="JSONDecodeError"):
            assert_no_value_in_chain(error)
