"""The /tmp layer against hostile or odd files: each is ignored at once, with bounded memory, and replaced.

A FIFO at a snapshot's path, a file nested past the parser's limit, a file of 200 MB, and times in the
future (or not numbers at all) are what a crash, a bug or another tool can leave in the cache
directory. Every ``load`` must come back quickly with a valid ``StageFile`` or None, never raise, and
the next ``save`` must replace the file. Every call is timed.
"""

from __future__ import annotations

import json
import logging
import math
import os
import stat
import tempfile
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confstage import Config
from confstage.cache.disk import CLOCK_SKEW, MAX_BYTES, DiskCache, StageFile, source_identity

from .conftest import FakeClock
from .fakes import DictSource

LOAD_CPU_SECONDS = 0.05  # every load, however odd the file: this thread's CPU time (no reading or parsing at length)
LOAD_SECONDS = 2.0  # and its wall time (no blocking open or read); room for a loaded 2-core CI machine
NOW = 1_700_000_000.0


def snapshot_at(at: float) -> StageFile:
    return StageFile({"k": ("v", at), "gone": (None, at)}, {}, at)


def path_of(cache: DiskCache, source: DictSource, stage: str = "DEV") -> Path:
    identity = source_identity(source)
    assert identity is not None
    return Path(cache.path(identity, stage))


def plant(path: Path, content: bytes) -> None:
    """Write a file at ``path`` as this user would (0600), replacing what is there."""
    if path.exists() or path.is_symlink():
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(content)


def timed_load(cache: DiskCache, source: DictSource) -> StageFile | None:
    """``cache.load`` of stage DEV, asserting it took less than LOAD_CPU_SECONDS of CPU and LOAD_SECONDS of wall
    time (CPU time for the work, as a scheduler's pause on a loaded machine is no work of the load's)."""
    started, cpu = time.perf_counter(), time.thread_time()
    loaded = cache.load(source, "DEV")
    elapsed, used = time.perf_counter() - started, time.thread_time() - cpu
    assert used < LOAD_CPU_SECONDS, f"load used {used * 1000:.0f} ms of CPU"
    assert elapsed < LOAD_SECONDS, f"load took {elapsed * 1000:.0f} ms"
    return loaded


@pytest.fixture(name="source")
def fixture_source() -> DictSource:
    return DictSource({"DEV": {"k": "v"}})


@pytest.fixture(name="cache")
def fixture_cache(tmp_path: Path, source: DictSource) -> DiskCache:
    """A disk cache on a fresh directory (created by a first save), with a clock at NOW."""
    cache = DiskCache(str(tmp_path / "cache"), clock=lambda: NOW)
    cache.save(source, "OTHER", snapshot_at(NOW))
    return cache


def test_a_good_snapshot_round_trips(cache: DiskCache, source: DictSource) -> None:
    """What save writes, load gives back, quickly (the baseline the odd files are measured against)."""
    cache.save(source, "DEV", snapshot_at(NOW - 10))
    assert timed_load(cache, source) == snapshot_at(NOW - 10)


def test_a_fifo_at_the_snapshot_path_is_ignored_and_replaced(cache: DiskCache, source: DictSource) -> None:
    """A FIFO with no writer at the path does not block load (it did, forever); the next save replaces it."""
    path = path_of(cache, source)
    os.mkfifo(path, 0o600)
    outcome: list[Any] = []
    reader = threading.Thread(target=lambda: outcome.append(cache.load(source, "DEV")), daemon=True)
    started = time.perf_counter()
    reader.start()
    reader.join(timeout=2)
    try:
        assert outcome == [None]
        assert time.perf_counter() - started < LOAD_SECONDS  # includes starting the thread
    finally:
        if reader.is_alive():  # the old code blocks in open(): give it a writer so the thread ends
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
            reader.join(timeout=2)
    cache.save(source, "DEV", snapshot_at(NOW))
    assert stat.S_ISREG(path.lstat().st_mode)
    assert timed_load(cache, source) == snapshot_at(NOW)


def test_a_deeply_nested_file_is_ignored_and_replaced(cache: DiskCache, source: DictSource) -> None:
    """A file nested past the parser's recursion limit is ignored (it raised RecursionError out of get)."""
    path = path_of(cache, source)
    plant(path, b"[" * 200_000 + b"]" * 200_000)
    assert timed_load(cache, source) is None
    cache.save(source, "DEV", snapshot_at(NOW))
    assert timed_load(cache, source) == snapshot_at(NOW)


def test_a_huge_file_is_not_read(cache: DiskCache, source: DictSource) -> None:
    """A 200 MB file is refused by its size before a byte is read: quick, and far under its size in memory (it was
    read whole). The bound leaves room for what other threads of the worker allocate meanwhile: tracemalloc
    counts every thread."""
    path = path_of(cache, source)
    plant(path, b"")
    os.truncate(path, 200 * 1024 * 1024)  # sparse: cheap to make, 200 MB to read
    tracemalloc.start()
    try:
        assert timed_load(cache, source) is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 * 1024 * 1024
    cache.save(source, "DEV", snapshot_at(NOW))
    assert timed_load(cache, source) == snapshot_at(NOW)


