"""An example Lambda handler: the stage comes from the alias it was invoked through (DEV, PRD, …).

Deploy it behind aliases and set ``CONFSTAGE_SOURCES``; ``confstage demo`` runs this very file
against an embedded local AWS endpoint. It returns what it resolved, with secrets reduced to
their length, and how long each read took (the first invocation is cold, later ones warm).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import confstage

# Plain settings, returned as read; secrets, used but never returned.
SETTINGS: dict[str, Callable[[str], Any]] = {
    "greeting": confstage.get,  # env://
    "db_url": confstage.get,  # dynamodb://
    "timeout_ms": confstage.get_int,  # dynamodb://
    "feature_flags": confstage.get_json,  # s3://
    "log_level": confstage.get,  # ssm:///
}
SECRETS: tuple[str, ...] = (
    "api_key",  # kms-env:// (encrypted in the Lambda console)
    "stripe_key",  # dynamodb://, envelope-encrypted by `confstage put --secure`
    "db_password",  # secretsmanager://
)


@confstage.handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Read every setting and secret of the invoked stage; report values (secrets masked) and read times."""
    values: dict[str, Any] = {}
    timings_ms: dict[str, float] = {}
    for key, getter in SETTINGS.items():
        start = time.perf_counter()
        values[key] = getter(key)
        timings_ms[key] = (time.perf_counter() - start) * 1000
    for key in SECRETS:
        start = time.perf_counter()
        secret = confstage.get(key)
        timings_ms[key] = (time.perf_counter() - start) * 1000
        values[key] = f"<secret: {len(secret)} chars>"
    return {"stage": confstage.current_stage(), "values": values, "timings_ms": timings_ms}
