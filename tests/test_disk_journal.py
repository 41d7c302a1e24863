"""Per-key sources append to a journal: reading a stage key by key writes /tmp linearly, and the files stay bounded.

Reproduced before: every per-key fetch rewrote the stage's whole snapshot, so 1,000 keys read one by one (the
DynamoDB flat layout, the S3 objects layout) wrote 31.9 M characters to /tmp, O(n) per read.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confstage import Config
from confstage.cache import disk, run_inline
from confstage.cache.disk import JOURNAL_MIN

from .conftest import FakeClock
from .fakes import DictSource


def io_counts() -> tuple[int, int]:
    """Characters this thread has read and written so far (Linux's /proc/thread-self/io ``rchar``, ``wchar``): the
    process's would count the sockets of every other thread of the worker too (the moto server, a fetch given up
    on by an earlier test)."""
    with open("/proc/thread-self/io") as io:
        found = dict(line.split(":") for line in io)
    return int(found["rchar"]), int(found["wchar"])


def read_one_by_one(directory: Path, n: int) -> tuple[int, int, DictSource]:
    """Read n keys of a per-key source one by one; the characters read and written on the way."""
    source = DictSource({"PRD": {f"key{i:05d}": "v" * 20 for i in range(n)}}, whole_stage=False)
    client = Config([source], stage="PRD", cache_dir=str(directory), clock=FakeClock(), ttl=300, run=run_inline)
    read, wrote = io_counts()  # every fetch and write in this thread (run_inline), as counted
    for i in range(n):
        assert client.get(f"key{i:05d}") == "v" * 20
    after = io_counts()
    return after[0] - read, after[1] - wrote, source


@pytest.mark.skipif(
    not os.path.exists("/proc/thread-self/io"), reason="counts bytes written through /proc/thread-self/io"
)
def test_reading_a_stage_key_by_key_writes_linearly(tmp_path: Path) -> None:
    """1,000 keys one by one: a few hundred kB written in all (was 31.9 M), and 10x the keys costs about 10x the
    bytes, read and written (each miss used to read the whole stage back, too)."""
    small_read, small, _ = read_one_by_one(tmp_path / "small", 100)
    large_read, large, source = read_one_by_one(tmp_path / "large", 1000)
    assert source.fetches == 1000
    assert large < 1_000_000, large
    assert large < 20 * small, (small, large)  # linear (10x), where a rewrite per read was quadratic (100x)
    assert large_read < 20 * small_read, (small_read, large_read)


def test_a_new_process_reads_every_key_from_the_journal_and_the_snapshot(tmp_path: Path) -> None:
    """What one process learnt key by key (folded or still in the journal), another reads with no request."""
    n = 3000  # enough for the journal to be folded into the snapshot at least once
    read_one_by_one(tmp_path, n)
    files = sorted(p.suffix for p in tmp_path.iterdir())
    assert ".json" in files
    other = DictSource({"PRD": {}}, whole_stage=False)
    client = Config([other], stage="PRD", cache_dir=str(tmp_path), clock=FakeClock(), ttl=300)
    for i in range(n):
        assert client.get(f"key{i:05d}") == "v" * 20
    assert other.fetches == 0
    total = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert total <= 2 * disk.MAX_BYTES


def journal_of(directory: Path) -> Path:
    (found,) = [p for p in directory.iterdir() if p.suffix == ".journal"]
    return found


def test_torn_foreign_and_hostile_journal_lines_are_skipped(tmp_path: Path) -> None:
    """A torn last line, another stage's line and garbage are skipped; the good lines still answer."""
    source = DictSource({"PRD": {"a": "1", "b": "2"}}, whole_stage=False)
    client = Config([source], stage="PRD", cache_dir=str(tmp_path), clock=FakeClock(), ttl=300)
    assert client.get("a") == "1"
    assert client.get("b") == "2"
    journal = journal_of(tmp_path)
    lines = journal.read_bytes().splitlines()
    foreign = json.loads(lines[-1])
    foreign["stage"] = "DEV"
    foreign["values"] = {"c": ["planted", foreign["values"]["b"][1]]}
    with journal.open("ab") as out:
        out.write(json.dumps(foreign).encode() + b"\n")
        out.write(b"\xff\xfe not json\n")
        out.write(lines[-1][: len(lines[-1]) // 2])  # a writer killed mid-line
    other = DictSource({"PRD": {"c": "real"}}, whole_stage=False)
    reader = Config([other], stage="PRD", cache_dir=str(tmp_path), clock=FakeClock(), ttl=300)
    assert reader.get("a") == "1"
    assert reader.get("b") == "2"
    assert reader.get("c") == "real"  # never the planted line of another stage
    assert other.fetches == 1


@pytest.mark.parametrize("plant", ["fifo", "symlink", "public"])
def test_a_planted_journal_is_neither_read_nor_written(tmp_path: Path, plant: str) -> None:
    """A FIFO, a symlink or a file others can read at the journal's path: no read blocks, nothing is appended."""
    source = DictSource({"PRD": {"a": "1", "b": "2"}}, whole_stage=False)
    client = Config([source], stage="PRD", cache_dir=str(tmp_path), clock=FakeClock(), ttl=300)
    assert client.get("a") == "1"
    journal = journal_of(tmp_path)
    journal.unlink()
    target = tmp_path.parent / f"elsewhere-{plant}"
    if plant == "fifo":
        os.mkfifo(journal, 0o600)
    elif plant == "symlink":
        target.write_text("")
        journal.symlink_to(target)
    else:
        journal.write_text("")
        journal.chmod(0o644)
    assert client.get("b") == "2"  # appending was refused, quietly
    if plant == "symlink":
        assert target.read_text() == ""
    elif plant == "public":
        assert journal.read_text() == ""
    reader = Config([DictSource({"PRD": {"b": "x"}}, whole_stage=False)], stage="PRD", cache_dir=str(tmp_path))
    assert reader.get("b") in ("2", "x")  # read from /tmp or fetched: never blocked


@settings(max_examples=40, deadline=None)
@given(
    reads=st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 3), st.booleans()), min_size=1, max_size=40),
    fold_at=st.sampled_from([1, 200, 10**6]),
)
def test_the_files_always_answer_what_memory_last_knew(reads: list[tuple[str, int, bool]], fold_at: int) -> None:
    """Keys refreshed in any order, the journal folded early or never: a new process reads each key's newest value."""
    with tempfile.TemporaryDirectory() as directory, pytest.MonkeyPatch.context() as patch:
        patch.setattr(disk, "JOURNAL_MIN", fold_at)
        values: dict[str, str] = {}
        source = DictSource({"PRD": values}, whole_stage=False)
        clock = FakeClock()
        client = Config([source], stage="PRD", cache_dir=directory, clock=clock, ttl=10)
        for key, version, absent in reads:
            if absent:
                values.pop(key, None)
            else:
                values[key] = f"{key}{version}"
            clock.tick(11)  # past the TTL: every read fetches that key again
            assert client.get(key, None) == values.get(key)
        reader = Config([DictSource({"PRD": {}}, whole_stage=False)], stage="PRD", cache_dir=directory, clock=clock)
        for key, _, _ in reads:
            assert reader.get(key, None) == values.get(key)


def test_the_fold_threshold_is_at_least_64_kib() -> None:
    assert JOURNAL_MIN >= 64 * 1024
