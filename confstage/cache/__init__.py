"""The caching layer in front of one source: memory (TTL), then the /tmp file, then the source.

Everything about staleness and availability lives here once, for every source:

* **Single flight.** A fetch runs as a *flight* (its own thread by default, so that a caller can stop
  waiting): every caller that needs the same stage waits on the one flight in progress.
* **Deadlines.** A caller with nothing cached waits at most ``fetch_timeout`` for a flight, then gets
  ``SourceError``; a flight that outlives it is written off (its late answer is still kept if it ever
  comes). A caller holding a value fetched within ``max_stale`` waits at most ``refresh_timeout``.
* **Stale-on-error, without queueing.** While a refresh is in flight, or after it failed and until a
  growing, jittered backoff ends, a caller that holds a value within ``max_stale`` is served that value
  at once (counted, and logged without the value).
* **Snapshots per invocation.** ``lookup(..., at=started, pin=data)`` answers as of an invocation's start
  time, and from the very load (``StageData``) the invocation already read, so two keys of a whole-stage
  source read in one invocation always come from one fetch.

Times come from an injected clock, monotonic by default (``time.monotonic``): a wall clock stepped back an
hour would otherwise keep every value fresh for an hour more, or stepped forward expire them all. The /tmp
layer moves times to and from the wall clock (files compare across processes); tests pass a fake clock.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable, Collection, Sequence

from confstage import _log as log
from confstage._context import DEADLINE
from confstage.errors import ConfstageError, SourceError
from confstage.metrics import SourceStats
from confstage.sources.base import Source
from confstage.variables import DEFAULT_FETCH_TIMEOUT, DEFAULT_REFRESH_TIMEOUT

from .disk import DiskCache, StageFile
from .flight import Backoff, Flight, clear_frames, run_in_thread, run_inline, urandom_fraction
from .state import Answer, Stage, StageData, answer, file_of, merge_file, record

__all__ = ["Answer", "Backoff", "CachedSource", "StageData", "run_in_thread", "run_inline"]


_MAX_STAGES = 4096  # stages known per source: a function may serve thousands of aliases


class CachedSource:
    """A source behind memory and /tmp caches; ``lookup`` is the way in."""

    def __init__(
        self,
        source: Source,
        *,
        ttl: float,
        max_stale: float,
        clock: Callable[[], float] = time.monotonic,
        disk: DiskCache | None = None,
        fetch_timeout: float = DEFAULT_FETCH_TIMEOUT,
        refresh_timeout: float = DEFAULT_REFRESH_TIMEOUT,
        backoff: Backoff | None = None,
        run: Callable[[Callable[[], None]], None] | None = None,
        ttl_jitter: float = 0.0,
        secret_max_stale: float | None = None,
        random: Callable[[], float] | None = None,
    ) -> None:
        self.source = source
        self.ttl = source.ttl if source.ttl is not None else ttl
        self.max_stale = max_stale
        self.secret_max_stale = max_stale if secret_max_stale is None else min(secret_max_stale, max_stale)
        self.ttl_jitter = min(max(ttl_jitter, 0.0), 1.0)
        self._random = random or urandom_fraction
        self.fetch_timeout = fetch_timeout
        self.refresh_timeout = min(refresh_timeout, fetch_timeout)
        self.backoff = backoff or Backoff()
        self.stats = SourceStats()
        self._whole = source.whole_stage
        self._clock = clock
        self._disk = disk if source.persist else None
        # Sources that do no I/O (env://, test doubles marked inline) are not worth a thread.
        self._run = run or (run_inline if getattr(source, "inline", False) else run_in_thread)
        self._stages: dict[str, Stage] = {}
        self._stages_lock = threading.Lock()
        self._expired_at = -math.inf  # nothing loaded at or before this time is fresh (expire())

    def __repr__(self) -> str:
        return f"CachedSource({self.source.url!r}, ttl={self.ttl})"

    # -- the way in --------------------------------------------------------------------------

    def is_secret(self, stage: str, key: str) -> bool:
        """Whether the source reported ``key`` of ``stage`` as a secret when it last answered for it."""
        state = self._state(stage)
        if self._whole:
            return state.data is not None and key in state.data.secret
        return key in state.secret

    def lookup(
        self,
        stage: str,
        keys: Sequence[str],
        *,
        at: float | None = None,
        pin: StageData | None = None,
        max_age: float | None = None,
        newer_than: float | None = None,
    ) -> Answer:
        """The values this source holds for ``keys`` (absent keys left out), fresh until when, and from which load.

        ``at``: judge freshness as of this time (an invocation's start). ``pin``: answer from this load (one the
        invocation already read), whatever its age within ``max_stale`` (secrets: ``secret_max_stale``).
        ``max_age``: a TTL for this call. ``newer_than``: only data from a fetch begun after this time will do
        (a forced refresh; never served stale).
        """
        state = self._state(stage)
        now = self._clock()
        ref = now if at is None else min(at, now)  # freshness is judged as of the invocation's start
        ttl = state.lifetime if max_age is None else max_age
        if newer_than is None:
            answer = self._fresh(state, keys, ref, ttl, pin)
            if answer is not None:
                self.stats.count("hits")
                log.debug("hit: source=%s stage=%s keys=%d", self.source.url, stage, len(keys))
                return answer
            stale = self._fresh(state, keys, now, self.max_stale, None, stale=True)
        else:
            answer = self._since(state, keys, newer_than)
            if answer is not None:  # a fetch begun after newer_than has already answered
                return answer
            stale = None
        self.stats.count("misses")
        log.debug("miss: source=%s stage=%s keys=%d", self.source.url, stage, len(keys))
        launched = False
        with state.lock:
            flight = self._flight_for(state, keys, now, newer_than)
            if flight is not None and stale is not None:
                return self._serve_stale(state, stage, stale, len(keys), "a refresh is in flight")
            if flight is None:
                # A flight may have answered between the check above and this lock: look again before asking.
                if newer_than is None:
                    again = self._fresh(state, keys, ref, ttl, pin)
                else:
                    again = self._since(state, keys, newer_than)
                if again is not None:
                    return again
                if now < state.backoff_until:
                    if stale is not None:
                        return self._serve_stale(state, stage, stale, len(keys), "backing off after a failed refresh")
                    if state.throttled is not None:
                        # Throttled with nothing in hand: asking again now only adds to what the service sheds.
                        raise SourceError(
                            f"stage {stage!r} was throttled; next attempt in {state.backoff_until - now:.1f} s",
                            source=self.source.url,
                            operation=getattr(state.throttled, "operation", "") or "fetch",
                            throttled=True,
                        ) from state.throttled
                    if newer_than is not None:
                        # A forced refresh (refresh_on, force=True) backs off like any other: a storm of failing
                        # calls against a failing store asks it once per backoff, not once per call.
                        raise SourceError(
                            f"stage {stage!r}: the last refresh failed; next attempt in "
                            f"{state.backoff_until - now:.1f} s",
                            source=self.source.url,
                            operation="fetch",
                        )
                if newer_than is None and self._disk is not None and self._read_disk(state, stage):
                    answer = self._fresh(state, keys, ref, ttl, None)
                    if answer is not None:
                        self.stats.count("disk_hits")
                        log.debug("read from /tmp cache: source=%s stage=%s", self.source.url, stage)
                        return answer
                    if stale is None:  # a restarted process: the file may still be good for stale-on-error
                        stale = self._fresh(state, keys, now, self.max_stale, None, stale=True)
                # A forced refresh of some keys of a source that can fetch them alone (``refreshes_keys``: the
                # per-key secrets layout) fetches just those, into the load in hand.
                partial = (
                    newer_than is not None
                    and bool(keys)
                    and state.data is not None
                    and getattr(self.source, "refreshes_keys", False)
                )
                flight = Flight(None if self._whole and not partial else frozenset(keys), now, now + self.fetch_timeout)
                flight.after = newer_than
                state.flights.append(flight)
                launched = True
        if launched:  # outside the lock: an inline flight takes it to record its result
            self._run(functools.partial(self._fly, state, stage, flight))  # not a closure: its cell is cleared below
        wait = self.refresh_timeout if stale is not None else max(0.0, flight.deadline - now)
        error: BaseException
        if flight.done.wait(wait):
            if flight.error is None:
                return self._answer_from(flight, stage, keys)
            error = flight.error
        else:
            error = SourceError(
                f"no answer within {wait:g} s while fetching stage {stage!r}",
                source=self.source.url,
                operation="fetch",
            )
        if stale is not None and isinstance(error, SourceError):
            return self._serve_stale(state, stage, stale, len(keys), type(error).__name__)
        try:
            raise error.with_traceback(None)
        finally:  # this frame must not hold the error (or its flight) that the error's traceback holds
            del error, flight

    def version(self, stage: str) -> str | None:
        """What the store calls the version of ``stage`` held in memory (AppConfig's label), from the fetch or the
        /tmp file it came from; None when it says nothing or nothing is held."""
        data = self._state(stage).data
        return None if data is None else data.version

    def load(self, stage: str) -> None:
        """Make sure the whole stage is in memory (a no-op while it is fresh; per-key sources: nothing to do)."""
        if self._whole:
            self.lookup(stage, ())

    def expire(self) -> None:
        """Treat everything loaded so far, in memory or in /tmp, as stale (kept for stale-on-error)."""
        self._expired_at = self._clock()

    def clear(self) -> None:
        """Forget every cached value (the /tmp files stay; they are checked for freshness on read)."""
        with self._stages_lock:
            self._stages.clear()

    # -- answering from memory ---------------------------------------------------------------

    def _fresh(
        self, state: Stage, keys: Sequence[str], ref: float, ttl: float, pin: StageData | None, *, stale: bool = False
    ) -> Answer | None:
        """Answer from memory if every key is known and fresh as of ``ref`` (``stages.answer``); else None.

        ``stale=True`` ignores ``expire()`` (an expired value may still be served when a refresh fails).
        """
        return answer(
            state,
            keys,
            ref,
            ttl,
            pin,
            whole=self._whole,
            not_before=-math.inf if stale else self._expired_at,
            max_stale=self.max_stale,
            secret_max_stale=self.secret_max_stale if stale or pin is not None else math.inf,
        )

    def _since(self, state: Stage, keys: Sequence[str], newer_than: float) -> Answer | None:
        """Answer from data fetched at or after ``newer_than``, if there is such data for every key."""
        if self._whole:
            data = state.data
            if data is None:
                return None
            if data.at <= newer_than and not (
                keys and all(data.refreshed.get(k, -math.inf) > newer_than for k in keys)
            ):
                return None
            return self._fresh(state, keys, data.at, math.inf, data)
        if any(key not in state.entries or state.entries[key][1] <= newer_than for key in keys):
            return None
        return self._fresh(state, keys, newer_than, math.inf, None, stale=True)

    def _serve_stale(self, state: Stage, stage: str, stale: Answer, count: int, why: str) -> Answer:
        values, _, data = stale
        self.stats.count("stale", count)
        if state.warned != state.failures:  # once per failure, not once per get
            state.warned = state.failures
            log.warning(
                "serving stale values: source=%s stage=%s keys=%s (%s)", self.source.url, stage, ",".join(values), why
            )
        # Fresh until the backoff ends (the next get then refreshes), or not at all while a refresh is in flight.
        return values, max(self._clock(), state.backoff_until), data

    # -- flights -----------------------------------------------------------------------------

    def _flight_for(self, state: Stage, keys: Collection[str], now: float, newer_than: float | None) -> Flight | None:
        """A live flight that will answer ``keys`` (writing off any that outlived their deadline)."""
        found = None
        for flight in list(state.flights):
            if now > flight.deadline and not flight.done.is_set():
                state.flights.remove(flight)  # hung: written off; a late answer is still kept
                self._failed(state, now, None)
                self.stats.fetched(now - flight.started, failed=True)
                log.debug("fetch written off after %.1f s: source=%s", now - flight.started, self.source.url)
            elif found is None and flight.covers(keys) and (newer_than is None or flight.started > newer_than):
                found = flight
        return found

    def _fly(self, state: Stage, stage: str, flight: Flight) -> None:
        """Run one fetch and record what it brought (or how it failed); waiters are woken at the end.

        With a /tmp cache, the fetch holds the stage's lock among this machine's processes (``disk.exclusive``:
        Lambda Managed Instances run many processes on one /tmp). A process that finds another fetching waits for
        it, then answers from the file it wrote instead of asking AWS; it fetches itself if the lock is still
        held when only half its fetch deadline (at most 5 s of it) is left, or if the file cannot answer.
        """
        try:
            if self._disk is None:
                self._fetch(state, stage, flight)
                return
            reserve = min(self.fetch_timeout / 2, 5.0)
            wait = max(0.0, flight.deadline - self._clock() - reserve)
            with self._disk.exclusive(self.source, stage, flight.keys, wait) as held:
                if held and self._shared(state, stage, flight):
                    flight.done.set()
                    return
                self._fetch(state, stage, flight)  # saves to /tmp before the lock is released
        finally:
            del state, flight  # a failed fetch's traceback keeps this frame too (``_fetch`` says why)

    def _shared(self, state: Stage, stage: str, flight: Flight) -> bool:
        """Answer ``flight`` from a file another process wrote while this one waited for the lock (fetched
        after the flight's ``after``, or within the TTL); False when there is none that answers it whole."""
        with state.lock:
            if not self._read_disk(state, stage):
                return False
            now = self._clock()
            after = flight.after if flight.after is not None else max(now - state.lifetime, self._expired_at)
            if self._whole:
                data = state.data
                if data is None or data.at <= after or data.withheld or flight.keys is not None:
                    return False  # withheld: secrets the file could not carry, which only a fetch knows
                flight.data = data
            else:
                keys = flight.keys or frozenset()
                entries = state.entries
                if not all(key in entries and entries[key][1] > after for key in keys):
                    return False
                flight.entries = {key: entries[key][0] for key in keys}
            if flight in state.flights:
                state.flights.remove(flight)
                state.failures = 0
                state.throttled = None
                state.backoff_until = -math.inf
                state.warned = None
        self.stats.count("shared")
        log.debug("answered by another process's fetch: source=%s stage=%s", self.source.url, stage)
        return True

    def _fetch(self, state: Stage, stage: str, flight: Flight) -> None:
        url = self.source.url
        # The fetch's AWS calls get the flight's deadline (the call layer reads it; a transport may enforce it).
        deadline = DEADLINE.set(time.monotonic() + max(0.0, flight.deadline - self._clock()))
        t0 = time.perf_counter()
        try:
            try:
                if self._whole and flight.keys is not None:
                    fetched = self.source.fetch_keys(stage, flight.keys)  # type: ignore[attr-defined]
                else:
                    fetched = self.source.fetch(stage, () if flight.keys is None else flight.keys)
            finally:
                DEADLINE.reset(deadline)
        except BaseException as exc:
            seconds = time.perf_counter() - t0
            error = exc
            if not isinstance(exc, (ConfstageError, KeyboardInterrupt, SystemExit)):
                error = SourceError(
                    f"unexpected {type(exc).__name__} while fetching stage {stage!r}", source=url, operation="fetch"
                )
                error.__cause__ = exc
            with state.lock:
                if flight in state.flights:
                    state.flights.remove(flight)
                    self._failed(state, self._clock(), error)
                    self.stats.fetched(seconds, failed=True, throttled=bool(getattr(error, "throttled", False)))
            log.debug("fetch failed: source=%s stage=%s after %.1f ms", url, stage, seconds * 1000)
            clear_frames(exc)  # the frames below this one: their locals go, their stack stays
            flight.error = error
            flight.done.set()
            # The error's traceback keeps this frame, and this frame's caller (``_fly``), past their return: neither
            # may hold the flight (or the stage) that holds the error, or every failure leaves a cycle behind.
            del flight, state, error
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return
        seconds = time.perf_counter() - t0
        with state.lock:
            current = flight in state.flights
            if current:
                state.flights.remove(flight)
                state.failures = 0
                state.throttled = None
                state.backoff_until = -math.inf
                state.warned = None
            self.stats.fetched(seconds)
            if getattr(fetched, "region", None) is not None:  # served by a fallback region (confstage.sources.failover)
                self.stats.count("fallback")
            record(state, flight, fetched, whole=self._whole)
            # A whole stage is written whole; a per-key fetch appends just its keys (linear in what it learnt).
            stored = file_of(state, flight.keys) if self._disk is not None else None
        log.debug("fetched: source=%s stage=%s keys=%d in %.1f ms", url, stage, len(fetched), seconds * 1000)
        if stored is not None and self._disk is not None:  # before waking anyone: a get that returned has saved
            if self._whole:
                self._disk.save(self.source, stage, stored)
            else:
                self._disk.append(self.source, stage, stored, functools.partial(self._whole_file, state))
        flight.done.set()

    def _whole_file(self, state: Stage) -> StageFile:
        with state.lock:
            return file_of(state)

    def _failed(self, state: Stage, now: float, error: BaseException | None) -> None:
        """Count a failure and back off; with a value in hand, for up to the stage's TTL (the fleet's quota)."""
        state.failures += 1
        held = state.data is not None or bool(state.entries)
        cap = max(self.backoff.cap, state.lifetime) if held else self.backoff.cap
        state.backoff_until = now + min(self.backoff.delay(state.failures, cap=cap), cap)
        state.throttled = error if getattr(error, "throttled", False) else None

    def _answer_from(self, flight: Flight, stage: str, keys: Sequence[str]) -> Answer:
        """The answer a finished flight gives ``keys`` (from that flight's own result, not later ones)."""
        lifetime = self._state(stage).lifetime
        if flight.data is not None:
            answer = self._fresh(Stage(lifetime), keys, flight.data.at, math.inf, flight.data)
            assert answer is not None  # pinned data always answers
            return answer[0], flight.data.at + lifetime, flight.data
        found = {k: v for k in keys if (v := flight.entries.get(k)) is not None}
        for key in keys:
            if key in flight.errors:
                raise flight.errors[key].with_traceback(None)
            if key not in flight.entries:
                raise SourceError(
                    f"a fetch of stage keys ended without key {key!r}", source=self.source.url, operation="fetch"
                )
        return found, flight.started + lifetime, None

    # -- /tmp --------------------------------------------------------------------------------

    def _read_disk(self, state: Stage, stage: str) -> bool:
        """Merge the /tmp file of the stage into memory (newer data wins); False when there is none."""
        assert self._disk is not None
        stored, state.disk_mark = self._disk.load_new(self.source, stage, state.disk_mark)
        if stored is None:
            return False
        merge_file(state, stored, whole=self._whole)
        return True

    def _state(self, stage: str) -> Stage:
        """What is known of ``stage``; at most ``_MAX_STAGES`` stages are kept, the least recently used evicted.

        An LRU on the dict's order (a hit moves its stage last), not ``cachetools.LRUCache``: importing that
        costs 5.5 ms of cold start, and tests/test_bounds.py checks this one against it.
        """
        with self._stages_lock:
            state = self._stages.pop(stage, None)
            if state is None:
                if len(self._stages) >= _MAX_STAGES:
                    del self._stages[next(iter(self._stages))]  # made-up stage names cannot grow memory
                lifetime = self.ttl * (1.0 - self.ttl_jitter * self._random()) if self.ttl_jitter else self.ttl
                state = Stage(lifetime)
            self._stages[stage] = state
        return state
