"""The caching layer: TTL, single-flight, stale-on-error and the /tmp snapshot, with an injected clock."""

from __future__ import annotations

import json
import logging
import os
import stat
import threading
from pathlib import Path

import pytest

from confstage import Config, SourceError

from .conftest import FakeClock
from .fakes import DictSource

SECRET = "pa55-w0rd-do-not-leak"


def config(source: DictSource, clock: FakeClock, cache_dir: Path | str = "") -> Config:
    return Config([source], stage="DEV", cache_dir=str(cache_dir), clock=clock, ttl=60, max_stale=600)


def test_sixteen_threads_on_a_cold_key_cost_one_fetch(clock: FakeClock) -> None:
    """Concurrent misses for one source and stage wait for a single fetch and all get its value."""
    source = DictSource({"DEV": {"k": "v"}})
    source.gate = threading.Event()
    cfg = config(source, clock)
    results: list[str] = []
    barrier = threading.Barrier(16)

    def work() -> None:
        barrier.wait(timeout=10)
        results.append(cfg.get("k"))

    threads = [threading.Thread(target=work) for _ in range(16)]
    for t in threads:
        t.start()
    assert source.entered.wait(10), "no fetch began"  # the first thread is inside fetch; the others wait on it
    source.gate.set()
    for t in threads:
        t.join(timeout=10)
    assert results == ["v"] * 16
    assert source.fetches == 1


