"""``get_path``: objects as private files under the cache directory, on a test double of an object store.

The S3 source's own tests (over HTTP, a 64 MiB object) are in ``test_s3_objects.py``; these pin the file
layer's rules with an injected clock and free space: streaming, versions, 304s, eviction, refusals.
"""

from __future__ import annotations

import io
import os
import stat
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

import pytest

import confstage
from confstage import Config, ConfigurationError, KeyNotFoundError, SourceError, files
from confstage.files import NOT_MODIFIED, ObjectFiles
from confstage.sources import Fetched
from confstage.testing import lambda_context

from .conftest import FakeClock

TTL = 60.0


class Body:
    """A streamed object body that counts what was read."""

    def __init__(self, data: bytes, etag: str, *, secure: bool = False, announce_size: bool = True) -> None:
        self._stream = io.BytesIO(data)
        self.etag = etag
        self.size: int | None = len(data) if announce_size else None
        self.secure = secure
        self.closed = False

    def read(self, size: int) -> bytes:
        return self._stream.read(size)

    def close(self) -> None:
        self.closed = True


class ObjectStore:
    """An object source: keys of a stage are objects with ETags; counts requests, can fail or hold a request."""

    url = "objects://"
    ttl: float | None = None
    whole_stage = False
    persist = True

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str], bytes] = {}
        self.secure: set[tuple[str, str]] = set()
        self.requests: list[tuple[str, str | None]] = []  # (key, If-None-Match)
        self.not_modified = 0
        self.failing = False
        self.bodies: list[Body] = []

    def put(self, stage: str, key: str, data: bytes) -> None:
        self.objects[(stage, key)] = data

    def etag(self, stage: str, key: str) -> str:
        return f'"{hash(self.objects[(stage, key)]) & 0xFFFFFFFF:08x}"'

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:  # the values side: not used by get_path
        return Fetched({k: self.objects[(stage, k)].decode() for k in keys if (stage, k) in self.objects})

    def open_object(self, stage: str, key: str, *, etag: str | None) -> Any:
        self.requests.append((key, etag))
        if self.failing:
            raise SourceError("failed with InternalError", source=self.url, operation="s3:GetObject")
        if (stage, key) not in self.objects:
            return None
        current = self.etag(stage, key)
        if etag == current:
            self.not_modified += 1
            return NOT_MODIFIED
        body = Body(self.objects[(stage, key)], current, secure=(stage, key) in self.secure)
        self.bodies.append(body)
        return body


@pytest.fixture(name="store")
def fixture_store() -> ObjectStore:
    store = ObjectStore()
    store.put("PRD", "model.bin", b"\x00\x01" * 50_000)
    store.put("PRD", "rules.json", b'{"rules": []}')
    return store


def config(store: ObjectStore, tmp_path: Path, clock: FakeClock, **options: Any) -> Config:
    return Config([store], stage="PRD", cache_dir=str(tmp_path / "cache"), clock=clock, ttl=TTL, **options)


def test_an_object_becomes_a_private_file_with_the_same_bytes(
    store: ObjectStore, tmp_path: Path, clock: FakeClock
) -> None:
    """get_path streams the object to a 0600 file in a 0700 directory under the cache directory."""
    path = config(store, tmp_path, clock).get_path("model.bin")
    assert path.read_bytes() == store.objects[("PRD", "model.bin")]
    assert path.parent == tmp_path / "cache" / "objects"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert store.bodies[0].closed
    assert not [p for p in path.parent.iterdir() if ".tmp-" in p.name]


def test_within_the_ttl_a_second_process_uses_the_file_with_no_request(
    store: ObjectStore, tmp_path: Path, clock: FakeClock
) -> None:
    """A new client on the same cache directory (another process) gets the same file and asks nothing."""
    first = config(store, tmp_path, clock).get_path("model.bin")
    requests = len(store.requests)
    clock.tick(TTL / 2)
    assert config(store, tmp_path, clock).get_path("model.bin") == first
    assert len(store.requests) == requests


def test_after_the_ttl_an_unchanged_object_costs_one_304_and_no_body(
    store: ObjectStore, tmp_path: Path, clock: FakeClock
) -> None:
    """Revalidation sends the ETag; a 304 keeps the file and reads no body."""
    client = config(store, tmp_path, clock)
    path = client.get_path("model.bin")
    clock.tick(TTL + 1)
    assert client.get_path("model.bin") == path
    assert store.requests[-1] == ("model.bin", store.etag("PRD", "model.bin"))
    assert (store.not_modified, len(store.bodies)) == (1, 1)


