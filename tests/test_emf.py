"""CloudWatch EMF lines: per-invocation deltas of the counters, never a value."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from typing import Any

import pytest

import confstage
from confstage import Config
from confstage.emf import Emitter

from .conftest import FakeClock
from .fakes import DictSource

SECRET = "emf-must-not-see-this"


def test_each_line_carries_the_counts_of_one_invocation(clock: FakeClock) -> None:
    """Two invocations give two EMF documents whose counters are deltas, with units and dimensions."""
    source = DictSource({"PRD": {"password": SECRET}})
    config = Config([source], stage="PRD", cache_dir="", clock=clock)
    out = io.StringIO()
    emitter = Emitter(config.stats, stream=out, clock=clock)
    config.get("password")
    emitter.emit("PRD")
    config.get("password")  # answered by the client's view: a dict lookup, not counted
    config.get("other", "x")  # the source's layer answers from memory: a hit
    config.get("more", "x")
    emitter.emit("PRD")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert (first["Fetches"], first["CacheMisses"], first["CacheHits"]) == (1, 1, 0)
    assert (second["Fetches"], second["CacheMisses"], second["CacheHits"]) == (0, 0, 2)
    meta = first["_aws"]["CloudWatchMetrics"][0]
    assert meta["Namespace"] == "confstage"
    assert meta["Dimensions"] == [["FunctionName", "Stage"]]
    assert {m["Name"]: m["Unit"] for m in meta["Metrics"]}["FetchLatency"] == "Milliseconds"
    assert first["Stage"] == "PRD"
    assert first["_aws"]["Timestamp"] == int(clock.now * 1000)
    assert SECRET not in out.getvalue()


def test_handler_prints_one_emf_line_per_invocation(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With CONFSTAGE_METRICS=emf, each @handler invocation prints exactly one EMF line for its stage."""
    monkeypatch.setenv("CONFSTAGE_METRICS", "emf")
    source = DictSource({"PRD": {"k": SECRET}})
    confstage.configure(sources=[source], cache_dir="")

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> int:
        return len(confstage.get("k"))

    ctx = SimpleNamespace(invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:fn:PRD")
    assert lambda_handler({}, ctx) == len(SECRET)
    assert lambda_handler({}, ctx) == len(SECRET)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # The second invocation reads its snapshot: no fetch, no layer lookup.
    assert [(d["Stage"], d["Fetches"], d["CacheMisses"]) for d in lines] == [("PRD", 1, 1), ("PRD", 0, 0)]


def test_no_emf_lines_unless_enabled(capsys: pytest.CaptureFixture[str]) -> None:
    """Without CONFSTAGE_METRICS=emf the handler prints nothing."""
    confstage.configure(sources=[DictSource({"PRD": {"k": "v"}})], cache_dir="", stage="PRD")

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> str:
        return confstage.get("k")

    assert lambda_handler({}, None) == "v"
    assert capsys.readouterr().out == ""
