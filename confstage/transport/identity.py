"""What names where a transport reaches a service, for the /tmp cache: region, endpoint and principal, from the
environment alone (all the lite transport reads), never a credential. ``aws.endpoint_identity`` asks the runtime's
transport when the environment does not decide alone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

__all__ = ["digest", "environment_identity", "identity_from_environment"]

_ENDPOINT_NAMES = {"dynamodb": "DYNAMODB", "s3": "S3", "ssm": "SSM", "secretsmanager": "SECRETS_MANAGER", "kms": "KMS"}


def identity_from_environment(service: str, env: Mapping[str, str]) -> str | None:
    """``environment_identity``, unless a shared config file could name another region or endpoint (None)."""
    config_file = env.get("AWS_CONFIG_FILE") or os.path.join(env.get("HOME") or "~", ".aws", "config")
    if os.path.exists(os.path.expanduser(config_file)):
        return None  # a profile could set the region or this service's endpoint: ask botocore
    return environment_identity(service, env)


def environment_identity(service: str, env: Mapping[str, str]) -> str | None:
    """``endpoint_identity`` from the environment variables alone, which is all the lite transport reads (botocore
    reads shared config files too); None without credentials or a region."""
    key_id = env.get("AWS_ACCESS_KEY_ID")
    region = env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION")
    if not key_id or not env.get("AWS_SECRET_ACCESS_KEY") or not region:
        return None
    endpoint = "default"
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        specific = f"AWS_ENDPOINT_URL_{_ENDPOINT_NAMES.get(service, service.upper())}"
        endpoint = env.get(specific) or env.get("AWS_ENDPOINT_URL") or endpoint
    return f"region={region} endpoint={endpoint} principal={digest(key_id)}"


def digest(key_id: str) -> str:
    """A short digest of an access key id: tells principals apart and never shows the id."""
    try:
        from _blake2 import blake2b  # what hashlib re-exports, without hashlib's 5 ms of OpenSSL import
    except ImportError:  # pragma: no cover - every CPython build has _blake2
        from hashlib import blake2b
    return blake2b(key_id.encode("utf-8"), digest_size=8, person=b"confstage-akid").hexdigest()
