"""Warm-up pings, ``prefetch`` and the SnapStart after-restore hook."""

from __future__ import annotations

import asyncio
import sys
import types
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import confstage
from confstage import KeyNotFoundError, snapstart
from confstage.decorator import is_warmup
from confstage.testing import MemorySource, lambda_context

VALUES = {"DEV": {"db_url": "sqlite://dev"}, "PRD": {"db_url": "sqlite://prd", "port": "5432"}}


@pytest.fixture(name="source")
def fixture_source() -> MemorySource:
    """The default client's only source, counting its fetches."""
    source = MemorySource(VALUES)
    confstage.configure(sources=[source], aliases="live=PRD", cache_dir="")
    return source


@pytest.fixture(name="fresh_snapstart")
def fixture_fresh_snapstart() -> Iterator[None]:
    """The SnapStart registration starts and ends unregistered."""
    snapstart.reset()
    yield
    snapstart.reset()


@pytest.mark.parametrize("event", [{"source": "serverless-plugin-warmup"}, {"confstage": "warmup"}])
def test_warmup_ping_loads_the_stage_without_calling_the_handler(source: MemorySource, event: dict[str, str]) -> None:
    """Both warm-up shapes prefetch the invocation's stage and return without running the handler."""
    calls: list[Any] = []

    @confstage.handler(warmup=True)
    def handle(event: Any, context: Any) -> Any:
        calls.append(event)
        return confstage.get("db_url")

    assert handle(event, lambda_context(alias="live")) == {"confstage": "warm", "stage": "PRD"}
    assert calls == []
    assert source.fetches == 1

    assert handle({"path": "/"}, lambda_context(alias="live")) == "sqlite://prd"  # a real event runs the handler
    assert len(calls) == 1
    assert source.fetches == 1  # ...from what the ping loaded


def test_warmup_over_aws_moves_the_requests_to_the_ping(boto: Any, requests_made: Counter[str]) -> None:
    """Against SSM, the ping makes the GetParametersByPath request and the first real invocation makes none."""
    boto("ssm").put_parameter(Name="/app/DEV/db_url", Value="postgres://dev", Type="String")
    confstage.configure(sources="ssm:///app")

    @confstage.handler(warmup=True)
    def handle(event: Any, context: Any) -> Any:
        return confstage.get("db_url")

    handle({"confstage": "warmup"}, lambda_context(alias="DEV"))
    assert requests_made == {"ssm.GetParametersByPath": 1}
    assert handle({}, lambda_context(alias="DEV")) == "postgres://dev"
    assert requests_made == {"ssm.GetParametersByPath": 1}


def test_without_warmup_option_pings_reach_the_handler(source: MemorySource) -> None:
    """A bare ``@handler`` treats a warm-up ping as an ordinary event."""

    @confstage.handler
    def handle(event: Any, context: Any) -> Any:
        return event

    assert handle({"confstage": "warmup"}, lambda_context(alias="DEV")) == {"confstage": "warmup"}
    assert source.fetches == 0


def test_async_handler_and_custom_predicate(source: MemorySource) -> None:
    """``warmup=`` accepts a predicate, and ``async def`` handlers answer pings the same way."""
    called = False

    @confstage.handler(warmup=lambda event: event == "ping")
    async def handle(event: Any, context: Any) -> Any:
        nonlocal called
        called = True
        return confstage.get("db_url")

    assert asyncio.run(handle("ping", lambda_context(alias="DEV"))) == {"confstage": "warm", "stage": "DEV"}
    assert not called
    assert asyncio.run(handle({"confstage": "warmup"}, lambda_context(alias="DEV"))) == "sqlite://dev"
    assert called


def test_warmup_keys_fail_fast_listing_every_missing_key(source: MemorySource) -> None:
    """``warmup_keys`` are checked on the ping: one KeyNotFoundError names every missing key."""

    @confstage.handler(warmup=True, warmup_keys=["db_url", "api_key", "port"])
    def handle(event: Any, context: Any) -> None:
        raise AssertionError("not called on a ping")

    with pytest.raises(KeyNotFoundError) as info:
        handle({"confstage": "warmup"}, lambda_context(alias="DEV"))
    assert info.value.keys == ("api_key", "port")
    assert "'api_key', 'port'" in str(info.value)
    assert info.value.stage == "DEV"


