"""confstage: stage-aware configuration and secrets for AWS Lambda handlers.

``confstage.get("db_url")`` inside a ``@confstage.handler`` works out the stage from the alias
of the invoked ARN and reads the key from the configured sources, behind memory and /tmp caches.

Importing this package is deliberately almost free: the client, the sources and boto3 are
imported on first use (cold start is the product), so the names below are resolved lazily.
"""

from __future__ import annotations

from . import _state
from ._state import MISSING

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from contextlib import AbstractContextManager
    from pathlib import Path
    from typing import Any, TypeVar

    from ._state import Missing
    from .client import Config as Config
    from .errors import ConfigurationError as ConfigurationError
    from .errors import ConfstageError as ConfstageError
    from .errors import ConversionError as ConversionError
    from .errors import DecryptError as DecryptError
    from .errors import FlagSchemaError as FlagSchemaError
    from .errors import KeyNameError as KeyNameError
    from .errors import KeyNotFoundError as KeyNotFoundError
    from .errors import SettingsError as SettingsError
    from .errors import SourceError as SourceError
    from .errors import StageError as StageError
    from .feature_flags import Flags as Flags
    from .rotation import refresh_on as refresh_on
    from .stage import FunctionArn as FunctionArn
    from .stage import parse_arn as parse_arn
    from .stage import stage_from_arn as stage_from_arn
    from .typed import Secret as Secret

    F = TypeVar("F", bound=Callable[..., Any])
    T = TypeVar("T")

__version__ = "0.1.0"

__all__ = [
    "MISSING",
    "Config",
    "ConfigurationError",
    "ConfstageError",
    "ConversionError",
    "DecryptError",
    "FlagSchemaError",
    "Flags",
    "FunctionArn",
    "KeyNameError",
    "KeyNotFoundError",
    "Secret",
    "SettingsError",
    "SourceError",
    "StageError",
    "bind",
    "configure",
    "current_stage",
    "flags",
    "get",
    "get_bool",
    "get_float",
    "get_int",
    "get_json",
    "get_many",
    "get_path",
    "handler",
    "parse_arn",
    "prefetch",
    "refresh_on",
    "reset",
    "settings",
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
    "FlagSchemaError": "errors",
    "Flags": "feature_flags",
    "KeyNameError": "errors",
    "KeyNotFoundError": "errors",
    "SettingsError": "errors",
    "Secret": "typed",
    "refresh_on": "rotation",
    "SourceError": "errors",
    "StageError": "errors",
    "FunctionArn": "stage",
    "parse_arn": "stage",
    "stage_from_arn": "stage",
}

# Submodules reachable as attributes without importing them first (imported on first access).
_SUBMODULES = frozenset({"testing", "errors", "stage", "names"})

_current = _state.CURRENT.get
_FLAGS_SLOT = "confstage.flags"  # getters._FLAGS: flags() keeps an invocation's Flags under (_FLAGS_SLOT, key)
_running = _state.RUNNING


def __getattr__(name: str) -> Any:
    import importlib

    if name in _SUBMODULES:  # ``confstage.testing`` works after a plain ``import confstage``
        return importlib.import_module(f"confstage.{name}")
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'confstage' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"confstage.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def _client() -> Config:
    """The client in force: this invocation's, the one running invocation's (a worker thread), else the default."""
    invocation = _current()
    if invocation is None and _running:
        invocation = _state.sole_invocation()
    if invocation is not None:
        return invocation.client
    return _state.client or _state.default()


def configure(sources: Any = None, **kwargs: Any) -> Config:
    """Replace the default client with ``Config(sources, **kwargs)`` and return it."""
    return _state.configure(sources, **kwargs)


def reset() -> None:
    """Drop the default client; the next call builds a new one from the environment."""
    _state.reset()


