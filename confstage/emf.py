"""CloudWatch Embedded Metric Format: one log line per invocation with confstage's counters.

Enabled with ``CONFSTAGE_METRICS=emf``, read when a client is built: the client then carries an
``Emitter`` of its own counters, and ``@confstage.handler`` calls ``emit`` after each invocation.
Each line carries the counts of that invocation only (deltas), so CloudWatch sums them naturally.
Never a key's value: only counts and milliseconds.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

__all__ = ["Emitter"]

NAMESPACE = "confstage"
_COUNTERS = {
    "hits": "CacheHits",
    "misses": "CacheMisses",
    "fetches": "Fetches",
    "errors": "FetchErrors",
    "throttled": "Throttled",
    "stale": "StaleServed",
    "disk_hits": "TmpCacheHits",
    "shared": "SharedFetches",
    "fallback": "FallbackReads",
}


class Emitter:
    """Prints the change in a client's counters since the previous line, as one EMF JSON line."""

    def __init__(
        self,
        stats: Callable[[], dict[str, Any]],
        *,
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.time,
        namespace: str | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        environ = os.environ if environ is None else environ
        self._stats = stats
        self._stream = stream
        self._clock = clock
        self._namespace = namespace or environ.get("CONFSTAGE_METRICS_NAMESPACE") or NAMESPACE
        self._function = environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def line(self, stage: str | None) -> str:
        """The EMF line for what happened since the last call."""
        stats = self._stats()
        current: dict[str, float] = {name: float(stats["total"][key]) for key, name in _COUNTERS.items()}
        current["FetchLatency"] = sum(s["fetch_ms_total"] for s in stats["sources"].values())
        with self._lock:
            delta = {name: current[name] - self._last.get(name, 0.0) for name in current}
            self._last = current
        units = dict.fromkeys(_COUNTERS.values(), "Count") | {"FetchLatency": "Milliseconds"}
        document: dict[str, Any] = {
            "_aws": {
                "Timestamp": int(self._clock() * 1000),
                "CloudWatchMetrics": [
                    {
                        "Namespace": self._namespace,
                        "Dimensions": [["FunctionName", "Stage"]],
                        "Metrics": [{"Name": name, "Unit": units[name]} for name in delta],
                    }
                ],
            },
            "FunctionName": self._function,
            "Stage": stage or "none",
            **{name: round(value, 3) if name == "FetchLatency" else int(value) for name, value in delta.items()},
        }
        return json.dumps(document, separators=(",", ":"))

    def emit(self, stage: str | None) -> None:
        """Print the line to stdout (Lambda ships stdout to CloudWatch Logs, which extracts EMF)."""
        stream = self._stream or sys.stdout
        stream.write(self.line(stage) + "\n")
        stream.flush()
