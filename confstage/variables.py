"""The ``CONFSTAGE_*`` environment variables, read once when a client is built, and the defaults."""

from __future__ import annotations

import math
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
    "NUMBERS",
    "Number",
    "Settings",
    "check_number",
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


class Number(NamedTuple):
    """A numeric setting's accepted range (inclusive) and what it counts."""

    low: float
    high: float
    what: str = "a number of seconds"
    integer: bool = False

    @property
    def span(self) -> str:
        """How the range reads in errors and docs: ``a number of seconds from 0 to 900``."""
        return f"{self.what} from {_plain(self.low)} to {_plain(self.high)}"


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else f"{number:g}"


YEAR = 365 * 24 * 3600.0
# Every numeric CONFSTAGE_* setting, and its range. Anything outside (negative, NaN, inf, 1e400) is refused
# when the client or transport is made, naming the variable and the range: a setting of inf would otherwise
# reach Event.wait or a socket timeout and fail every read later.
NUMBERS: dict[str, Number] = {
    "CONFSTAGE_TTL": Number(0.0, YEAR),
    "CONFSTAGE_MAX_STALE": Number(0.0, YEAR),
    "CONFSTAGE_SECRET_MAX_STALE": Number(0.0, YEAR),
    "CONFSTAGE_FETCH_TIMEOUT": Number(0.0, 900.0),  # Lambda's longest invocation
    "CONFSTAGE_REFRESH_TIMEOUT": Number(0.0, 900.0),
    "CONFSTAGE_TTL_JITTER": Number(0.0, 1.0, "a fraction"),
    "CONFSTAGE_CONNECT_TIMEOUT": Number(0.001, 900.0),
    "CONFSTAGE_READ_TIMEOUT": Number(0.001, 900.0),
    "CONFSTAGE_MAX_ATTEMPTS": Number(1, 10, "a number of attempts", integer=True),
}


def check_number(variable: str, value: Any, *, label: str | None = None) -> float:
    """``value`` as a float inside ``NUMBERS[variable]``'s range; else a ``ConfigurationError`` naming ``label``
    (the variable by default, or the ``Config`` argument it came from) and the range."""
    rule = NUMBERS[variable]
    name = label or variable
    span = rule.span
    if isinstance(value, bool):
        raise ConfigurationError(f"{name} must be {span}, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigurationError(f"{name} must be {span}, got {value!r}") from exc
    if not (math.isfinite(number) and rule.low <= number <= rule.high) or (rule.integer and not number.is_integer()):
        raise ConfigurationError(f"{name} must be {span}, got {value!r}")
    return number


def env_str(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """A variable's value, or None when unset."""
    return (os.environ if environ is None else environ).get(name)


def env_float(name: str, default: float, environ: Mapping[str, str] | None = None) -> float:
    """A number from a variable of ``NUMBERS`` (its default when unset or blank); ``ConfigurationError`` names a
    value outside the variable's range."""
    raw = env_str(name, environ)
    if raw is None or not raw.strip():
        return default
    return check_number(name, raw.strip())


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

    def pick(name: str, variable: str, default: float) -> float:
        value = given.get(name)
        if value is None:
            return env_float(variable, default, environ)
        return check_number(variable, value, label=f"Config({name}=...)")

    def text(name: str, variable: str, default: str | None) -> str | None:
        value = given.get(name)
        if value is not None:
            return str(value) if not isinstance(value, str) else value
        found = env_str(variable, environ)
        return default if found is None else found

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
        ttl_jitter=pick("ttl_jitter", "CONFSTAGE_TTL_JITTER", DEFAULT_TTL_JITTER),
        cache_dir=text("cache_dir", "CONFSTAGE_CACHE_DIR", DEFAULT_CACHE_DIR) or "",
        cache_kms_key=text("cache_kms_key", "CONFSTAGE_CACHE_KMS_KEY", None) or None,
        metrics=(env_str("CONFSTAGE_METRICS", environ) or "").strip().lower(),
    )
