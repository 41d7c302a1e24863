"""A model-based test of the cache layer: hypothesis drives random gets, clock steps, source changes,
failures, hangs, late answers, restarts and invocations, and checks every answer against a small model.

The model does not re-implement the cache; it states what must be true of any answer:

1. An answer (a value, or "absent") is what some completed fetch held for that key, fetched at most
   ``max_stale`` seconds ago: nothing is invented, nothing older than ``max_stale`` is served.
2. When the source has been healthy for longer than the longest backoff and nothing is in flight, the
   answer comes from a fetch within the TTL.
3. ``SourceError`` only when no fetch within ``max_stale`` is in this process's memory or in /tmp.
4. Inside one invocation every key keeps its first answer, and all answers come from one fetch.
5. No get blocks: fetches run on a scheduler the test controls, and nobody waits for them (a get that did
   would hang the run, which pytest-timeout ends as a failure).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, precondition, rule

from confstage import Config, KeyNotFoundError, SourceError, _context
from confstage.cache import Backoff
from confstage.sources import Fetched

from .conftest import FakeClock

TTL = 60.0
MAX_STALE = 600.0
KEYS = ("a", "b", "c")
BACKOFF = Backoff(base=2.0, cap=30.0, random=lambda: 1.0)


class Record:
    """One completed fetch: when it started (the cache's notion of its time) and what it returned."""

    def __init__(self, at: float, values: dict[str, str]) -> None:
        self.at = at
        self.values = values


class ModelSource:
    """A whole-stage source the state machine controls: healthy, failing, or hanging."""

    url = "model://"
    ttl: float | None = None
    whole_stage = True
    persist = True

    def __init__(self, machine: CacheMachine) -> None:
        self.machine = machine

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        machine = self.machine
        if machine.failing_now:
            raise SourceError("failed with ThrottlingException", source=self.url, operation="model:Fetch")
        return Fetched(dict(machine.values))


class CacheMachine(RuleBasedStateMachine):
    """Random sequences of operations on one Config, checked against the model above."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.values: dict[str, str] = {"a": "a0"}
        self.mode = "ok"  # ok | fail | hang
        self.failing_now = False
        self.pending: list[tuple[float, Callable[[], None]]] = []  # hung flights: (started, work)
        self.records: list[Record] = []
        self.persisted: Record | None = None  # the newest record /tmp holds
        self.memory: list[Record] = []  # records this process has seen (since the last restart)
        self.last_unhealthy = -1e18  # when the source last failed, hung, or a flight was pending
        self.invocation: Any = None
        self.token: Any = None
        self.seen_in_invocation: dict[str, str | None] = {}
        self.cache_dir: Path | None = None
        self.config: Config | None = None

    @initialize(tmp=st.just(None))
    def start(self, tmp: None) -> None:
        import tempfile

        self.cache_dir = Path(tempfile.mkdtemp(prefix="confstage-model-"))
        self.config = self.new_config()

    def new_config(self) -> Config:
        return Config(
            [ModelSource(self)],
            stage="DEV",
            cache_dir=str(self.cache_dir),
            clock=self.clock,
            ttl=TTL,
            max_stale=MAX_STALE,
            fetch_timeout=0.0,  # nobody waits: a get finds a fetch finished, failed, or still in flight
            refresh_timeout=0.0,
            backoff=BACKOFF,
            run=self.run,
        )

    def run(self, work: Callable[[], None]) -> None:
        """The fetch scheduler: healthy and failing fetches finish at once; hung ones wait for a rule."""
        started = self.clock.now
        if self.mode == "hang":
            self.pending.append((started, work))
            self.last_unhealthy = self.clock.now
            return
        self.complete(started, work)

    def complete(self, started: float, work: Callable[[], None]) -> None:
        self.failing_now = self.mode == "fail"
        if self.failing_now:
            self.last_unhealthy = self.clock.now
        work()
        if not self.failing_now:
            record = Record(started, dict(self.values))
            self.records.append(record)
            self.memory.append(record)
            if self.persisted is None or self.persisted.at <= started:
                self.persisted = record

    # -- rules --------------------------------------------------------------------------------

    @rule(key=st.sampled_from(KEYS), value=st.integers(0, 3))
    def change_source(self, key: str, value: int) -> None:
        self.values[key] = f"{key}{value}"

    @rule(key=st.sampled_from(KEYS))
    def delete_from_source(self, key: str) -> None:
        self.values.pop(key, None)

    @rule(seconds=st.sampled_from([0.5, 5, 30, 61, 200, 700]))
    def tick(self, seconds: float) -> None:
        self.clock.tick(seconds)

    @rule(mode=st.sampled_from(["ok", "fail", "hang"]))
    def set_mode(self, mode: str) -> None:
        if self.mode != "ok" or mode != "ok":
            self.last_unhealthy = self.clock.now
        self.mode = mode

    @precondition(lambda self: bool(self.pending))
    @rule()
    def finish_a_hung_fetch(self) -> None:
        """A hung flight answers late (with whatever the source holds now), or fails."""
        started, work = self.pending.pop(0)
        self.last_unhealthy = self.clock.now
        self.complete(started, work)

    @precondition(lambda self: self.invocation is None)
    @rule()
    def restart(self) -> None:
        """A new process on the same /tmp: memory is gone, the snapshot is not; hung flights die with it."""
        self.pending.clear()
        self.memory = [self.persisted] if self.persisted is not None else []
        self.config = self.new_config()

    @precondition(lambda self: self.invocation is None)
    @rule()
    def expire(self) -> None:
        assert self.config is not None
        self.config.expire()

    @precondition(lambda self: self.invocation is None)
    @rule()
    def begin_invocation(self) -> None:
        assert self.config is not None
        self.invocation = self.config.begin("arn:aws:lambda:us-east-1:123456789012:function:fn:DEV")
        self.token = _context.enter(self.invocation)
        self.seen_in_invocation = {}

    @precondition(lambda self: self.invocation is not None)
    @rule()
    def end_invocation(self) -> None:
        _context.leave(self.invocation, self.token)
        self.invocation = None

    @rule(key=st.sampled_from(KEYS))
    def get(self, key: str) -> None:
        assert self.config is not None
        now = self.clock.now
        try:
            answer: str | None = self.config.get(key)
        except KeyNotFoundError:
            answer = None
        except SourceError:
            usable = [r for r in self.memory if now - r.at <= MAX_STALE]
            assert not usable, "SourceError although a value within max_stale was in memory or /tmp"
            return
        # 1. never invented, never older than max_stale
        matching = [r for r in self.records if r.values.get(key) == answer and now - r.at <= MAX_STALE]
        if self.invocation is None:
            assert matching, f"answer {answer!r} for {key!r} matches no fetch within max_stale"
        # 2. healthy for long enough and nothing in flight: fresh
        healthy = self.mode == "ok" and not self.pending and now - self.last_unhealthy > BACKOFF.cap + TTL
        if healthy and self.invocation is None:
            assert any(now - r.at <= TTL for r in matching), f"stale answer for {key!r} from a healthy source"
        # 4. an invocation keeps its answers, all from one fetch
        if self.invocation is not None:
            if key in self.seen_in_invocation:
                assert self.seen_in_invocation[key] == answer, "a value changed within an invocation"
            self.seen_in_invocation[key] = answer
            assert any(all(r.values.get(k) == v for k, v in self.seen_in_invocation.items()) for r in self.records), (
                "an invocation mixed values of two fetches"
            )

    def teardown(self) -> None:
        if self.invocation is not None:
            _context.leave(self.invocation, self.token)
        if self.cache_dir is not None:
            import shutil

            shutil.rmtree(self.cache_dir, ignore_errors=True)


CacheMachine.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestCacheModel = CacheMachine.TestCase


@pytest.fixture(autouse=True)
def _no_env_cache_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    """The machine passes its own cache directory."""
    monkeypatch.delenv("CONFSTAGE_CACHE_DIR", raising=False)
