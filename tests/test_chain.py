"""The chain: a key asked of each source in turn, the client's views of a stage, and where a key was found."""

from __future__ import annotations

import pytest

from confstage import Config, KeyNotFoundError
from confstage.chain import Found
from confstage.testing import MemorySource

from .conftest import FakeClock
from .fakes import DictSource


def chain_config(clock: FakeClock) -> Config:
    plain = MemorySource({"DEV": {"host": "db.local"}}, url="memory://plain")
    secrets = DictSource({"DEV": {"host": "shadowed", "password": "pw"}}, secret={"password"}, whole_stage=False)
    return Config([plain, secrets], stage="DEV", cache_dir="", clock=clock, ttl=60)


def test_find_names_the_first_source_holding_a_key_and_whether_it_is_a_secret(clock: FakeClock) -> None:
    """find reports the value, the URL of the first source that has the key, and the secret flag that source gave."""
    config = chain_config(clock)
    assert config.find("host") == Found("db.local", "memory://plain", False)
    assert config.find("password") == Found("pw", "dict://test", True)
    with pytest.raises(KeyNotFoundError, match="memory://plain, dict://test"):
        config.find("absent")


def test_a_view_answers_until_its_first_value_expires(clock: FakeClock) -> None:
    """Outside invocations the view of a stage answers repeated reads; after the TTL the chain is asked again."""
    config = chain_config(clock)
    source = config.sources[1]
    assert isinstance(source, DictSource)
    assert config.get_many(["host", "password"]) == {"host": "db.local", "password": "pw"}
    assert config.get("password") == "pw"
    assert source.fetches == 1
    clock.tick(61)
    assert config.get("password") == "pw"
    assert source.fetches == 2


def test_stats_add_up_the_layers_and_count_the_keys_of_the_views(clock: FakeClock) -> None:
    """stats() gives per-source counters, their totals, and how many keys the views hold."""
    config = chain_config(clock)
    config.get_many(["host", "password"])
    stats = config.stats()
    assert set(stats["sources"]) == {"memory://plain", "dict://test"}
    assert stats["total"]["fetches"] == 2
    assert stats["cached_keys"] == 2
    config.clear()
    assert config.stats()["cached_keys"] == 0
