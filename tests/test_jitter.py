"""Fleet behaviour of one client: TTL jitter spreads refreshes, throttling is counted apart and backed off from."""

from __future__ import annotations

import contextlib
import io
import itertools
import json
import random
import threading
from collections import Counter
from collections.abc import Collection
from pathlib import Path

import pytest

from confstage import Config, ConfigurationError, SourceError
from confstage.cache import Backoff, run_inline
from confstage.emf import Emitter
from confstage.sources import Fetched

from .conftest import FakeClock, confstage_garbage

TTL = 300.0


class CountingSource:
    """A whole-stage source shared by many clients, noting the second of every fetch."""

    url = "fleet://"
    ttl: float | None = None
    whole_stage = True
    persist = False

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.fetch_seconds: Counter[int] = Counter()
        self.throttle = False
        self.calls = 0

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        self.calls += 1
        if self.throttle:
            raise SourceError("Rate exceeded", source=self.url, operation="ssm:GetParametersByPath", throttled=True)
        self.fetch_seconds[int(self.clock.now)] += 1
        return Fetched({"k": "v"})


def fleet(size: int, jitter: float, clock: FakeClock, source: CountingSource) -> list[Config]:
    return [
        Config(
            [source],
            stage="PRD",
            cache_dir="",
            ttl=TTL,
            clock=clock,
            ttl_jitter=jitter,
            random=random.Random(i).random,
            run=run_inline,
        )
        for i in range(size)
    ]


def backing_off(source: CountingSource, clock: FakeClock) -> Config:
    """One client without jitter whose backoff takes its longest delay (2 s, 4 s, ... up to the cap) every time."""
    return Config(
        [source],
        stage="PRD",
        cache_dir="",
        ttl=TTL,
        clock=clock,
        ttl_jitter=0,
        run=run_inline,
        backoff=Backoff(random=lambda: 1.0),
    )


def test_a_thousand_clients_started_together_spread_their_first_refresh(clock: FakeClock) -> None:
    """TTL 300 s, jitter 0.1: first refreshes cover ≥ 30 distinct seconds, none holding more than a tenth."""
    source = CountingSource(clock)
    clients = fleet(1000, 0.1, clock, source)
    start = int(clock.now)
    for client in clients:
        client.get("k")
    source.fetch_seconds.clear()
    for _ in range(int(TTL) + 5):  # every client reads once a second, as a busy fleet does
        clock.tick(1)
        for client in clients:
            client.get("k")
    first_refresh = sorted(source.fetch_seconds)
    assert sum(source.fetch_seconds.values()) == 1000  # each client refreshed exactly once
    assert first_refresh[-1] - first_refresh[0] + 1 >= 30
    assert max(source.fetch_seconds.values()) <= 100
    assert all(start + 0.9 * TTL <= second <= start + TTL + 1 for second in first_refresh)


def test_without_jitter_the_fleet_refreshes_in_the_same_second(clock: FakeClock) -> None:
    """CONFSTAGE_TTL_JITTER=0 turns it off: the herd refreshes together (what jitter prevents)."""
    source = CountingSource(clock)
    clients = fleet(200, 0.0, clock, source)
    for client in clients:
        client.get("k")
    source.fetch_seconds.clear()
    clock.tick(TTL + 1)
    for client in clients:
        client.get("k")
    assert list(source.fetch_seconds.values()) == [200]


