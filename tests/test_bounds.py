"""Bounded memory without a cliff: past its bound, each table evicts one entry at a time (least recently used for
the stages a source knows), never everything at once.

Reproduced before: the views, the ARN -> stage memo and the per-stage caches were cleared wholesale when full, so
a function invoked under 2,000 rotating aliases paid about 30 µs per invocation instead of about 1 µs.
"""

from __future__ import annotations

from typing import Any

import pytest
from cachetools import LRUCache
from hypothesis import given, settings
from hypothesis import strategies as st

import confstage
from confstage import Config, cache, chain, client
from confstage.testing import MemorySource, lambda_context

from .fakes import DictSource


@settings(max_examples=100, deadline=None)
@given(accesses=st.lists(st.integers(0, 12), max_size=80), bound=st.integers(1, 6))
def test_the_stages_a_source_keeps_are_those_cachetools_lru_keeps(accesses: list[int], bound: int) -> None:
    """The hand-written LRU (no cachetools import on the cold path) against the reference, access by access."""
    reference: LRUCache[str, bool] = LRUCache(maxsize=bound)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(cache, "_MAX_STAGES", bound)
        layer = cache.CachedSource(DictSource({}), ttl=60, max_stale=600)
        for n in accesses:
            stage = f"S{n}"
            layer._state(stage)
            if stage in reference:
                assert reference[stage]  # a hit: most recently used
            else:
                reference[stage] = True
            assert set(layer._stages) == set(reference.keys())


def test_2000_rotating_aliases_stay_warm() -> None:
    """2,000 stages invoked in turn: the second round asks the source nothing (everything stayed cached)."""
    stages = {f"S{n}": {"k": f"v{n}"} for n in range(2000)}
    source = DictSource(stages)
    made = Config([source], cache_dir="", ttl=3600)

    @confstage.handler(config=made)
    def fn(event: Any, context: Any) -> str:
        return confstage.get("k")

    for _ in range(2):
        for n in range(2000):
            assert fn({}, lambda_context(f"S{n}")) == f"v{n}"
    assert source.fetches == 2000
    assert len(made._arn_stages) == 2000
    assert len(made._views) == 2000


def test_a_flood_of_made_up_stages_is_bounded_and_keeps_the_busy_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """10,000 made-up aliases: every table stays within its bound, and a stage read between them stays cached."""
    monkeypatch.setattr(cache, "_MAX_STAGES", 64)
    monkeypatch.setattr(chain, "_MAX_VIEWS", 64)
    monkeypatch.setattr(client, "_MAX_ARNS", 64)
    source = MemorySource({"PRD": {"k": "prd"}})
    made = Config([source], cache_dir="", ttl=3600)
    with made.bind("PRD"):
        assert made.get("k") == "prd"
    layer = made._chain.layers[0]
    for n in range(10_000):
        stage = f"X{n}"
        with made.bind(lambda_context(stage)):
            assert made.get("k", None) is None
        with made.bind(lambda_context("PRD")):
            assert made.get("k") == "prd"
        assert len(layer._stages) <= 64
        assert len(made._views) <= 64
        assert len(made._arn_stages) <= 64
    assert "PRD" in layer._stages  # used between every made-up one: never the least recently used
