"""Freshness on a monotonic clock: a wall-clock step neither freezes nor floods the memory cache.

Reproduced before: ages were measured with ``time.time()``, so after the clock stepped back an hour a value with
a TTL of 60 s was still served 600 s later with no fetch. Memory now ages on the client's clock (monotonic by
default); the /tmp layer moves times to and from the wall clock, and still refuses files from the future.
"""

from __future__ import annotations

import time
from pathlib import Path

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from confstage import Config
from confstage.disk import CLOCK_SKEW

from .conftest import FakeClock
from .fakes import DictSource


def client(source: DictSource, directory: Path, mono: FakeClock, wall: FakeClock, ttl: float = 60) -> Config:
    """A client whose memory ages on ``mono`` and whose /tmp files are stamped by ``wall`` (two fake clocks)."""
    made = Config([source], stage="PRD", cache_dir=str(directory), clock=mono, ttl=ttl, ttl_jitter=0)
    assert made._disk is not None
    made._disk._wall = wall  # the one seam: Config takes one clock, and stands it for both unless it is monotonic
    return made


def test_the_default_clock_is_monotonic() -> None:
    """Config ages values on time.monotonic, and stamps /tmp files with time.time."""
    made = Config(["env://"], stage="PRD", cache_dir="/tmp/confstage-clock-test")
    assert made.clock is time.monotonic
    assert made._disk is not None
    assert made._disk._wall is time.time


def test_a_wall_clock_step_back_does_not_freeze_the_memory_cache(tmp_path: Path) -> None:
    """The reproduced defect: the wall clock steps back an hour; 600 s later (TTL 60) the value is fetched again."""
    source = DictSource({"PRD": {"k": "v1"}})
    mono, wall = FakeClock(1_000.0), FakeClock(1_700_000_000.0)
    made = client(source, tmp_path, mono, wall)
    assert made.get("k") == "v1"
    wall.tick(-3600)
    mono.tick(600)
    wall.tick(600)
    source.values["PRD"]["k"] = "v2"
    assert made.get("k") == "v2"
    assert source.fetches == 2


def test_a_wall_clock_step_forward_does_not_expire_fresh_values(tmp_path: Path) -> None:
    """The wall clock jumps a day ahead; 10 s later a value with a TTL of 60 s is still served from memory."""
    source = DictSource({"PRD": {"k": "v1"}})
    mono, wall = FakeClock(5.0), FakeClock(1_700_000_000.0)
    made = client(source, tmp_path, mono, wall)
    assert made.get("k") == "v1"
    wall.tick(86_400)
    mono.tick(10)
    assert made.get("k") == "v1"
    assert source.fetches == 1


@settings(max_examples=60, deadline=None)
@given(
    offset_a=st.floats(-1e6, 1e6),
    offset_b=st.floats(-1e6, 1e6),
    age=st.floats(0, 200),
)
def test_a_snapshot_keeps_its_age_across_processes(offset_a: float, offset_b: float, age: float) -> None:
    """Two processes whose monotonic clocks started at different times agree on a file's age (wall clock)."""
    import tempfile

    assume(abs(age - 60) > 1e-3)  # the TTL's edge, where float sums of large clocks may round either way
    with tempfile.TemporaryDirectory() as directory:
        source = DictSource({"PRD": {"k": "v1"}})
        wall = FakeClock(1_700_000_000.0)
        first = client(source, Path(directory), FakeClock(10_000.0 + offset_a), wall)
        assert first.get("k") == "v1"
        wall.tick(age)
        second = client(source, Path(directory), FakeClock(10_000.0 + offset_b), wall)
        assert second.get("k") == "v1"
        # Fresh from /tmp while younger than the TTL (60 s), fetched again once older.
        assert source.fetches == (1 if age <= 60 else 2)


def test_a_file_from_the_future_is_still_refused(tmp_path: Path) -> None:
    """A snapshot stamped past the wall clock (beyond CLOCK_SKEW) is not trusted, whatever the monotonic clock."""
    source = DictSource({"PRD": {"k": "v1"}})
    wall = FakeClock(1_700_000_000.0)
    writer = client(source, tmp_path, FakeClock(0.0), wall)
    assert writer.get("k") == "v1"
    wall.tick(-(CLOCK_SKEW + 3600))  # the wall clock steps back: the file now lies an hour in the future
    reader = client(source, tmp_path, FakeClock(0.0), wall)
    assert reader.get("k") == "v1"
    assert source.fetches == 2
