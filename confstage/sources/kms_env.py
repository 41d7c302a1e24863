"""``kms-env://``: environment variables holding KMS ciphertexts, as the Lambda console encrypts them.

The console's encryption helpers encrypt with EncryptionContext
``{"LambdaFunctionName": $AWS_LAMBDA_FUNCTION_NAME}``; older tooling used no context, so that is
tried second. Each variable is decrypted once per process: env vars are immutable per version.
A variable that does not decrypt fails only reads of its key (``Fetched.errors``); a KMS failure
(throttling, AccessDenied, the network) fails the fetch.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
from collections.abc import Collection, Mapping
from typing import Any

from confstage import aws
from confstage.errors import DecryptError

from .base import Fetched, SourceURL
from .env import DEFAULT_TEMPLATE, env_names

__all__ = ["KmsEnvSource"]

_OPERATION = "kms:Decrypt"


class KmsEnvSource:
    """Encrypted environment variables; every value is a secret."""

    whole_stage = False
    persist = False

    def __init__(
        self,
        *,
        keys: Collection[str] | None = None,
        template: str = DEFAULT_TEMPLATE,
        fallback: bool = True,
        environ: Mapping[str, str] | None = None,
        kms_client: Any = None,
        url: str = "kms-env://",
    ) -> None:
        self.url = url
        self.keys = frozenset(keys) if keys is not None else None
        self.template = template
        self.fallback = fallback
        self.ttl: float | None = math.inf
        self._environ = os.environ if environ is None else environ
        self._client = kms_client
        self._plain: dict[tuple[str, str], str] = {}  # (variable, ciphertext) -> plaintext, memory only

    @classmethod
    def from_url(cls, url: SourceURL) -> KmsEnvSource:
        if url.netloc or url.path not in ("", "/"):
            raise url.error("kms-env:// takes no host or path; use ?keys= and ?template=")
        template = url.take("template", DEFAULT_TEMPLATE) or ""
        if "{key}" not in template:
            raise url.error("template must contain {key}")
        return cls(
            keys=url.take_list("keys"),
            template=template,
            fallback=url.take_bool("fallback", True),
            url=url.url,
        )

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        found: dict[str, tuple[str, str]] = {}  # key -> (variable, ciphertext)
        for key in keys:
            if self.keys is not None and key not in self.keys:
                continue
            for name in env_names(self.template, self.fallback, stage, key):
                blob = self._environ.get(name)
                if blob is not None:
                    found[key] = (name, blob)
                    break
        pending = [pair for pair in found.values() if pair not in self._plain]
        opened: dict[tuple[str, str], str | DecryptError] = {}
        if len(pending) > 1:
            # Several variables not yet decrypted (a get_many at init): one KMS call each, in parallel.
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(max_workers=min(8, len(pending))) as pool:
                opened = dict(zip(pending, pool.map(lambda pair: self._decrypt(*pair), pending), strict=True))
        values: dict[str, str] = {}
        errors: dict[str, DecryptError] = {}
        for key, pair in found.items():
            result = opened[pair] if pair in opened else self._decrypt(*pair)
            if isinstance(result, DecryptError):
                errors[key] = result
            else:
                values[key] = result
        return Fetched(values, secret=found.keys(), errors=errors)

    def _decrypt(self, variable: str, blob: str) -> str | DecryptError:
        """The plaintext of a variable, or the ``DecryptError`` saying why it has none (a KMS failure raises)."""
        cached = self._plain.get((variable, blob))
        if cached is None:
            # Decrypting twice in a race is harmless (same result); a lock would serialise the pool.
            try:
                cached = decrypt_lambda_env(blob, variable=variable, client=self._kms(), source=self.url)
            except DecryptError as exc:
                return exc
            self._plain[(variable, blob)] = cached
        return cached

    def _kms(self) -> Any:
        if self._client is None:
            self._client = aws.client("kms")
        return self._client

    def __repr__(self) -> str:
        return f"KmsEnvSource({self.url!r})"


def decrypt_lambda_env(blob: str, *, variable: str, client: Any, source: str = "kms-env://") -> str:
    """Decrypt one console-encrypted variable; errors name the variable, never the value."""
    try:
        ciphertext = base64.b64decode(blob.strip(), validate=True)
    except (binascii.Error, ValueError) as exc:  # binascii's messages give counts, never the text: kept
        raise DecryptError(
            f"environment variable {variable} is not base64 KMS ciphertext", source=source, operation=_OPERATION
        ) from exc
    if not ciphertext:
        raise DecryptError(f"environment variable {variable} is empty", source=source, operation=_OPERATION)
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    contexts: list[dict[str, str]] = [{"LambdaFunctionName": function}] if function else []
    contexts.append({})
    last: BaseException | None = None
    for context in contexts:
        response = aws.call(
            client,
            _OPERATION,
            {"CiphertextBlob": ciphertext, "EncryptionContext": context},
            source=source,
            target=variable,
            answers=("InvalidCiphertextException",),
        )
        if isinstance(response, aws.ErrorAnswer):
            last = response.error  # wrong context, or not a ciphertext at all: try the next context
            continue
        plaintext: bytes = response["Plaintext"]
        try:
            return plaintext.decode("utf-8")
        except UnicodeDecodeError:
            pass
        # Raised here, with no cause or context: a UnicodeDecodeError holds the whole plaintext (its ``object``).
        raise DecryptError(
            f"environment variable {variable} decrypted to bytes that are not UTF-8",
            source=source,
            operation=_OPERATION,
        )
    raise DecryptError(
        f"environment variable {variable} could not be decrypted "
        f"(tried EncryptionContext LambdaFunctionName={function!r} and none)",
        source=source,
        operation=_OPERATION,
    ) from last
