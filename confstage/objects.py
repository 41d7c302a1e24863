"""Large or binary objects as private files under the cache directory: what ``get_path`` reads.

``ObjectFiles`` wraps a source that can stream objects (``open_object``: the S3 objects layout) and is
itself a per-key source whose values are *paths*: the cache layer in front of it gives ``get_path`` the
same TTL, jitter, single flight, deadlines and stale-on-error as values, and its /tmp file lets a
second process use a file within the TTL with no request.

* An object is streamed to disk in 1 MiB chunks (never held in memory whole) into an ``O_EXCL`` 0600
  temporary file, then renamed: a file at a returned path is always complete.
* Each version of an object gets its own file (named by its ETag), so a path handed to an invocation
  stays valid and unchanged while a newer version arrives; the previous version is kept until the next
  one replaces it, older ones are removed.
* After the TTL an unchanged object costs one conditional request (``If-None-Match``, a 304, no body).
* Before a body is read, its size is checked against the space left in the directory; confstage's own
  least recently used files are evicted first, and an object that still does not fit is refused.
* An envelope-encrypted (secure) object is refused: a plaintext secret never goes to disk.
* Over a source with fallback regions (``sources.failover.ObjectFailoverSource``) the whole read, body included,
  moves to the next region when one cannot answer; each region's files are kept apart (the source's identity).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import threading
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from . import _log as log
from .cache._private import prepare_directory
from .errors import ConfigurationError, SourceError
from .sources.base import NOT_MODIFIED, Fetched, ObjectBody, ObjectSource

if TYPE_CHECKING:
    from .cache import CachedSource

__all__ = [
    "CHUNK",
    "DOWNLOAD_TIMEOUT",
    "NOT_MODIFIED",
    "ObjectBody",
    "ObjectFiles",
    "ObjectSource",
    "files_directory",
    "object_layers",
]

CHUNK = 1 << 20  # bytes read and written at a time: the memory a download holds
DOWNLOAD_TIMEOUT = 300.0  # seconds a caller waits for an object's download (values: CONFSTAGE_FETCH_TIMEOUT)
_SECURE_PREFIX = b"cs1:"  # crypto.PREFIX: an envelope-encrypted value


def files_directory(cache_dir: str) -> str:
    """Where objects go: a private directory inside the cache directory."""
    return os.path.join(cache_dir, "objects")


def object_layers(layers: Sequence[CachedSource], cache_dir: str, options: Mapping[str, Any]) -> list[CachedSource]:
    """A cache layer of ``ObjectFiles`` for each source of ``layers`` that streams objects, for ``get_path``."""
    from .cache import CachedSource

    sources = [layer.source for layer in layers if isinstance(layer.source, ObjectSource)]
    if not sources:
        urls = ", ".join(layer.source.url for layer in layers)
        raise ConfigurationError(
            f"get_path reads objects from an s3:// source in the objects layout; none is configured (sources: {urls})"
        )
    if not cache_dir:
        raise ConfigurationError("get_path keeps objects under the cache directory; CONFSTAGE_CACHE_DIR is empty")
    directory = files_directory(os.path.abspath(cache_dir))
    return [CachedSource(ObjectFiles(s, directory), fetch_timeout=DOWNLOAD_TIMEOUT, **options) for s in sources]


class ObjectFiles:
    """A per-key source over an ``ObjectSource`` whose values are the paths of complete local files."""

    whole_stage = False
    persist = True  # the snapshot holds paths and ETags' files, never a value

    def __init__(
        self,
        source: ObjectSource,
        directory: str,
        *,
        free_space: Callable[[str], int] | None = None,
    ) -> None:
        self.source = source
        self.url = f"{source.url}#files"
        self.ttl: float | None = getattr(source, "ttl", None)
        self.directory = directory
        self._free_space = free_space or _free_space
        self._lock = threading.Lock()  # eviction and directory preparation

    def __repr__(self) -> str:
        return f"ObjectFiles({self.source.url!r})"

    def identity(self) -> str | None:
        """The wrapped source's store, so that two stores' files never meet."""
        identity = getattr(self.source, "identity", None)
        inner = identity() if callable(identity) else self.source.url
        return None if inner is None else f"{inner}#files"

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        found: dict[str, str] = {}
        regions: list[str] = []
        for key in keys:
            path, region = self._ensure(stage, key)
            if path is not None:
                found[key] = path
            if region is not None:
                regions.append(region)
        if regions:  # a fallback region answered (sources.failover): the cache layer counts it
            from .sources.failover import RegionalFetched

            return RegionalFetched(Fetched(found), regions[0])
        return Fetched(found)

    # -- one object ----------------------------------------------------------------------------

    def _ensure(self, stage: str, key: str) -> tuple[str | None, str | None]:
        """The path of the current version of ``key`` (revalidated, downloaded, or None when absent), and the
        fallback region that answered (None: the source's own region)."""
        self._prepare()
        base = os.path.join(self.directory, _name(self.identity() or self.source.url, stage, key))
        known = _read_meta(base)
        etag = known["etag"] if known is not None and os.path.isfile(known["path"]) else None

        def keep(opened: ObjectBody | object | None) -> str | None:
            if opened is NOT_MODIFIED:
                assert known is not None
                with contextlib.suppress(OSError):
                    os.utime(known["path"])  # recently used: evicted last
                return str(known["path"])
            if opened is None:
                _remove_versions(base, keep=())
                return None
            assert isinstance(opened, ObjectBody)
            try:
                path = self._download(base, stage, key, opened)
            finally:
                opened.close()
            previous = known["path"] if known is not None else None
            _write_meta(base, {"etag": opened.etag, "path": path})
            _remove_versions(base, keep=(path, previous))
            return path

        read = getattr(self.source, "read_object", None)  # an ObjectFailoverSource's (sources.failover)
        if read is not None:
            kept: tuple[str | None, str | None] = read(stage, key, etag=etag, consume=keep)
            return kept
        return keep(self.source.open_object(stage, key, etag=etag)), None

    def _download(self, base: str, stage: str, key: str, body: ObjectBody) -> str:
        what = f"object {key!r} of stage {stage!r}"
        if getattr(body, "secure", False):
            raise _refused_secure(what, self.source.url)
        if body.size is not None:
            self._make_room(body.size, what)
        path = f"{base}.{hashlib.blake2b(body.etag.encode(), digest_size=8).hexdigest()}.bin"
        tmp = f"{base}.tmp-{os.getpid()}-{os.urandom(6).hex()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            with os.fdopen(fd, "wb") as out:
                first = True
                while True:
                    chunk = body.read(CHUNK)
                    if not chunk:
                        break
                    if first and chunk.startswith(_SECURE_PREFIX):
                        raise _refused_secure(what, self.source.url)
                    first = False
                    out.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return path

    def _make_room(self, size: int, what: str) -> None:
        """Evict confstage's least recently used files until ``size`` bytes fit, or refuse."""
        with self._lock:
            free = self._free_space(self.directory)
            if size <= free:
                return
            for path in _ours_oldest_first(self.directory):
                freed = _size(path)
                with contextlib.suppress(OSError):
                    os.unlink(path)
                    free += freed
                    log.debug("evicted a cached object file to make room: %s", os.path.basename(path))
                if size <= free:
                    return
        raise SourceError(
            f"{what} is {_mib(size)}, more than the {_mib(free)} left in {self.directory} after evicting "
            "confstage's own cached files (Lambda's /tmp holds 512 MiB unless configured larger)",
            source=self.source.url,
            operation="get_path",
        )

    def _prepare(self) -> None:
        """The object directory, private to this user, under ancestors only root or this user can change (the
        /tmp layer's rules, ``_files.prepare_directory``); created 0700, parents included, when missing."""
        with self._lock:
            problem = prepare_directory(self.directory)
        if problem:
            raise SourceError(
                f"get_path cannot keep objects in {self.directory}: it {problem}", source=self.url, operation="get_path"
            )


def _refused_secure(what: str, url: str) -> SourceError:
    return SourceError(
        f"{what} is envelope-encrypted (a secure value): get_path never writes a secret to disk; read it with get()",
        source=url,
        operation="get_path",
    )


def _name(store: str, stage: str, key: str) -> str:
    """A file-name-safe base name for (store, stage, key): readable where it can be, hashed where long."""
    raw = f"{stage}\0{key}"
    safe = "".join(c if c.isascii() and (c.isalnum() or c in "-_.") else "_" for c in raw)[:80]
    digest = hashlib.blake2b(f"{store}\0{raw}".encode(), digest_size=16).hexdigest()
    return f"{safe}-{digest}"


def _read_meta(base: str) -> dict[str, Any] | None:
    """The ETag and path of the version on disk, or None when unknown or damaged."""
    try:
        with open(f"{base}.json", "rb") as handle:
            data = json.loads(handle.read(4096))
    except (OSError, ValueError, RecursionError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("etag"), str) or not isinstance(data.get("path"), str):
        return None
    if os.path.dirname(data["path"]) != os.path.dirname(base):
        return None  # a planted file naming a path elsewhere
    return data


def _write_meta(base: str, meta: dict[str, str]) -> None:
    tmp = f"{base}.json.tmp-{os.getpid()}-{os.urandom(6).hex()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(meta, out)
    os.replace(tmp, f"{base}.json")


def _remove_versions(base: str, *, keep: Collection[str | None]) -> None:
    """Remove the versions of one object but those in ``keep`` (the current one and its predecessor)."""
    directory, prefix = os.path.split(base)
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if name.startswith(prefix + ".") and name.endswith(".bin") and path not in keep:
            with contextlib.suppress(OSError):
                os.unlink(path)
    if not keep:
        with contextlib.suppress(OSError):
            os.unlink(f"{base}.json")


def _ours_oldest_first(directory: str) -> list[str]:
    files = [os.path.join(directory, n) for n in os.listdir(directory) if n.endswith(".bin")]
    return sorted(files, key=lambda p: _mtime(p))


def _mtime(path: str) -> float:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return time.time()


def _size(path: str) -> int:
    try:
        return os.stat(path).st_size
    except OSError:
        return 0


def _free_space(directory: str) -> int:
    return shutil.disk_usage(directory).free


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
