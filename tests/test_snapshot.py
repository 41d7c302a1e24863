"""One snapshot per invocation: freshness is decided when an invocation starts, never mid-request.

Inside ``@handler``/``bind()`` every read of a key returns the same value for the whole invocation,
and keys of a whole-stage source come from one fetch; values refresh between invocations; ``force=``
and ``max_age=`` still go to the sources; threads and tasks keep their own snapshots.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import confstage
from confstage import MISSING, Config, _context, client
from confstage.testing import MemorySource, lambda_context

from .conftest import FakeClock
from .fakes import DictSource

TTL = 60.0


@pytest.fixture(name="source")
def fixture_source() -> DictSource:
    return DictSource({"PRD": {"a": "a1", "b": "b1", "c": "c1"}})


@pytest.fixture(name="config")
def fixture_config(source: DictSource, clock: FakeClock) -> Config:
    return confstage.configure(sources=[source], cache_dir="", clock=clock, ttl=TTL, refresh_timeout=0.05)


def test_a_value_changed_and_expired_mid_invocation_is_seen_by_the_next_one(
    source: DictSource, config: Config, clock: FakeClock
) -> None:
    """A refresh that happens during an invocation (TTL passed, value changed) is not seen until the next."""
    seen: list[tuple[str, ...]] = []

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> None:
        first = confstage.get("a")
        source.values["PRD"]["a"] = "a2"
        clock.tick(TTL + 1)
        assert confstage.get("a", max_age=0) == "a2"  # an explicit max_age still goes to the source...
        seen.append((first, confstage.get("b")))
        config.get("a", stage="PRD")  # ...and so does a read outside this invocation's snapshot

    lambda_handler({}, lambda_context("PRD"))
    lambda_handler({}, lambda_context("PRD"))
    assert seen[0] == ("a1", "b1")
    assert seen[1][0] == "a2"


def test_a_read_is_stable_for_the_whole_invocation(source: DictSource, config: Config, clock: FakeClock) -> None:
    """Reads repeated within one invocation return the first answer, though the TTL passes and values change."""

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> list[str]:
        answers = []
        for n in range(3):
            answers.append(confstage.get("a"))
            source.values["PRD"]["a"] = f"changed-{n}"
            clock.tick(TTL + 1)
        return answers

    assert lambda_handler({}, lambda_context("PRD")) == ["a1", "a1", "a1"]
    assert lambda_handler({}, lambda_context("PRD"))[0] == "changed-2"


def test_two_keys_of_a_whole_stage_source_come_from_one_fetch(
    source: DictSource, config: Config, clock: FakeClock
) -> None:
    """A newer fetch that lands mid-invocation (a refresh by another caller) is not mixed into the invocation."""
    config.get("a", stage="PRD")  # fetch 1: a1 b1
    clock.tick(TTL + 1)
    source.values["PRD"].update(a="a2", b="b2")
    source.gate = threading.Event()
    assert config.get("a", stage="PRD") == "a1"  # stale: the refresh (fetch 2: a2 b2) is held in flight
    with confstage.bind("PRD"):
        assert confstage.get("a") == "a1"  # the invocation starts with fetch 1 (stale, served while in flight)
        source.gate.set()  # fetch 2 lands now, in its own thread
        _wait_for(lambda: config.stats()["sources"]["dict://test"]["fetches"] == 2)
        assert confstage.get("b") == "b1"  # still fetch 1: never a1 with b2
        assert confstage.get_many(["a", "b", "c"]) == {"a": "a1", "b": "b1", "c": "c1"}
    with confstage.bind("PRD"):
        assert confstage.get_many(["a", "b"]) == {"a": "a2", "b": "b2"}


def test_force_refreshes_this_invocation_and_no_other(source: DictSource, config: Config) -> None:
    """force=True fetches, and the invocation sees the new value afterwards; a concurrent invocation keeps its own."""
    inside = threading.Barrier(2, timeout=10)
    forced = threading.Event()
    results: dict[str, list[str]] = {}

    @confstage.handler
    def forcing(event: Any, context: Any) -> None:
        results["forcing"] = [confstage.get("a")]
        inside.wait()
        source.values["PRD"]["a"] = "a2"
        results["forcing"] += [confstage.get("a", force=True), confstage.get("a")]
        forced.set()

    @confstage.handler
    def bystander(event: Any, context: Any) -> None:
        results["bystander"] = [confstage.get("a")]
        inside.wait()
        forced.wait(timeout=10)
        results["bystander"].append(confstage.get("a"))

    confstage.get("a", stage="PRD")  # warm: both invocations start from the same view
    threads = [threading.Thread(target=f, args=({}, lambda_context("PRD"))) for f in (forcing, bystander)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert results == {"forcing": ["a1", "a2", "a2"], "bystander": ["a1", "a1"]}
    assert confstage.get("a", stage="PRD") == "a2"  # the refresh is shared with later reads


def test_asyncio_tasks_keep_their_own_snapshots(source: DictSource, config: Config, clock: FakeClock) -> None:
    """Tasks of two invocations interleaved on one loop each read the snapshot their invocation started with."""

    @confstage.handler
    async def lambda_handler(event: Any, context: Any) -> list[str]:
        answers = [confstage.get("a")]
        await asyncio.sleep(0)
        await event["step"].wait()
        answers.append(confstage.get("a"))
        return answers

    async def main() -> list[list[str]]:
        first_step, second_step = asyncio.Event(), asyncio.Event()
        first = asyncio.create_task(lambda_handler({"step": first_step}, lambda_context("PRD")))
        await asyncio.sleep(0)
        source.values["PRD"]["a"] = "a2"
        clock.tick(TTL + 1)
        second = asyncio.create_task(lambda_handler({"step": second_step}, lambda_context("PRD")))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        second_step.set()
        first_step.set()
        return [await first, await second]

    confstage.get("a", stage="PRD")
    first, second = asyncio.run(main())
    assert first == ["a1", "a1"]
    assert second[0] == second[1]


def test_a_warm_invocation_asks_no_cache_layer(source: DictSource, config: Config) -> None:
    """When the view is fresh, an invocation's reads are dict lookups: no layer lookup, hit or miss."""

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> tuple[str, str, str]:
        return confstage.get("a"), confstage.get("b"), confstage.get("missing", "default")

    lambda_handler({}, lambda_context("PRD"))
    before = config.stats()["total"]
    for _ in range(5):
        assert lambda_handler({}, lambda_context("PRD")) == ("a1", "b1", "default")
    assert config.stats()["total"] == before


