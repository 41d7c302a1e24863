"""The caching layer in front of one source: memory (TTL), then the /tmp snapshot, then the source.

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

Times come from an injected wall clock (``time.time``): snapshots are shared across processes
through /tmp, so their times must compare across processes; tests pass a fake clock.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence

from . import _log as log
from .disk import DiskCache, Snapshot
from .errors import ConfstageError, SourceError
from .metrics import SourceStats
from .sources.base import Fetched, Source
from .variables import DEFAULT_FETCH_TIMEOUT, DEFAULT_REFRESH_TIMEOUT

__all__ = [
    "Answer",
    "Backoff",
    "CachedSource",
    "StageData",
    "run_in_thread",
    "run_inline",
]


_MAX_STAGES = 1024


class StageData:
    """One load of a whole stage; never changed once made, so an invocation can hold on to it."""

    __slots__ = ("at", "errors", "secret", "values", "withheld")

    def __init__(
        self,
        values: Mapping[str, str],
        at: float,
        *,
        secret: Collection[str] = (),
        errors: Mapping[str, ConfstageError] | None = None,
        withheld: Collection[str] = (),
    ) -> None:
        self.values = dict(values)
        self.at = at
        self.secret = frozenset(secret)
        self.errors: Mapping[str, ConfstageError] = dict(errors) if errors else {}
        self.withheld = frozenset(withheld)  # secrets a /tmp snapshot could not give back: fetch to know them

    def __repr__(self) -> str:
        return f"StageData(keys={len(self.values)}, at={self.at})"


# What a lookup answers: the values found (absent keys left out), until when that answer is fresh, and the
# stage load it came from (None for per-key sources), which an invocation pins for its later reads.
Answer = tuple[dict[str, str], float, StageData | None]


class Backoff:
    """Growing, jittered delays after consecutive failures: ``base·2^(n-1)`` capped at ``cap``, times 0.5 to 1."""

    def __init__(self, base: float = 2.0, cap: float = 60.0, random: Callable[[], float] | None = None) -> None:
        self.base = base
        self.cap = cap
        self._random = random or _urandom_fraction

    def __repr__(self) -> str:
        return f"Backoff(base={self.base}, cap={self.cap})"

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row."""
        ceiling: float = min(self.cap, self.base * 2.0 ** min(max(failures, 1) - 1, 30))
        return ceiling * (0.5 + 0.5 * self._random())


def _urandom_fraction() -> float:
    # Not the random module: importing it costs milliseconds on the cold path, and this runs only on failures.
    return int.from_bytes(os.urandom(7), "big") / 2**56


def run_in_thread(work: Callable[[], None]) -> None:
    """Run a flight on its own daemon thread, so that callers can stop waiting for it."""
    threading.Thread(target=work, name="confstage-fetch", daemon=True).start()


def run_inline(work: Callable[[], None]) -> None:
    """Run a flight in the caller's thread (sources without I/O; simulations on a virtual clock)."""
    work()


class _Flight:
    """One fetch in progress: started by one caller, awaited by any, finished by whoever runs it."""

    __slots__ = ("data", "deadline", "done", "entries", "error", "errors", "keys", "started")

    def __init__(self, keys: frozenset[str] | None, started: float, deadline: float) -> None:
        self.keys = keys  # None: the whole stage
        self.started = started
        self.deadline = deadline
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.data: StageData | None = None  # what a whole-stage flight loaded
        self.entries: dict[str, str | None] = {}  # what a per-key flight found (None: absent)
        self.errors: dict[str, ConfstageError] = {}  # per-key flight: keys whose value did not open

    def covers(self, keys: Collection[str]) -> bool:
        return self.keys is None or self.keys.issuperset(keys)