def get(
    key: str,
    default: str | Missing = MISSING,
    *,
    stage: str | None = None,
    max_age: float | None = None,
    force: bool = False,
) -> str:
    """The value of ``key`` for the current stage, as a string."""
    invocation = _current()
    if invocation is not None and stage is None and max_age is None and not force:
        # The warm path: inside an invocation a read is a lookup in the invocation's snapshot.
        try:
            value = invocation.values[key]
        except (KeyError, TypeError):
            pass
        else:
            if value is not MISSING:
                return value  # type: ignore[no-any-return]
            if default is not MISSING:
                return default  # type: ignore[return-value]
        return invocation.client.get(key, default, stage=stage, max_age=max_age, force=force)
    if invocation is None and not _running and stage is None and max_age is None and not force:
        client = _state.client  # outside any invocation: the default client's own fast path, called plainly
        if client is not None:
            return client.get(key, default)
    return _client().get(key, default, stage=stage, max_age=max_age, force=force)


def get_int(key: str, default: int | Missing = MISSING, **kwargs: Any) -> int:
    """The value parsed as an int."""
    return _client().get_int(key, default, **kwargs)


def get_float(key: str, default: float | Missing = MISSING, **kwargs: Any) -> float:
    """The value parsed as a float."""
    return _client().get_float(key, default, **kwargs)


def get_bool(key: str, default: bool | Missing = MISSING, **kwargs: Any) -> bool:
    """The value parsed as a bool (true/false, 1/0, yes/no, on/off; any case)."""
    return _client().get_bool(key, default, **kwargs)


def get_json(key: str, default: Any = MISSING, **kwargs: Any) -> Any:
    """The value parsed as JSON."""
    return _client().get_json(key, default, **kwargs)


def get_many(keys: Iterable[str], *, stage: str | None = None, **kwargs: Any) -> dict[str, str]:
    """Several values at once, in as few round trips as the sources allow."""
    return _client().get_many(keys, stage=stage, **kwargs)


def prefetch(keys: Iterable[str] | None = None, *, stage: str | None = None) -> dict[str, str]:
    """Load the stage at init time; with ``keys``, fail fast listing every missing key."""
    return _client().prefetch(keys, stage=stage)


def current_stage() -> str:
    """The stage in force, or ``StageError``."""
    return _client().current_stage()


def bind(target: Any) -> AbstractContextManager[str]:
    """Bind a stage (a name, an invoked ARN or a Lambda context) for a ``with`` block."""
    return _client().bind(target)


def settings(cls: type[T], *, stage: str | None = None, config: Config | None = None) -> T:
    """An instance of ``cls`` (a dataclass or a pydantic v2 model) filled from the sources; the same object
    for the whole invocation. Every missing or invalid field is named in one ``SettingsError``."""
    return (config or _client()).settings(cls, stage=stage)


def flags(key: str | Iterable[str] = "features", *, stage: str | None = None, config: Config | None = None) -> Flags:
    """The feature flags of the JSON document at ``key`` (Powertools' schema or AppConfig's format), checked
    once; the same object for the whole invocation. A broken document raises one ``FlagSchemaError``.

    ``key`` may also be several keys, each holding one flag named by its key (an AppConfig flag profile read
    through ``appconfig://``, whose top-level keys are its flags)."""
    if stage is None and config is None and type(key) is str:
        invocation = _current()
        if invocation is not None:
            values: dict[Any, Any] = invocation.values
            if type(values) is dict:  # refresh_on's recording dict notes reads: it takes the full path
                built = values.get((_FLAGS_SLOT, key))
                if built is not None:  # the warm path: the object this invocation already has
                    return built  # type: ignore[no-any-return]
    return (config or _client()).flags(key, stage=stage)


def get_path(key: str, *, stage: str | None = None) -> Path:
    """A private file under the cache directory holding the object ``key`` (S3 objects layout), complete,
    revalidated by ETag after the TTL; the same path for the whole invocation."""
    return _client().get_path(key, stage=stage)


def stats() -> dict[str, Any]:
    """Counters of the default client: hits, misses, fetches, errors, stale served, fetch latency."""
    return _client().stats()


if TYPE_CHECKING:
    from .decorator import handler as handler
else:

    def handler(func=None, /, **options):
        """Decorator for a Lambda handler: binds the stage of each invocation (bare or with options)."""
        from .decorator import handler as _handler

        return _handler(**options) if func is None else _handler(func, **options)
