"""The reading half of ``Config``: ``get`` and its typed siblings, ``get_many``, ``settings``, ``flags``,
``get_path``.

Each call works out which invocation and which stage it reads (``stage.stage_in_force``), then asks the
invocation's snapshot or the client's view (``chain.Chain``), and shapes the answer: a default, a
``KeyNotFoundError`` naming every missing key, a converted value, a settings object, a file's path.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._state import CURRENT, EMPTY, FOREVER, MISSING, RUNNING, SETTINGS_OVERRIDES, Invocation, Missing, sole_invocation
from .convert import BOOL_WORDS, parse, parse_bool
from .errors import KeyNotFoundError
from .names import validate_key
from .stage import stage_in_force

if TYPE_CHECKING:
    # Imported by get_path alone: pathlib brings urllib.parse, ipaddress and fnmatch, milliseconds of a cold start.
    from pathlib import Path

    from .cache import CachedSource
    from .chain import Chain, Found, View
    from .feature_flags import Flags

__all__ = ["Getters"]

T = TypeVar("T")
_NONE: Any = object()  # "not found" from get() inside the typed getters
_PATH = "confstage.path"  # the first element of the snapshot key under which get_path keeps a key's path
_FLAGS = "confstage.flags"  # the first element of the snapshot key under which flags() keeps a key's Flags
_typed: Any = None  # confstage.typed, imported on the first settings() call
_flags: Any = None  # confstage.feature_flags, imported on the first flags() call
_PLAIN: dict[str, Any] = {}  # a typed getter's options when none is given (never changed: only ever unpacked)


def _options(stage: str | None, max_age: float | None, force: bool) -> dict[str, Any]:
    """A typed getter's ``get`` options when one is given (built on every call, it made a warm get_int 25% slower)."""
    return {"stage": stage, "max_age": max_age, "force": force}