class _Stage:
    """What is known of one stage of one source."""

    __slots__ = (
        "backoff_until",
        "data",
        "entries",
        "errors",
        "failures",
        "flights",
        "lifetime",
        "lock",
        "secret",
        "warned",
    )

    def __init__(self, lifetime: float) -> None:
        self.lifetime = lifetime  # this stage's TTL in this process: the configured TTL less its jitter
        self.data: StageData | None = None  # whole-stage sources: the latest load
        self.entries: dict[str, tuple[str | None, float]] = {}  # per-key sources: key -> (value or None, at)
        self.secret: set[str] = set()  # per-key sources: which entries are secrets
        self.errors: dict[str, tuple[ConfstageError, float]] = {}  # per-key: keys whose value did not open, when
        self.flights: list[_Flight] = []  # fetches in progress (whole stage: at most one alive)
        self.failures = 0  # failed fetches in a row
        self.backoff_until = -math.inf  # after a failure: serve stale without asking until then
        self.warned: int | None = None  # the failure count last reported in a warning (None: none since success)
        self.lock = threading.Lock()  # held for decisions and /tmp reads, never while waiting on a fetch


class CachedSource:
    """A source behind memory and /tmp caches; ``lookup`` is the way in."""

    def __init__(
        self,
        source: Source,
        *,
        ttl: float,
        max_stale: float,
        clock: Callable[[], float] = time.time,
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
        self._random = random or _urandom_fraction
        self.fetch_timeout = fetch_timeout
        self.refresh_timeout = min(refresh_timeout, fetch_timeout)
        self.backoff = backoff or Backoff()
        self.stats = SourceStats()
        self._whole = source.whole_stage
        self._clock = clock
        self._disk = disk if source.persist else None
        # Sources that do no I/O (env://, test doubles marked inline) are not worth a thread.
        self._run = run or (run_inline if getattr(source, "inline", False) else run_in_thread)
        self._stages: dict[str, _Stage] = {}
        self._stages_lock = threading.Lock()
        self._expired_at = -math.inf  # nothing loaded at or before this time is fresh (expire())

    def __repr__(self) -> str:
        return f"CachedSource({self.source.url!r}, ttl={self.ttl})"

    # -- the way in --------------------------------------------------------------------------

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
        ttl = state.lifetime if max_age is None else max_age
        if newer_than is None:
            answer = self._fresh(state, keys, now if at is None else min(at, now), ttl, pin)
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
                if stale is not None and now < state.backoff_until:
                    return self._serve_stale(state, stage, stale, len(keys), "backing off after a failed refresh")
                if newer_than is None and self._disk is not None and self._read_disk(state, stage):
                    answer = self._fresh(state, keys, now if at is None else min(at, now), ttl, None)
                    if answer is not None:
                        self.stats.count("disk_hits")
                        log.debug("read from /tmp cache: source=%s stage=%s", self.source.url, stage)
                        return answer
                    if stale is None:  # a restarted process: the snapshot may still be good for stale-on-error
                        stale = self._fresh(state, keys, now, self.max_stale, None, stale=True)
                flight = _Flight(None if self._whole else frozenset(keys), now, now + self.fetch_timeout)
                state.flights.append(flight)
                launched = True
        if launched:  # outside the lock: an inline flight takes it to record its result
            self._run(lambda: self._fly(state, stage, flight))
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
        raise error.with_traceback(None)

    def lifetime(self, stage: str) -> float:
        """The TTL this process gives ``stage`` of this source: the configured TTL less its random jitter."""
        return self._state(stage).lifetime

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
        self,
        state: _Stage,
        keys: Sequence[str],
        ref: float,
        ttl: float,
        pin: StageData | None,
        *,
        stale: bool = False,
    ) -> Answer | None:
        """Answer from memory if every key is known and was loaded within ``ttl`` of ``ref``; else None.

        A key whose value did not open raises its error (for that key only). ``stale=True`` ignores
        ``expire()`` (an expired value may still be served when a refresh fails).
        """
        not_before = -math.inf if stale else self._expired_at
        # Secrets have a bound of their own when served stale: a rotated password must not live on for long.
        secret_until = ref - self.secret_max_stale if stale else -math.inf
        if self._whole:
            data: StageData | None
            if pin is not None and ref - pin.at <= self.max_stale:
                data = pin  # the load an invocation (or the view) already answered from: no TTL, the hard bounds hold
                secret_until = ref - self.secret_max_stale
            else:
                data = state.data
                if data is None or not (ref <= data.at + ttl and data.at > not_before):
                    return None
            found: dict[str, str] = {}
            for key in keys:
                value = data.values.get(key)
                if value is not None:
                    if data.at < secret_until and key in data.secret:
                        return None
                    found[key] = value
                elif key in data.errors:
                    raise data.errors[key].with_traceback(None)
                elif key in data.withheld:
                    return None  # a secret the /tmp snapshot left out: only a fetch knows it
            return found, data.at + ttl, data
        found = {}
        expires = math.inf
        entries = state.entries
        for key in keys:
            entry = entries.get(key)
            if entry is None:
                failed = state.errors.get(key)
                if failed is not None and ref <= failed[1] + ttl and failed[1] > not_before:
                    raise failed[0].with_traceback(None)
                return None
            value, loaded = entry
            if not (ref <= loaded + ttl and loaded > not_before):
                return None
            if loaded < secret_until and key in state.secret:
                return None
            if value is not None:
                found[key] = value
            expires = min(expires, loaded + ttl)
        return found, expires, None

    def _since(self, state: _Stage, keys: Sequence[str], newer_than: float) -> Answer | None:
        """Answer from data fetched at or after ``newer_than``, if there is such data for every key."""
        if self._whole:
            data = state.data
            if data is None or data.at <= newer_than:
                return None
            return self._fresh(state, keys, data.at, math.inf, data)
        if any(key not in state.entries or state.entries[key][1] <= newer_than for key in keys):
            return None
        return self._fresh(state, keys, newer_than, math.inf, None, stale=True)

    def _serve_stale(self, state: _Stage, stage: str, stale: Answer, count: int, why: str) -> Answer:
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

    def _flight_for(self, state: _Stage, keys: Collection[str], now: float, newer_than: float | None) -> _Flight | None:
        """A live flight that will answer ``keys`` (writing off any that outlived their deadline)."""
        found = None
        for flight in list(state.flights):
            if now > flight.deadline and not flight.done.is_set():
                state.flights.remove(flight)  # hung: written off; a late answer is still kept
                self._failed(state, now)
                self.stats.fetched(now - flight.started, failed=True)
                log.debug("fetch written off after %.1f s: source=%s", now - flight.started, self.source.url)
            elif found is None and flight.covers(keys) and (newer_than is None or flight.started > newer_than):
                found = flight
        return found

    def _fly(self, state: _Stage, stage: str, flight: _Flight) -> None:
        """Run one fetch and record what it brought (or how it failed); waiters are woken at the end."""
        url = self.source.url
        t0 = time.perf_counter()
        try:
            fetched = self.source.fetch(stage, () if flight.keys is None else flight.keys)
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
                    self._failed(state, self._clock())
                    self.stats.fetched(seconds, failed=True, throttled=bool(getattr(error, "throttled", False)))
            log.debug("fetch failed: source=%s stage=%s after %.1f ms", url, stage, seconds * 1000)
            flight.error = error
            flight.done.set()
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return
        seconds = time.perf_counter() - t0
        with state.lock:
            current = flight in state.flights
            if current:
                state.flights.remove(flight)
                state.failures = 0
                state.backoff_until = -math.inf
                state.warned = None
            self.stats.fetched(seconds)
            self._merge(state, flight, fetched)
            snapshot = _snapshot(state) if self._disk is not None else None
        log.debug("fetched: source=%s stage=%s keys=%d in %.1f ms", url, stage, len(fetched), seconds * 1000)
        if snapshot is not None and self._disk is not None:
            self._disk.save(self.source, stage, snapshot)  # before waking anyone: a get that returned has saved
        flight.done.set()

    def _failed(self, state: _Stage, now: float) -> None:
        state.failures += 1
        state.backoff_until = now + self.backoff.delay(state.failures)

    def _merge(self, state: _Stage, flight: _Flight, fetched: Fetched) -> None:
        """Record a flight's result; an older flight that finishes late never replaces newer data."""
        at = flight.started
        if self._whole:
            flight.data = StageData(fetched, at, secret=fetched.secret, errors=fetched.errors)
            if state.data is None or state.data.at <= at:
                state.data = flight.data
            return
        keys = flight.keys or frozenset()
        for key in keys:
            value = fetched.get(key)
            error = fetched.errors.get(key)
            if error is not None:
                flight.errors[key] = error
            else:
                flight.entries[key] = value
            known = state.entries.get(key)
            if known is not None and known[1] > at:
                continue
            if error is not None:
                state.errors[key] = (error, at)
                state.entries.pop(key, None)
                continue
            state.errors.pop(key, None)
            state.entries[key] = (value, at)
            if key in fetched.secret:
                state.secret.add(key)
            else:
                state.secret.discard(key)

    def _answer_from(self, flight: _Flight, stage: str, keys: Sequence[str]) -> Answer:
        """The answer a finished flight gives ``keys`` (from that flight's own result, not later ones)."""
        lifetime = self._state(stage).lifetime
        if flight.data is not None:
            answer = self._fresh(_Stage(lifetime), keys, flight.data.at, math.inf, flight.data)
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

    def _read_disk(self, state: _Stage, stage: str) -> bool:
        """Merge the /tmp snapshot of the stage into memory (newer data wins); False when there is none."""
        assert self._disk is not None
        snapshot = self._disk.load(self.source, stage)
        if snapshot is None:
            return False
        if self._whole:
            at = snapshot.complete_at
            if at is None or (state.data is not None and state.data.at >= at):
                return True
            values = {k: v for k, (v, _) in snapshot.values.items() if v is not None}
            values.update((k, v) for k, (v, _) in snapshot.secrets.items())
            state.data = StageData(values, at, secret=snapshot.secrets, withheld=snapshot.withheld)
            return True
        for entries, secret in ((snapshot.values, False), (snapshot.secrets, True)):
            for key, (value, at) in entries.items():
                known = state.entries.get(key)
                if known is None or known[1] < at:
                    state.entries[key] = (value, at)
                    state.errors.pop(key, None)
                    if secret:
                        state.secret.add(key)
        return True

    def _state(self, stage: str) -> _Stage:
        state = self._stages.get(stage)
        if state is None:
            lifetime = self.ttl * (1.0 - self.ttl_jitter * self._random()) if self.ttl_jitter else self.ttl
            with self._stages_lock:
                if len(self._stages) >= _MAX_STAGES:
                    self._stages.clear()  # made-up stage names cannot grow memory without bound
                state = self._stages.setdefault(stage, _Stage(lifetime))
        return state


def _snapshot(state: _Stage) -> Snapshot:
    """What goes to /tmp: plain values, and the secrets apart (the disk layer seals or withholds them).

    Keys whose value did not open are listed as withheld, so that a new process fetches them again
    instead of taking them for absent.
    """
    values: dict[str, tuple[str | None, float]] = {}
    secrets: dict[str, tuple[str, float]] = {}
    data = state.data
    if data is not None:
        for key, value in data.values.items():
            if key in data.secret:
                secrets[key] = (value, data.at)
            else:
                values[key] = (value, data.at)
        return Snapshot(values, secrets, data.at, frozenset(data.errors) | data.withheld)
    for key, (maybe, at) in state.entries.items():
        if key in state.secret and maybe is not None:
            secrets[key] = (maybe, at)
        else:
            values[key] = (maybe, at)
    return Snapshot(values, secrets, None)
