"""Ciphertexts for ``kms-env://``, made exactly as the Lambda console's encryption helpers make them.

The console calls KMS Encrypt with EncryptionContext ``{"LambdaFunctionName": NAME}`` and stores
the base64 of the ciphertext blob; ``kms-env://`` decrypts with the same context.
"""

from __future__ import annotations

import base64
from typing import Any

from confstage import aws

__all__ = ["encrypt_for_lambda"]


def encrypt_for_lambda(value: str, *, kms_key: str, function: str, client: Any = None) -> str:
    """The base64 KMS ciphertext of ``value`` bound to the function ``function``."""
    kms = client if client is not None else aws.client("kms")
    response = kms.encrypt(
        KeyId=kms_key,
        Plaintext=value.encode("utf-8"),
        EncryptionContext={"LambdaFunctionName": function},
    )
    blob: bytes = response["CiphertextBlob"]
    return base64.b64encode(blob).decode("ascii")