def test_a_stage_too_big_for_the_cap_stays_in_memory(cache: DiskCache, source: DictSource) -> None:
    """A snapshot over MAX_BYTES is not written, and an older one of that stage is removed."""
    cache.save(source, "DEV", snapshot_at(NOW - 10))
    huge = StageFile({f"k{i}": ("x" * 1024, NOW) for i in range(MAX_BYTES // 1024 + 1)}, {}, NOW)
    cache.save(source, "DEV", huge)
    assert not path_of(cache, source).exists()
    assert cache.enabled
    assert timed_load(cache, source) is None


@pytest.mark.parametrize(
    "where",
    ["value", "absent", "complete_at", "sealed"],
)
def test_a_time_in_the_future_is_not_trusted(cache: DiskCache, source: DictSource, where: str) -> None:
    """Any time later than now plus CLOCK_SKEW makes the file ignored (a planted one kept its values fresh forever)."""
    cache.save(source, "DEV", snapshot_at(NOW))
    path = path_of(cache, source)
    data = json.loads(path.read_text())
    later = NOW + CLOCK_SKEW + 1
    if where == "value":
        data["values"]["k"][1] = later
    elif where == "absent":
        data["values"]["gone"][1] = later
    elif where == "complete_at":
        data["complete_at"] = later
    else:
        data["sealed"] = {"key": "AAAA", "values": {"secret": ["AAAA", later]}}
    plant(path, json.dumps(data).encode())
    assert timed_load(cache, source) is None


def test_a_time_within_the_clock_skew_is_trusted(cache: DiskCache, source: DictSource) -> None:
    """A file written by a process whose clock runs a little ahead (within CLOCK_SKEW) is still read."""
    cache.save(source, "DEV", snapshot_at(NOW + CLOCK_SKEW - 1))
    assert timed_load(cache, source) == snapshot_at(NOW + CLOCK_SKEW - 1)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity", "1" + "0" * 400, "true", '"1700000000"'])
def test_a_time_that_is_not_a_finite_number_is_not_trusted(cache: DiskCache, source: DictSource, bad: str) -> None:
    """NaN, infinities, integers too big for a float, booleans and strings are not times."""
    cache.save(source, "DEV", snapshot_at(NOW))
    path = path_of(cache, source)
    text = path.read_text().replace(f"{NOW}", bad, 1)
    assert bad in text
    plant(path, text.encode())
    assert timed_load(cache, source) is None


def test_a_planted_future_snapshot_is_refetched_and_replaced(tmp_path: Path, clock: FakeClock) -> None:
    """Through a Config, a file claiming a fetch ten years ahead is not served: the source is asked again."""
    cache_dir = tmp_path / "cache"
    Config([DictSource({"DEV": {"k": "real"}})], stage="DEV", cache_dir=str(cache_dir), clock=clock).get("k")
    (path,) = cache_dir.iterdir()
    data = json.loads(path.read_text())
    ahead = time.time() + 10 * 365 * 86400
    data["values"]["k"] = ["planted", ahead]
    data["complete_at"] = ahead
    plant(path, json.dumps(data).encode())

    source = DictSource({"DEV": {"k": "real"}})
    assert Config([source], stage="DEV", cache_dir=str(cache_dir), clock=clock).get("k") == "real"
    assert source.fetches == 1
    assert json.loads(path.read_text())["values"]["k"][0] == "real"


def test_a_directory_at_the_snapshot_path_skips_that_stage_only(cache: DiskCache, source: DictSource) -> None:
    """A directory where a snapshot belongs is ignored and not replaced, and the layer stays on for other stages."""
    path = path_of(cache, source)
    path.mkdir()
    assert timed_load(cache, source) is None
    cache.save(source, "DEV", snapshot_at(NOW))
    assert path.is_dir()
    assert cache.enabled
    cache.save(source, "PRD", snapshot_at(NOW))
    assert cache.load(source, "PRD") == snapshot_at(NOW)


# -- anything at all ----------------------------------------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
TIMES = st.one_of(st.floats(), st.integers(), st.just(10**400), st.just(NOW), st.just(NOW + CLOCK_SKEW + 1), JSON)
ENTRY = st.tuples(st.none() | st.text(max_size=6), TIMES).map(list) | JSON
ENTRIES = st.dictionaries(st.text(max_size=6), ENTRY, max_size=3)
# Near-valid snapshots: each field is usually right and sometimes anything, so the checks behind
# the first ones are reached too.
SHAPED = st.fixed_dictionaries(
    {
        "format": st.just(1) | JSON,
        "source": st.just("dict://test") | JSON,
        "stage": st.just("DEV") | JSON,
        "values": ENTRIES | JSON,
        "complete_at": st.none() | TIMES,
        "withheld": st.lists(st.text(max_size=4), max_size=3) | JSON,
    },
    optional={"sealed": st.none() | st.fixed_dictionaries({"key": st.text(max_size=4) | JSON, "values": ENTRIES})},
)
NESTED = st.integers(min_value=1, max_value=5000).map(lambda depth: b"[" * depth + b"]" * depth)
FILES = st.binary(max_size=256) | NESTED | (JSON | SHAPED).map(lambda data: json.dumps(data).encode())


def assert_valid(loaded: StageFile | None) -> None:
    """A loaded snapshot holds only what the memory layer can use: strings, finite past times."""
    if loaded is None:
        return
    assert isinstance(loaded, StageFile)
    for key, (value, at) in loaded.values.items():
        assert isinstance(key, str)
        assert value is None or isinstance(value, str)
        assert isinstance(at, float)
        assert math.isfinite(at)
        assert at <= NOW + CLOCK_SKEW
    if loaded.complete_at is not None:
        assert math.isfinite(loaded.complete_at)
        assert loaded.complete_at <= NOW + CLOCK_SKEW
    assert all(isinstance(key, str) for key in loaded.withheld)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(content=FILES)
def test_any_file_loads_as_a_valid_snapshot_or_none(content: bytes) -> None:
    """Whatever bytes sit at the snapshot path, load returns a valid StageFile or None and never raises."""
    source = DictSource({"DEV": {}})
    with tempfile.TemporaryDirectory() as directory:
        cache = DiskCache(os.path.join(directory, "cache"), clock=lambda: NOW)
        cache.save(source, "OTHER", snapshot_at(NOW))
        plant(path_of(cache, source), content)
        assert_valid(cache.load(source, "DEV"))


# -- the directory and its ancestors --------------------------------------------------------------


def assert_refused(directory: Path, caplog: pytest.LogCaptureFixture, reason: str) -> None:
    """A cache in ``directory`` turns itself off with the layer's one warning, naming ``reason``, and writes nothing."""
    source = DictSource({"DEV": {"k": "v"}})
    cache = DiskCache(str(directory), clock=lambda: NOW)
    with caplog.at_level(logging.WARNING, logger="confstage"):
        cache.save(source, "DEV", snapshot_at(NOW))
        assert cache.load(source, "DEV") is None
    assert not cache.enabled
    warnings = [r.getMessage() for r in caplog.records if "cache disabled" in r.getMessage()]
    assert len(warnings) == 1
    assert reason in warnings[0]


def assert_accepted(directory: Path) -> None:
    """A cache in ``directory`` writes and reads its snapshot."""
    source = DictSource({"DEV": {"k": "v"}})
    cache = DiskCache(str(directory), clock=lambda: NOW)
    cache.save(source, "DEV", snapshot_at(NOW))
    assert cache.load(source, "DEV") == snapshot_at(NOW)
    assert cache.enabled


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a symlink away")
def test_a_symlinked_parent_owned_by_another_user_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A parent reached through someone else's symlink is refused (only the last component was checked)."""
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    os.lchown(link, 65534, 65534)
    assert_refused(link / "cache", caplog, "a symlink owned by another user")
    assert list(real.iterdir()) == []


def test_a_symlinked_parent_of_our_own_is_accepted(tmp_path: Path) -> None:
    """A parent reached through our own (or root's) symlink works: macOS's /tmp is a link to /private/tmp."""
    real = tmp_path / "private-tmp"
    real.mkdir(mode=0o700)
    (tmp_path / "tmp").symlink_to(real)
    assert_accepted(tmp_path / "tmp" / "confstage")
    assert [p.name for p in real.iterdir()] == ["confstage"]


@pytest.mark.parametrize("depth", [1, 3], ids=["parent", "three-levels-up"])
def test_an_ancestor_others_can_write_to_is_refused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, depth: int
) -> None:
    """A directory anywhere above the cache that group or others can write to (not sticky) is refused."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    below = shared.joinpath(*[f"d{i}" for i in range(depth - 1)])
    below.mkdir(parents=True, exist_ok=True)
    assert_refused(below / "cache", caplog, f"is under {shared}, which other users can write to")


def test_a_sticky_world_writable_ancestor_is_accepted(tmp_path: Path) -> None:
    """A sticky world-writable ancestor (the /tmp shape) is fine: others cannot rename what is ours in it."""
    sticky = tmp_path / "sticky"
    sticky.mkdir()
    sticky.chmod(0o1777)
    assert_accepted(sticky / "cache")


def test_a_symlink_to_an_unsafe_place_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Our own symlink is followed and its target walked: a target under a writable-by-all directory is refused."""
    shared = tmp_path / "shared"
    (shared / "real").mkdir(parents=True)
    shared.chmod(0o777)
    (tmp_path / "link").symlink_to(shared / "real")
    assert_refused(tmp_path / "link" / "cache", caplog, "which other users can write to")


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory away")
def test_an_ancestor_owned_by_another_user_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A parent owned by someone else (who could swap our directory for theirs) is refused."""
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 65534, 65534)
    assert_refused(theirs / "cache", caplog, "which is owned by another user")