@pytest.mark.parametrize("bad", ["-0.1", "1.5", "lots"])
def test_a_bad_jitter_setting_is_refused(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    """CONFSTAGE_TTL_JITTER must be a fraction between 0 and 1."""
    monkeypatch.setenv("CONFSTAGE_TTL_JITTER", bad)
    with pytest.raises(ConfigurationError, match=r"CONFSTAGE_TTL_JITTER|jitter"):
        Config("env://", stage="PRD")


def test_throttled_refreshes_are_counted_apart_and_in_emf(clock: FakeClock) -> None:
    """A throttled refresh counts as an error and as throttled; the EMF line reports Throttled."""
    source = CountingSource(clock)
    (client,) = fleet(1, 0.0, clock, source)
    out = io.StringIO()
    emitter = Emitter(client.stats, stream=out, clock=clock)
    client.get("k")
    emitter.emit("PRD")
    clock.tick(TTL + 1)
    source.throttle = True
    assert client.get("k") == "v"  # stale, served while backing off
    stats = client.stats()["sources"]["fleet://"]
    assert (stats["errors"], stats["throttled"], stats["stale"]) == (1, 1, 1)
    emitter.emit("PRD")
    second = json.loads(out.getvalue().splitlines()[1])
    assert (second["FetchErrors"], second["Throttled"], second["StaleServed"]) == (1, 1, 1)


def test_with_a_value_in_hand_backoff_grows_up_to_the_ttl(clock: FakeClock) -> None:
    """A stale environment asks at most once per TTL while throttled (the cap is the TTL, not 60 s)."""
    source = CountingSource(clock)
    client = backing_off(source, clock)
    client.get("k")
    clock.tick(TTL + 1)
    source.throttle = True
    asked: list[int] = []
    for second in range(2000):
        before = client.stats()["sources"]["fleet://"]["fetches"]
        assert client.get("k") == "v"
        if client.stats()["sources"]["fleet://"]["fetches"] != before:
            asked.append(second)
        clock.tick(1)
    gaps = [b - a for a, b in itertools.pairwise(asked)]
    assert gaps[:8] == [2, 4, 8, 16, 32, 64, 128, 256]
    assert set(gaps[8:]) == {300}


def test_cold_and_throttled_fails_fast_until_the_backoff_ends(clock: FakeClock) -> None:
    """With nothing in hand, a throttled fetch is not repeated by every caller: they fail at once, unsent."""
    source = CountingSource(clock)
    source.throttle = True
    client = backing_off(source, clock)
    with pytest.raises(SourceError, match="Rate exceeded"):
        client.get("k")
    for _ in range(5):
        with pytest.raises(SourceError, match="throttled; next attempt in") as info:
            client.get("k")
        assert info.value.throttled
    assert client.stats()["sources"]["fleet://"]["fetches"] == 1
    clock.tick(2.1)
    source.throttle = False
    assert client.get("k") == "v"


def test_cold_after_an_ordinary_failure_asks_again_at_once(clock: FakeClock) -> None:
    """Only throttling makes cold callers fail fast; after a network error the next caller fetches."""
    failures = iter([True, False])

    class Flaky(CountingSource):
        def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
            if next(failures):
                raise SourceError("connection reset", source=self.url, operation="ssm:GetParametersByPath")
            return super().fetch(stage, keys)

    client = Config([Flaky(clock)], stage="PRD", cache_dir="", ttl=TTL, clock=clock, run=run_inline)
    with pytest.raises(SourceError, match="connection reset"):
        client.get("k")
    assert client.get("k") == "v"


def test_a_failed_fetch_leaves_no_reference_cycle(clock: FakeClock) -> None:
    """A failed fetch leaves nothing for the cycle collector: no flight kept alive by its error's traceback."""
    source = CountingSource(clock)
    source.throttle = True
    client = Config([source], stage="PRD", cache_dir="", clock=clock, run=run_inline)

    def attempt() -> None:
        clock.tick(3600)  # past any backoff: every attempt fetches, and fails
        with contextlib.suppress(SourceError):
            client.get("k", force=True)

    def three_more() -> None:
        for _ in range(3):
            attempt()

    attempt()
    assert confstage_garbage(three_more) == []
    assert source.calls == 4


class LateFailure:
    """A whole-stage source whose fetch waits for ``release``, then fails: after its caller stopped waiting."""

    url = "late://"
    ttl: float | None = None
    whole_stage = True
    persist = True

    def __init__(self) -> None:
        self.release = threading.Event()

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        self.release.wait(5)
        raise SourceError("reset by peer", source=self.url, operation="fetch")


@pytest.mark.parametrize("disk", [False, True], ids=["memory", "with /tmp"])
def test_a_fetch_that_fails_after_its_caller_gave_up_leaves_no_reference_cycle(tmp_path: Path, disk: bool) -> None:
    """The caller's wait ends at the fetch deadline; the fetch, in its own thread, fails later. Its error stays
    with the stage (for the backoff) and its traceback keeps the fetch's frames: they must not hold the flight or
    the stage, or the error is in a cycle once the stage moves on."""
    source = LateFailure()
    client = Config([source], stage="PRD", cache_dir=str(tmp_path) if disk else "", fetch_timeout=0.2)
    before = set(threading.enumerate())  # an earlier test's fetch may still be running in this worker
    with pytest.raises(SourceError, match="no answer within"):
        client.get("k")
    (thread,) = [t for t in set(threading.enumerate()) - before if t.name == "confstage-fetch"]

    def fail_late() -> None:
        source.release.set()
        thread.join(5)
        client.clear()  # the stage, and the error it kept, are let go

    assert confstage_garbage(fail_late) == []
    assert not thread.is_alive()
