"""Stage isolation: worker threads, illegal names, bad arguments, explicit clients, EMF and expire() across /tmp.

Each test pins one defect of the adversarial review (issue 10); its docstring names the behaviour.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import confstage
from confstage import (
    Config,
    ConfigurationError,
    ConversionError,
    DecryptError,
    KeyNameError,
    KeyNotFoundError,
    StageError,
)
from confstage.names import STAGE_RULE
from confstage.sources import Fetched
from confstage.testing import MemorySource, lambda_context

from .conftest import FakeClock
from .fakes import DictSource

VALUES = {"DEV": {"db": "dev-db", "flag": "dev"}, "PRD": {"db": "prd-db", "flag": "prd"}}


@pytest.fixture(name="two_stages")
def fixture_two_stages(monkeypatch: pytest.MonkeyPatch) -> MemorySource:
    """A default client over DEV and PRD values whose CONFSTAGE_STAGE is DEV (the trap for worker threads)."""
    monkeypatch.setenv("CONFSTAGE_STAGE", "DEV")
    source = MemorySource(VALUES)
    confstage.configure(sources=[source], cache_dir="")
    return source


# -- worker threads (item 3) -------------------------------------------------------------------


def test_executor_worker_inside_a_prd_invocation_reads_prd(two_stages: MemorySource) -> None:
    """A ThreadPoolExecutor worker started inside a PRD invocation reads PRD, never CONFSTAGE_STAGE's DEV."""

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> list[str]:
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(pool.map(lambda _: confstage.get("db") + "/" + confstage.current_stage(), range(8)))

    assert lambda_handler({}, lambda_context("PRD")) == ["prd-db/PRD"] * 8
    assert confstage.get("db") == "dev-db"  # after the invocation, the configured stage again


def test_run_in_executor_worker_reads_the_invocation_stage(two_stages: MemorySource) -> None:
    """run_in_executor from an async PRD handler runs the work with the invocation's stage."""

    @confstage.handler
    async def lambda_handler(event: Any, context: Any) -> str:
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(max_workers=1) as pool:
            return await loop.run_in_executor(pool, confstage.get, "db")

    assert asyncio.run(lambda_handler({}, lambda_context("PRD"))) == "prd-db"


def test_worker_refuses_to_guess_when_invocations_of_two_stages_run(two_stages: MemorySource) -> None:
    """With a DEV and a PRD invocation in progress, a thread without a context gets StageError, not DEV."""
    inside = threading.Barrier(3, timeout=10)
    release = threading.Event()

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> str:
        inside.wait()
        release.wait(timeout=10)
        return confstage.get("db")

    results: dict[str, str] = {}
    threads = [
        threading.Thread(target=lambda s=stage: results.__setitem__(s, lambda_handler({}, lambda_context(s))))
        for stage in ("DEV", "PRD")
    ]
    for thread in threads:
        thread.start()
    inside.wait()
    try:
        with pytest.raises(StageError, match="several stages are running"):
            confstage.get("db")
        with pytest.raises(StageError, match="DEV, PRD"):
            confstage.current_stage()
        assert confstage.get("db", stage="PRD") == "prd-db"  # an explicit stage is always honoured
    finally:
        release.set()
        for thread in threads:
            thread.join(timeout=10)
    assert results == {"DEV": "dev-db", "PRD": "prd-db"}


def test_copied_context_keeps_each_thread_in_its_own_invocation(two_stages: MemorySource) -> None:
    """Threads started with contextvars.copy_context() keep their invocation even when two stages run."""
    import contextvars

    seen: dict[str, str] = {}
    barrier = threading.Barrier(2, timeout=10)

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> None:
        ctx = contextvars.copy_context()

        def work() -> None:
            barrier.wait()  # both invocations are running now
            seen[context.invoked_function_arn[-3:]] = confstage.get("flag")

        worker = threading.Thread(target=ctx.run, args=(work,))
        worker.start()
        worker.join(timeout=10)

    threads = [threading.Thread(target=lambda_handler, args=({}, lambda_context(s))) for s in ("DEV", "PRD")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert seen == {"DEV": "dev", "PRD": "prd"}


# -- stage names (item 5) ----------------------------------------------------------------------

HOSTILE_STAGES = ["", " ", "PRD/../DEV", "..", "a/b", "PRD ", "123", "x" * 129, "PRD\x00", "ÄÖ", "a.b", "PRD\n"]


@pytest.mark.parametrize("stage", HOSTILE_STAGES)
def test_illegal_stage_names_are_refused_everywhere(two_stages: MemorySource, stage: str) -> None:
    """An illegal stage is a StageError naming the rule, from get, get_many, bind and Config; nothing is read."""
    fetches = two_stages.fetches
    for call in (
        lambda: confstage.get("db", stage=stage),
        lambda: confstage.get_many(["db"], stage=stage),
        lambda: confstage.get_int("db", stage=stage),
        lambda: confstage.bind(stage).__enter__(),
        lambda: Config("env://", stage=stage),
    ):
        with pytest.raises(StageError) as info:
            call()
        assert STAGE_RULE in str(info.value)
    assert two_stages.fetches == fetches


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=140))
def test_any_stage_is_either_legal_or_refused(stage: str) -> None:
    """For any text, get(stage=…) either reads that exact stage or raises StageError; it never reads another."""
    source = MemorySource({stage: {"k": "v"}} if stage else {})
    config = Config([source], cache_dir="")
    legal = (
        1 <= len(stage) <= 128
        and all(c.isascii() and (c.isalnum() or c in "-_") for c in stage)
        and not stage.isdigit()
    )
    if legal:
        assert config.get("k", stage=stage) == "v"
    else:
        with pytest.raises(StageError):
            config.get("k", stage=stage)
        assert source.fetches == 0