def test_is_warmup_recognises_only_the_two_shapes() -> None:
    """Only the serverless-plugin-warmup and confstage shapes are pings."""
    assert is_warmup({"source": "serverless-plugin-warmup", "concurrency": 3})
    assert is_warmup({"confstage": "warmup"})
    assert not is_warmup({"source": "aws.events"})
    assert not is_warmup("warmup")
    assert not is_warmup(None)


def test_prefetch_loads_whole_stage_sources_and_lists_every_missing_key(source: MemorySource) -> None:
    """``confstage.prefetch`` loads the stage in one fetch; with keys it fails once, naming all missing ones."""
    assert confstage.prefetch(stage="PRD") == {}
    assert source.fetches == 1
    assert confstage.prefetch(["db_url", "port"], stage="PRD") == {"db_url": "sqlite://prd", "port": "5432"}
    with pytest.raises(KeyNotFoundError) as info:
        confstage.prefetch(["db_url", "user", "password", "port"], stage="DEV")
    assert info.value.keys == ("user", "password", "port")
    assert all(repr(key) in str(info.value) for key in ("user", "password", "port"))
    assert "memory://" in str(info.value)


def test_after_restore_hook_makes_cached_values_stale(source: MemorySource, fresh_snapstart: None) -> None:
    """The registered after-restore hook expires the default client: the next get refetches."""
    hooks: list[Callable[[], None]] = []
    assert snapstart.install(hooks.append)
    assert snapstart.install(hooks.append)  # once only
    assert len(hooks) == 1

    assert confstage.get("db_url", stage="PRD") == "sqlite://prd"
    assert source.fetches == 1
    source.values["PRD"]["db_url"] = "sqlite://rotated"
    assert confstage.get("db_url", stage="PRD") == "sqlite://prd"  # still fresh in memory

    hooks[0]()  # the runtime restores the snapshot
    assert confstage.get("db_url", stage="PRD") == "sqlite://rotated"
    assert source.fetches == 2


def test_handler_registers_with_the_runtime_hook_inside_lambda(
    monkeypatch: pytest.MonkeyPatch, fresh_snapstart: None
) -> None:
    """Inside Lambda, applying ``@handler`` registers with ``snapshot_restore_py``; explicit configs are expired too."""
    registered: list[Callable[[], None]] = []
    runtime = types.ModuleType("snapshot_restore_py")
    runtime.register_after_restore = registered.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", runtime)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "fn")
    source = MemorySource(VALUES)
    config = confstage.Config([source], cache_dir="")

    @confstage.handler(config=config)
    def handle(event: Any, context: Any) -> str:
        return config.get("db_url")

    assert registered == [snapstart.after_restore]
    assert handle({}, lambda_context(alias="DEV")) == "sqlite://dev"
    registered[0]()
    assert handle({}, lambda_context(alias="DEV")) == "sqlite://dev"
    assert source.fetches == 2


@pytest.mark.parametrize("runtime_module", ["absent", "present"])
def test_outside_lambda_nothing_is_registered(
    fresh_snapstart: None, monkeypatch: pytest.MonkeyPatch, runtime_module: str
) -> None:
    """Without ``AWS_LAMBDA_FUNCTION_NAME`` the hook is not looked up, whether or not the runtime interface client
    (awslambdaric, which brings snapshot_restore_py) is installed; inside Lambda it is registered only when the
    module is there. Both cases run whatever this environment has installed (sys.modules stands in for it)."""
    registered: list[Callable[[], None]] = []
    fake = types.ModuleType("snapshot_restore_py")
    fake.register_after_restore = registered.append  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "snapshot_restore_py", fake if runtime_module == "present" else None)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    assert not snapstart.install()
    assert registered == []
    inside = snapstart.install(environ={"AWS_LAMBDA_FUNCTION_NAME": "fn"})
    assert inside is (runtime_module == "present")
    assert registered == ([snapstart.after_restore] if inside else [])
