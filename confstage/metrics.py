"""Counters per source: what ``confstage.stats()`` reports."""

from __future__ import annotations

import threading
from typing import Any

__all__ = ["COUNTERS", "SourceStats"]

# shared: fetches another process of this machine made while this one waited for it (Managed Instances);
# fallback: fetches a fallback region served (confstage.failover)
COUNTERS = ("hits", "misses", "fetches", "errors", "throttled", "stale", "disk_hits", "shared", "fallback")


class SourceStats:
    """Hits, misses, fetches, errors, stale values served and fetch latency of one source."""

    __slots__ = (*COUNTERS, "_lock", "fetch_seconds_last", "fetch_seconds_max", "fetch_seconds_total")

    def __init__(self) -> None:
        self.hits = self.misses = self.fetches = self.errors = self.throttled = self.stale = self.disk_hits = 0
        self.shared = 0
        self.fallback = 0
        self.fetch_seconds_total = self.fetch_seconds_max = self.fetch_seconds_last = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"SourceStats({', '.join(f'{name}={getattr(self, name)}' for name in COUNTERS)})"

    def fetched(self, seconds: float, *, failed: bool = False, throttled: bool = False) -> None:
        with self._lock:
            self.fetches += 1
            self.errors += failed
            self.throttled += throttled
            self.fetch_seconds_total += seconds
            self.fetch_seconds_last = seconds
            self.fetch_seconds_max = max(self.fetch_seconds_max, seconds)

    def count(self, name: str, n: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + n)

    def as_dict(self) -> dict[str, Any]:
        with self._lock:
            fetches = self.fetches
            return {
                "hits": self.hits,
                "misses": self.misses,
                "fetches": fetches,
                "errors": self.errors,
                "throttled": self.throttled,
                "stale": self.stale,
                "disk_hits": self.disk_hits,
                "shared": self.shared,
                "fallback": self.fallback,
                "fetch_ms_total": round(self.fetch_seconds_total * 1000, 3),
                "fetch_ms_avg": round(self.fetch_seconds_total * 1000 / fetches, 3) if fetches else 0.0,
                "fetch_ms_max": round(self.fetch_seconds_max * 1000, 3),
                "fetch_ms_last": round(self.fetch_seconds_last * 1000, 3),
            }
