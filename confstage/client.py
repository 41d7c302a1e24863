"""``Config``: the client, in one class: built from its settings, binding stages to invocations, reading
(``get`` and its typed siblings, ``get_many``, ``settings``, ``flags``, ``get_path``), controlling its caches.

Each read works out which invocation and which stage it reads (``stage.stage_in_force``), then asks the
invocation's snapshot or the client's view (``chain.Chain``), and shapes the answer: a default, a
``KeyNotFoundError`` naming every missing key, a converted value, a settings object, a file's path.
``default()`` builds the default client the module functions read (``_context.client`` holds it).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar, overload

from . import _context, variables
from ._context import (
    CURRENT,
    EMPTY,
    FOREVER,
    MISSING,
    RUNNING,
    SETTINGS_OVERRIDES,
    Invocation,
    Missing,
    enter,
    leave,
    sole_invocation,
)
from .cache import Backoff, CachedSource
from .cache.disk import DiskCache
from .chain import Chain, drop_oldest
from .convert import BOOL_WORDS, parse, parse_bool
from .errors import KeyNotFoundError, StageError
from .names import validate_key, validate_stage
from .sources import Source, build_sources
from .stage import parse_aliases, stage_from_arn, stage_in_force, stage_of

if TYPE_CHECKING:
    # Imported by get_path alone: pathlib brings urllib.parse, ipaddress and fnmatch, milliseconds of a cold start.
    from pathlib import Path

    from .chain import Found
    from .feature_flags import Flags
    from .transport import Transport

__all__ = ["Config", "default"]

_MAX_ARNS = 4096  # distinct invoked ARNs remembered; a flood of made-up ones cannot grow memory


T = TypeVar("T")
_NONE: Any = object()  # "not found" from get() inside the typed getters
_PATH = "confstage.path"  # the first element of the snapshot key under which get_path keeps a key's path
_FLAGS = "confstage.flags"  # the first element of the snapshot key under which flags() keeps a key's Flags
_typed: Any = None  # confstage.typed, imported on the first settings() call
_flags: Any = None  # confstage.feature_flags, imported on the first flags() call
_current = CURRENT.get  # bound once: get's warm path calls it on every read
_PLAIN: dict[str, Any] = {}  # a typed getter's options when none is given (never changed: only ever unpacked)


def _options(stage: str | None, max_age: float | None, force: bool) -> dict[str, Any]:
    """A typed getter's ``get`` options when one is given (built on every call, it made a warm get_int 25% slower)."""
    return {"stage": stage, "max_age": max_age, "force": force}


