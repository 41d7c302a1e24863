"""Test doubles for the cache layer: a controllable source that counts its fetches."""

from __future__ import annotations

import threading
from collections.abc import Collection

from confstage import SourceError
from confstage.sources import Fetched


class DictSource:
    """Values by stage; can be told to fail or to block, and counts every fetch."""

    ttl: float | None = None

    def __init__(
        self,
        values: dict[str, dict[str, str]],
        *,
        whole_stage: bool = True,
        persist: bool = True,
        secret: Collection[str] = (),
        url: str = "dict://test",
    ) -> None:
        self.values = values
        self.whole_stage = whole_stage
        self.persist = persist
        self.secret = frozenset(secret)
        self.url = url
        self.fetches = 0
        self.failing: str | None = None  # an error code to raise instead of answering
        self.gate: threading.Event | None = None  # when set, fetch waits for it
        self._lock = threading.Lock()

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        with self._lock:
            self.fetches += 1
        if self.gate is not None:
            self.gate.wait(timeout=10)
        if self.failing:
            raise SourceError(
                f"failed with {self.failing}",
                source=self.url,
                operation="test:Fetch",
                throttled=self.failing == "ThrottlingException",
            )
        stage_values = self.values.get(stage, {})
        chosen = stage_values if self.whole_stage else {k: stage_values[k] for k in keys if k in stage_values}
        return Fetched(chosen, secret=self.secret & chosen.keys())
