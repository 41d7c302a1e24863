"""``Config``: the chain of sources behind their caches, the stage rules and the typed getters."""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from . import settings
from ._core import FOREVER, MISSING, Missing
from ._core import STAGE as _STAGE
from .cache import CachedSource
from .disk import DiskCache
from .errors import ConversionError, KeyNotFoundError, StageError
from .sources import Source, build_sources
from .stage import binding, parse_aliases, stage_of

__all__ = ["Config"]

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


class Config:
    """A configuration client: sources tried in order, behind a memory and a /tmp cache.

    Arguments left as None come from the ``CONFSTAGE_*`` environment variables, then from the
    built-in defaults (``env://``, TTL 300 s, max stale 3600 s, ``/tmp/confstage``).
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
        clock: Callable[[], float] = time.time,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        env = settings.env_str
        if sources is None:
            sources = env("CONFSTAGE_SOURCES", environ) or settings.DEFAULT_SOURCES
        self.stage = stage if stage is not None else (env("CONFSTAGE_STAGE", environ) or None)
        self.aliases = parse_aliases(aliases if aliases is not None else env("CONFSTAGE_ALIASES", environ))
        self.ttl = ttl if ttl is not None else settings.env_float("CONFSTAGE_TTL", settings.DEFAULT_TTL, environ)
        self.max_stale = (
            max_stale
            if max_stale is not None
            else settings.env_float("CONFSTAGE_MAX_STALE", settings.DEFAULT_MAX_STALE, environ)
        )
        if cache_dir is None:
            cache_dir = env("CONFSTAGE_CACHE_DIR", environ)
            if cache_dir is None:
                cache_dir = settings.DEFAULT_CACHE_DIR
        if cache_kms_key is None:
            cache_kms_key = env("CONFSTAGE_CACHE_KMS_KEY", environ) or None
        disk = DiskCache(cache_dir, sealer=_sealer(cache_kms_key)) if cache_dir else None
        self._clock = clock
        self._layers = [
            CachedSource(source, ttl=self.ttl, max_stale=self.max_stale, clock=clock, disk=disk)
            for source in build_sources(sources)
        ]
        self._disk = disk
        # stage -> key -> (value or None when no source has it, fresh until): the warm path,
        # read by ``get`` here and inlined in ``confstage.get``.
        self._hot: dict[str, dict[str, tuple[str | None, float]]] = {}
        self.warm_hits = 0  # gets answered by the warm path (not atomic across threads: a statistic)

    def __repr__(self) -> str:
        urls = ", ".join(layer.source.url for layer in self._layers)
        return f"Config(sources=[{urls}], stage={self.stage!r}, ttl={self.ttl})"

    @property
    def sources(self) -> list[Source]:
        """The sources of the chain, in order."""
        return [layer.source for layer in self._layers]

    # -- stage -------------------------------------------------------------------------------

    def current_stage(self) -> str:
        """The stage in force: bound by ``handler``/``bind``, else this client's stage, else ``StageError``."""
        stage = _STAGE.get() or self.stage
        if stage is None:
            raise StageError(
                "no stage: nothing bound by @confstage.handler or confstage.bind() "
                "(an invoked ARN with an alias), and CONFSTAGE_STAGE is not set"
            )
        return stage

    def stage_for(self, target: Any) -> str | None:
        """The stage a stage name, ARN or Lambda context maps to through this client's aliases."""
        return stage_of(target, self.aliases)

    @contextmanager
    def bind(self, target: Any) -> Iterator[str]:
        """Bind the stage of ``target`` (stage, ARN or context) for the block; yields the stage in force."""
        with binding(self.stage_for(target)):
            yield self.current_stage()

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
        if stage is None:
            stage = _STAGE.get() or self.stage or self.current_stage()
        if max_age is None and not force:
            try:
                value, expires = self._hot[stage][key]
            except KeyError:
                pass
            else:
                if expires is FOREVER or expires > self._clock():
                    self.warm_hits += 1
                    return self._found(key, value, default, stage)
        return self._found(key, self._resolve(stage, (key,), max_age, force).get(key), default, stage)

    def _found(self, key: str, value: str | None, default: str | Missing, stage: str) -> str:
        if value is not None:
            return value
        if isinstance(default, Missing):
            raise KeyNotFoundError(key, stage, self._urls())
        return default

    def get_many(
        self, keys: Iterable[str], *, stage: str | None = None, max_age: float | None = None, force: bool = False
    ) -> dict[str, str]:
        """Several values in one dict, fetched in as few round trips as each source allows."""
        keys = list(dict.fromkeys(keys))
        stage = stage or self.current_stage()
        found = self._resolve(stage, keys, max_age, force)
        missing = [k for k in keys if k not in found]
        if missing:
            raise KeyNotFoundError(missing, stage, self._urls())
        return {k: found[k] for k in keys}

    def get_int(self, key: str, default: int | Missing = MISSING, **kwargs: Any) -> int:
        """The value parsed as an int; ``ConversionError`` (a ``ValueError``) names the key, never the value."""
        raw = self._raw(key, default, kwargs)
        if raw is _NONE:
            assert not isinstance(default, Missing)  # _raw returns _NONE only when a default was given
            return default
        return _parse(key, raw, int, "int")

    def get_float(self, key: str, default: float | Missing = MISSING, **kwargs: Any) -> float:
        """The value parsed as a float."""
        raw = self._raw(key, default, kwargs)
        if raw is _NONE:
            assert not isinstance(default, Missing)  # _raw returns _NONE only when a default was given
            return default
        return _parse(key, raw, float, "float")

    def get_bool(self, key: str, default: bool | Missing = MISSING, **kwargs: Any) -> bool:
        """The value parsed as a bool: true/false, 1/0, yes/no, on/off, in any case."""
        raw = self._raw(key, default, kwargs)
        if raw is _NONE:
            assert not isinstance(default, Missing)  # _raw returns _NONE only when a default was given
            return default
        word = raw.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
        raise ConversionError(key, "bool (true/false, 1/0, yes/no, on/off)")

    def get_json(self, key: str, default: Any = MISSING, **kwargs: Any) -> Any:
        """The value parsed as JSON."""
        raw = self._raw(key, default, kwargs)
        if raw is _NONE:
            assert not isinstance(default, Missing)  # _raw returns _NONE only when a default was given
            return default
        return _parse(key, raw, json.loads, "JSON document")

    def _raw(self, key: str, default: object, kwargs: dict[str, Any]) -> Any:
        """``get`` for the typed getters: ``_NONE`` when absent and a default was given."""
        if isinstance(default, Missing):
            return self.get(key, **kwargs)
        return self.get(key, _NONE, **kwargs)

    # -- cache control and stats -------------------------------------------------------------

    def prefetch(self, keys: Iterable[str] | None = None, *, stage: str | None = None) -> dict[str, str]:
        """Load the stage now (init time, warm-up): every whole-stage source, then ``keys`` if given.

        With ``keys``, fails fast with one ``KeyNotFoundError`` that lists every missing key.
        Returns the values of ``keys`` (empty without them).
        """
        stage = stage or self.current_stage()
        for layer in self._layers:
            if layer.source.whole_stage:
                layer.load(stage)
        return self.get_many(keys, stage=stage) if keys is not None else {}

    def expire(self) -> None:
        """Treat every cached value as stale (after a SnapStart restore): refetched on next use,
        still served if that refresh fails within ``max_stale``."""
        self._hot.clear()
        for layer in self._layers:
            layer.expire()

    def clear(self) -> None:
        """Forget every value held in memory (the next get fetches, or reads a fresh /tmp snapshot)."""
        self._hot.clear()
        for layer in self._layers:
            layer.clear()

    def stats(self) -> dict[str, Any]:
        """Counters per source URL (hits, misses, fetches, errors, stale, latency) and in total.

        A source's ``hits`` are lookups its cache layer answered from memory; ``warm_hits`` are
        gets answered before reaching any layer (the per-key warm path), included in the total.
        """
        per_source = {layer.source.url: layer.stats.as_dict() for layer in self._layers}
        totals = {
            name: sum(s[name] for s in per_source.values())
            for name in ("hits", "misses", "fetches", "errors", "stale", "disk_hits")
        }
        totals["hits"] += self.warm_hits
        return {
            "sources": per_source,
            "total": totals,
            "warm_hits": self.warm_hits,
            "cached_keys": sum(map(len, self._hot.values())),
        }

    # -- the chain ---------------------------------------------------------------------------

    def _urls(self) -> list[str]:
        return [layer.source.url for layer in self._layers]

    def _resolve(self, stage: str, keys: Sequence[str], max_age: float | None, force: bool) -> dict[str, str]:
        """Walk the chain: a key missing from one source is asked of the next; failures raise."""
        found: dict[str, str] = {}
        remaining = list(keys)
        expires = math.inf
        for layer in self._layers:
            if not remaining:
                break
            values, fresh_until = layer.lookup(stage, remaining, max_age=max_age, force=force)
            expires = min(expires, fresh_until)
            found.update(values)
            remaining = [k for k in remaining if k not in values]
        if expires == math.inf:
            expires = FOREVER  # the identity test in the warm path skips the clock
        hot = self._hot.get(stage)
        if hot is None:
            hot = self._hot.setdefault(stage, {})
        for key in keys:
            hot[key] = (found.get(key), expires)
        return found


_NONE: Any = object()  # "not found" from get() inside the typed getters


def _sealer(kms_key: str | None) -> Any:
    """The /tmp cache's sealer for secrets when a KMS key is configured (crypto imported only then)."""
    if not kms_key:
        return None
    from .crypto import Sealer

    return Sealer(kms_key)


T = TypeVar("T")


def _parse(key: str, raw: str, parse: Callable[[str], T], expected: str) -> T:
    """Parse a value; on failure raise ConversionError outside the ``except`` block, so that
    neither ``__cause__`` nor ``__context__`` carries the parser's message (which quotes the value)."""
    try:
        return parse(raw)
    except ValueError:
        pass
    raise ConversionError(key, expected)