class Config:
    """A configuration client: sources tried in order, behind a memory and a /tmp cache.

    Arguments left as None come from the ``CONFSTAGE_*`` environment variables, then from the
    built-in defaults (``env://``, TTL 300 s less up to 10% of jitter, max stale 3600 s and 900 s for
    secrets, ``/tmp/confstage``, a fetch deadline of 10 s and a 1 s wait for a refresh when a stale
    value is in hand). ``transport``: what the sources' AWS calls go through (None: the runtime's,
    ``CONFSTAGE_TRANSPORT``).
    """

    def __init__(
        self,
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
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
        backoff: Backoff | None = None,
        run: Callable[[Callable[[], None]], None] | None = None,
        random: Callable[[], float] | None = None,
        transport: Transport | None = None,
    ) -> None:
        given = variables.resolve(
            environ,
            sources=sources,
            stage=stage,
            aliases=aliases,
            ttl=ttl,
            max_stale=max_stale,
            secret_max_stale=secret_max_stale,
            fetch_timeout=fetch_timeout,
            refresh_timeout=refresh_timeout,
            ttl_jitter=ttl_jitter,
            cache_dir=cache_dir,
            cache_kms_key=cache_kms_key,
        )
        if stage is None and given.stage is not None:
            _check_setting("CONFSTAGE_STAGE", given.stage)
        self.stage = validate_stage(given.stage) if given.stage is not None else None
        self.aliases = parse_aliases(given.aliases)
        self.ttl = given.ttl
        self.max_stale = given.max_stale
        self._clock = clock
        self.clock = clock  # this client's clock of ages, monotonic (a test injects its own)
        self._cache_dir = given.cache_dir
        # /tmp files hold wall-clock times (they compare across processes); an injected clock stands for both.
        wall = time.time if clock is time.monotonic else clock
        self._disk = (
            DiskCache(given.cache_dir, kms_key=given.cache_kms_key, transport=transport, clock=clock, wall=wall)
            if given.cache_dir
            else None
        )
        self._layer_options: dict[str, Any] = {
            "ttl": given.ttl,
            "max_stale": given.max_stale,
            "clock": clock,
            "refresh_timeout": given.refresh_timeout,
            "backoff": backoff,
            "run": run,
            "ttl_jitter": given.ttl_jitter,
            "random": random,
            "disk": self._disk,
        }
        layers = [
            CachedSource(
                source,
                fetch_timeout=given.fetch_timeout,
                secret_max_stale=given.secret_max_stale,
                **self._layer_options,
            )
            for source in build_sources(given.sources, transport=transport)
        ]
        self._chain = Chain(self, layers, clock)
        # The warm path's two tables, read by ``get`` and by @handler's copy of ``begin``: the views of the stages
        # (the chain's own dict, never replaced) and the stage of each invoked ARN. Read them; never change them.
        self.views = self._chain.views
        self.arn_stages: dict[str | None, str | None] = {}
        self._file_layers: list[CachedSource] | None = None  # get_path's, made on first use
        self.emitter: Any = None  # a CloudWatch EMF emitter when CONFSTAGE_METRICS=emf (read by @handler)
        if given.metrics == "emf":
            from .emf import Emitter

            self.emitter = Emitter(self.stats, environ=environ)

    def __repr__(self) -> str:
        return f"Config(sources=[{', '.join(self._urls())}], stage={self.stage!r}, ttl={self.ttl})"

    @property
    def sources(self) -> list[Source]:
        """The sources of the chain, in order."""
        return [layer.source for layer in self._chain.layers]

    # -- stage -------------------------------------------------------------------------------

    def current_stage(self) -> str:
        """The stage in force: this invocation's, the running invocation's (worker threads), else this client's."""
        return self._stage_for(None, CURRENT.get())

    def stage_for(self, target: Any) -> str | None:
        """The stage a stage name, ARN or Lambda context maps to through this client's aliases (validated)."""
        stage = stage_of(target, self.aliases)
        return validate_stage(stage) if stage is not None else None

    @contextmanager
    def bind(self, target: Any) -> Iterator[str]:
        """Bind the stage of ``target`` (stage, ARN or context) for the block, as one invocation; yields it."""
        stage = self.stage_for(target)
        invocation = self._chain.open(stage if stage is not None else self.stage, self._clock())
        in_force = self._stage_for(None, invocation)  # StageError, saying what was tried, when there is none
        token = enter(invocation)
        try:
            yield in_force
        finally:
            leave(invocation, token)

    def begin(self, arn: str | None) -> Invocation:
        """The invocation of an invoked ARN (None: a call without a Lambda context).

        The stage of each distinct ARN is worked out once and remembered (``arn_stages``). While the client's
        view of that stage is fresh, the view itself is the invocation (shared, nothing to make, its reads dict
        lookups); otherwise a new invocation starts empty and reads as of now. @handler copies the first case
        (a known ARN, a fresh view): see ``decorator``.
        """
        try:
            stage = self.arn_stages[arn]
        except KeyError:
            stage = stage_from_arn(arn, self.aliases) if arn is not None else None
            stage = validate_stage(stage) if stage is not None else self.stage
            if len(self.arn_stages) >= _MAX_ARNS:
                drop_oldest(self.arn_stages)  # the oldest ARN first; a hit costs no reordering
            self.arn_stages[arn] = stage
        return self._chain.open(stage, self._clock())

    # -- cache control and stats -------------------------------------------------------------

    def prefetch(
        self, keys: Iterable[str] | None = None, *, stage: str | None = None, manifest: Any = None
    ) -> dict[str, str]:
        """Load the stage now (init time, warm-up): every whole-stage source, then ``keys`` if given.

        With ``keys``, fails fast with one ``KeyNotFoundError`` that lists every missing key. With
        ``manifest`` (a manifest file's path, a settings class: see ``confstage.manifest``), every key it
        requires is checked (present, of its type, matching) and one ``ManifestError`` names every problem.
        Returns the values of ``keys`` (empty without them).
        """
        stage = self._stage_for(stage, CURRENT.get())
        for layer in self._chain.layers:
            layer.load(stage)
        if manifest is not None:
            from .manifest import require

            require(self, manifest, stage)
        return self.get_many(keys, stage=stage) if keys is not None else {}

    def expire(self) -> None:
        """Treat every cached value, in memory and in /tmp, as stale (after a SnapStart restore):
        refetched on next use, still served if that refresh fails within ``max_stale``."""
        self._chain.expire()
        for layer in self._file_layers or ():
            layer.expire()

    def clear(self) -> None:
        """Forget every value held in memory (the next get fetches, or reads a fresh /tmp snapshot)."""
        self._chain.clear()
        for layer in self._file_layers or ():
            layer.clear()

    def stats(self) -> dict[str, Any]:
        """Counters per source URL (hits, misses, fetches, errors, throttled, stale, latency) and in total.

        A source's ``hits`` are lookups its cache layer answered from memory. Reads answered by an
        invocation's snapshot or the client's view are dict lookups and are not counted. Once ``get_path`` has
        been used, its objects are counted too, under the source's URL and ``#files``.
        """
        return self._chain.stats(self._file_layers or ())

    # -- reading ------------------------------------------------------------------------------

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

    # The implementation's parameters are positional-or-keyword, its overloads' keyword-only (what callers see):
    # CPython 3.11 specialises no call to a function with keyword-only parameters, and fills each of their
    # defaults by a dict lookup (about 480 instructions a get; WARM_COPIES in benchmarks/instructions.py).
    def get(
        self,
        key: str,
        default: str | Missing | Any = MISSING,
        stage: str | None = None,
        max_age: float | None = None,
        force: bool = False,
    ) -> str:
        """The value of ``key`` as a string; ``default`` when no source has it, else ``KeyNotFoundError``.

        ``stage``: read that stage instead of the one in force. ``max_age``: seconds a cached value may be
        old for this call (instead of the TTL). ``force``: fetch from the sources, bypassing every cache.
        """
        if stage is None and max_age is None and not force:
            # The warm path: a lookup in the snapshot in force (this client's invocation's, else its fresh view).
            invocation: Invocation | None = _current()
            if invocation is None:
                if not RUNNING:
                    view = self.views.get(self.stage)  # a stage of None has no view
                    # View.fresh(now), inlined: WARM_COPIES in benchmarks/instructions.py measures what it saves.
                    if view is not None and (view.expires is FOREVER or view.expires > self._clock()):
                        invocation = view
            elif invocation.client is not self or invocation.reads is not None:
                invocation = None  # another client's invocation, or refresh_on recording: the slow path
            if invocation is not None:
                try:
                    value = invocation.values[key]
                except (KeyError, TypeError):  # not read yet; or not a key at all (the slow path names it)
                    pass
                else:
                    if value is not MISSING:
                        return value
                    if default is not MISSING:
                        return default
        return self._get(key, default, stage, max_age, force)

    def _get(self, key: str, default: str | Missing, stage: str | None, max_age: float | None, force: bool) -> str:
        """The slow path of ``get``: checks the names, then reads through the snapshot or the view."""
        validate_key(key)
        stage, answers = self._read((key,), stage, max_age, self._clock() if force else None)
        value = answers[key]
        if value is not MISSING:
            return value
        if default is MISSING:
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
        found = {k: v for k, v in answers.items() if v is not MISSING}
        if len(found) < len(wanted):
            raise KeyNotFoundError([k for k in wanted if k not in found], stage, self._urls())
        return {k: found[k] for k in wanted}

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
        return self._typed(key, default, options, int, "int")

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
        return self._typed(key, default, options, float, "float")

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
        return self._typed(key, default, options, parse_bool, f"bool ({BOOL_WORDS})")

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

    def _typed(self, key: str, default: Any, kwargs: dict[str, Any], convert: Callable[[str], T], expected: str) -> T:
        """``get`` then ``convert``; the default (when given and the key is absent) is returned unconverted."""
        if default is MISSING:
            return parse(key, self.get(key, **kwargs), convert, expected)
        raw = self.get(key, _NONE, **kwargs)
        if raw is _NONE:
            given: T = default  # the caller's default, as given (the overloads type it)
            return given
        return parse(key, raw, convert, expected)

    def settings(self, cls: type[T], *, stage: str | None = None) -> T:
        """An instance of ``cls`` (a dataclass or a pydantic v2 model) filled from the sources (see ``typed``).

        Within an invocation (or while the client's view is fresh) it is the same object each time.
        Every missing or invalid field is named in one ``SettingsError``, never a value.
        """
        if SETTINGS_OVERRIDES:
            override: T | None = SETTINGS_OVERRIDES.get(cls)
            if override is not None:
                return override
        global _typed
        if _typed is None:
            from . import typed as _typed
        slot = (_typed.SETTINGS, cls)
        invocation = self._in_force(stage)
        if invocation is not None:
            found: T | None = invocation.built.get(slot)
            if found is not None:  # the warm path: the object this invocation (or view) already built
                if invocation.reads is not None:
                    invocation.reads.update(_typed.plan(cls).keys)  # refresh_on: reading settings reads their keys
                return found
        how = _typed.plan(cls)
        _, answers = self._read(how.keys, stage, None, None)
        built: T = _typed.build(how, {k: v for k, v in answers.items() if v is not MISSING})
        invocation = self._in_force(stage)
        if invocation is not None and invocation.built is not EMPTY:
            built = invocation.built.setdefault(slot, built)
        return built

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
        invocation = self._in_force(stage)
        if invocation is not None:
            found: Flags | None = invocation.built.get(slot)
            if found is not None:  # the warm path: the object this invocation (or view) already built
                if invocation.reads is not None:
                    invocation.reads.update(keys)  # refresh_on: reading the flags reads their keys
                return found
        # The client's clock is the schedules' clock too: a test's fake clock moves the windows.
        built: Flags
        if isinstance(key, str):
            built = _flags.from_text(self.get(key, stage=stage), key=key, clock=self._clock)
        else:
            if not keys:
                raise TypeError("flags() takes a key or a non-empty iterable of keys (one flag each)")
            built = _flags.from_texts(self.get_many(keys, stage=stage), clock=self._clock)
        invocation = self._in_force(stage)
        if invocation is not None and invocation.built is not EMPTY:
            built = invocation.built.setdefault(slot, built)
        return built

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
        holder = self._in_force(stage)
        if holder is not None and slot in holder.built:
            return Path(holder.built[slot])
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
        holder = self._in_force(stage)
        if holder is not None and holder.built is not EMPTY:
            path = holder.built.setdefault(slot, path)
        return Path(path)

    def _object_layers(self) -> list[CachedSource]:
        """The layers get_path reads: one per source that streams objects (``files.ObjectSource``)."""
        if self._file_layers is None:
            from .objects import object_layers

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

    def _in_force(self, stage: str | None) -> Invocation | None:
        """What a read of ``stage`` reads and keeps its built objects in: this client's invocation, else the
        stage's fresh view (the shared invocation), else None."""
        invocation = CURRENT.get()
        if invocation is None and stage is None:
            invocation = sole_invocation()
        if invocation is not None and invocation.client is self and stage in (None, invocation.stage):
            return invocation
        return self._chain.fresh_view(self._stage_for(stage, invocation))

    def _read(
        self, keys: Sequence[str], stage: str | None, max_age: float | None, newer_than: float | None
    ) -> tuple[str, dict[str, str | Missing]]:
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


def _check_setting(name: str, stage: str) -> None:
    try:
        validate_stage(stage)
    except StageError as exc:
        raise StageError(f"{name}: {exc}") from exc  # the same message, with the variable named


_lock: Any = None  # guards building the default client (a threading.Lock, made on first use)


def default() -> Config:
    """The default client, built from the ``CONFSTAGE_*`` variables on first use (``_context.client`` holds it)."""
    global _lock
    made = _context.client
    if made is None:
        if _lock is None:
            import threading

            _lock = threading.Lock()
        with _lock:
            made = _context.client
            if made is None:
                made = Config()
                _context.use(made)
                from .snapstart import install

                install()  # SnapStart: cached values go stale after a restore (a no-op outside Lambda)
    return made