def test_stage_settings_are_checked_when_the_client_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    """CONFSTAGE_STAGE and CONFSTAGE_ALIASES with illegal stages fail at once, naming the variable and the rule."""
    monkeypatch.setenv("CONFSTAGE_STAGE", "PRD/x")
    with pytest.raises(StageError, match="CONFSTAGE_STAGE"):
        Config("env://")
    monkeypatch.setenv("CONFSTAGE_STAGE", "PRD")
    monkeypatch.setenv("CONFSTAGE_ALIASES", "live=P RD")
    with pytest.raises(ConfigurationError, match="not a valid stage name"):
        Config("env://")


def test_empty_stage_is_not_the_current_stage(two_stages: MemorySource) -> None:
    """get_many(stage="") used to fall back to the current stage silently; now it is refused."""
    with pytest.raises(StageError):
        confstage.get_many(["db"], stage="")
    with pytest.raises(StageError):
        confstage.prefetch(["db"], stage="")


# -- bad arguments (item 9) --------------------------------------------------------------------


@pytest.mark.parametrize("key", [None, 42, b"db", ["db"], {"db": 1}, 1.5])
def test_a_key_that_is_not_a_string_is_a_clear_type_error(two_stages: MemorySource, key: Any) -> None:
    """get(None), get(42)… raise TypeError saying a key must be a string (not a crash inside the error)."""
    for getter in (confstage.get, confstage.get_int, confstage.get_json, Config.get.__get__(confstage._client())):
        with pytest.raises(TypeError, match="a key must be a string"):
            getter(key)
    with pytest.raises(TypeError, match="a key must be a string"):
        confstage.get_many([key])


@pytest.mark.parametrize("key", ["", "/db", "db/", "a//b", "../PRD/db", "a/./b", "db\x00", "db\n", "k" * 1025])
def test_keys_outside_the_rule_are_refused(two_stages: MemorySource, key: str) -> None:
    """Keys that would escape a stage or carry control characters raise KeyNameError (a ValueError)."""
    with pytest.raises(KeyNameError) as info:
        confstage.get(key)
    assert isinstance(info.value, ValueError)
    with pytest.raises(KeyNameError):
        confstage.get_many(["db", key])


def test_get_many_of_a_single_string_is_refused(two_stages: MemorySource) -> None:
    """get_many("db") would read the keys "d" and "b"; it is a TypeError instead."""
    with pytest.raises(TypeError, match="iterable of keys"):
        confstage.get_many("db")


def test_deeply_nested_json_is_a_conversion_error() -> None:
    """get_json on a value nested deeper than the interpreter allows raises ConversionError, not RecursionError."""
    config = Config([MemorySource({"DEV": {"deep": "[" * 100_000 + "]" * 100_000}})], stage="DEV", cache_dir="")
    with pytest.raises(ConversionError, match="'deep'"):
        config.get_json("deep")


# -- @handler(config=cfg) (item 13) -------------------------------------------------------------


def test_handler_with_config_makes_module_functions_read_that_client(two_stages: MemorySource) -> None:
    """Inside @handler(config=cfg), confstage.get and friends read cfg, in the handler and in its worker threads."""
    cfg = Config([MemorySource({"PRD": {"db": "cfg-db", "n": "7"}})], cache_dir="")

    @confstage.handler(config=cfg)
    def lambda_handler(event: Any, context: Any) -> tuple[Any, ...]:
        with ThreadPoolExecutor(max_workers=1) as pool:
            worker = pool.submit(confstage.get, "db").result(timeout=10)
        return confstage.get("db"), confstage.get_int("n"), confstage.get_many(["db"]), worker, confstage.stats()

    db, n, many, worker, stats = lambda_handler({}, lambda_context("PRD"))
    assert (db, n, many, worker) == ("cfg-db", 7, {"db": "cfg-db"}, "cfg-db")
    assert "memory://" in stats["sources"]
    assert confstage.get("db") == "dev-db"  # outside the handler: the default client again