def test_the_stage_of_an_arn_is_worked_out_once(monkeypatch: pytest.MonkeyPatch, config: Config) -> None:
    """The decorator resolves each distinct invoked ARN once; later invocations reuse the answer."""
    calls: list[str] = []
    real = getattr(client, "stage_from_arn")  # noqa: B009 - the name the client module looks up, replaced below

    def counting(arn: str, aliases: Any = None) -> str | None:
        calls.append(arn)
        stage: str | None = real(arn, aliases)
        return stage

    monkeypatch.setattr(client, "stage_from_arn", counting)

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> str:
        return confstage.current_stage()

    for _ in range(3):
        assert lambda_handler({}, lambda_context("PRD")) == "PRD"
        assert lambda_handler({}, lambda_context("DEV")) == "DEV"
    assert len(calls) == 2


def test_outside_invocations_the_ttl_is_checked_on_every_call(source: DictSource, clock: FakeClock) -> None:
    """Config.get outside a handler refreshes as soon as the TTL has passed."""
    config = Config([source], stage="PRD", cache_dir="", clock=clock, ttl=TTL)
    assert config.get("a") == "a1"
    source.values["PRD"]["a"] = "a2"
    clock.tick(TTL - 1)
    assert config.get("a") == "a1"
    clock.tick(2)
    assert config.get("a") == "a2"


def test_module_functions_share_the_invocation_snapshot(source: DictSource, config: Config) -> None:
    """get, the typed getters and get_many all read the same snapshot inside an invocation."""
    source.values["PRD"].update(n="7", j='{"x": 1}', f="on")
    with confstage.bind("PRD"):
        assert confstage.get_int("n") == 7
        source.values["PRD"]["n"] = "8"
        assert confstage.get_many(["n", "j"]) == {"n": "7", "j": '{"x": 1}'}
        assert confstage.get_json("j") == {"x": 1}
        assert confstage.get_bool("f") is True


