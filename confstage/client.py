"""``Config``: a client: its settings, its stage, its invocations and its getters, over a ``chain.Chain``.

Inside an invocation (``@handler``, ``bind()``) freshness is decided when the invocation starts: a read is
a lookup in its snapshot (``_state.Invocation``), and a key not yet in it is resolved once, as of the
invocation's start. Outside invocations the TTL is checked on every call, against the client's view of
the stage: one clock read, one lookup.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

from . import variables
from ._state import (
    CURRENT,
    EMPTY,
    FOREVER,
    MISSING,
    RUNNING,
    Invocation,
    Missing,
    enter,
    leave,
    sole_invocation,
)
from .cache import Backoff, CachedSource
from .chain import MAX_REMEMBERED, Chain, Found
from .convert import BOOL_WORDS, parse_bool, typed_get
from .disk import DiskCache
from .errors import KeyNotFoundError
from .names import validate_key, validate_stage
from .sources import Source, build_sources
from .stage import in_force, parse_aliases, stage_from_arn, stage_of

if TYPE_CHECKING:
    from .transport import Transport

__all__ = ["Config", "Found"]


class Config:
    """A configuration client: sources tried in order, behind a memory and a /tmp cache.

    Arguments left as None come from the ``CONFSTAGE_*`` environment variables, then from the
    built-in defaults (``env://``, TTL 300 s less up to 10% of jitter, max stale 3600 s and 900 s for
    secrets, ``/tmp/confstage``, a fetch deadline of 10 s and a 1 s wait for a refresh when a stale
    value is in hand). ``transport``: what the sources' AWS calls go through (None: the runtime's).
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
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
        backoff: Backoff | None = None,
        run: Callable[[Callable[[], None]], None] | None = None,
        random: Callable[[], float] | None = None,
        transport: Transport | None = None,
    ) -> None:
        env = variables.env_str
        if sources is None:
            sources = env("CONFSTAGE_SOURCES", environ) or variables.DEFAULT_SOURCES
        if stage is None:
            stage = env("CONFSTAGE_STAGE", environ) or None
            self.stage = validate_stage(stage, what="CONFSTAGE_STAGE") if stage else None
        else:
            self.stage = validate_stage(stage)
        self.aliases = parse_aliases(aliases if aliases is not None else env("CONFSTAGE_ALIASES", environ))
        tune = variables.tuning(
            environ,
            ttl=ttl,
            max_stale=max_stale,
            fetch_timeout=fetch_timeout,
            refresh_timeout=refresh_timeout,
            ttl_jitter=ttl_jitter,
            secret_max_stale=secret_max_stale,
        )
        self.ttl, self.max_stale = tune.ttl, tune.max_stale
        if cache_dir is None:
            cache_dir = env("CONFSTAGE_CACHE_DIR", environ)
            cache_dir = variables.DEFAULT_CACHE_DIR if cache_dir is None else cache_dir
        if cache_kms_key is None:
            cache_kms_key = env("CONFSTAGE_CACHE_KMS_KEY", environ) or None
        disk = DiskCache(cache_dir, kms_key=cache_kms_key, transport=transport, clock=clock) if cache_dir else None
        self._clock = clock
        self.clock = clock  # the wall clock of this client (injected in tests)
        layers = [
            CachedSource(source, **tune._asdict(), clock=clock, disk=disk, backoff=backoff, run=run, random=random)
            for source in build_sources(sources, transport=transport)
        ]
        self._chain = Chain(layers, clock)
        self._views = self._chain.views  # the same dict, never rebound: the warm path reads it directly
        self._arn_stages: dict[str | None, str | None] = {}
        self.refreshed: dict[str | None, float] = {}  # when refresh_on last refreshed each stage (its rate limit)
        self.emitter: Any = None  # a CloudWatch EMF emitter when CONFSTAGE_METRICS=emf (read by @handler)
        if (env("CONFSTAGE_METRICS", environ) or "").strip().lower() == "emf":
            from .emf import Emitter

            self.emitter = Emitter(self.stats, environ=environ)

    def __repr__(self) -> str:
        urls = ", ".join(self._chain.urls())
        return f"Config(sources=[{urls}], stage={self.stage!r}, ttl={self.ttl})"

    @property
    def sources(self) -> list[Source]:
        """The sources of the chain, in order."""
        return [layer.source for layer in self._chain.layers]

    # -- stage -------------------------------------------------------------------------------

    def current_stage(self) -> str:
        """The stage in force: this invocation's, the running invocation's (worker threads), else this client's."""
        return in_force(None, CURRENT.get(), self.stage)

    def stage_for(self, target: Any) -> str | None:
        """The stage a stage name, ARN or Lambda context maps to through this client's aliases (validated)."""
        stage = stage_of(target, self.aliases)
        return validate_stage(stage) if stage is not None else None

    @contextmanager
    def bind(self, target: Any) -> Iterator[str]:
        """Bind the stage of ``target`` (stage, ARN or context) for the block, as one invocation; yields it."""
        stage = self.stage_for(target)
        invocation = self._open(stage if stage is not None else self.stage)
        bound = in_force(None, invocation, self.stage)  # StageError, saying what was tried, when there is none
        token = enter(invocation)
        try:
            yield bound
        finally:
            leave(invocation, token)

    def begin(self, arn: str | None) -> Invocation:
        """A new invocation for an invoked ARN (None: a call without a Lambda context).

        The stage of each distinct ARN is worked out once and remembered; the invocation starts with
        the client's view of that stage when the view is fresh (so its reads are dict lookups).
        """
        try:
            stage = self._arn_stages[arn]
        except KeyError:
            stage = stage_from_arn(arn, self.aliases) if arn is not None else None
            stage = validate_stage(stage) if stage is not None else self.stage
            if len(self._arn_stages) >= MAX_REMEMBERED:
                self._arn_stages.clear()
            self._arn_stages[arn] = stage
        return self._open(stage)

    def _open(self, stage: str | None) -> Invocation:
        """An invocation of ``stage`` starting now, with the client's view of it when the view is fresh."""
        now = self._clock()
        view = self._views.get(stage) if stage is not None else None
        if view is not None and (view.expires is FOREVER or view.expires > now):
            return Invocation(self, stage, now, view.values, view.pins)
        return Invocation(self, stage, now, EMPTY, {})

    # -- getters -----------------------------------------------------------------------------

    def get(
        self,
        key: str,
        default: str | Missing = MISSING,
        *,
        stage: str | None = None,
        max_age: float | None = None,
        force: bool = False,
    ) -> str:
        """The value of ``key`` as a string; ``default`` when no source has it, else ``KeyNotFoundError``."""
        if stage is None and max_age is None and not force:
            # The warm path: the invocation's snapshot, else (no invocation running) the fresh view of our stage.
            invocation = CURRENT.get()
            values = None
            if invocation is not None:
                if invocation.client is self:
                    values = invocation.values
            elif self.stage is not None and not RUNNING:
                view = self._views.get(self.stage)
                if view is not None and (view.expires is FOREVER or view.expires > self._clock()):
                    values = view.values
            if values is not None:
                try:
                    value = values[key]
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
            raise KeyNotFoundError(key, stage, self._chain.urls())
        return default

    def get_many(
        self, keys: Iterable[str], *, stage: str | None = None, max_age: float | None = None, force: bool = False
    ) -> dict[str, str]:
        """Several values in one dict, fetched in as few round trips as each source allows."""
        if isinstance(keys, str):
            raise TypeError("get_many takes an iterable of keys, not one string")
        wanted = list(dict.fromkeys([validate_key(key) for key in keys]))
        stage, answers = self._read(wanted, stage, max_age, self._clock() if force else None)
        missing = [k for k in wanted if answers[k] is MISSING]
        if missing:
            raise KeyNotFoundError(missing, stage, self._chain.urls())
        return {k: answers[k] for k in wanted}

    def get_int(self, key: str, default: int | Missing = MISSING, **kwargs: Any) -> int:
        """The value parsed as an int; ``ConversionError`` (a ``ValueError``) names the key, never the value."""
        return typed_get(self.get, key, default, kwargs, int, "int")  # type: ignore[no-any-return]

    def get_float(self, key: str, default: float | Missing = MISSING, **kwargs: Any) -> float:
        """The value parsed as a float."""
        return typed_get(self.get, key, default, kwargs, float, "float")  # type: ignore[no-any-return]

    def get_bool(self, key: str, default: bool | Missing = MISSING, **kwargs: Any) -> bool:
        """The value parsed as a bool: true/false, 1/0, yes/no, on/off, in any case."""
        return typed_get(self.get, key, default, kwargs, parse_bool, f"bool ({BOOL_WORDS})")  # type: ignore[no-any-return]

    def get_json(self, key: str, default: Any = MISSING, **kwargs: Any) -> Any:
        """The value parsed as JSON."""
        return typed_get(self.get, key, default, kwargs, json.loads, "JSON document")

    def settings(self, cls: type[T], *, stage: str | None = None) -> T:
        """An instance of ``cls`` (a dataclass or a pydantic v2 model) filled from the sources (see ``typed``).

        Within an invocation (or while the client's view is fresh) it is the same object each time.
        Every missing or invalid field is named in one ``SettingsError``, never a value.
        """
        global _settings_of
        if _settings_of is None:
            from .typed import settings_of as _settings_of
        return _settings_of(self, cls, stage)  # type: ignore[no-any-return]

    def present(
        self, keys: Iterable[str], *, stage: str | None = None, newer_than: float | None = None
    ) -> dict[str, str]:
        """The values of ``keys`` some source holds (absent keys left out), read as ``get_many`` reads them.

        ``newer_than``: only data from a fetch begun after this time will do (a refresh).
        """
        wanted = [validate_key(key) for key in keys]
        _, answers = self._read(list(dict.fromkeys(wanted)), stage, None, newer_than)
        return {k: v for k, v in answers.items() if v is not MISSING}

    def refresh(
        self, keys: Iterable[str], *, stage: str | None = None, newer_than: float | None = None
    ) -> dict[str, str]:
        """Fetch ``keys`` again (those present are returned); inside an invocation, it sees the new values.

        ``newer_than``: data from a fetch begun after this time is new enough (default: now), so that
        callers refreshing for the same reason share one fetch.
        """
        return self.present(keys, stage=stage, newer_than=self._clock() if newer_than is None else newer_than)

    def snapshot(self, stage: str | None = None) -> dict[Any, Any] | None:
        """The answers in force for a read of ``stage``: the invocation's snapshot, else the fresh view, else None.

        Keys may be added to it (``typed`` keeps a settings object there), never changed.
        """
        invocation = CURRENT.get()
        if invocation is None and stage is None:
            invocation = sole_invocation()
        if invocation is not None and invocation.client is self and stage in (None, invocation.stage):
            return invocation.values
        view = self._views.get(in_force(stage, invocation, self.stage))
        return view.values if view is not None and view.fresh(self._clock()) else None

    def find(self, key: str, *, stage: str | None = None) -> Found:
        """The value of ``key``, which source of the chain holds it and whether it is a secret (the CLI's ``get``).

        Read through the caches as ``get`` reads, but outside any snapshot; ``KeyNotFoundError`` when no source has it.
        """
        validate_key(key)
        return self._chain.find(in_force(stage, CURRENT.get(), self.stage), key)

    # -- cache control and stats -------------------------------------------------------------

    def prefetch(self, keys: Iterable[str] | None = None, *, stage: str | None = None) -> dict[str, str]:
        """Load the stage now (init time, warm-up): every whole-stage source, then ``keys`` if given.

        With ``keys``, fails fast with one ``KeyNotFoundError`` that lists every missing key.
        Returns the values of ``keys`` (empty without them).
        """
        stage = in_force(stage, CURRENT.get(), self.stage)
        self._chain.load(stage)
        return self.get_many(keys, stage=stage) if keys is not None else {}

    def expire(self) -> None:
        """Treat every cached value, in memory and in /tmp, as stale (after a SnapStart restore):
        refetched on next use, still served if that refresh fails within ``max_stale``."""
        self._chain.expire()

    def clear(self) -> None:
        """Forget every value held in memory (the next get fetches, or reads a fresh /tmp snapshot)."""
        self._chain.clear()

    def stats(self) -> dict[str, Any]:
        """Counters per source URL (hits, misses, fetches, errors, throttled, stale, latency) and in total.

        A source's ``hits`` are lookups its cache layer answered from memory. Reads answered by an
        invocation's snapshot or the client's view are dict lookups and are not counted.
        """
        return self._chain.stats()

    # -- the chain ---------------------------------------------------------------------------

    def _read(
        self, keys: Sequence[str], stage: str | None, max_age: float | None, newer_than: float | None
    ) -> tuple[str, dict[str, Any]]:
        """The stage of the call and the answers for ``keys`` (``MISSING`` when absent).

        ``newer_than``: a refresh; only data from fetches begun after this time will do.
        """
        invocation = CURRENT.get()
        if invocation is None and stage is None:
            invocation = sole_invocation()  # a worker thread: it belongs to the one invocation running
        if invocation is not None and invocation.client is self and stage in (None, invocation.stage):
            return in_force(None, invocation, self.stage), self._chain.read_in(invocation, keys, max_age, newer_than)
        stage = in_force(stage, invocation, self.stage)
        return stage, self._chain.read(stage, keys, max_age, newer_than)


_settings_of: Any = None  # typed.settings_of, imported on the first settings() call


T = TypeVar("T")
