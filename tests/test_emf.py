"""CloudWatch EMF lines: per-invocation deltas of the counters, never a value."""

from __future__ import annotations

import io
import json

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
    config.get("password")
    config.get("password")
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
