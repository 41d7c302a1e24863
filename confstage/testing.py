"""Helpers for testing code that uses confstage: an in-memory source (more arrives with the pytest plugin)."""

from __future__ import annotations

from collections.abc import Collection, Mapping

from .sources.base import Fetched, SourceURL

__all__ = ["MemorySource"]


class MemorySource:
    """Values held in a dict ``{stage: {key: value}}``; a whole stage per fetch, like DynamoDB stage-key."""

    whole_stage = True
    persist = False

    def __init__(
        self,
        values: Mapping[str, Mapping[str, str]] | None = None,
        *,
        secret: Collection[str] = (),
        url: str = "memory://",
    ) -> None:
        self.url = url
        self.ttl: float | None = None
        self.values: dict[str, dict[str, str]] = {s: dict(v) for s, v in (values or {}).items()}
        self.secret = frozenset(secret)
        self.fetches = 0

    @classmethod
    def from_url(cls, url: SourceURL) -> MemorySource:
        return cls(url=url.url)

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        self.fetches += 1
        values = self.values.get(stage, {})
        return Fetched(values, secret=self.secret & values.keys())

    def __repr__(self) -> str:
        return f"MemorySource({self.url!r}, stages={sorted(self.values)!r})"
