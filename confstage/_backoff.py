"""Growing, jittered delays: after failed refreshes (the cache layer) and unprocessed batches (the call layer)."""

from __future__ import annotations

import os
from collections.abc import Callable

__all__ = ["Backoff", "urandom_fraction"]


def urandom_fraction() -> float:
    """A uniform fraction in [0, 1) (not the random module: importing it costs milliseconds on the cold path)."""
    return int.from_bytes(os.urandom(7), "big") / 2**56


class Backoff:
    """``base·2^(n-1)`` capped at ``cap``, times 0.5 to 1 at random: the delay after the ``n``-th failure in a row."""

    __slots__ = ("_random", "base", "cap")

    def __init__(self, base: float = 2.0, cap: float = 60.0, random: Callable[[], float] | None = None) -> None:
        self.base = base
        self.cap = cap
        self._random = random or urandom_fraction

    def __repr__(self) -> str:
        return f"Backoff(base={self.base}, cap={self.cap})"

    def delay(self, failures: int, *, cap: float | None = None) -> float:
        """Seconds to wait after the ``failures``-th failure in a row (``cap`` for this delay, else ``self.cap``)."""
        ceiling: float = min(self.cap if cap is None else cap, self.base * 2.0 ** min(max(failures, 1) - 1, 30))
        return ceiling * (0.5 + 0.5 * self._random())