# -- EMF (item 14) -------------------------------------------------------------------------------


def test_emf_stage_dimension_for_latest_and_versions(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unqualified, $LATEST or version invocation resolved through CONFSTAGE_STAGE reports that stage."""
    monkeypatch.setenv("CONFSTAGE_METRICS", "emf")
    monkeypatch.setenv("CONFSTAGE_STAGE", "DEV")
    confstage.configure(sources=[MemorySource(VALUES)], cache_dir="")

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> str:
        return confstage.get("db")

    for context in (lambda_context(None), lambda_context("$LATEST"), lambda_context(None, version="7")):
        assert lambda_handler({}, context) == "dev-db"
    stages = [json.loads(line)["Stage"] for line in capsys.readouterr().out.splitlines()]
    assert stages == ["DEV", "DEV", "DEV"]


def test_emf_follows_the_client_after_configure(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After configure()/reset(), the handler's EMF lines count the new client, not the discarded one."""
    monkeypatch.setenv("CONFSTAGE_METRICS", "emf")
    old = MemorySource(VALUES, url="memory://old")
    confstage.configure(sources=[old], cache_dir="")

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> str:
        return confstage.get("db")

    lambda_handler({}, lambda_context("PRD"))
    confstage.configure(sources=[MemorySource(VALUES, url="memory://new")], cache_dir="")
    lambda_handler({}, lambda_context("PRD"))
    confstage.reset()
    monkeypatch.setenv("CONFSTAGE_SOURCES", "env://")
    monkeypatch.setenv("PRD_db", "env-db")
    assert lambda_handler({}, lambda_context("PRD")) == "env-db"
    fetches = [json.loads(line)["Fetches"] for line in capsys.readouterr().out.splitlines()]
    assert fetches == [1, 1, 1]  # each line is the first fetch of a new client: no carried-over counters


# -- expire() and /tmp (item 10) -----------------------------------------------------------------


def test_expire_also_ages_the_tmp_snapshot(clock: FakeClock, tmp_path: Path) -> None:
    """After expire() (a SnapStart restore) the next get fetches, even though a fresh /tmp snapshot exists."""
    first = DictSource({"DEV": {"k": "v1"}})
    Config([first], stage="DEV", cache_dir=str(tmp_path), clock=clock).get("k")
    restored = DictSource({"DEV": {"k": "v2"}})
    config = Config([restored], stage="DEV", cache_dir=str(tmp_path), clock=clock)
    config.expire()
    assert config.get("k") == "v2"
    assert restored.fetches == 1
    config.expire()
    restored.failing = "ThrottlingException"
    assert config.get("k") == "v2"  # a failing refresh still serves the expired value (stale-on-error)


# -- one bad value (item 12, the cache's half) -----------------------------------------------------


class OneBadValue:
    """A whole-stage source holding one value that does not open (as an envelope copied to another key)."""

    url = "bad://"
    ttl: float | None = None
    whole_stage = True
    persist = True

    def __init__(self) -> None:
        self.fetches = 0

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        self.fetches += 1
        error = DecryptError(f"secure value of key 'moved' for stage {stage!r} failed authentication", source=self.url)
        return Fetched({"plain": "p", "other": "o"}, errors={"moved": error})


def test_one_value_that_does_not_open_fails_only_its_own_reads(tmp_path: Path, clock: FakeClock) -> None:
    """A DecryptError for one key fails reads of that key only; every other key, and later sources, are served."""
    source = OneBadValue()
    config = Config([source, MemorySource({"DEV": {"later": "l"}})], stage="DEV", cache_dir=str(tmp_path), clock=clock)
    assert config.get("plain") == "p"
    with pytest.raises(DecryptError, match="'moved'"):
        config.get("moved")
    with pytest.raises(DecryptError):
        config.get_many(["plain", "moved"])
    assert config.get_many(["plain", "other", "later"]) == {"plain": "p", "other": "o", "later": "l"}
    assert source.fetches == 1
    restarted = Config([OneBadValue()], stage="DEV", cache_dir=str(tmp_path), clock=clock)
    assert restarted.get("plain") == "p"  # from /tmp
    with pytest.raises(DecryptError):
        restarted.get("moved")  # not taken for absent from the snapshot: fetched, and still broken
    with pytest.raises(KeyNotFoundError):
        restarted.get("nothing")


# -- invocations and bind() are one thing ---------------------------------------------------------


def test_emitter_never_prints_a_value(monkeypatch: pytest.MonkeyPatch) -> None:
    """The EMF emitter of a client prints counts only."""
    from confstage.emf import Emitter

    config = Config([MemorySource({"DEV": {"secret": "never-print-me"}})], stage="DEV", cache_dir="")
    out = io.StringIO()
    emitter = Emitter(config.stats, stream=out)
    config.get("secret")
    emitter.emit("DEV")
    assert "never-print-me" not in out.getvalue()