def _wait_for(condition: Any, timeout: float = 5.0) -> None:
    """Wait for a background fetch to land (an event the test cannot inject, so it polls briefly)."""
    done = threading.Event()
    for _ in range(int(timeout / 0.01)):
        if condition():
            return
        done.wait(0.01)
    raise AssertionError("condition not met in time")


def test_memory_source_whole_stage_is_one_fetch_per_invocation_burst() -> None:
    """Sanity: a MemorySource stage read by many invocations in a row costs one fetch while fresh."""
    source = MemorySource({"PRD": {"k": "v"}})
    confstage.configure(sources=[source], cache_dir="")

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> str:
        return confstage.get("k")

    for _ in range(10):
        assert lambda_handler({}, lambda_context("PRD")) == "v"
    assert source.fetches == 1


def test_a_worker_threads_refresh_changes_neither_the_invocation_nor_the_pool_thread(
    source: DictSource, config: Config
) -> None:
    """A forced read from an executor worker returns the new value; the invocation keeps its snapshot, and the
    worker thread carries no invocation into its next task."""
    from concurrent.futures import ThreadPoolExecutor

    confstage.get("a", stage="PRD")  # warm: the invocation below is the shared view
    with ThreadPoolExecutor(max_workers=1) as pool:

        @confstage.handler
        def lambda_handler(event: Any, context: Any) -> tuple[str, str, str]:
            source.values["PRD"]["a"] = "a2"
            forced = pool.submit(lambda: confstage.get("a", force=True)).result(timeout=10)
            return confstage.get("a"), forced, pool.submit(confstage.current_stage).result(timeout=10)

        assert lambda_handler({}, lambda_context("PRD")) == ("a1", "a2", "PRD")
        assert pool.submit(lambda: _context.CURRENT.get()).result(timeout=10) is None
    assert confstage.get("a", stage="PRD") == "a2"  # the refresh reached the view: later reads see it


@dataclass(frozen=True)
class _Settings:
    a: str
    b: str = "none"


_READS = st.lists(
    st.one_of(
        st.tuples(st.just("get"), st.sampled_from(["a", "b", "c", "absent"])),
        st.tuples(st.just("many"), st.lists(st.sampled_from(["a", "b", "c"]), min_size=1, max_size=3)),
        st.tuples(st.just("settings"), st.just("")),
        st.tuples(st.just("tick"), st.floats(0, 2 * TTL)),
    ),
    max_size=12,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(reads=_READS)
def test_values_are_strings_and_built_objects_are_kept_apart(reads: list[tuple[str, Any]], clock: FakeClock) -> None:
    """Whatever an invocation reads, its values map keys to strings (or MISSING), and the objects made from them
    (settings) live in ``built``, the same object for the whole invocation; the view keeps the same shape."""
    config = Config([DictSource({"PRD": {"a": "a1", "b": "b1", "c": "c1"}})], cache_dir="", clock=clock, ttl=TTL)
    with config.bind("PRD"):
        made: list[object] = []
        for kind, arg in reads:
            if kind == "get":
                assert config.get(arg, None) == (None if arg == "absent" else f"{arg}1")
            elif kind == "many":
                assert config.get_many(arg) == {k: f"{k}1" for k in arg}
            elif kind == "settings":
                made.append(config.settings(_Settings))
            else:
                clock.tick(arg)
        invocation = _context.CURRENT.get()
        assert invocation is not None
        assert type(invocation.values) is dict or invocation.values is _context.EMPTY
        assert all(type(k) is str and (type(v) is str or v is MISSING) for k, v in invocation.values.items())
        assert all(type(k) is tuple for k in invocation.built)
        assert all(found is made[0] for found in made)  # one object for the whole invocation
        assert invocation.reads is None
    for view in config._chain.views.values():
        assert all(type(k) is str and (type(v) is str or v is MISSING) for k, v in view.values.items())
    assert config.stats()["cached_keys"] == sum(len(view.values) for view in config._chain.views.values())
