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

Plaintext data keys are cached in memory only (a ``cachetools.TTLCache`` keyed by the wrapped key, each
kept ``DATA_KEY_LIFETIME`` seconds), so decrypting the same value again after a TTL costs no KMS call.
KMS is reached through the call layer (``aws.Caller``); ``cryptography`` and ``cachetools`` are imported on
first use.

Words: a *secure* value is one envelope-encrypted at rest in a store (this module's ``encrypt``); the /tmp
cache's ``Sealer`` *seals* secrets (values that must not reach a disk in plaintext) under a key of its own.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .aws import Caller, ErrorAnswer
from .errors import DecryptError, SourceError

if TYPE_CHECKING:
    from .transport import Transport

__all__ = [
    "DATA_KEY_LIFETIME",
    "PREFIX",
    "PURPOSE",
    "Sealed",
    "Sealer",
    "associated_data",
    "clear_data_keys",
    "decrypt",
    "encrypt",
    "encryption_context",
    "is_envelope",
]

PREFIX = "cs1:"
PURPOSE = "config-value"
DATA_KEY_LIFETIME = 3600.0  # seconds a plaintext data key stays in memory after KMS gave it
_NONCE_BYTES = 12
_TAG_BYTES = 16
_MAX_CACHED_KEYS = 4096
# cs1: + wrapped key + 12-byte nonce (16 base64 characters) + ciphertext with its tag (at least 22).
_ENVELOPE = re.compile(r"cs1:[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16}\.[A-Za-z0-9_-]{22,}")

_REFUSED = ("InvalidCiphertextException", "IncorrectKeyException")  # KMS: this ciphertext, not the service

_data_keys: Any = None  # cachetools.TTLCache: wrapped key -> plaintext data key, memory only (made on first use)
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


def encrypt(plaintext: str, *, stage: str, key: str, kms_key: str, kms: Caller | None = None) -> str:
    """Encrypt one value for ``(stage, key)`` under a fresh data key from ``kms_key``; return the envelope."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kms = kms or Caller("")
    response = kms.call(
        "kms:GenerateDataKey",
        {"KeyId": kms_key, "KeySpec": "AES_256", "EncryptionContext": encryption_context(stage, key)},
        target=f"KMS key {kms_key}",
    )
    data_key: bytes = response["Plaintext"]
    wrapped: bytes = response["CiphertextBlob"]
    nonce = os.urandom(_NONCE_BYTES)
    ciphertext = AESGCM(data_key).encrypt(nonce, plaintext.encode("utf-8"), associated_data(stage, key))
    return PREFIX + ".".join(_b64encode(part) for part in (wrapped, nonce, ciphertext))


def decrypt(envelope: str, *, stage: str, key: str, kms: Caller | None = None) -> str:
    """Decrypt an envelope stored for ``(stage, key)``; ``DecryptError`` names them, never the value."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    kms = kms or Caller("")
    source = kms.source
    what = f"secure value of key {key!r} for stage {stage!r}"
    wrapped, nonce, ciphertext = _parse(envelope, what, source)
    data_key = _cached_key(wrapped)
    if data_key is None:
        data_key = _unwrap(wrapped, stage, key, what, kms)
    try:
        plaintext = AESGCM(data_key).decrypt(nonce, ciphertext, associated_data(stage, key))
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


def clear_data_keys() -> None:
    """Forget every cached plaintext data key (tests; key rotation)."""
    with _lock:
        if _data_keys is not None:
            _data_keys.clear()


def _cached_key(wrapped: bytes) -> bytes | None:
    with _lock:
        return _data_keys.get(wrapped) if _data_keys is not None else None


def _remember_key(wrapped: bytes, data_key: bytes) -> None:
    global _data_keys
    with _lock:
        if _data_keys is None:
            from cachetools import TTLCache

            _data_keys = TTLCache(maxsize=_MAX_CACHED_KEYS, ttl=DATA_KEY_LIFETIME, timer=time.monotonic)
        _data_keys[wrapped] = data_key


def _parse(envelope: str, what: str, source: str) -> tuple[bytes, bytes, bytes]:
    if not envelope.startswith(PREFIX):
        raise DecryptError(f"{what} is not a {PREFIX} envelope", source=source, operation="decode")
    fields = envelope[len(PREFIX) :].split(".")
    try:
        if len(fields) != 3:
            raise ValueError("wrong number of fields")
        wrapped, nonce, ciphertext = (_b64decode(field) for field in fields)
    except (binascii.Error, ValueError) as exc:  # messages of ours or binascii's: counts, never the text
        raise DecryptError(f"{what} is a malformed {PREFIX} envelope", source=source, operation="decode") from exc
    if not wrapped or len(nonce) != _NONCE_BYTES or len(ciphertext) < _TAG_BYTES:
        raise DecryptError(f"{what} is a malformed {PREFIX} envelope", source=source, operation="decode")
    return wrapped, nonce, ciphertext


def _unwrap(wrapped: bytes, stage: str, key: str, what: str, kms: Caller) -> bytes:
    """Ask KMS for the plaintext data key (bound to the stage and key by the encryption context)."""
    response = kms.call(
        "kms:Decrypt",
        {"CiphertextBlob": wrapped, "EncryptionContext": encryption_context(stage, key)},
        target=what,
        answers=_REFUSED,
    )
    if isinstance(response, ErrorAnswer):
        raise DecryptError(
            f"{what}: KMS refused its data key (written for another stage or key, or tampered)",
            source=kms.source,
            operation="kms:Decrypt",
        ) from response.error
    data_key: bytes = response["Plaintext"]
    if len(data_key) != 32:
        raise SourceError(
            f"{what}: KMS returned a data key that is not AES-256", source=kms.source, operation="kms:Decrypt"
        )
    _remember_key(wrapped, data_key)
    return data_key


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _b64decode(text: str) -> bytes:
    if not text or not re.fullmatch(r"[A-Za-z0-9_-]+", text):
        raise ValueError("not URL-safe base64")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# -- sealing secrets for the /tmp cache ----------------------------------------------------------

CACHE_PURPOSE = "tmp-cache"


class Sealed(NamedTuple):
    """Secrets sealed for the /tmp cache: the wrapped data key, and each value's nonce and ciphertext (base64)."""

    key: str
    values: dict[str, str]


class Sealer:
    """Encrypts secret values for the /tmp cache under one KMS data key per process.

    The first process to write asks KMS for a data key (GenerateDataKey, EncryptionContext
    ``{"confstage:purpose": "tmp-cache"}``) and stores it wrapped beside the sealed values; a
    restarted process unwraps it with one KMS Decrypt and then uses that same key for its own
    writes, so each restart costs one KMS call, not one per secret. Each value is AES-256-GCM with
    a random 96-bit nonce and associated data binding it to its source, stage and key, so a sealed
    value moved inside or between files does not open.
    """

    def __init__(self, kms_key: str, *, transport: Transport | None = None) -> None:
        self.kms_key = kms_key
        self._kms = Caller("/tmp cache", transport)
        self._current: tuple[bytes, bytes] | None = None  # (wrapped, plaintext) data key of this process
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Sealer(kms_key={self.kms_key!r})"

    def seal(self, values: Mapping[str, str], *, aad: str) -> Sealed:
        """The values given, sealed under this process's data key."""
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        wrapped, data_key = self._key()
        aead = AESGCM(data_key)
        blobs = {}
        for key, value in values.items():
            nonce = os.urandom(_NONCE_BYTES)
            blobs[key] = _b64encode(nonce + aead.encrypt(nonce, value.encode("utf-8"), _cache_aad(aad, key)))
        return Sealed(_b64encode(wrapped), blobs)

    def open(self, sealed: Sealed, *, aad: str) -> dict[str, str]:
        """The plaintexts of a ``seal`` result; ``DecryptError`` when anything does not authenticate."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            wrapped = _b64decode(sealed.key)
            blobs = {key: _b64decode(value) for key, value in sealed.values.items()}
        except (TypeError, ValueError, binascii.Error) as exc:  # about the shape: no value in them
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

    def _key(self) -> tuple[bytes, bytes]:
        with self._lock:
            if self._current is None:
                response = self._kms.call(
                    "kms:GenerateDataKey",
                    {
                        "KeyId": self.kms_key,
                        "KeySpec": "AES_256",
                        "EncryptionContext": {"confstage:purpose": CACHE_PURPOSE},
                    },
                    target=f"KMS key {self.kms_key}",
                )
                self._current = (response["CiphertextBlob"], response["Plaintext"])
            return self._current

    def _unwrap(self, wrapped: bytes) -> bytes:
        with self._lock:
            if self._current is not None and self._current[0] == wrapped:
                return self._current[1]
        response = self._kms.call(
            "kms:Decrypt",
            {"CiphertextBlob": wrapped, "EncryptionContext": {"confstage:purpose": CACHE_PURPOSE}},
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
