"""What the memory layer holds of one stage of one source, and the fetches in flight for it.

``StageMemory`` records what fetches bring (``record``) and what a /tmp snapshot holds (``absorb``), and
gives its own snapshot for /tmp (``snapshot``); ``cache.CachedSource`` decides when to ask, whom to wait
for and what is fresh.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Collection, Mapping, Sequence

from .disk import Snapshot
from .errors import ConfstageError
from .sources.base import Fetched

__all__ = ["Answer", "Flight", "StageData", "StageMemory", "run_in_thread", "run_inline"]


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
        self.withheld = frozenset(withheld)  # keys the /tmp snapshot left out: only a fetch knows them

    def __repr__(self) -> str:
        return f"StageData(keys={len(self.values)}, at={self.at})"

    def answer(self, keys: Sequence[str], ttl: float, *, secret_until: float) -> Answer | None:
        """This load's answer for ``keys``, fresh for ``ttl``; None when it cannot give one.

        A key whose value did not open raises its error (for that key only); a secret loaded before
        ``secret_until``, or a key the /tmp snapshot left out, needs a fetch.
        """
        found: dict[str, str] = {}
        for key in keys:
            value = self.values.get(key)
            if value is not None:
                if self.at < secret_until and key in self.secret:
                    return None
                found[key] = value
            elif key in self.errors:
                raise self.errors[key].with_traceback(None)
            elif key in self.withheld:
                return None  # a secret the /tmp snapshot left out: only a fetch knows it
        return found, self.at + ttl, self


# What a lookup answers: the values found (absent keys left out), until when that answer is fresh, and the
# stage load it came from (None for per-key sources), which an invocation pins for its later reads.
Answer = tuple[dict[str, str], float, StageData | None]


def run_in_thread(work: Callable[[], None]) -> None:
    """Run a flight on its own daemon thread, so that callers can stop waiting for it."""
    threading.Thread(target=work, name="confstage-fetch", daemon=True).start()


def run_inline(work: Callable[[], None]) -> None:
    """Run a flight in the caller's thread (sources without I/O; simulations on a virtual clock)."""
    work()


class Flight:
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


class StageMemory:
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
        self.flights: list[Flight] = []  # fetches in progress (whole stage: at most one alive)
        self.failures = 0  # failed fetches in a row
        self.backoff_until = -math.inf  # after a failure: serve stale without asking until then
        self.warned: int | None = None  # the failure count last reported in a warning (None: none since success)
        self.lock = threading.Lock()  # held for decisions and /tmp reads, never while waiting on a fetch

    def answer(
        self, keys: Sequence[str], ref: float, ttl: float, *, not_before: float, secret_until: float
    ) -> Answer | None:
        """The entries' answer for ``keys`` (per-key sources): each loaded within ``ttl`` of ``ref``, after
        ``not_before``, a secret after ``secret_until``; None when one is not. A key whose value did not open
        raises its error."""
        found: dict[str, str] = {}
        expires = math.inf
        for key in keys:
            entry = self.entries.get(key)
            if entry is None:
                failed = self.errors.get(key)
                if failed is not None and ref <= failed[1] + ttl and failed[1] > not_before:
                    raise failed[0].with_traceback(None)
                return None
            value, loaded = entry
            if not (ref <= loaded + ttl and loaded > not_before):
                return None
            if loaded < secret_until and key in self.secret:
                return None
            if value is not None:
                found[key] = value
            expires = min(expires, loaded + ttl)
        return found, expires, None

    def record(self, flight: Flight, fetched: Fetched, *, whole: bool) -> None:
        """Record a flight's result; an older flight that finishes late never replaces newer data."""
        at = flight.started
        if whole:
            flight.data = StageData(fetched, at, secret=fetched.secret, errors=fetched.errors)
            if self.data is None or self.data.at <= at:
                self.data = flight.data
            return
        keys = flight.keys or frozenset()
        for key in keys:
            value = fetched.get(key)
            error = fetched.errors.get(key)
            if error is not None:
                flight.errors[key] = error
            else:
                flight.entries[key] = value
            known = self.entries.get(key)
            if known is not None and known[1] > at:
                continue
            if error is not None:
                self.errors[key] = (error, at)
                self.entries.pop(key, None)
                continue
            self.errors.pop(key, None)
            self.entries[key] = (value, at)
            if key in fetched.secret:
                self.secret.add(key)
            else:
                self.secret.discard(key)

    def absorb(self, snapshot: Snapshot, *, whole: bool) -> None:
        """Take in a /tmp snapshot (newer data wins)."""
        if whole:
            at = snapshot.complete_at
            if at is None or (self.data is not None and self.data.at >= at):
                return
            values = {k: v for k, (v, _) in snapshot.values.items() if v is not None}
            values.update((k, v) for k, (v, _) in snapshot.secrets.items())
            self.data = StageData(values, at, secret=snapshot.secrets, withheld=snapshot.withheld)
            return
        for entries, secret in ((snapshot.values, False), (snapshot.secrets, True)):
            for key, (value, at) in entries.items():
                known = self.entries.get(key)
                if known is None or known[1] < at:
                    self.entries[key] = (value, at)
                    self.errors.pop(key, None)
                    if secret:
                        self.secret.add(key)

    def snapshot(self) -> Snapshot:
        """What goes to /tmp: plain values, and the secrets apart (the disk layer seals them, or withholds them).

        Keys whose value did not open are withheld too, so that a new process fetches them again instead of
        taking them for absent.
        """
        values: dict[str, tuple[str | None, float]] = {}
        secrets: dict[str, tuple[str, float]] = {}
        data = self.data
        if data is not None:
            for key, value in data.values.items():
                if key in data.secret:
                    secrets[key] = (value, data.at)
                else:
                    values[key] = (value, data.at)
            return Snapshot(values, secrets, data.at, frozenset(data.errors) | data.withheld)
        for key, (maybe, at) in self.entries.items():
            if key in self.secret and maybe is not None:
                secrets[key] = (maybe, at)
            else:
                values[key] = (maybe, at)
        return Snapshot(values, secrets, None)
