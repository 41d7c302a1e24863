"""Envelope encryption of secure values: a fresh KMS data key per value, AES-256-GCM, one text format.

The stored text (format version 1)::

    cs1:<wrapped key>.<nonce>.<ciphertext>

* ``cs1:`` names the format and its version; a later format gets a new prefix.
* ``<wrapped key>`` is the KMS ``CiphertextBlob`` of the data key (``GenerateDataKey``, ``AES_256``).
* ``<nonce>`` is the 12-byte GCM nonce, ``<ciphertext>`` the UTF-8 value encrypted with the data key
  followed by the 16-byte GCM tag.
* Every field is URL-safe base64 without padding, so the whole is one ASCII line that a DynamoDB
  string, an S3 object body or a JSON string holds as it is.

Each ciphertext is bound to its stage and key twice: the KMS ``EncryptionContext`` of the data key
is ``{"confstage:purpose": "config-value", "confstage:stage": STAGE, "confstage:key": KEY}``, and the
GCM associated data is the same triple. A ciphertext copied to another key or stage therefore fails
to decrypt (``DecryptError`` naming the stage and key), even when its data key is already cached.

Plaintext data keys are cached in memory only, keyed by the wrapped key, so decrypting the same
value again after a TTL costs no KMS call. ``cryptography`` and botocore are imported on first use.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
from collections.abc import Callable, Mapping
from typing import Any

from . import aws
from .errors import DecryptError, SourceError
from .sources.base import Fetched

__all__ = [
    "PREFIX",
    "PURPOSE",
    "Sealer",
    "associated_data",
    "clear_data_keys",
    "decrypt",
    "encrypt",
    "encryption_context",
    "is_envelope",
    "open_envelopes",
]

PREFIX = "cs1:"
PURPOSE = "config-value"
_NONCE_BYTES = 12
_TAG_BYTES = 16
_MAX_CACHED_KEYS = 4096
# cs1: + wrapped key + 12-byte nonce (16 base64 characters) + ciphertext with its tag (at least 22).
_ENVELOPE = re.compile(r"cs1:[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22,}")

_REFUSED = ("InvalidCiphertextException", "IncorrectKeyException")  # KMS: this ciphertext, not the service

_data_keys: dict[bytes, bytes] = {}  # wrapped key -> plaintext data key, memory only
_lock = threading.Lock()


def is_envelope(text: str) -> bool:
    """Whether a stored string is a confstage envelope (format ``cs1:``)."""
    return text.startswith(PREFIX) and _ENVELOPE.fullmatch(text) is not None


def encryption_context(stage: str, key: str) -> dict[str, str]:
    """The KMS encryption context that binds a data key to one stage and key."""
    return {"confstage:purpose": PURPOSE, "confstage:stage": stage, "confstage:key": key}


def associated_data(stage: str, key: str) -> bytes:
    """The GCM associated data binding a ciphertext to one stage and key (NUL never occurs in either)."""
    return "\0".join((PREFIX, PURPOSE, stage, key)).encode("utf-8")


def encrypt(plaintext: str, *, stage: str, key: str, kms_key: str, client: Any = None, source: str = "") -> str:
    """Encrypt one value for ``(stage, key)`` under a fresh data key from ``kms_key``; return the envelope."""
    from botocore.exceptions import BotoCoreError, ClientError
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kms = client if client is not None else aws.client("kms")
    try:
        response = kms.generate_data_key(
            KeyId=kms_key, KeySpec="AES_256", EncryptionContext=encryption_context(stage, key)
        )
    except (BotoCoreError, ClientError) as exc:
        raise aws.source_error(
            exc, source=source, operation="kms:GenerateDataKey", target=f"KMS key {kms_key}"
        ) from exc
    data_key: bytes = response["Plaintext"]
    wrapped: bytes = response["CiphertextBlob"]
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(data_key).encrypt(nonce, plaintext.encode("utf-8"), associated_data(stage, key))
    return PREFIX + ".".join(_b64encode(part) for part in (wrapped, nonce, sealed))


def decrypt(envelope: str, *, stage: str, key: str, client: Any = None, source: str = "") -> str:
    """Decrypt an envelope stored for ``(stage, key)``; ``DecryptError`` names them, never the value."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    what = f"secure value of key {key!r} for stage {stage!r}"
    wrapped, nonce, sealed = _parse(envelope, what, source)
    data_key = _data_keys.get(wrapped)
    if data_key is None:
        data_key = _unwrap(wrapped, stage, key, what, client, source)
    try:
        plaintext = AESGCM(data_key).decrypt(nonce, sealed, associated_data(stage, key))
    except InvalidTag as exc:  # carries nothing (no message, no value): kept as the cause
        raise DecryptError(
            f"{what} failed authentication: tampered, or written for another stage or key",
            source=source,
            operation="aes-gcm:decrypt",
        ) from exc
    text = _utf8(plaintext)
    if text is None:
        raise DecryptError(f"{what} is not UTF-8 text", source=source, operation="aes-gcm:decrypt")
    return text