def test_stale_value_served_when_refresh_fails(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """After the TTL, a failing refresh serves the last good value, counts it and warns without the value."""
    source = DictSource({"DEV": {"password": SECRET}})
    cfg = config(source, clock)
    assert cfg.get("password") == SECRET
    clock.tick(61)
    source.failing = "ThrottlingException"
    with caplog.at_level(logging.DEBUG, logger="confstage"):
        assert cfg.get("password") == SECRET
    assert cfg.stats()["sources"]["dict://test"]["stale"] == 1
    assert any("stale" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)
    assert all(SECRET not in r.getMessage() for r in caplog.records)


def test_failed_refresh_is_not_retried_until_retry_after(clock: FakeClock) -> None:
    """While a source is failing, stale values are served without asking it again for retry_after seconds."""
    source = DictSource({"DEV": {"a": "1", "b": "2"}})
    cfg = config(source, clock)
    cfg.get("a")
    clock.tick(61)
    source.failing = "InternalError"
    assert cfg.get("a") == "1"
    assert cfg.get("b") == "2"
    assert source.fetches == 2
    clock.tick(6)
    source.failing = None
    source.values["DEV"]["a"] = "new"
    assert cfg.get("a") == "new"


def test_too_stale_raises_source_error(clock: FakeClock) -> None:
    """A value older than max_stale is not served: the failure raises SourceError."""
    source = DictSource({"DEV": {"k": "v"}})
    cfg = config(source, clock)
    cfg.get("k")
    clock.tick(601)
    source.failing = "ServiceUnavailable"
    with pytest.raises(SourceError, match="ServiceUnavailable") as info:
        cfg.get("k")
    assert info.value.source == "dict://test"
    assert info.value.operation == "test:Fetch"


def test_force_never_serves_stale(clock: FakeClock) -> None:
    """force=True bypasses every cache, so a failing source raises even with a stale value at hand."""
    source = DictSource({"DEV": {"k": "v"}})
    cfg = config(source, clock)
    cfg.get("k")
    source.failing = "InternalError"
    with pytest.raises(SourceError):
        cfg.get("k", force=True)


def test_absent_keys_are_cached_for_whole_stage_sources(clock: FakeClock) -> None:
    """A key missing from a loaded stage is known absent until the TTL: no second fetch."""
    source = DictSource({"DEV": {"k": "v"}})
    cfg = config(source, clock)
    assert cfg.get("nope", "d") == "d"
    assert cfg.get("other", "d") == "d"
    assert source.fetches == 1


def test_per_key_sources_fetch_only_unknown_keys(clock: FakeClock) -> None:
    """A per-key source is asked only for keys it has not answered within the TTL."""
    source = DictSource({"DEV": {"a": "1", "b": "2"}}, whole_stage=False)
    cfg = config(source, clock)
    assert cfg.get_many(["a", "b"]) == {"a": "1", "b": "2"}
    assert cfg.get("a") == "1"
    assert cfg.get("c", "d") == "d"
    assert source.fetches == 2


def test_new_process_reads_the_tmp_snapshot_without_fetching(clock: FakeClock, tmp_path: Path) -> None:
    """A second client on the same cache dir (a restarted runtime) is served from /tmp: zero fetches."""
    source = DictSource({"DEV": {"a": "1", "b": "2"}})
    config(source, clock, tmp_path).get("a")
    restarted = DictSource({"DEV": {"a": "changed"}})
    cfg = config(restarted, clock, tmp_path)
    assert cfg.get_many(["a", "b"]) == {"a": "1", "b": "2"}
    assert cfg.get("absent", "d") == "d"
    assert restarted.fetches == 0
    assert cfg.stats()["sources"]["dict://test"]["disk_hits"] == 1
    clock.tick(61)
    assert cfg.get("a") == "changed"
    assert restarted.fetches == 1


def test_cache_files_are_private_and_hold_no_secret(clock: FakeClock, tmp_path: Path) -> None:
    """The directory is 0700, files are 0600, and secret values never reach them; a restart refetches secrets."""
    cache_dir = tmp_path / "c"
    source = DictSource({"DEV": {"password": SECRET, "host": "db.local"}}, secret={"password"})
    config(source, clock, cache_dir).get_many(["password", "host"])
    assert stat.S_IMODE(cache_dir.stat().st_mode) == 0o700
    files = list(cache_dir.iterdir())
    assert len(files) == 1
    assert stat.S_IMODE(files[0].stat().st_mode) == 0o600
    content = files[0].read_text()
    assert SECRET not in content
    assert "db.local" in content
    assert json.loads(content)["withheld"] == ["password"]
    restarted = DictSource({"DEV": {"password": SECRET, "host": "db.local"}}, secret={"password"})
    cfg = config(restarted, clock, cache_dir)
    assert cfg.get("host") == "db.local"
    assert restarted.fetches == 0
    assert cfg.get("password") == SECRET
    assert restarted.fetches == 1


@pytest.mark.parametrize("damage", ["truncated", "not json", "wrong shape", "empty", "world-readable"])
def test_corrupt_cache_files_are_ignored_and_replaced(clock: FakeClock, tmp_path: Path, damage: str) -> None:
    """A damaged, foreign-looking or non-private cache file is ignored, refetched and rewritten, never raised."""
    source = DictSource({"DEV": {"k": "v"}})
    config(source, clock, tmp_path).get("k")
    (path,) = tmp_path.iterdir()
    good = path.read_text()
    damaged = {
        "truncated": good[: len(good) // 2],
        "not json": "\x00\xff garbage",
        "wrong shape": json.dumps({"format": 1, "values": [1, 2]}),
        "empty": "",
        "world-readable": good,
    }[damage]
    path.write_text(damaged, errors="surrogateescape")
    os.chmod(path, 0o644 if damage == "world-readable" else 0o600)
    again = DictSource({"DEV": {"k": "v2"}})
    assert config(again, clock, tmp_path).get("k") == "v2"
    assert again.fetches == 1
    assert json.loads(path.read_text())["values"]["k"][0] == "v2"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_unusable_cache_dir_degrades_to_memory_with_one_warning(
    clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A cache dir that is a file degrades to memory only, warning once."""
    blocker = tmp_path / "file"
    blocker.write_text("x")
    source = DictSource({"DEV": {"a": "1", "b": "2"}}, whole_stage=False)
    cfg = config(source, clock, blocker)
    with caplog.at_level(logging.WARNING, logger="confstage"):
        assert cfg.get("a") == "1"
        assert cfg.get("b") == "2"
    warnings = [r for r in caplog.records if "cache disabled" in r.getMessage()]
    assert len(warnings) == 1
    assert "is not a directory" in warnings[0].getMessage()


def test_symlinked_cache_dir_is_refused(clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A cache dir reached through a symlink is refused: nothing is written through it."""
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "link"
    link.symlink_to(real)
    with caplog.at_level(logging.WARNING, logger="confstage"):
        config(DictSource({"DEV": {"k": "v"}}), clock, link).get("k")
    assert list(real.iterdir()) == []
    assert any("symlink" in r.getMessage() for r in caplog.records)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give the directory away")
def test_cache_dir_owned_by_another_user_is_refused(clock: FakeClock, tmp_path: Path) -> None:
    """A cache dir owned by someone else (a planted /tmp/confstage) is never read nor written."""
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    os.chown(foreign, 65534, 65534)
    config(DictSource({"DEV": {"k": "v"}}), clock, foreign).get("k")
    assert list(foreign.iterdir()) == []


@pytest.mark.parametrize("where", ["/proc/confstage-cache", "a-file/cache"])
def test_uncreatable_cache_dir_degrades_to_memory(
    clock: FakeClock, tmp_path: Path, caplog: pytest.LogCaptureFixture, where: str
) -> None:
    """A directory that cannot be created (even as root) turns the layer off instead of failing gets."""
    (tmp_path / "a-file").write_text("not a directory")
    source = DictSource({"DEV": {"k": "v"}})
    with caplog.at_level(logging.WARNING, logger="confstage"):
        assert config(source, clock, tmp_path / where).get("k") == "v"
    assert any("/tmp cache disabled" in r.getMessage() for r in caplog.records)


def test_a_cache_dir_whose_parents_are_missing_is_created_private(clock: FakeClock, tmp_path: Path) -> None:
    """CONFSTAGE_CACHE_DIR two levels below an existing directory: each missing level is made 0700, then used."""
    where = tmp_path / "x" / "y" / "cache"
    assert config(DictSource({"DEV": {"k": "v"}}), clock, where).get("k") == "v"
    assert [p.name for p in where.iterdir() if p.suffix == ".json"]
    for level in (tmp_path / "x", tmp_path / "x" / "y", where):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700


def test_expire_marks_values_stale_but_keeps_them_for_errors(clock: FakeClock) -> None:
    """After expire() (SnapStart restore) the next get refetches, yet a failing refetch still serves stale."""
    source = DictSource({"DEV": {"k": "v"}})
    cfg = config(source, clock)
    cfg.get("k")
    cfg.expire()
    source.values["DEV"]["k"] = "v2"
    assert cfg.get("k") == "v2"
    cfg.expire()
    source.failing = "InternalError"
    assert cfg.get("k") == "v2"
    assert source.fetches == 3


def test_debug_log_tells_hits_misses_and_fetches_without_values(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """At DEBUG the confstage logger records miss, fetch (with timing) and hit, never a value."""
    source = DictSource({"DEV": {"password": SECRET}}, url="dict://logged")
    cfg = config(source, clock)
    with caplog.at_level(logging.DEBUG, logger="confstage"):
        cfg.get("password")
        cfg.get_many(["password"])  # answered by the client's view: no log line, no layer lookup
        cfg.get("other", "default")  # a key the view has not seen: the layer answers it from memory
    # This source's lines only: a thread an earlier test left in the worker may log meanwhile.
    messages = [r.getMessage() for r in caplog.records if r.name == "confstage" and "dict://logged" in r.getMessage()]
    assert [m.split(":")[0] for m in messages] == ["miss", "fetched", "hit"]
    assert " ms" in messages[1]
    assert all(SECRET not in m for m in messages)


def test_a_stale_snapshot_is_not_counted_as_a_tmp_hit(clock: FakeClock, tmp_path: Path) -> None:
    """Loading a stage whose /tmp snapshot has expired fetches, and stats count no /tmp hit."""
    config(DictSource({"DEV": {"k": "v"}}), clock, tmp_path).get("k")
    clock.tick(61)
    restarted = DictSource({"DEV": {"k": "v2"}})
    cfg = config(restarted, clock, tmp_path)
    cfg.prefetch()
    assert restarted.fetches == 1
    assert cfg.stats()["sources"]["dict://test"]["disk_hits"] == 0
    assert cfg.get("k") == "v2"
