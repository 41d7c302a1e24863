"""boto3 clients: created on first use, kept for the life of the process, bounded in time.

boto3 is imported here and only here, the first time a source needs a client. Clients are
thread-safe once made; making them is not, hence the lock and the one shared session.
Timeouts suit Lambda: a dead endpoint gives up in seconds, not minutes.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["add_client_hook", "client", "client_config", "error_code", "reset", "source_error"]

_lock = threading.Lock()
_session: Any = None
_clients: dict[tuple[str, str | None, str | None], Any] = {}
_hooks: list[Callable[[Any], None]] = []


def client_config() -> Any:
    """The botocore ``Config`` every client gets: standard retries, short timeouts (env-tunable)."""
    from botocore.config import Config

    from .variables import env_float

    attempts = env_float("CONFSTAGE_MAX_ATTEMPTS", 3, what="a number of attempts")
    return Config(
        connect_timeout=env_float("CONFSTAGE_CONNECT_TIMEOUT", 1.0),
        read_timeout=env_float("CONFSTAGE_READ_TIMEOUT", 3.0),
        retries={"mode": "standard", "total_max_attempts": max(1, int(attempts))},
        user_agent_extra="confstage",
    )


def client(service: str, *, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """The process-wide client for a service (``AWS_ENDPOINT_URL*`` honoured as boto3 honours them)."""
    if region is None and not os.environ.get("AWS_DEFAULT_REGION"):
        region = os.environ.get("AWS_REGION") or None  # Lambda sets both; botocore reads only the first
    cache_key = (service, region, endpoint_url)
    found = _clients.get(cache_key)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(cache_key)
        if found is None:
            global _session
            if _session is None:
                import boto3.session

                _session = boto3.session.Session()
            found = _session.client(service, region_name=region, endpoint_url=endpoint_url, config=client_config())
            for hook in _hooks:
                hook(found)
            _clients[cache_key] = found
        return found


def add_client_hook(hook: Callable[[Any], None]) -> Callable[[], None]:
    """Call ``hook(client)`` on every client made from now on (tests, benchmarks); returns a remover."""
    with _lock:
        _hooks.append(hook)

    def remove() -> None:
        with _lock:
            if hook in _hooks:
                _hooks.remove(hook)

    return remove


def reset() -> None:
    """Forget every client and the session (tests; a new endpoint or credentials)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def source_error(exc: BaseException, *, source: str, operation: str, target: str = "") -> Any:
    """A ``SourceError`` for a failed AWS call: names the source, the operation and what it read."""
    from .errors import SourceError

    code = error_code(exc) or type(exc).__name__
    message = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        message = str(response.get("Error", {}).get("Message", ""))[:300]
    where = f" on {target}" if target else ""
    detail = f": {message}" if message else ""
    return SourceError(f"{operation}{where} failed with {code}{detail}", source=source, operation=operation)
