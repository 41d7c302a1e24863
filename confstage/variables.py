"""The ``CONFSTAGE_*`` environment variables, read once when a client is built."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import NamedTuple

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
    "Tuning",
    "env_float",
    "env_str",
    "tuning",
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


class Tuning(NamedTuple):
    """How a client's caches behave: times in seconds, the jitter a fraction of the TTL."""

    ttl: float
    max_stale: float
    fetch_timeout: float
    refresh_timeout: float
    ttl_jitter: float
    secret_max_stale: float


# Tuning field -> its variable, its default, and what its value must be.
_TUNING: dict[str, tuple[str, float, str]] = {
    "ttl": ("CONFSTAGE_TTL", DEFAULT_TTL, "a number of seconds"),
    "max_stale": ("CONFSTAGE_MAX_STALE", DEFAULT_MAX_STALE, "a number of seconds"),
    "fetch_timeout": ("CONFSTAGE_FETCH_TIMEOUT", DEFAULT_FETCH_TIMEOUT, "a number of seconds"),
    "refresh_timeout": ("CONFSTAGE_REFRESH_TIMEOUT", DEFAULT_REFRESH_TIMEOUT, "a number of seconds"),
    "ttl_jitter": ("CONFSTAGE_TTL_JITTER", DEFAULT_TTL_JITTER, "a fraction"),
    "secret_max_stale": ("CONFSTAGE_SECRET_MAX_STALE", DEFAULT_SECRET_MAX_STALE, "a number of seconds"),
}


def tuning(environ: Mapping[str, str] | None = None, **given: float | None) -> Tuning:
    """Each field of ``Tuning``: the argument given, else its ``CONFSTAGE_*`` variable, else its default."""
    values = {
        name: found if (found := given.get(name)) is not None else env_float(variable, default, environ, what=what)
        for name, (variable, default, what) in _TUNING.items()
    }
    if not 0.0 <= values["ttl_jitter"] <= 1.0:
        raise ConfigurationError(f"the TTL jitter must be a fraction between 0 and 1, got {values['ttl_jitter']!r}")
    return Tuning(**values)