class Getters:
    """Reads for ``Config``, which sets up the attributes below."""

    stage: str | None
    _chain: Chain
    _views: dict[str, View]
    _clock: Callable[[], float]
    _cache_dir: str
    _layer_options: dict[str, Any]
    _file_layers: list[CachedSource] | None

    def _stage_for(self, stage: str | None, invocation: Invocation | None) -> str:
        """The stage of a call: ``stage=``, else the invocation's, else the running invocations', else ours."""
        return stage_in_force(stage, invocation, self.stage)

    def _urls(self) -> list[str]:
        return self._chain.urls()

    # Each getter has two overloads: without a default, or with one of its own type, it gives that type (str,
    # int, ...); with a default of another type T, that type or T (``get("k", None)`` is ``str | None``). The
    # implementation types its default ``... | Any`` so that mypy still checks its body against the plain type.

    @overload
    def get(
        self,
        key: str,
        default: str | Missing = ...,
        *,
        stage: str | None = None,
        max_age: float | None = None,
        force: bool = False,
    ) -> str: ...

    @overload
    def get(
        self, key: str, default: T, *, stage: str | None = None, max_age: float | None = None, force: bool = False
    ) -> str | T: ...

    def get(
        self,
        key: str,
        default: str | Missing | Any = MISSING,
        *,
        stage: str | None = None,
        max_age: float | None = None,
        force: bool = False,
    ) -> str:
        """The value of ``key`` as a string; ``default`` when no source has it, else ``KeyNotFoundError``.

        ``stage``: read that stage instead of the one in force. ``max_age``: seconds a cached value may be
        old for this call (instead of the TTL). ``force``: fetch from the sources, bypassing every cache.
        """
        if stage is None and max_age is None and not force:
            invocation = CURRENT.get()
            if invocation is not None:
                if invocation.client is self:
                    try:
                        value = invocation.values[key]
                    except (KeyError, TypeError):
                        pass
                    else:
                        if value is not MISSING:
                            return value  # type: ignore[no-any-return]
                        if not isinstance(default, Missing):
                            return default
            elif self.stage is not None and not RUNNING:
                view = self._views.get(self.stage)
                if view is not None:
                    expires = view.expires
                    if expires is FOREVER or expires > self._clock():
                        try:
                            value = view.values[key]
                        except (KeyError, TypeError):
                            pass
                        else:
                            if value is not MISSING:
                                return value  # type: ignore[no-any-return]
                            if not isinstance(default, Missing):
                                return default
        return self._get(key, default, stage, max_age, force)

    def _get(self, key: str, default: str | Missing, stage: str | None, max_age: float | None, force: bool) -> str:
        """The slow path of ``get``: checks the names, then reads through the snapshot or the view."""
        validate_key(key)
        stage, answers = self._read((key,), stage, max_age, self._clock() if force else None)
        value = answers[key]
        if value is not MISSING:
            return value  # type: ignore[no-any-return]
        if isinstance(default, Missing):
            raise KeyNotFoundError(key, stage, self._urls())
        return default

    def get_many(
        self, keys: Iterable[str], *, stage: str | None = None, max_age: float | None = None, force: bool = False
    ) -> dict[str, str]:
        """Several values in one dict, fetched in as few round trips as each source allows.

        One ``KeyNotFoundError`` names every key missing; ``stage``, ``max_age`` and ``force`` as ``get``.
        """
        if isinstance(keys, str):
            raise TypeError("get_many takes an iterable of keys, not one string")
        wanted = list(keys)
        for key in wanted:
            validate_key(key)
        wanted = list(dict.fromkeys(wanted))
        stage, answers = self._read(wanted, stage, max_age, self._clock() if force else None)
        missing = [k for k in wanted if answers[k] is MISSING]
        if missing:
            raise KeyNotFoundError(missing, stage, self._urls())
        return {k: answers[k] for k in wanted}

    @overload
    def get_int(
        self,
        key: str,
        default: int | Missing = ...,
        *,
        stage: str | None = None,
        max_age: float | None = None,
        force: bool = False,
    ) -> int: ...

    @overload
    def get_int(
        self, key: str, default: T, *, stage: str | None = None, max_age: float | None = None, force: bool = False
    ) -> int | T: ...

    def get_int(
        self,
        key: str,
        default: int | Missing | Any = MISSING,
        *,
        stage: str | None = None,
        max_age: float | None = None,
        force: bool = False,
    ) -> int:
        """The value parsed as an int; ``ConversionError`` (a ``ValueError``) names the key, never the value.

        ``default`` (returned as given when no source has the key), ``stage``, ``max_age`` and ``force`` as ``get``.
        """
        options = _PLAIN if stage is None and max_age is None and not force else _options(stage, max_age, force)
        return self._typed(key, default, options, int, "int")  # type: ignore[no-any-return]

    @overload
    def get_float(
        self,
        key: str,
        default: float | Missing = ...,
        *,
        stage: str | None = None,
        max_age: float | None = None,
        force: bool = False,
    ) -> float: ...

    @overload
    def get_float(
        self, key: str, default: T, *, stage: str | None = None, max_age: float | None = None, force: bool = False
    ) -> float | T: ...

    def get_float(
        self,
        key: str,
        default: float | Missing | Any = MISSING,
        *,
        stage: str | None = None,
        max_age: float | None = None,
        force: bool = False,
    ) -> float:
        """The value parsed as a float; the arguments as ``get_int``."""
        options = _PLAIN if stage is None and max_age is None and not force else _options(stage, max_age, force)
        return self._typed(key, default, options, float, "float")  # type: ignore[no-any-return]

    @overload
    def get_bool(
        self,
        key: str,
        default: bool | Missing = ...,
        *,
        stage: str | None = None,
        max_age: float | None = None,
        force: bool = False,
    ) -> bool: ...

    @overload
    def get_bool(
        self, key: str, default: T, *, stage: str | None = None, max_age: float | None = None, force: bool = False
    ) -> bool | T: ...

    def get_bool(
        self,
        key: str,
        default: bool | Missing | Any = MISSING,
        *,
        stage: str | None = None,
        max_age: float | None = None,
        force: bool = False,
    ) -> bool:
        """The value parsed as a bool: true/false, 1/0, yes/no, on/off, in any case; the arguments as ``get_int``."""
        options = _PLAIN if stage is None and max_age is None and not force else _options(stage, max_age, force)
        return self._typed(key, default, options, parse_bool, f"bool ({BOOL_WORDS})")  # type: ignore[no-any-return]

    def get_json(
        self,
        key: str,
        default: Any = MISSING,
        *,
        stage: str | None = None,
        max_age: float | None = None,
        force: bool = False,
    ) -> Any:
        """The value parsed as JSON (any JSON document: ``Any``); the arguments as ``get_int``."""
        options = _PLAIN if stage is None and max_age is None and not force else _options(stage, max_age, force)
        return self._typed(key, default, options, json.loads, "JSON document")

    def _typed(
        self, key: str, default: object, kwargs: dict[str, Any], convert: Callable[[str], Any], expected: str
    ) -> Any:
        """``get`` then ``convert``; the default (when given and the key is absent) is returned unconverted."""
        if isinstance(default, Missing):
            return parse(key, self.get(key, **kwargs), convert, expected)
        raw = self.get(key, _NONE, **kwargs)
        return default if raw is _NONE else parse(key, raw, convert, expected)

    def settings(self, cls: type[T], *, stage: str | None = None) -> T:
        """An instance of ``cls`` (a dataclass or a pydantic v2 model) filled from the sources (see ``typed``).

        Within an invocation (or while the client's view is fresh) it is the same object each time.
        Every missing or invalid field is named in one ``SettingsError``, never a value.
        """
        if SETTINGS_OVERRIDES:
            override = SETTINGS_OVERRIDES.get(cls)
            if override is not None:
                return override  # type: ignore[no-any-return]
        global _typed
        if _typed is None:
            from . import typed as _typed
        slot = (_typed.SETTINGS, cls)
        values = self._snapshot(stage)
        if values is not None:
            built = values.get(slot)
            if built is not None:  # the warm path: the object this invocation (or view) already built
                # Only refresh_on's recording (a dict subclass) notes reads; getattr on a plain dict would raise.
                note = getattr(values, "note", None) if type(values) is not dict else None
                if note is not None:
                    note(_typed.plan(cls).keys)  # a refresh_on call that reads settings has read their keys
                return built  # type: ignore[no-any-return]
        how = _typed.plan(cls)
        _, answers = self._read(how.keys, stage, None, None)
        built = _typed.build(how, {k: v for k, v in answers.items() if v is not MISSING})
        values = self._snapshot(stage)
        if values is not None and values is not EMPTY:
            built = values.setdefault(slot, built)
        return built  # type: ignore[no-any-return]

    def flags(self, key: str | Iterable[str] = "features", *, stage: str | None = None) -> Flags:
        """The feature flags of the JSON document at ``key``, or of one flag per key (see ``confstage.flags``).

        Within an invocation (or while the client's view is fresh) it is the same object each time; a
        document whose text has not changed is not parsed or checked again (``feature_flags.from_text``).
        """
        global _flags
        if _flags is None:
            from . import feature_flags as _flags
        keys = (key,) if isinstance(key, str) else tuple(key)
        slot = (_FLAGS, key if isinstance(key, str) else keys)
        values = self._snapshot(stage)
        if values is not None:
            built = values.get(slot)
            if built is not None:  # the warm path: the object this invocation (or view) already built
                note = getattr(values, "note", None) if type(values) is not dict else None
                if note is not None:
                    note(keys)  # a refresh_on call that reads the flags has read their keys
                return built  # type: ignore[no-any-return]
        # The client's clock is the schedules' clock too: a test's fake clock moves the windows.
        if isinstance(key, str):
            built = _flags.from_text(self.get(key, stage=stage), key=key, clock=self._clock)
        else:
            if not keys:
                raise TypeError("flags() takes a key or a non-empty iterable of keys (one flag each)")
            built = _flags.from_texts(self.get_many(keys, stage=stage), clock=self._clock)
        values = self._snapshot(stage)
        if values is not None and values is not EMPTY:
            built = values.setdefault(slot, built)
        return built  # type: ignore[no-any-return]

    def get_path(self, key: str, *, stage: str | None = None) -> Path:
        """A private file under the cache directory holding the object ``key`` (S3 objects layout), complete.

        Streamed, never held in memory whole; revalidated by ETag after the TTL (an unchanged object costs
        a 304); within the TTL a second process uses the file with no request. Inside an invocation the
        path is the same for the whole invocation (each version of an object has its own file).
        """
        from pathlib import Path

        validate_key(key)
        layers = self._object_layers()
        slot = (_PATH, key)
        values = self._snapshot(stage)
        if values is not None and slot in values:
            return Path(values[slot])
        invocation = CURRENT.get()
        in_force = self._stage_for(stage, invocation if invocation is None or invocation.client is self else None)
        at = invocation.started if invocation is not None and invocation.client is self and stage is None else None
        path: str | None = None
        for layer in layers:
            found, _, _ = layer.lookup(in_force, (key,), at=at)
            if key in found:
                path = found[key]
                if not os.path.isfile(path):  # evicted or removed since: fetch it again
                    path = layer.lookup(in_force, (key,), newer_than=self._clock())[0].get(key)
                if path is not None:
                    break
        if path is None:
            raise KeyNotFoundError(key, in_force, [layer.source.url for layer in layers])
        values = self._snapshot(stage)
        if values is not None and values is not EMPTY:
            path = values.setdefault(slot, path)
        return Path(path)

    def _object_layers(self) -> list[CachedSource]:
        """The layers get_path reads: one per source that streams objects (``files.ObjectSource``)."""
        if self._file_layers is None:
            from .files import object_layers

            self._file_layers = object_layers(self._chain.layers, self._cache_dir, self._layer_options)
        return self._file_layers

    def refresh(
        self, keys: Iterable[str], *, stage: str | None = None, newer_than: float | None = None
    ) -> dict[str, str]:
        """Fetch ``keys`` again (those present are returned); inside an invocation, it sees the new values.

        ``newer_than``: data from a fetch begun after this time is new enough (default: now), so that
        callers refreshing for the same reason share one fetch.
        """
        wanted = [validate_key(key) for key in keys]
        when = self._clock() if newer_than is None else newer_than
        _, answers = self._read(list(dict.fromkeys(wanted)), stage, None, when)
        return {k: v for k, v in answers.items() if v is not MISSING}

    def locate(self, keys: Iterable[str], *, stage: str | None = None) -> dict[str, Found]:
        """Which source holds each of ``keys`` (absent keys left out), walked as ``get_many`` walks the chain:
        one lookup per source for every key still missing, so one fetch per stage and source (``confstage check``).
        """
        from .chain import Found

        in_force = self._stage_for(stage, CURRENT.get())
        remaining = list(dict.fromkeys(validate_key(key) for key in keys))
        located: dict[str, Found] = {}
        for layer in self._chain.layers:
            if not remaining:
                break
            values, _, _ = layer.lookup(in_force, remaining)
            for key in remaining:
                if key in values:
                    located[key] = Found(values[key], layer.source.url, layer.is_secret(in_force, key))
            remaining = [key for key in remaining if key not in values]
        return located

    def find(self, key: str, *, stage: str | None = None) -> Found:
        """The value of ``key``, which source of the chain holds it and whether it is a secret (the CLI's ``get``).

        Read through the caches as ``get`` reads, but outside any snapshot; ``KeyNotFoundError`` when no source has it.
        """
        validate_key(key)
        return self._chain.find(self._stage_for(stage, CURRENT.get()), key)

    def _snapshot(self, stage: str | None) -> dict[Any, Any] | None:
        """The dict of answers in force for a read: the invocation's snapshot, else the fresh view, else None."""
        invocation = CURRENT.get()
        if invocation is None and stage is None:
            invocation = sole_invocation()
        if invocation is not None and invocation.client is self and stage in (None, invocation.stage):
            return invocation.values
        return self._chain.fresh_values(self._stage_for(stage, invocation))

    def _read(
        self, keys: Sequence[str], stage: str | None, max_age: float | None, newer_than: float | None
    ) -> tuple[str, dict[str, Any]]:
        """The stage of the call and the answers for ``keys`` (``MISSING`` when absent).

        ``newer_than``: a refresh; only data from fetches begun after this time will do.
        """
        invocation = CURRENT.get()
        borrowed = invocation is None and stage is None
        if borrowed:
            invocation = sole_invocation()  # a worker thread: it belongs to the one invocation running
        # A worker thread's refresh goes through the view: the invocation it reads is not its own to change.
        refresh = borrowed and (newer_than is not None or max_age is not None)
        if invocation is not None and invocation.client is self and stage in (None, invocation.stage) and not refresh:
            return self._stage_for(None, invocation), self._chain.read_in(invocation, keys, max_age, newer_than)
        stage = self._stage_for(stage, invocation)
        return stage, self._chain.read(stage, keys, max_age, newer_than)
