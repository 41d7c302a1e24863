"""confstage: stage-aware configuration and secrets for AWS Lambda handlers.

``confstage.get("db_url")`` inside a ``@confstage.handler`` works out the stage from the alias
of the invoked ARN and reads the key from the configured sources, behind memory and /tmp caches.

Importing this package is deliberately almost free: the client, the sources and boto3 are
imported on first use (cold start is the product), so the names below are resolved lazily.
"""

from __future__ import annotations

from ._core import FOREVER as _FOREVER
from ._core import MISSING
from ._core import STAGE as _STAGE

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from contextlib import AbstractContextManager
    from typing import Any, TypeVar

    from ._core import Missing
    from .client import Config as Config
    from .errors import ConfigurationError as ConfigurationError
    from .errors import ConfstageError as ConfstageError
    from .errors import ConversionError as ConversionError
    from .errors import DecryptError as DecryptError
    from .errors import KeyNameError as KeyNameError
    from .errors import KeyNotFoundError as KeyNotFoundError
    from .errors import SourceError as SourceError
    from .errors import StageError as StageError
    from .stage import FunctionArn as FunctionArn
    from .stage import parse_arn as parse_arn
    from .stage import stage_from_arn as stage_from_arn

    F = TypeVar("F", bound=Callable[..., Any])

__version__ = "0.1.0"

__all__ = [
    "MISSING",
    "Config",
    "ConfigurationError",
    "ConfstageError",
    "ConversionError",
    "DecryptError",
    "FunctionArn",
    "KeyNameError",
    "KeyNotFoundError",
    "SourceError",
    "StageError",
    "bind",
    "configure",
    "current_stage",
    "get",
    "get_bool",
    "get_float",
    "get_int",
    "get_json",
    "get_many",
    "handler",
    "parse_arn",
    "prefetch",
    "reset",
    "stage_from_arn",
    "stats",
]

# Public names that live in submodules, imported on first access (PEP 562).
_LAZY = {
    "Config": "client",
    "ConfigurationError": "errors",
    "ConfstageError": "errors",
    "ConversionError": "errors",
    "DecryptError": "errors",
    "KeyNameError": "errors",
    "KeyNotFoundError": "errors",
    "SourceError": "errors",
    "StageError": "errors",
    "FunctionArn": "stage",
    "parse_arn": "stage",
    "stage_from_arn": "stage",
}

_client: Config | None = None
_bound = _STAGE.get


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'confstage' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"confstage.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _default() -> Config:
    """The default client, built from the ``CONFSTAGE_*`` variables on first use."""
    global _client
    client = _client
    if client is None:
        import threading

        from .client import Config

        with _build_lock(threading):
            client = _client
            if client is None:
                client = _client = Config()
                from .snapstart import install

                install()  # SnapStart: cached values go stale after a restore (a no-op outside Lambda)
    return client


def _build_lock(threading: Any) -> Any:
    global _lock
    if _lock is None:
        _lock = threading.Lock()
    return _lock


_lock: Any = None


def configure(**kwargs: Any) -> Config:
    """Replace the default client with ``Config(**kwargs)`` and return it."""
    global _client
    from .client import Config

    _client = Config(**kwargs)
    return _client


def reset() -> None:
    """Drop the default client; the next call builds a new one from the environment."""
    global _client
    _client = None


def get(
    key: str,
    default: str | Missing = MISSING,
    *,
    stage: str | None = None,
    max_age: float | None = None,
    force: bool = False,
) -> str:
    """The value of ``key`` for the current stage, as a string."""
    client = _client
    if client is not None and stage is None and max_age is None and not force:
        # The warm path, inlined from Config.get: a warm get must cost close to a dict lookup.
        try:
            value, expires = client._hot[_bound() or client.stage][key]  # type: ignore[index]
        except KeyError:
            pass
        else:
            if value is not None and (expires is _FOREVER or expires > client._clock()):
                client.warm_hits += 1
                return value
    return (client or _default()).get(key, default, stage=stage, max_age=max_age, force=force)


def get_int(key: str, default: int | Missing = MISSING, **kwargs: Any) -> int:
    """The value parsed as an int."""
    return (_client or _default()).get_int(key, default, **kwargs)


def get_float(key: str, default: float | Missing = MISSING, **kwargs: Any) -> float:
    """The value parsed as a float."""
    return (_client or _default()).get_float(key, default, **kwargs)


def get_bool(key: str, default: bool | Missing = MISSING, **kwargs: Any) -> bool:
    """The value parsed as a bool (true/false, 1/0, yes/no, on/off; any case)."""
    return (_client or _default()).get_bool(key, default, **kwargs)


def get_json(key: str, default: Any = MISSING, **kwargs: Any) -> Any:
    """The value parsed as JSON."""
    return (_client or _default()).get_json(key, default, **kwargs)


def get_many(keys: Iterable[str], *, stage: str | None = None, **kwargs: Any) -> dict[str, str]:
    """Several values at once, in as few round trips as the sources allow."""
    return (_client or _default()).get_many(keys, stage=stage, **kwargs)


def prefetch(keys: Iterable[str] | None = None, *, stage: str | None = None) -> dict[str, str]:
    """Load the stage at init time; with ``keys``, fail fast listing every missing key."""
    return (_client or _default()).prefetch(keys, stage=stage)


def current_stage() -> str:
    """The stage in force, or ``StageError``."""
    return (_client or _default()).current_stage()


def bind(target: Any) -> AbstractContextManager[str]:
    """Bind a stage (a name, an invoked ARN or a Lambda context) for a ``with`` block."""
    return (_client or _default()).bind(target)


def stats() -> dict[str, Any]:
    """Counters of the default client: hits, misses, fetches, errors, stale served, fetch latency."""
    return (_client or _default()).stats()


if TYPE_CHECKING:
    from .decorator import handler as handler
else:

    def handler(func=None, /, **options):
        """Decorator for a Lambda handler: binds the stage of each invocation (bare or with options)."""
        from .decorator import handler as _handler

        return _handler(**options) if func is None else _handler(func, **options)
