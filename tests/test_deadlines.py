"""Deadlines under hanging, trickling and throttling endpoints, with the default client settings.

Every call is timed, not just the first, and callers run concurrently: a stale value in hand means
no get waits longer than one bounded refresh attempt, and nothing in hand means a SourceError within
the documented fetch deadline. Reproduces issue 10, items 1 and 2 (before: ~9 s per get, 72 s for
8 concurrent callers, and a trickling body kept get() inside botocore indefinitely).
"""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from confstage import Config, SourceError, variables
from confstage.cache import Backoff

from .conftest import FakeClock, seed_stage
from .fakes import DictSource
from .faultproxy import FaultProxy

VALUE = "deadline-value"
TTL = 60.0
# The default client settings: 1 s connect, 3 s read, 3 attempts; refresh wait 1 s, fetch deadline 10 s.
REFRESH_BOUND = variables.DEFAULT_REFRESH_TIMEOUT + 0.5  # one bounded refresh attempt, with scheduling slack
STALE_AT_ONCE = 0.15  # a get served stale without waiting
REPORT: dict[str, dict[str, str]] = {}


@pytest.fixture(scope="module", name="deadline_report")
def fixture_deadline_report() -> Iterator[dict[str, dict[str, str]]]:
    """Collects worst-case latencies; written to $CONFSTAGE_DEADLINE_REPORT when set (for the closing note)."""
    yield REPORT
    target = os.environ.get("CONFSTAGE_DEADLINE_REPORT")
    if target:
        Path(target).write_text(json.dumps(REPORT, indent=2, sort_keys=True))


@pytest.fixture(name="proxy")
def fixture_proxy(fault_proxy: Callable[..., FaultProxy]) -> FaultProxy:
    """A fault proxy in front of the local endpoint; confstage's clients use the default timeouts and attempts."""
    defaults = dict.fromkeys(("CONFSTAGE_CONNECT_TIMEOUT", "CONFSTAGE_READ_TIMEOUT", "CONFSTAGE_MAX_ATTEMPTS"))
    return fault_proxy(settings=defaults, trickle_seconds=0.5)


def seeded(boto: Callable[[str], Any]) -> str:
    return seed_stage(boto, "cfg", "DEV", {"k": VALUE})


