"""confstage: stage-aware configuration and secrets for AWS Lambda handlers.

``confstage.get("db_url")`` inside a ``@confstage.handler`` works out the stage from the alias
of the invoked ARN and reads the key from the configured sources, behind memory and /tmp caches.

Importing this package is deliberately almost free: the client, the sources and boto3 are
imported on first use (cold start is the product), so the names below are resolved lazily.
"""

from __future__ import annotations

from time import monotonic as _monotonic  # a built-in module, loaded by the interpreter before us: free

from . import _state
from ._state import MISSING

TYPE_CHECKING = False
if not TYPE_CHECKING:

    def overload(func):
        """``typing.overload`` at run time (the last definition is the function), without importing typing."""
        return func


if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping
    from contextlib import AbstractContextManager
    from pathlib import Path
    from typing import Any, TypeVar, overload

    from ._state import Missing
    from .cache import Backoff
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
    from .sources import Source
    from .stage import FunctionArn as FunctionArn
    from .stage import parse_arn as parse_arn
    from .stage import stage_from_arn as stage_from_arn
    from .transport import Transport
    from .typed import Secret as Secret

    F = TypeVar("F", bound=Callable[..., Any])
    T = TypeVar("T")

__version__ = "0.3.0.dev0"

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


def configure(
    sources: str | Iterable[str | Source] | None = None,
    *,
    stage: str | None = None,
    aliases: str | Mapping[str, str] | None = None,
    ttl: float | None = None,
    max_stale: float | None = None,
    cache_dir: str | None = None,
    cache_kms_key: str | None = None,
    fetch_timeout: float | None = None,
    refresh_timeout: float | None = None,
    ttl_jitter: float | None = None,
    secret_max_stale: float | None = None,
    clock: Callable[[], float] = _monotonic,
    environ: Mapping[str, str] | None = None,
    backoff: Backoff | None = None,
    run: Callable[[Callable[[], None]], None] | None = None,
    random: Callable[[], float] | None = None,
    transport: Transport | None = None,
) -> Config:
    """Replace the default client with a ``Config`` built from these arguments (see ``Config``) and return it."""
    from .client import Config

    made = Config(
        sources,
        stage=stage,
        aliases=aliases,
        ttl=ttl,
        max_stale=max_stale,
        cache_dir=cache_dir,
        cache_kms_key=cache_kms_key,
        fetch_timeout=fetch_timeout,
        refresh_timeout=refresh_timeout,
        ttl_jitter=ttl_jitter,
        secret_max_stale=secret_max_stale,
        clock=clock,
        environ=environ,
        backoff=backoff,
        run=run,
        random=random,
        transport=transport,
    )
    _state.use(made)
    return made


def reset() -> None:
    """Drop the default client; the next call builds a new one from the environment."""
    _state.reset()


# The getters' overloads are Config's (``getters.Getters``): without a default, or with one of the getter's own
# type, the value has that type; with a default of another type T, that type or T (``get("k", None)`` is
# ``str | None``). The implementation types its default ``... | Any`` so that mypy still checks its body.


@overload
def get(
    key: str,
    default: str | Missing = ...,
    *,
    stage: str | None = None,
    max_age: float | None = None,
    force: bool = False,
) -> str: ...


@overload
def get(
    key: str, default: T, *, stage: str | None = None, max_age: float | None = None, force: bool = False
) -> str | T: ...


def get(
    key: str,
    default: str | Missing | Any = MISSING,
    *,
    stage: str | None = None,
    max_age: float | None = None,
    force: bool = False,
) -> str:
    """The value of ``key`` for the current stage, as a string.

    ``default``: returned when no source has the key (without one, ``KeyNotFoundError``).
    ``stage``: read that stage instead of the one in force. ``max_age``: seconds a cached value may be
    old for this call (instead of the TTL). ``force``: fetch from the sources, bypassing every cache.
    """
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


@overload
def get_int(
    key: str,
    default: int | Missing = ...,
    *,
    stage: str | None = None,
    max_age: float | None = None,
    force: bool = False,
) -> int: ...


@overload
def get_int(
    key: str, default: T, *, stage: str | None = None, max_age: float | None = None, force: bool = False
) -> int | T: ...