def test_a_changed_object_gets_a_new_file_and_the_old_path_stays_complete(
    store: ObjectStore, tmp_path: Path, clock: FakeClock
) -> None:
    """A new version is a new file; the path handed out before keeps its complete old bytes."""
    client = config(store, tmp_path, clock)
    old = client.get_path("rules.json")
    store.put("PRD", "rules.json", b'{"rules": ["new"]}')
    clock.tick(TTL + 1)
    new = client.get_path("rules.json")
    assert new != old
    assert (old.read_bytes(), new.read_bytes()) == (b'{"rules": []}', b'{"rules": ["new"]}')
    store.put("PRD", "rules.json", b'{"rules": ["newer"]}')
    clock.tick(TTL + 1)
    newest = client.get_path("rules.json")
    assert not old.exists()  # two versions are kept: the current one and the one before
    assert new.exists()
    assert newest.read_bytes() == b'{"rules": ["newer"]}'


def test_one_path_for_the_whole_invocation(store: ObjectStore, tmp_path: Path, clock: FakeClock) -> None:
    """Inside an invocation get_path returns the same path even when the TTL passes and the object changes."""
    confstage.configure(sources=[store], cache_dir=str(tmp_path / "cache"), clock=clock, ttl=TTL)

    @confstage.handler
    def lambda_handler(event: Any, context: Any) -> tuple[Path, Path]:
        first = confstage.get_path("rules.json")
        store.put("PRD", "rules.json", b"changed")
        clock.tick(TTL + 1)
        return first, confstage.get_path("rules.json")

    first, second = lambda_handler({}, lambda_context("PRD"))
    assert first == second
    assert first.read_bytes() == b'{"rules": []}'
    assert lambda_handler({}, lambda_context("PRD"))[0].read_bytes() == b"changed"


def test_a_failing_refresh_keeps_serving_the_file_within_max_stale(
    store: ObjectStore, tmp_path: Path, clock: FakeClock
) -> None:
    """Stale-on-error: the file on disk is served while the store fails, up to max_stale, then SourceError."""
    client = config(store, tmp_path, clock, max_stale=600)
    path = client.get_path("model.bin")
    store.failing = True
    clock.tick(TTL + 1)
    assert client.get_path("model.bin") == path
    clock.tick(600)
    with pytest.raises(SourceError):
        client.get_path("model.bin")


