"""The caching layer in front of one source: memory (TTL), then the /tmp snapshot, then the source.

Single-flight and stale-on-error live here once, for every source:

* concurrent misses for one (source, stage) wait on one lock, so one fetch serves them all;
* when a refresh fails, a value fetched at most ``max_stale`` seconds ago is served (and
  counted, and logged without the value) instead of raising, and the source is not asked
  again for ``retry_after`` seconds.

Times come from an injected wall clock (``time.time``): snapshots are shared across processes
through /tmp, so their times must compare across processes; tests pass a fake clock.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Collection, Sequence

from . import _log as log
from .disk import DiskCache, Snapshot
from .errors import ConfstageError, SourceError
from .metrics import SourceStats
from .sources.base import Fetched, Source

__all__ = ["CachedSource"]

Answer = tuple[dict[str, str], float]  # values found (absent keys left out), fresh until


class _Stage:
    """What is known of one stage of one source."""

    __slots__ = ("complete_at", "failed_until", "fetches", "lock", "secret", "values", "withheld")

    def __init__(self) -> None:
        self.values: dict[str, tuple[str | None, float]] = {}  # key -> (value, None if absent; fetched at)
        self.complete_at: float | None = None  # the whole stage was loaded at this time
        self.withheld: frozenset[str] = frozenset()  # keys of a complete disk snapshot held back as secrets
        self.secret: set[str] = set()
        self.failed_until = -math.inf  # after a failed refresh, serve stale until then
        self.fetches = 0  # completed fetches: lets a forced lookup reuse a fetch that ended while it waited
        self.lock = threading.Lock()


class CachedSource:
    """A source behind memory and /tmp caches; ``lookup`` is the only way in."""

    def __init__(
        self,
        source: Source,
        *,
        ttl: float,
        max_stale: float,
        clock: Callable[[], float] = time.time,
        disk: DiskCache | None = None,
        retry_after: float = 5.0,
    ) -> None:
        self.source = source
        self.ttl = source.ttl if source.ttl is not None else ttl
        self.max_stale = max_stale
        self.retry_after = retry_after
        self.stats = SourceStats()
        self._clock = clock
        self._disk = disk if source.persist else None
        self._stages: dict[str, _Stage] = {}
        self._stages_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CachedSource({self.source.url!r}, ttl={self.ttl})"

    def load(self, stage: str) -> None:
        """Make sure the whole stage is in memory (a no-op while it is fresh)."""
        state = self._state(stage)

        def fresh() -> bool:
            return state.complete_at is not None and self._clock() <= state.complete_at + self.ttl

        if fresh():
            return
        with state.lock:
            if fresh():
                return
            now = self._clock()
            if self._read_disk(state, stage) and fresh():
                self._disk_hit(stage)
                return
            self.stats.count("misses")
            self._fetch(state, stage, (), now, force=False)

    def expire(self) -> None:
        """Age every entry past its TTL, keeping it for stale-on-error."""
        now = self._clock()
        with self._stages_lock:
            states = list(self._stages.values())
        for state in states:
            with state.lock:
                cutoff = now - self.ttl - 1e-6
                state.values = {k: (v, min(at, cutoff)) for k, (v, at) in state.values.items()}
                if state.complete_at is not None:
                    state.complete_at = min(state.complete_at, cutoff)

    def clear(self) -> None:
        """Forget every cached value (the /tmp files stay; they are checked for freshness on read)."""
        with self._stages_lock:
            self._stages.clear()

    def lookup(self, stage: str, keys: Sequence[str], *, max_age: float | None = None, force: bool = False) -> Answer:
        """The values this source holds for ``keys``, and until when that answer is fresh."""
        ttl = self.ttl if max_age is None else max_age
        state = self._state(stage)
        generation = state.fetches
        if not force:
            answer = _answer(state, keys, self._clock(), ttl)
            if answer is not None:
                self.stats.count("hits")
                log.debug("hit: source=%s stage=%s keys=%d", self.source.url, stage, len(keys))
                return answer
        self.stats.count("misses")
        log.debug("miss: source=%s stage=%s keys=%d%s", self.source.url, stage, len(keys), " (forced)" if force else "")
        with state.lock:  # single-flight: one fetch per (source, stage); the others wait here
            now = self._clock()
            if not force:
                answer = _answer(state, keys, now, ttl)
                if answer is not None:  # another thread fetched while we waited
                    return answer
                if self._read_disk(state, stage):
                    answer = _answer(state, keys, now, ttl)
                    if answer is not None:
                        self._disk_hit(stage)
                        return answer
                if now < state.failed_until:
                    stale = self._stale(state, keys, now)
                    if stale is not None:
                        return stale
            elif state.fetches != generation:
                answer = _answer(state, keys, now, math.inf)  # a fetch finished while we waited
                if answer is not None:
                    return answer
            return self._fetch(state, stage, keys, now, force)

    def _state(self, stage: str) -> _Stage:
        state = self._stages.get(stage)
        if state is None:
            with self._stages_lock:
                state = self._stages.setdefault(stage, _Stage())
        return state

    def _fetch(self, state: _Stage, stage: str, keys: Sequence[str], now: float, force: bool) -> Answer:
        url = self.source.url
        t0 = time.perf_counter()
        try:
            fetched = self.source.fetch(stage, keys)
        except Exception as exc:
            seconds = time.perf_counter() - t0
            self.stats.fetched(seconds, failed=True)
            error = (
                exc
                if isinstance(exc, ConfstageError)
                else SourceError(
                    f"unexpected {type(exc).__name__} while fetching stage {stage!r}", source=url, operation="fetch"
                )
            )
            stale = None if force or not isinstance(error, SourceError) else self._stale(state, keys, now)
            if stale is None:
                log.debug("fetch failed: source=%s stage=%s after %.1f ms", url, stage, seconds * 1000)
                if error is exc:
                    raise
                raise error from exc
            state.failed_until = now + self.retry_after
            log.warning(
                "serving stale values: source=%s stage=%s keys=%s after %s",
                url,
                stage,
                ",".join(sorted(keys)),
                type(exc).__name__,
            )
            return stale
        seconds = time.perf_counter() - t0
        self.stats.fetched(seconds)
        log.debug("fetched: source=%s stage=%s keys=%d in %.1f ms", url, stage, len(fetched), seconds * 1000)
        self._merge(state, fetched, keys, now)
        state.fetches += 1
        state.failed_until = -math.inf
        if self._disk is not None:
            self._disk.save(self.source, stage, _snapshot(state))
        answer = _answer(state, keys, now, math.inf)
        assert answer is not None  # just merged: every key is known
        return answer[0], now + self.ttl

    def _merge(self, state: _Stage, fetched: Fetched, keys: Collection[str], now: float) -> None:
        if self.source.whole_stage:
            state.values = {k: (v, now) for k, v in fetched.items()}
            state.complete_at = now
            state.withheld = frozenset()
            state.secret = set(fetched.secret)
        else:
            for key in keys:
                state.values[key] = (fetched.get(key), now)
            state.secret.difference_update(keys)
            state.secret.update(fetched.secret)

    def _read_disk(self, state: _Stage, stage: str) -> bool:
        """Merge the /tmp snapshot of the stage into memory (newer entries win); False when there is none."""
        if self._disk is None:
            return False
        snapshot = self._disk.load(self.source, stage)
        if snapshot is None:
            return False
        state.secret.update(snapshot.secrets)  # opened secrets stay secrets when saved again
        for entries in (snapshot.values, snapshot.secrets):
            for key, (value, at) in entries.items():
                known = state.values.get(key)
                if known is None or known[1] < at:
                    state.values[key] = (value, at)
        complete_at = snapshot.complete_at
        if complete_at is not None and (state.complete_at is None or state.complete_at < complete_at):
            state.complete_at = complete_at
            state.withheld = snapshot.withheld
        return True

    def _disk_hit(self, stage: str) -> None:
        self.stats.count("disk_hits")
        log.debug("read from /tmp cache: source=%s stage=%s", self.source.url, stage)

    def _stale(self, state: _Stage, keys: Sequence[str], now: float) -> Answer | None:
        answer = _answer(state, keys, now, self.max_stale)
        if answer is None:
            return None
        self.stats.count("stale", len(keys))
        return answer[0], now + min(self.retry_after, self.ttl)


def _answer(state: _Stage, keys: Sequence[str], now: float, ttl: float) -> Answer | None:
    """Answer from memory if every key is known and fresh within ``ttl``; else None."""
    found: dict[str, str] = {}
    expires = math.inf
    complete_until = state.complete_at + ttl if state.complete_at is not None else -math.inf
    values = state.values
    for key in keys:
        entry = values.get(key)
        if entry is not None and now <= entry[1] + ttl:
            if entry[0] is not None:
                found[key] = entry[0]
            expires = min(expires, entry[1] + ttl)
        elif entry is None and now <= complete_until and key not in state.withheld:
            expires = min(expires, complete_until)  # known to be absent from the whole stage
        else:
            return None
    return found, expires


def _snapshot(state: _Stage) -> Snapshot:
    """What goes to /tmp: plain values, and the secrets apart (the disk layer seals or withholds them)."""
    values: dict[str, tuple[str | None, float]] = {}
    secrets: dict[str, tuple[str, float]] = {}
    for key, (value, at) in state.values.items():
        if key in state.secret and value is not None:
            secrets[key] = (value, at)
        else:
            values[key] = (value, at)
    return Snapshot(values, secrets, state.complete_at)