def get_int(
    key: str,
    default: int | Missing | Any = MISSING,
    *,
    stage: str | None = None,
    max_age: float | None = None,
    force: bool = False,
) -> int:
    """The value parsed as an int; ``ConversionError`` (a ``ValueError``) names the key, never the value.

    ``default`` is returned as given when no source has the key; ``stage``, ``max_age``, ``force`` as ``get``.
    """
    return _client().get_int(key, default, stage=stage, max_age=max_age, force=force)


@overload
def get_float(
    key: str,
    default: float | Missing = ...,
    *,
    stage: str | None = None,
    max_age: float | None = None,
    force: bool = False,
) -> float: ...


@overload
def get_float(
    key: str, default: T, *, stage: str | None = None, max_age: float | None = None, force: bool = False
) -> float | T: ...


def get_float(
    key: str,
    default: float | Missing | Any = MISSING,
    *,
    stage: str | None = None,
    max_age: float | None = None,
    force: bool = False,
) -> float:
    """The value parsed as a float.

    ``default`` is returned as given when no source has the key; ``stage``, ``max_age``, ``force`` as ``get``.
    """
    return _client().get_float(key, default, stage=stage, max_age=max_age, force=force)


@overload
def get_bool(
    key: str,
    default: bool | Missing = ...,
    *,
    stage: str | None = None,
    max_age: float | None = None,
    force: bool = False,
) -> bool: ...


@overload
def get_bool(
    key: str, default: T, *, stage: str | None = None, max_age: float | None = None, force: bool = False
) -> bool | T: ...


def get_bool(
    key: str,
    default: bool | Missing | Any = MISSING,
    *,
    stage: str | None = None,
    max_age: float | None = None,
    force: bool = False,
) -> bool:
    """The value parsed as a bool (true/false, 1/0, yes/no, on/off; any case).

    ``default`` is returned as given when no source has the key; ``stage``, ``max_age``, ``force`` as ``get``.
    """
    return _client().get_bool(key, default, stage=stage, max_age=max_age, force=force)


def get_json(
    key: str,
    default: Any = MISSING,
    *,
    stage: str | None = None,
    max_age: float | None = None,
    force: bool = False,
) -> Any:
    """The value parsed as JSON (any JSON document, so ``Any``); the arguments as ``get_int``."""
    return _client().get_json(key, default, stage=stage, max_age=max_age, force=force)


def get_many(
    keys: Iterable[str], *, stage: str | None = None, max_age: float | None = None, force: bool = False
) -> dict[str, str]:
    """Several values at once, in as few round trips as the sources allow.

    One ``KeyNotFoundError`` names every key missing; ``stage``, ``max_age`` and ``force`` as ``get``.
    """
    return _client().get_many(keys, stage=stage, max_age=max_age, force=force)


def prefetch(keys: Iterable[str] | None = None, *, stage: str | None = None, manifest: Any = None) -> dict[str, str]:
    """Load the stage at init time; with ``keys``, fail fast listing every missing key; with ``manifest``
    (a manifest file or a settings class), fail fast listing every key missing or invalid."""
    return _client().prefetch(keys, stage=stage, manifest=manifest)


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

    def handler(
        func: F | None = None,
        /,
        *,
        config: Config | None = None,
        warmup: bool | Callable[[Any], bool] = False,
        warmup_keys: Iterable[str] | None = None,
    ) -> F | Callable[[F], F]:
        """Decorate a Lambda handler ``(event, context)``: binds the stage of each invocation; bare or with arguments.

        ``config``: the ``Config`` the handler reads (default: the default client). ``warmup``: answer warm-up
        pings (``confstage.decorator.is_warmup``, or your own predicate of the event) by loading the stage, and
        ``warmup_keys`` if given, without calling the handler. The details: ``confstage.decorator.handler``.
        """
        from .decorator import handler as _handler

        options = {"config": config, "warmup": warmup, "warmup_keys": warmup_keys}
        return _handler(**options) if func is None else _handler(func, **options)


if not TYPE_CHECKING:
    del overload  # the run-time stand-in for typing.overload is not a public name
