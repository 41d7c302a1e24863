"""What a cache layer knows of one stage of one source, and how that goes to and from the /tmp file.

A whole-stage source's knowledge is one ``StageData`` per load, never changed once made (an invocation
can pin it); a per-key source's is an entry per key with its own time. ``Stage`` holds either, plus what
the cache layer needs to decide what to do next (flights in progress, failures, backoff).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING

from confstage.errors import ConfstageError

from .disk import Mark, StageFile

if TYPE_CHECKING:
    from confstage.sources.base import Fetched

    from .flight import Flight

__all__ = ["Answer", "Stage", "StageData", "answer", "file_of", "merge_file", "record", "refreshed"]


class StageData:
    """One load of a whole stage; never changed once made, so an invocation can hold on to it."""

    __slots__ = ("at", "errors", "refreshed", "secret", "values", "version", "withheld")

    def __init__(
        self,
        values: Mapping[str, str],
        at: float,
        *,
        secret: Collection[str] = (),
        errors: Mapping[str, ConfstageError] | None = None,
        withheld: Collection[str] = (),
        refreshed: Mapping[str, float] | None = None,
        version: str | None = None,
    ) -> None:
        self.values = dict(values)
        self.version = version  # what the store calls this version (AppConfig's label), when it says
        self.at = at
        self.secret = frozenset(secret)
        self.errors: Mapping[str, ConfstageError] = dict(errors) if errors else {}
        self.withheld = frozenset(withheld)  # secrets a /tmp file could not give back: fetch to know them
        # Keys fetched again on their own since the load (a forced refresh of a source that ``refreshes_keys``),
        # and when; they still age with the load (``at``), the conservative reading.
        self.refreshed: Mapping[str, float] = refreshed or {}

    def __repr__(self) -> str:
        return f"StageData(keys={len(self.values)}, at={self.at})"


# What a lookup answers: the values found (absent keys left out), until when that answer is fresh, and the
# stage load it came from (None for per-key sources), which an invocation pins for its later reads.
Answer = tuple[dict[str, str], float, StageData | None]


class Stage:
    """What is known of one stage of one source."""

    __slots__ = (
        "backoff_until",
        "data",
        "disk_mark",
        "entries",
        "errors",
        "failures",
        "flights",
        "lifetime",
        "lock",
        "secret",
        "throttled",
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
        self.throttled: BaseException | None = None  # the last failure, when the service refused for rate
        self.warned: int | None = None  # the failure count last reported in a warning (None: none since success)
        self.lock = threading.Lock()  # held for decisions and /tmp reads, never while waiting on a fetch
        self.disk_mark: Mark | None = None  # how far the /tmp files were read (``DiskCache.load_new``)


def answer(
    state: Stage,
    keys: Sequence[str],
    ref: float,
    ttl: float,
    pin: StageData | None,
    *,
    whole: bool,
    not_before: float,
    max_stale: float,
    secret_max_stale: float,
) -> Answer | None:
    """Answer ``keys`` from what ``state`` knows, if every key is known and fresh as of ``ref``; else None.

    Fresh: loaded within ``ttl`` of ``ref`` and after ``not_before`` (``expire()``). A ``pin`` (a load an
    invocation or the view already answered from) answers whatever its age within ``max_stale``. Secrets
    older than ``secret_max_stale`` are not answered: a rotated password must not live on for long. A
    key whose value did not open raises its error, for that key only.
    """
    secret_until = ref - secret_max_stale
    if whole:
        data: StageData | None
        if pin is not None and ref - pin.at <= max_stale:
            data = pin
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
                return None  # a secret the /tmp file left out: only a fetch knows it
        return found, data.at + ttl, data
    found = {}
    expires = math.inf
    for key in keys:
        entry = state.entries.get(key)
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


def record(state: Stage, flight: Flight, fetched: Fetched, *, whole: bool) -> None:
    """Record a flight's result; an older flight that finishes late never replaces newer data."""
    at = flight.started
    if whole and flight.keys is not None and state.data is not None:
        flight.data = state.data = refreshed(state.data, flight.keys, fetched, at)
        return
    if whole:
        flight.data = StageData(fetched, at, secret=fetched.secret, errors=fetched.errors, version=fetched.version)
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


def refreshed(base: StageData, keys: Collection[str], fetched: Fetched, at: float) -> StageData:
    """A stage load with ``keys`` replaced by what a fetch of just those keys found (absent ones removed)."""
    values = {k: v for k, v in base.values.items() if k not in keys}
    values.update(fetched)
    errors = {k: e for k, e in base.errors.items() if k not in keys}
    errors.update(fetched.errors)
    secret = (base.secret - set(keys)) | fetched.secret
    times = {**base.refreshed, **dict.fromkeys(keys, at)}
    return StageData(
        values,
        base.at,
        secret=secret,
        errors=errors,
        withheld=base.withheld - set(keys),
        refreshed=times,
        version=base.version,
    )


def merge_file(state: Stage, stored: StageFile, *, whole: bool) -> None:
    """Take what a /tmp file knows into memory: a whole stage if newer than the one held, else newer entries."""
    if whole:
        at = stored.complete_at
        if at is None or (state.data is not None and state.data.at >= at):
            return
        values = {k: v for k, (v, _) in stored.values.items() if v is not None}
        values.update((k, v) for k, (v, _) in stored.secrets.items())
        state.data = StageData(values, at, secret=stored.secrets, withheld=stored.withheld, version=stored.version)
        return
    for entries, secret in ((stored.values, False), (stored.secrets, True)):
        for key, (value, at) in entries.items():
            known = state.entries.get(key)
            if known is None or known[1] < at:
                state.entries[key] = (value, at)
                state.errors.pop(key, None)
                if secret:
                    state.secret.add(key)


def file_of(state: Stage, keys: Collection[str] | None = None) -> StageFile:
    """What goes to /tmp: plain values, and the secrets apart (the disk layer seals or withholds them).

    Keys whose value did not open are listed as withheld, so that a new process fetches them again
    instead of taking them for absent. ``keys``: of a per-key source, only these entries (what one fetch learnt).
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
        return StageFile(values, secrets, data.at, frozenset(data.errors) | data.withheld, data.version)
    entries = state.entries
    chosen = entries.items() if keys is None else ((k, entries[k]) for k in keys if k in entries)
    for key, (maybe, at) in chosen:
        if key in state.secret and maybe is not None:
            secrets[key] = (maybe, at)
        else:
            values[key] = (maybe, at)
    return StageFile(values, secrets, None)