def test_an_object_larger_than_the_space_left_is_refused_before_downloading(
    store: ObjectStore, tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With /tmp nearly full, confstage's older files are evicted first; what still does not fit is refused unread."""
    room = {"free": 10**9}
    monkeypatch.setattr(files, "_free_space", lambda directory: room["free"])  # the statvfs reading, injected
    client = config(store, tmp_path, clock)
    rules = client.get_path("rules.json")
    store.put("PRD", "big.bin", b"x" * 1000)
    room["free"] = 500  # the 13-byte rules file is confstage's: evicting it frees too little
    with pytest.raises(SourceError, match="more than the") as info:
        client.get_path("big.bin")
    assert "big.bin" in str(info.value)
    assert not rules.exists()  # evicted while making room
    assert store.bodies[-1].read(1) == b"x"  # the body was never read
    room["free"] = 10**9
    assert client.get_path("big.bin").stat().st_size == 1000


def test_a_secure_object_is_refused_rather_than_decrypted_to_disk(
    store: ObjectStore, tmp_path: Path, clock: FakeClock
) -> None:
    """An envelope-encrypted object (marked secure, or a cs1: body) never becomes a file."""
    store.put("PRD", "marked", b"anything")
    store.secure.add(("PRD", "marked"))
    store.put("PRD", "envelope", b"cs1:AAAA.BBBB.CCCC")
    client = config(store, tmp_path, clock)
    for key in ("marked", "envelope"):
        with pytest.raises(SourceError, match="envelope-encrypted"):
            client.get_path(key)
    assert not [p for p in (tmp_path / "cache" / "objects").iterdir() if p.suffix == ".bin"]


def test_absent_objects_and_misconfiguration(store: ObjectStore, tmp_path: Path, clock: FakeClock) -> None:
    """A missing object is KeyNotFoundError; no object source or no cache directory is a ConfigurationError."""
    with pytest.raises(KeyNotFoundError):
        config(store, tmp_path, clock).get_path("missing")
    with pytest.raises(ConfigurationError, match="objects layout"):
        Config("env://", stage="PRD", cache_dir=str(tmp_path)).get_path("x")
    with pytest.raises(ConfigurationError, match="cache directory"):
        Config([store], stage="PRD", cache_dir="").get_path("x")


def test_a_deleted_file_is_fetched_again(store: ObjectStore, tmp_path: Path, clock: FakeClock) -> None:
    """When the file behind a fresh entry is gone (removed by hand, another process), it is downloaded again."""
    client = config(store, tmp_path, clock)
    path = client.get_path("rules.json")
    path.unlink()
    again = config(store, tmp_path, clock).get_path("rules.json")
    assert again.read_bytes() == b'{"rules": []}'


def test_hostile_metadata_cannot_point_outside_the_directory(
    store: ObjectStore, tmp_path: Path, clock: FakeClock
) -> None:
    """A planted metadata file naming a path elsewhere is ignored: the object is downloaded into the directory."""
    client = config(store, tmp_path, clock)
    path = client.get_path("rules.json")
    outside = tmp_path / "elsewhere.bin"
    outside.write_bytes(b"planted")
    for meta in path.parent.glob("*.json"):
        meta.write_text('{"etag": "%s", "path": "%s"}' % (store.etag("PRD", "rules.json"), outside))  # noqa: UP031
    clock.tick(TTL + 1)
    again = config(store, tmp_path, clock).get_path("rules.json")
    assert again.parent == path.parent
    assert again.read_bytes() == b'{"rules": []}'


def test_concurrent_callers_share_one_download(store: ObjectStore, tmp_path: Path, clock: FakeClock) -> None:
    """Eight threads asking for one cold object make one request and get one path."""
    client = config(store, tmp_path, clock)
    barrier = threading.Barrier(8, timeout=10)
    paths: list[Path] = []

    def work() -> None:
        barrier.wait()
        paths.append(client.get_path("model.bin"))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert len(set(paths)) == 1
    assert len(store.requests) == 1


def test_object_files_never_persist_a_value(store: ObjectStore, tmp_path: Path, clock: FakeClock) -> None:
    """The /tmp snapshot of the file layer holds paths, never the objects' contents."""
    store.put("PRD", "secretish", b"TOP-SECRET-BYTES")
    config(store, tmp_path, clock).get_path("secretish")
    snapshots = b"".join(p.read_bytes() for p in (tmp_path / "cache").iterdir() if p.is_file())
    assert b"TOP-SECRET-BYTES" not in snapshots
    assert isinstance(ObjectFiles(store, str(tmp_path)).store_id(), str)
    assert os.path.isdir(tmp_path / "cache" / "objects")


def test_a_cache_directory_other_users_can_redirect_is_refused(
    store: ObjectStore, tmp_path: Path, clock: FakeClock
) -> None:
    """The /tmp layer's rule applies to get_path: under a directory others can write to, nothing is written."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # world-writable, not sticky: another user could swap the cache directory for a link
    client = Config([store], stage="PRD", cache_dir=str(shared / "cache"), clock=clock, ttl=TTL)
    with pytest.raises(SourceError, match="other users can write to") as info:
        client.get_path("model.bin")
    assert "get_path cannot keep objects in" in str(info.value)
    assert not (shared / "cache" / "objects").exists()
    assert store.requests == []  # refused before asking the store


def test_a_cache_directory_whose_parents_do_not_exist_is_created_private(
    store: ObjectStore, tmp_path: Path, clock: FakeClock
) -> None:
    """A cache directory two levels below an existing one: every missing level is made 0700, then used."""
    cache = tmp_path / "a" / "b" / "cache"
    client = Config([store], stage="PRD", cache_dir=str(cache), clock=clock, ttl=TTL)
    path = Path(client.get_path("model.bin"))
    assert path.read_bytes() == store.objects[("PRD", "model.bin")]
    for level in (tmp_path / "a", tmp_path / "a" / "b", cache, cache / "objects"):
        assert stat.S_IMODE(level.stat().st_mode) == 0o700, level
