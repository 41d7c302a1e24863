"""Fetches in progress: one flight per stage (or key set), how long callers wait, and how failures back off.

A flight runs a source's fetch, on its own thread by default (``run_in_thread``) so that a caller can
stop waiting for it at its deadline, or inline (``run_inline``) for sources without I/O and for
simulations on a virtual clock. ``Backoff`` spaces refreshes after failures: growing, jittered delays.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from ._backoff import Backoff, urandom_fraction
from .errors import ConfstageError

if TYPE_CHECKING:
    from .stages import StageData

__all__ = ["Backoff", "Flight", "clear_frames", "run_in_thread", "run_inline", "urandom_fraction"]


def run_in_thread(work: Callable[[], None]) -> None:
    """Run a flight on its own daemon thread, so that callers can stop waiting for it."""
    threading.Thread(target=work, name="confstage-fetch", daemon=True).start()


def run_inline(work: Callable[[], None]) -> None:
    """Run a flight in the caller's thread (sources without I/O; simulations on a virtual clock)."""
    work()


class Flight:
    """One fetch in progress: started by one caller, awaited by any, finished by whoever runs it."""

    __slots__ = ("after", "data", "deadline", "done", "entries", "error", "errors", "keys", "started")

    def __init__(self, keys: frozenset[str] | None, started: float, deadline: float) -> None:
        self.keys = keys  # None: the whole stage
        self.after: float | None = None  # a forced refresh: only data fetched after this will do
        self.started = started
        self.deadline = deadline
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.data: StageData | None = None  # what a whole-stage flight loaded
        self.entries: dict[str, str | None] = {}  # what a per-key flight found (None: absent)
        self.errors: dict[str, ConfstageError] = {}  # per-key flight: keys whose value did not open

    def covers(self, keys: Collection[str]) -> bool:
        return self.keys is None or self.keys.issuperset(keys)


def clear_frames(exc: BaseException) -> None:
    """Drop the local variables held by a failed fetch's traceback (and its causes'), keeping the stack."""
    import traceback

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        traceback.clear_frames(current.__traceback__)
        current = current.__cause__ or current.__context__
