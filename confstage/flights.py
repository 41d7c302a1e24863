"""Fetches in progress: one flight per stage (or key set), how long callers wait, and how failures back off.

A flight runs a source's fetch, on its own thread by default (``run_in_thread``) so that a caller can
stop waiting for it at its deadline, or inline (``run_inline``) for sources without I/O and for
simulations on a virtual clock. ``Backoff`` spaces refreshes after failures: growing, jittered delays.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from .errors import ConfstageError

if TYPE_CHECKING:
    from .stages import StageData

__all__ = ["Backoff", "Flight", "run_in_thread", "run_inline", "urandom_fraction"]


class Backoff:
    """Growing, jittered delays after consecutive failures: ``base·2^(n-1)`` capped at ``cap``, times 0.5 to 1."""

    def __init__(self, base: float = 2.0, cap: float = 60.0, random: Callable[[], float] | None = None) -> None:
        self.base = base
        self.cap = cap
        self._random = random or urandom_fraction

    def __repr__(self) -> str:
        return f"Backoff(base={self.base}, cap={self.cap})"

    def delay(self, failures: int) -> float:
        """Seconds to wait after the ``failures``-th failure in a row."""
        ceiling: float = min(self.cap, self.base * 2.0 ** min(max(failures, 1) - 1, 30))
        return ceiling * (0.5 + 0.5 * self._random())


def urandom_fraction() -> float:
    # Not the random module: importing it costs milliseconds on the cold path, and this runs only on failures.
    return int.from_bytes(os.urandom(7), "big") / 2**56


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