def timed(call: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    try:
        result: Any = call()
    except Exception as exc:
        result = exc
    return result, time.perf_counter() - started


def concurrently(call: Callable[[], Any], n: int) -> list[tuple[Any, float]]:
    """``call`` from ``n`` threads released together; each result with its own duration."""
    barrier = threading.Barrier(n, timeout=30)
    results: list[tuple[Any, float]] = []

    def work() -> None:
        barrier.wait()
        results.append(timed(call))

    threads = [threading.Thread(target=work) for _ in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results


@pytest.mark.integration
@pytest.mark.parametrize("fault", ["hang", "trickle", "throttle"])
def test_with_a_stale_value_no_get_waits_more_than_one_bounded_refresh(
    fault: str, boto: Any, proxy: FaultProxy, clock: FakeClock, deadline_report: dict[str, dict[str, str]]
) -> None:
    """Warm value, TTL passed, endpoint broken: one get waits ≤ the refresh timeout, every other is served at once."""
    config = Config(seeded(boto), stage="DEV", cache_dir="", clock=clock, ttl=TTL, max_stale=3600)
    assert config.get("k") == VALUE
    clock.tick(TTL + 1)
    proxy.fault = fault
    first = timed(lambda: config.get("k"))
    rest = [timed(lambda: config.get("k")) for _ in range(20)]
    crowd = concurrently(lambda: config.get("k"), 8)
    for value, _ in [first, *rest, *crowd]:
        assert value == VALUE
    assert first[1] < REFRESH_BOUND
    assert max(seconds for _, seconds in rest) < STALE_AT_ONCE
    assert max(seconds for _, seconds in crowd) < REFRESH_BOUND
    worst = max(seconds for _, seconds in [first, *rest, *crowd])
    deadline_report.setdefault("stale value in hand", {})[fault] = f"worst get {worst * 1000:.0f} ms (29 gets)"


@pytest.mark.integration
def test_backoff_ends_and_the_next_refresh_is_again_bounded(boto: Any, proxy: FaultProxy, clock: FakeClock) -> None:
    """A hung refresh is written off at the fetch deadline; after the backoff, one bounded retry, then stale again."""
    config = Config(seeded(boto), stage="DEV", cache_dir="", clock=clock, ttl=TTL, max_stale=3600)
    config.get("k")
    clock.tick(TTL + 1)
    proxy.fault = "hang"
    assert timed(lambda: config.get("k"))[1] < REFRESH_BOUND
    clock.tick(variables.DEFAULT_FETCH_TIMEOUT + 1)  # the hung flight outlives its deadline: written off
    value, seconds = timed(lambda: config.get("k"))
    assert (value, seconds < STALE_AT_ONCE) == (VALUE, True)  # backing off now: served at once
    errors = config.stats()["sources"]["dynamodb://cfg"]["errors"]
    assert errors == 1
    clock.tick(Backoff().cap + 1)  # past any first backoff
    proxy.fault = None
    value, seconds = timed(lambda: config.get("k"))
    assert value == VALUE
    assert seconds < REFRESH_BOUND


@pytest.mark.integration
@pytest.mark.parametrize("fault", ["hang", "trickle"])
def test_without_a_value_every_get_fails_within_the_fetch_deadline(
    fault: str,
    boto: Any,
    proxy: FaultProxy,
    monkeypatch: pytest.MonkeyPatch,
    deadline_report: dict[str, dict[str, str]],
) -> None:
    """Cold, endpoint hanging or trickling: each get, and 8 concurrent ones, end with SourceError by the deadline."""
    monkeypatch.setenv("CONFSTAGE_FETCH_TIMEOUT", "2")
    config = Config(seeded(boto), stage="DEV", cache_dir="")
    proxy.fault = fault
    calls = [timed(lambda: config.get("k")) for _ in range(2)] + concurrently(lambda: config.get("k"), 8)
    for error, seconds in calls:
        assert isinstance(error, SourceError)
        assert "no answer within" in str(error)
        assert VALUE not in str(error)
        assert seconds < 2.0 + 0.5
    worst = max(seconds for _, seconds in calls)
    deadline_report.setdefault("nothing in hand (CONFSTAGE_FETCH_TIMEOUT=2)", {})[fault] = (
        f"SourceError, worst {worst * 1000:.0f} ms (10 gets)"
    )


@pytest.mark.integration
def test_the_default_deadline_holds_against_a_trickling_body(
    boto: Any, proxy: FaultProxy, deadline_report: dict[str, dict[str, str]]
) -> None:
    """With every setting at its default, a body trickling one byte per 0.5 s ends in SourceError within 10 s."""
    config = Config(seeded(boto), stage="DEV", cache_dir="")
    proxy.fault = "trickle"
    error, seconds = timed(lambda: config.get("k"))
    assert isinstance(error, SourceError)
    assert variables.DEFAULT_FETCH_TIMEOUT - 0.5 < seconds < variables.DEFAULT_FETCH_TIMEOUT + 1.0
    deadline_report.setdefault("nothing in hand (defaults)", {})["trickle"] = f"SourceError in {seconds:.1f} s"


# -- the same rules on a test double, with an injected clock and no network ---------------------------


def test_backoff_grows_jittered_and_capped(clock: FakeClock) -> None:
    """Consecutive failed refreshes back off base·2^(n-1) seconds, capped, scaled by the jitter in [0.5, 1]."""
    assert [Backoff(random=lambda: 1.0).delay(n) for n in range(1, 9)] == [2, 4, 8, 16, 32, 60, 60, 60]
    assert [Backoff(random=lambda: 0.0).delay(n) for n in (1, 2, 3)] == [1, 2, 4]
    source = DictSource({"DEV": {"k": "v"}})
    config = Config([source], stage="DEV", cache_dir="", clock=clock, ttl=TTL, backoff=Backoff(random=lambda: 1.0))
    config.get("k")
    clock.tick(TTL + 1)
    source.failing = "ThrottlingException"
    asked: list[int] = []
    for _ in range(200):  # 200 s of gets, one a second
        before = source.fetches
        assert config.get("k") == "v"
        asked.append(source.fetches - before)
        clock.tick(1)
    retries_at = [second for second, n in enumerate(asked) if n]
    gaps = [b - a for a, b in itertools.pairwise(retries_at)]
    assert gaps[:5] == [2, 4, 8, 16, 32]
    assert all(gap == 60 for gap in gaps[5:])


def test_a_caller_that_finds_a_refresh_in_flight_is_served_at_once(clock: FakeClock) -> None:
    """While one refresh is blocked, other callers holding a stale value never queue behind it."""
    source = DictSource({"DEV": {"k": "v"}})
    config = Config([source], stage="DEV", cache_dir="", clock=clock, ttl=TTL, refresh_timeout=0.2)
    config.get("k")
    clock.tick(TTL + 1)
    source.gate = threading.Event()
    try:
        first = timed(lambda: config.get("k"))
        crowd = concurrently(lambda: config.get("k"), 16)
        assert first[0] == "v"
        assert 0.15 < first[1] < 0.2 + 0.5
        assert all(value == "v" and seconds < STALE_AT_ONCE for value, seconds in crowd)
        assert source.fetches == 2  # the first load and the one refresh still in flight
    finally:
        source.gate.set()


def test_a_late_answer_is_kept_and_never_replaces_newer_data(clock: FakeClock) -> None:
    """A refresh written off at its deadline that answers later still lands, unless newer data came meanwhile."""
    source = DictSource({"DEV": {"k": "v1"}})
    config = Config([source], stage="DEV", cache_dir="", clock=clock, ttl=TTL, refresh_timeout=0.05)
    config.get("k")
    clock.tick(TTL + 1)
    source.gate = threading.Event()
    source.values["DEV"]["k"] = "v2"
    assert config.get("k") == "v1"  # stale: the refresh is blocked
    source.gate.set()  # the refresh now answers v2, in its own thread
    deadline = time.monotonic() + 5
    while config.stats()["sources"]["dict://test"]["fetches"] < 2 and time.monotonic() < deadline:
        threading.Event().wait(0.01)
    assert config.get("k") == "v2"