def open_envelopes(raw: Mapping[str, str], *, stage: str, kms: Callable[[], Any], source: str) -> Fetched:
    """What a store fetched, with every envelope decrypted and its key reported as secret.

    An envelope that does not open (``DecryptError``: tampered, copied from another key or stage,
    malformed) fails only its own key: it goes into ``Fetched.errors`` and every other key is
    served. A KMS failure (throttling, AccessDenied, the network) is the fetch's: ``SourceError``
    is raised, so the cache layer can serve stale values. ``kms`` gives the KMS client; it is
    called only when there is an envelope to open.
    """
    values: dict[str, str] = {}
    secret: list[str] = []
    errors: dict[str, DecryptError] = {}
    for key, value in raw.items():
        if not is_envelope(value):
            values[key] = value
            continue
        secret.append(key)
        try:
            values[key] = decrypt(value, stage=stage, key=key, client=kms(), source=source)
        except DecryptError as exc:
            errors[key] = exc
    return Fetched(values, secret=secret, errors=errors)


def clear_data_keys() -> None:
    """Forget every cached plaintext data key (tests; key rotation)."""
    with _lock:
        _data_keys.clear()


def _parse(envelope: str, what: str, source: str) -> tuple[bytes, bytes, bytes]:
    if not envelope.startswith(PREFIX):
        raise DecryptError(f"{what} is not a {PREFIX} envelope", source=source, operation="decode")
    fields = envelope[len(PREFIX) :].split(".")
    try:
        if len(fields) != 3:
            raise ValueError("wrong number of fields")
        wrapped, nonce, sealed = (_b64decode(field) for field in fields)
    except (binascii.Error, ValueError) as exc:  # messages of ours or binascii's: counts, never the text
        raise DecryptError(f"{what} is a malformed {PREFIX} envelope", source=source, operation="decode") from exc
    if not wrapped or len(nonce) != _NONCE_BYTES or len(sealed) < _TAG_BYTES:
        raise DecryptError(f"{what} is a malformed {PREFIX} envelope", source=source, operation="decode")
    return wrapped, nonce, sealed


