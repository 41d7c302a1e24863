"""Ciphertexts for ``kms-env://``, made exactly as the Lambda console's encryption helpers make them.

The console calls KMS Encrypt with EncryptionContext ``{"LambdaFunctionName": NAME}`` and stores
the base64 of the ciphertext blob; ``kms-env://`` decrypts with the same context.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

from confstage.aws import Caller

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["encrypt_for_lambda"]


def encrypt_for_lambda(value: str, *, kms_key: str, function: str, transport: Transport | None = None) -> str:
    """The base64 KMS ciphertext of ``value`` bound to the function ``function``."""
    request = {
        "KeyId": kms_key,
        "Plaintext": value.encode("utf-8"),
        "EncryptionContext": {"LambdaFunctionName": function},
    }
    response = Caller("kms-env://", transport).call("kms:Encrypt", request, target=f"KMS key {kms_key}")
    blob: bytes = response["CiphertextBlob"]
    return base64.b64encode(blob).decode("ascii")
