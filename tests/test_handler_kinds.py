"""Handler kinds against one stage oracle: every read inside an invocation, and every worker thread it starts, sees
the invocation's stage through its innermost binding.

Reproduced before: on ``@handler(config=B)`` wrapped by ``refresh_on`` (or with a nested ``bind()``) the registry of
running invocations held two entries for one invocation, so a ``ThreadPoolExecutor`` worker fell back to the default
client; a generator handler ran its body after the wrapper returned, reading DEV in a PRD invocation.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import confstage
from confstage import Config, refresh_on
from confstage._state import NESTED, RUNNING
from confstage.testing import MemorySource, lambda_context

VALUES = {
    "DEV": {"db": "dev-db"},
    "PRD": {"db": "prd-db"},
    "TST": {"db": "tst-db"},
}


@pytest.fixture(autouse=True)
def _default_reads_dev() -> None:
    """The default client says DEV: a read that escapes its invocation shows up as dev-db."""
    confstage.configure(sources=[MemorySource(VALUES)], stage="DEV", cache_dir="")


class Oops(Exception):
    """What refresh_on is told to catch (never raised here)."""


def in_worker() -> str:
    """A read from a pool thread started without a copy of the context."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(confstage.get, "db").result()


def both() -> tuple[str, str]:
    return confstage.get("db"), in_worker()


WRAPS: dict[str, Callable[[Config | None], Callable[[Any, Any], Any]]] = {}


def kind(name: str) -> Callable[[Callable[[Config | None], Callable[[Any, Any], Any]]], Any]:
    def register(make: Callable[[Config | None], Callable[[Any, Any], Any]]) -> Any:
        WRAPS[name] = make
        return make

    return register


@kind("plain")
def _plain(config: Config | None) -> Callable[[Any, Any], Any]:
    @confstage.handler(config=config)
    def fn(event: Any, context: Any) -> tuple[str, str]:
        return both()

    return fn


@kind("async")
def _async(config: Config | None) -> Callable[[Any, Any], Any]:
    @confstage.handler(config=config)
    async def fn(event: Any, context: Any) -> tuple[str, str]:
        loop = asyncio.get_running_loop()
        worker = await loop.run_in_executor(None, confstage.get, "db")
        return confstage.get("db"), worker

    return lambda event, context: asyncio.run(fn(event, context))


@kind("refresh_on inside")
def _refresh_inside(config: Config | None) -> Callable[[Any, Any], Any]:
    @confstage.handler(config=config)
    @refresh_on(Oops)
    def fn(event: Any, context: Any) -> tuple[str, str]:
        return both()

    return fn


@kind("refresh_on outside")
def _refresh_outside(config: Config | None) -> Callable[[Any, Any], Any]:
    @refresh_on(Oops)
    @confstage.handler(config=config)
    def fn(event: Any, context: Any) -> tuple[str, str]:
        return both()

    return fn


@kind("bind inside")
def _bind_inside(config: Config | None) -> Callable[[Any, Any], Any]:
    @confstage.handler(config=config)
    def fn(event: Any, context: Any) -> tuple[str, str]:
        with (config or confstage).bind(context):
            return both()

    return fn


@kind("handler inside handler")
def _twice(config: Config | None) -> Callable[[Any, Any], Any]:
    @confstage.handler(config=config)
    def inner(event: Any, context: Any) -> tuple[str, str]:
        return both()

    @confstage.handler(config=config)
    def outer(event: Any, context: Any) -> tuple[str, str]:
        return inner(event, context)

    return outer


@settings(max_examples=60, deadline=None)
@given(
    which=st.sampled_from(sorted(WRAPS)),
    stage=st.sampled_from(["PRD", "TST"]),
    explicit=st.booleans(),
    warm=st.integers(min_value=1, max_value=3),
)
def test_every_kind_reads_its_stage_in_the_body_and_in_workers(
    which: str, stage: str, explicit: bool, warm: int
) -> None:
    """The oracle: inside an invocation of ``stage``, the body and its worker threads read ``stage``'s value."""
    config = Config([MemorySource(VALUES)], stage="DEV", cache_dir="") if explicit else None
    fn = WRAPS[which](config)
    for _ in range(warm):  # the first invocation is cold, the next ones warm (a shared view)
        assert fn({}, lambda_context(stage)) == (VALUES[stage]["db"],) * 2
    assert not RUNNING
    assert not NESTED


def test_one_logical_invocation_counts_once() -> None:
    """Inside @refresh_on around @handler(config=B), the registry holds one entry: B's invocation."""
    config = Config([MemorySource(VALUES)], stage="DEV", cache_dir="")
    seen: list[int] = []

    @refresh_on(Oops)
    @confstage.handler(config=config)
    def fn(event: Any, context: Any) -> None:
        seen.append(len(RUNNING))
        (only,) = RUNNING.values()
        assert only.client is config

    fn({}, lambda_context("PRD"))
    fn({}, lambda_context("PRD"))  # warm
    assert seen == [1, 1]


def test_generator_handlers_are_refused_at_decoration() -> None:
    """A generator's body would run after the wrapper returned, unbound: refused with a TypeError naming it."""

    def gen(event: Any, context: Any) -> Any:
        yield confstage.get("db")

    async def agen(event: Any, context: Any) -> Any:
        yield confstage.get("db")

    for fn in (gen, agen):
        with pytest.raises(TypeError, match="generator function"):
            confstage.handler(fn)
        with pytest.raises(TypeError, match=fn.__name__):
            confstage.handler(config=None)(fn)
