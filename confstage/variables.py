"""The ``CONFSTAGE_*`` environment variables, read once when a client is built."""

from __future__ import annotations

import os
from collections.abc import Mapping

from .errors import ConfigurationError

__all__ = [
    "DEFAULT_CACHE_DIR",
    "DEFAULT_FETCH_TIMEOUT",
    "DEFAULT_MAX_STALE",
    "DEFAULT_REFRESH_TIMEOUT",
    "DEFAULT_SECRET_MAX_STALE",
    "DEFAULT_SOURCES",
    "DEFAULT_TTL",
    "DEFAULT_TTL_JITTER",
    "env_float",
    "env_str",
]

DEFAULT_SOURCES = "env://"
DEFAULT_TTL = 300.0
DEFAULT_MAX_STALE = 3600.0
DEFAULT_CACHE_DIR = "/tmp/confstage"
DEFAULT_FETCH_TIMEOUT = 10.0  # a caller with nothing cached gets SourceError after this many seconds
DEFAULT_REFRESH_TIMEOUT = 1.0  # a caller holding a stale value waits this long for a refresh, then is served it
DEFAULT_TTL_JITTER = 0.1  # each stage's TTL is shortened by up to this fraction, so a fleet spreads its refreshes
DEFAULT_SECRET_MAX_STALE = 900.0  # a secret is served stale (refresh failing) for at most this long


def env_str(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A variable's value, or None when unset."""
    return (os.environ if environ is None else environ).get(name)


def env_float(
    name: str, default: float, environ: Mapping[str, str] | None = None, *, what: str = "a number of seconds"
) -> float:
    """A non-negative number from a variable; ``ConfigurationError`` names a bad one."""
    raw = env_str(name, environ)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be {what}, got {raw!r}") from None
    if value < 0 or value != value:
        raise ConfigurationError(f"{name} must not be negative, got {raw!r}")
    return value
