"""The ``CONFSTAGE_*`` environment variables, read once when a client is built, and the defaults."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, NamedTuple

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
    "Settings",
    "env_float",
    "env_str",
    "fallback_regions",
    "resolve",
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
    except ValueError as exc:
        raise ConfigurationError(f"{name} must be {what}, got {raw!r}") from exc
    if value < 0 or value != value:
        raise ConfigurationError(f"{name} must not be negative, got {raw!r}")
    return value


def fallback_regions(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``CONFSTAGE_FALLBACK_REGIONS``: the regions an AWS source reads from, in order, when its home region fails
    (comma-separated; empty: none). Each name is checked where it is used (``confstage.failover``)."""
    raw = env_str("CONFSTAGE_FALLBACK_REGIONS", environ) or ""
    return tuple(name.strip() for name in raw.split(",") if name.strip())


class Settings(NamedTuple):
    """A client's settings: each one as given to ``Config``, else from its variable, else the default."""

    sources: Any
    stage: str | None
    aliases: str | Mapping[str, str] | None
    ttl: float
    max_stale: float
    secret_max_stale: float
    fetch_timeout: float
    refresh_timeout: float
    ttl_jitter: float
    cache_dir: str
    cache_kms_key: str | None
    metrics: str


def resolve(environ: Mapping[str, str] | None = None, **given: Any) -> Settings:
    """Fill in every setting not ``given`` (None) from the ``CONFSTAGE_*`` variables, then the defaults."""

    def pick(name: str, variable: str, default: float, what: str = "a number of seconds") -> float:
        value = given.get(name)
        return float(value) if value is not None else env_float(variable, default, environ, what=what)

    def text(name: str, variable: str, default: str | None) -> str | None:
        value = given.get(name)
        if value is not None:
            return str(value) if not isinstance(value, str) else value
        found = env_str(variable, environ)
        return default if found is None else found

    jitter = pick("ttl_jitter", "CONFSTAGE_TTL_JITTER", DEFAULT_TTL_JITTER, "a fraction")
    if not 0.0 <= jitter <= 1.0:
        raise ConfigurationError(
            f"CONFSTAGE_TTL_JITTER (the TTL jitter) must be a fraction from 0 to 1, got {jitter!r}"
        )
    return Settings(
        sources=given["sources"]
        if given.get("sources") is not None
        else (env_str("CONFSTAGE_SOURCES", environ) or DEFAULT_SOURCES),
        stage=given.get("stage") if given.get("stage") is not None else (env_str("CONFSTAGE_STAGE", environ) or None),
        aliases=given.get("aliases") if given.get("aliases") is not None else env_str("CONFSTAGE_ALIASES", environ),
        ttl=pick("ttl", "CONFSTAGE_TTL", DEFAULT_TTL),
        max_stale=pick("max_stale", "CONFSTAGE_MAX_STALE", DEFAULT_MAX_STALE),
        secret_max_stale=pick("secret_max_stale", "CONFSTAGE_SECRET_MAX_STALE", DEFAULT_SECRET_MAX_STALE),
        fetch_timeout=pick("fetch_timeout", "CONFSTAGE_FETCH_TIMEOUT", DEFAULT_FETCH_TIMEOUT),
        refresh_timeout=pick("refresh_timeout", "CONFSTAGE_REFRESH_TIMEOUT", DEFAULT_REFRESH_TIMEOUT),
        ttl_jitter=jitter,
        cache_dir=text("cache_dir", "CONFSTAGE_CACHE_DIR", DEFAULT_CACHE_DIR) or "",
        cache_kms_key=text("cache_kms_key", "CONFSTAGE_CACHE_KMS_KEY", None) or None,
        metrics=(env_str("CONFSTAGE_METRICS", environ) or "").strip().lower(),
    )
