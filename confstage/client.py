"""``Config``: the chain of sources behind their caches, the stage rules, snapshots and the typed getters.

Reads come in two kinds:

* **Inside an invocation** (``@handler``, ``bind()``): freshness is decided when the invocation
  starts. The invocation holds a dict of what it has read (its snapshot, ``_state.Invocation``);
  a read is a lookup in it, and a key not yet in it is resolved once, as of the invocation's start,
  and added. A value refreshed meanwhile is seen by the next invocation.
* **Outside invocations**: the TTL is checked on every call, against the client's *view* of the
  stage (the values answered so far and when the first of them expires): one clock read, one lookup.

Views and snapshots only ever gain keys; a refresh that changes a value makes a new view, so a dict an
invocation holds never changes under it.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from . import variables
from ._state import (
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
    running,
    sole_invocation,
)
from .cache import Backoff, CachedSource, StageData
from .convert import BOOL_WORDS, parse, parse_bool
from .disk import DiskCache
from .errors import ConfigurationError, KeyNotFoundError, StageError
from .names import validate_key, validate_stage
from .sources import Source, build_sources
from .stage import parse_aliases, stage_from_arn, stage_of

__all__ = ["Config"]

_MAX_REMEMBERED = 1024  # distinct stages / ARNs remembered; a flood of made-up names cannot grow memory


class _View:
    """What the client has answered for one stage: values (``MISSING``: absent), their loads, and until when."""

    __slots__ = ("expires", "pins", "values")

    def __init__(self, values: dict[str, Any], expires: float, pins: dict[int, StageData]) -> None:
        self.values = values
        self.expires = expires
        self.pins = pins


class Config:
    """A configuration client: sources tried in order, behind a memory and a /tmp cache.

    Arguments left as None come from the ``CONFSTAGE_*`` environment variables, then from the
    built-in defaults (``env://``, TTL 300 s less up to 10% of jitter, max stale 3600 s and 900 s for
    secrets, ``/tmp/confstage``, a fetch deadline of 10 s and a 1 s wait for a refresh when a stale
    value is in hand).
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
    ) -> None:
        env = variables.env_str
        number = variables.env_float
        if sources is None:
            sources = env("CONFSTAGE_SOURCES", environ) or variables.DEFAULT_SOURCES
        if stage is None:
            stage = env("CONFSTAGE_STAGE", environ) or None
            if stage is not None:
                _check_setting("CONFSTAGE_STAGE", stage)
        self.stage = validate_stage(stage) if stage is not None else None
        self.aliases = parse_aliases(aliases if aliases is not None else env("CONFSTAGE_ALIASES", environ))
        self.ttl = ttl if ttl is not None else number("CONFSTAGE_TTL", variables.DEFAULT_TTL, environ)
        self.max_stale = (
            max_stale if max_stale is not None else number("CONFSTAGE_MAX_STALE", variables.DEFAULT_MAX_STALE, environ)
        )
        if fetch_timeout is None:
            fetch_timeout = number("CONFSTAGE_FETCH_TIMEOUT", variables.DEFAULT_FETCH_TIMEOUT, environ)
        if refresh_timeout is None:
            refresh_timeout = number("CONFSTAGE_REFRESH_TIMEOUT", variables.DEFAULT_REFRESH_TIMEOUT, environ)
        if ttl_jitter is None:
            ttl_jitter = number("CONFSTAGE_TTL_JITTER", variables.DEFAULT_TTL_JITTER, environ, what="a fraction")
        if not 0.0 <= ttl_jitter <= 1.0:
            raise ConfigurationError(f"the TTL jitter must be a fraction between 0 and 1, got {ttl_jitter!r}")
        if secret_max_stale is None:
            secret_max_stale = number("CONFSTAGE_SECRET_MAX_STALE", variables.DEFAULT_SECRET_MAX_STALE, environ)
        if cache_dir is None:
            cache_dir = env("CONFSTAGE_CACHE_DIR", environ)
            if cache_dir is None:
                cache_dir = variables.DEFAULT_CACHE_DIR
        if cache_kms_key is None:
            cache_kms_key = env("CONFSTAGE_CACHE_KMS_KEY", environ) or None
        disk = DiskCache(cache_dir, sealer=_sealer(cache_kms_key)) if cache_dir else None
        self._clock = clock
        self.clock = clock  # the wall clock of this client (injected in tests)
        self._layers = [
            CachedSource(
                source,
                ttl=self.ttl,
                max_stale=self.max_stale,
                clock=clock,
                disk=disk,
                fetch_timeout=fetch_timeout,
                refresh_timeout=refresh_timeout,
                backoff=backoff,
                run=run,
                ttl_jitter=ttl_jitter,
                secret_max_stale=secret_max_stale,
                random=random,
            )
            for source in build_sources(sources)
        ]
        self._views: dict[str, _View] = {}
        self._arn_stages: dict[str | None, str | None] = {}
        self.emitter: Any = None  # a CloudWatch EMF emitter when CONFSTAGE_METRICS=emf (read by @handler)
        if (env("CONFSTAGE_METRICS", environ) or "").strip().lower() == "emf":
            from .emf import Emitter

            self.emitter = Emitter(self.stats, environ=environ)

    def __repr__(self) -> str:
        urls = ", ".join(layer.source.url for layer in self._layers)
        return f"Config(sources=[{urls}], stage={self.stage!r}, ttl={self.ttl})"

    @property
    def sources(self) -> list[Source]:
        """The sources of the chain, in order."""
        return [layer.source for layer in self._layers]

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
        invocation = self._open(stage if stage is not None else self.stage)
        in_force = self._stage_for(None, invocation)  # StageError, saying what was tried, when there is none
        token = enter(invocation)
        try:
            yield in_force
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
            if len(self._arn_stages) >= _MAX_REMEMBERED:
                self._arn_stages.clear()
            self._arn_stages[arn] = stage
        now = self._clock()
        view = self._views.get(stage)  # type: ignore[arg-type]  # None is never a key: no view, as wanted
        if view is not None and (view.expires is FOREVER or view.expires > now):
            return Invocation(self, stage, now, view.values, view.pins)
        return Invocation(self, stage, now, EMPTY, {})

    def _open(self, stage: str | None) -> Invocation:
        now = self._clock()
        view = self._views.get(stage) if stage is not None else None
        if view is not None and (view.expires is FOREVER or view.expires > now):
            return Invocation(self, stage, now, view.values, view.pins)
        return Invocation(self, stage, now, EMPTY, {})

    def _stage_for(self, stage: str | None, invocation: Invocation | None) -> str:
        """The stage of a call: ``stage=``, else the invocation's, else the running invocations', else ours."""
        if stage is not None:
            return validate_stage(stage)
        if invocation is not None:
            if invocation.stage is None:
                raise StageError(
                    "no stage: the invocation's ARN carries no alias (unqualified, $LATEST or a version) "
                    "and CONFSTAGE_STAGE is not set"
                )
            return invocation.stage
        stages = {other.stage for other in running()}
        if len(stages) == 1:
            return stages.pop()  # type: ignore[return-value]  # running() holds invocations with a stage
        if stages:
            raise StageError(
                f"this thread has no invocation of its own and invocations of several stages are running "
                f"({', '.join(sorted(s for s in stages if s))}); pass stage=, or start the thread with "
                "contextvars.copy_context().run"
            )
        if self.stage is None:
            raise StageError(
                "no stage: nothing bound by @confstage.handler or confstage.bind() "
                "(an invoked ARN with an alias), and CONFSTAGE_STAGE is not set"
            )
        return self.stage

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
        """Several values in one dict, fetched in as few round trips as each source allows."""
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

    def get_int(self, key: str, default: int | Missing = MISSING, **kwargs: Any) -> int:
        """The value parsed as an int; ``ConversionError`` (a ``ValueError``) names the key, never the value."""
        return self._typed(key, default, kwargs, int, "int")  # type: ignore[no-any-return]

    def get_float(self, key: str, default: float | Missing = MISSING, **kwargs: Any) -> float:
        """The value parsed as a float."""
        return self._typed(key, default, kwargs, float, "float")  # type: ignore[no-any-return]

    def get_bool(self, key: str, default: bool | Missing = MISSING, **kwargs: Any) -> bool:
        """The value parsed as a bool: true/false, 1/0, yes/no, on/off, in any case."""
        return self._typed(key, default, kwargs, parse_bool, f"bool ({BOOL_WORDS})")  # type: ignore[no-any-return]

    def get_json(self, key: str, default: Any = MISSING, **kwargs: Any) -> Any:
        """The value parsed as JSON."""
        return self._typed(key, default, kwargs, json.loads, "JSON document")

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
        how = _typed.plan(cls)
        slot = (_typed.SETTINGS, cls)
        values = self._snapshot(stage)
        if values is not None:
            built = values.get(slot)
            if built is not None:
                note = getattr(values, "note", None)
                if note is not None:
                    note(how.keys)  # a refresh_on call that reads settings has read their keys
                return built  # type: ignore[no-any-return]
        _, answers = self._read(how.keys, stage, None, None)
        built = _typed.build(how, {k: v for k, v in answers.items() if v is not MISSING})
        values = self._snapshot(stage)
        if values is not None and values is not EMPTY:
            built = values.setdefault(slot, built)
        return built  # type: ignore[no-any-return]

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

    def _snapshot(self, stage: str | None) -> dict[Any, Any] | None:
        """The dict of answers in force for a read: the invocation's snapshot, else the fresh view, else None."""
        invocation = CURRENT.get()
        if invocation is None and stage is None:
            invocation = sole_invocation()
        if invocation is not None and invocation.client is self and stage in (None, invocation.stage):
            return invocation.values
        view = self._views.get(self._stage_for(stage, invocation))
        if view is not None and (view.expires is FOREVER or view.expires > self._clock()):
            return view.values
        return None

    # -- cache control and stats -------------------------------------------------------------

    def prefetch(self, keys: Iterable[str] | None = None, *, stage: str | None = None) -> dict[str, str]:
        """Load the stage now (init time, warm-up): every whole-stage source, then ``keys`` if given.

        With ``keys``, fails fast with one ``KeyNotFoundError`` that lists every missing key.
        Returns the values of ``keys`` (empty without them).
        """
        stage = self._stage_for(stage, CURRENT.get())
        for layer in self._layers:
            layer.load(stage)
        return self.get_many(keys, stage=stage) if keys is not None else {}

    def expire(self) -> None:
        """Treat every cached value, in memory and in /tmp, as stale (after a SnapStart restore):
        refetched on next use, still served if that refresh fails within ``max_stale``."""
        self._views = {}
        for layer in self._layers:
            layer.expire()

    def clear(self) -> None:
        """Forget every value held in memory (the next get fetches, or reads a fresh /tmp snapshot)."""
        self._views = {}
        for layer in self._layers:
            layer.clear()

    def stats(self) -> dict[str, Any]:
        """Counters per source URL (hits, misses, fetches, errors, stale, latency) and in total.

        A source's ``hits`` are lookups its cache layer answered from memory. Reads answered by an
        invocation's snapshot or the client's view are dict lookups and are not counted.
        """
        per_source = {layer.source.url: layer.stats.as_dict() for layer in self._layers}
        totals = {
            name: sum(s[name] for s in per_source.values())
            for name in ("hits", "misses", "fetches", "errors", "throttled", "stale", "disk_hits")
        }
        return {
            "sources": per_source,
            "total": totals,
            "cached_keys": sum(len(view.values) for view in list(self._views.values())),
        }

    # -- the chain ---------------------------------------------------------------------------

    def _urls(self) -> list[str]:
        return [layer.source.url for layer in self._layers]

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
            return self._stage_for(None, invocation), self._read_in(invocation, keys, max_age, newer_than)
        stage = self._stage_for(stage, invocation)
        forced = newer_than is not None or max_age is not None
        now = self._clock()
        view = self._views.get(stage)
        fresh = view is not None and (view.expires is FOREVER or view.expires > now)
        if fresh and not forced:
            assert view is not None
            known = view.values
            if all(key in known for key in keys):
                return stage, {key: known[key] for key in keys}
        answers, expires, pins = self._resolve(
            stage,
            keys,
            pins=view.pins if fresh and not forced and view else None,
            max_age=max_age,
            newer_than=newer_than,
        )
        self._remember(stage, answers, expires, pins, now, replace=forced)
        return stage, answers

    def _read_in(
        self, invocation: Invocation, keys: Sequence[str], max_age: float | None, newer_than: float | None
    ) -> dict[str, Any]:
        """Answers inside an invocation: from its snapshot, resolving (as of its start) what it has not read."""
        assert invocation.stage is not None
        stage = invocation.stage
        forced = newer_than is not None or max_age is not None
        values = invocation.values
        if not forced:
            unread = [key for key in keys if key not in values]
            if not unread:
                return {key: values[key] for key in keys}
        else:
            unread = list(keys)
        answers, expires, pins = self._resolve(
            stage,
            unread,
            at=None if forced else invocation.started,
            pins=None if forced else invocation.pins,
            max_age=max_age,
            newer_than=newer_than,
        )
        self._remember(stage, answers, expires, pins, self._clock(), replace=forced)
        if forced:
            # An explicit refresh: this invocation sees the new values from now on (a copy: others keep theirs;
            # objects built from the old values, like settings, are left behind to be built again).
            invocation.values = {k: v for k, v in values.items() if isinstance(k, str)} | answers
            invocation.pins = {**invocation.pins, **pins}
        elif values is EMPTY:
            view = self._views.get(stage)
            if view is not None and all(view.values.get(k, _NOT_THERE) is v for k, v in answers.items()):
                invocation.values, invocation.pins = view.values, view.pins  # share the view: later reads are free
            else:
                invocation.values, invocation.pins = dict(answers), dict(pins)
        else:
            for key, value in answers.items():
                values.setdefault(key, value)
            for index, data in pins.items():
                invocation.pins.setdefault(index, data)
        values = invocation.values
        return {key: values[key] for key in keys}

    def _resolve(
        self,
        stage: str,
        keys: Sequence[str],
        *,
        at: float | None = None,
        pins: Mapping[int, StageData] | None = None,
        max_age: float | None = None,
        newer_than: float | None = None,
    ) -> tuple[dict[str, Any], float, dict[int, StageData]]:
        """Walk the chain: a key missing from one source is asked of the next; failures raise.

        Returns every key's answer (``MISSING`` when no source has it), until when all of them are
        fresh, and the stage loads they came from.
        """
        found: dict[str, str] = {}
        remaining = list(keys)
        expires = math.inf
        used: dict[int, StageData] = {}
        for index, layer in enumerate(self._layers):
            if not remaining:
                break
            values, fresh_until, data = layer.lookup(
                stage,
                remaining,
                at=at,
                pin=pins.get(index) if pins else None,
                max_age=max_age,
                newer_than=newer_than,
            )
            if data is not None:
                used[index] = data
            expires = min(expires, fresh_until)
            found.update(values)
            remaining = [k for k in remaining if k not in values]
        answers = {key: found.get(key, MISSING) for key in keys}
        return answers, FOREVER if expires == math.inf else expires, used

    def _remember(
        self,
        stage: str,
        answers: dict[str, Any],
        expires: float,
        pins: dict[int, StageData],
        now: float,
        *,
        replace: bool,
    ) -> None:
        """Record answers in the client's view of the stage, never changing a value a snapshot may hold."""
        if not (expires is FOREVER or expires > now):
            return  # stale already (an old invocation's pinned read, a stale answer): nothing to share
        view = self._views.get(stage)
        if view is None or not (view.expires is FOREVER or view.expires > now):
            if len(self._views) >= _MAX_REMEMBERED:
                self._views = {}
            self._views[stage] = _View(dict(answers), expires, dict(pins))
            return
        same_loads = all(view.pins.get(index, data) is data for index, data in pins.items())
        changed = any(view.values.get(key, value) is not value for key, value in answers.items())
        if changed or not same_loads:
            if replace:  # a refresh: a new view (snapshots holding the old dict keep their values)
                kept = {k: v for k, v in view.values.items() if isinstance(k, str)}  # not objects built from them
                self._views[stage] = _View(kept | answers, min(view.expires, expires), {**view.pins, **pins})
            return
        values = view.values
        for key, value in answers.items():
            values.setdefault(key, value)
        if expires < view.expires:
            view.expires = expires


_NONE: Any = object()  # "not found" from get() inside the typed getters
_typed: Any = None  # confstage.typed, imported on the first settings() call
_NOT_THERE: Any = object()  # "no entry" in a view (MISSING is an entry: known absent)


def _check_setting(name: str, stage: str) -> None:
    try:
        validate_stage(stage)
    except StageError as exc:
        raise StageError(f"{name}: {exc}") from None  # the same message, with the variable named


def _sealer(kms_key: str | None) -> Any:
    """The /tmp cache's sealer for secrets when a KMS key is configured (crypto imported only then)."""
    if not kms_key:
        return None
    from .crypto import Sealer

    return Sealer(kms_key)


T = TypeVar("T")