def _unwrap(wrapped: bytes, stage: str, key: str, what: str, client: Any, source: str) -> bytes:
    """Ask KMS for the plaintext data key (bound to the stage and key by the encryption context)."""
    kms = client if client is not None else aws.client("kms")
    response = aws.call(
        kms,
        "kms:Decrypt",
        {"CiphertextBlob": wrapped, "EncryptionContext": encryption_context(stage, key)},
        source=source,
        target=what,
        answers=_REFUSED,
    )
    if isinstance(response, aws.ErrorAnswer):
        raise DecryptError(
            f"{what}: KMS refused its data key (written for another stage or key, or tampered)",
            source=source,
            operation="kms:Decrypt",
        ) from response.error
    data_key: bytes = response["Plaintext"]
    if len(data_key) != 32:
        raise SourceError(
            f"{what}: KMS returned a data key that is not AES-256", source=source, operation="kms:Decrypt"
        )
    with _lock:
        if len(_data_keys) >= _MAX_CACHED_KEYS:
            _data_keys.pop(next(iter(_data_keys)))  # oldest first: dicts keep insertion order
        _data_keys[wrapped] = data_key
    return data_key


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    if not text or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("not URL-safe base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- sealing secrets for the /tmp cache ----------------------------------------------------------

CACHE_PURPOSE = "tmp-cache"


class Sealer:
    """Encrypts secret values for the /tmp cache under one KMS data key per process.

    The first process to write asks KMS for a data key (GenerateDataKey, EncryptionContext
    ``{"confstage:purpose": "tmp-cache"}``) and stores it wrapped beside the sealed values; a
    restarted process unwraps it with one KMS Decrypt and then uses that same key for its own
    writes, so each restart costs one KMS call, not one per secret. Each value is AES-256-GCM with
    a random 96-bit nonce and associated data binding it to its source, stage and key, so a sealed
    value moved inside or between files does not open.
    """

    def __init__(self, kms_key: str, *, client: Any = None) -> None:
        self.kms_key = kms_key
        self._client = client
        self._current: tuple[bytes, bytes] | None = None  # (wrapped, plaintext) data key of this process
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Sealer(kms_key={self.kms_key!r})"

    def seal(self, values: Mapping[str, str], *, aad: str) -> dict[str, Any]:
        """``{"key": wrapped data key, "values": {key: sealed}}`` for the values given."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        wrapped, data_key = self._key()
        aead = AESGCM(data_key)
        sealed = {}
        for key, value in values.items():
            nonce = os.urandom(_NONCE_BYTES)
            sealed[key] = _b64encode(nonce + aead.encrypt(nonce, value.encode("utf-8"), _cache_aad(aad, key)))
        return {"key": _b64encode(wrapped), "values": sealed}

    def open(self, sealed: Mapping[str, Any], *, aad: str) -> dict[str, str]:
        """The plaintexts of a ``seal`` result; ``DecryptError`` when anything does not authenticate."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            wrapped = _b64decode(str(sealed["key"]))
            blobs = {str(k): _b64decode(str(v)) for k, v in dict(sealed["values"]).items()}
        except (KeyError, TypeError, ValueError, binascii.Error) as exc:  # about the shape: no value in them
            raise DecryptError("sealed cache entry is malformed", operation="decode") from exc
        aead = AESGCM(self._unwrap(wrapped))
        opened = {}
        for key, blob in blobs.items():
            try:
                plain = aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _cache_aad(aad, key))
            except (InvalidTag, ValueError) as exc:  # no value in either: a tag, or a nonce of the wrong size
                raise DecryptError(f"sealed cache entry for key {key!r} does not authenticate") from exc
            text = _utf8(plain)
            if text is None:
                raise DecryptError(f"sealed cache entry for key {key!r} is not UTF-8 text")
            opened[key] = text
        return opened

    def _kms(self) -> Any:
        if self._client is None:
            self._client = aws.client("kms")
        return self._client

    def _key(self) -> tuple[bytes, bytes]:
        with self._lock:
            if self._current is None:
                response = aws.call(
                    self._kms(),
                    "kms:GenerateDataKey",
                    {
                        "KeyId": self.kms_key,
                        "KeySpec": "AES_256",
                        "EncryptionContext": {"confstage:purpose": CACHE_PURPOSE},
                    },
                    source="/tmp cache",
                    target=f"KMS key {self.kms_key}",
                )
                self._current = (response["CiphertextBlob"], response["Plaintext"])
            return self._current

    def _unwrap(self, wrapped: bytes) -> bytes:
        with self._lock:
            if self._current is not None and self._current[0] == wrapped:
                return self._current[1]
        response = aws.call(
            self._kms(),
            "kms:Decrypt",
            {"CiphertextBlob": wrapped, "EncryptionContext": {"confstage:purpose": CACHE_PURPOSE}},
            source="/tmp cache",
            target="cache data key",
        )
        data_key: bytes = response["Plaintext"]
        with self._lock:
            if self._current is None:
                self._current = (wrapped, data_key)  # a restarted process writes with the key it found
        return data_key


def _utf8(data: bytes) -> str | None:
    """``data`` as text, or None: a UnicodeDecodeError holds the whole of ``data`` (its ``object``), so none escapes."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _cache_aad(aad: str, key: str) -> bytes:
    return "\0".join((CACHE_PURPOSE, aad, key)).encode("utf-8")
