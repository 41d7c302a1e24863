"""The /tmp layer: one JSON snapshot per (source, stage), shared by every process on the machine.

A restarted runtime, a second worker or the CLI reads a fresh snapshot instead of the network.
Files are written atomically (an ``O_EXCL`` temporary file + ``os.replace``) with mode 0600 in a 0700 directory
owned by this user and not reached through a symlink. Anything unreadable is ignored (and
overwritten by the next save), never raised; an unusable directory turns the layer off with one
warning.

No secret reaches these files in plaintext. Without a sealer, secrets are left out and their names
listed as *withheld* (a new process fetches exactly those). With a ``crypto.Sealer`` (a KMS key in
``CONFSTAGE_CACHE_KMS_KEY``), they are stored sealed under the process's KMS data key, so a new
process opens them all with one KMS call.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import threading
import zlib
from typing import TYPE_CHECKING, Any, NamedTuple

from . import _log as log
from .errors import ConfstageError

if TYPE_CHECKING:
    from .crypto import Sealer
    from .sources.base import Source

__all__ = ["DiskCache", "Snapshot", "store_identity"]

FORMAT = 1


class Snapshot(NamedTuple):
    """What is known of one stage of one source, as it travels between the memory layer and /tmp."""

    values: dict[str, tuple[str | None, float]]  # key -> (plain value, None when known absent; fetched at)
    secrets: dict[str, tuple[str, float]]  # key -> (secret value, fetched at): sealed on disk, or withheld
    complete_at: float | None  # when the whole stage was loaded; None when it holds single keys only
    withheld: frozenset[str] = frozenset()  # secrets of a complete stage that the file could not give back


def store_identity(source: Source) -> str:
    """What names a source's store in the /tmp cache (the file of one store is never read for another)."""
    return source.url


class DiskCache:
    """Snapshots in ``directory``; ``load`` and ``save`` never raise."""

    def __init__(self, directory: str, *, sealer: Sealer | None = None) -> None:
        self.directory = os.path.abspath(directory)
        self.sealer = sealer
        self._seal_warned = False
        self.enabled = True
        self._checked = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DiskCache({self.directory!r}, enabled={self.enabled})"

    def path(self, source: str, stage: str) -> str:
        """The snapshot file of (source, stage): a readable, injective escape of both, hashed only when long."""
        name = _escape(f"{source}\0{stage}")
        if len(name) > 180:  # file names stop at 255 bytes; the file records source and stage anyway
            name = f"{name[:140]}-{zlib.crc32(name.encode()):08x}-{len(name)}"
        return os.path.join(self.directory, f"{name}.json")

    def load(self, source: Source, stage: str) -> Snapshot | None:
        """The snapshot saved for (source, stage), or None when absent, foreign or damaged."""
        if not self._usable():
            return None
        store = store_identity(source)
        path = self.path(store, stage)
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
                log.debug("ignoring cache file not private to this user: %s", path)
                return None
            with os.fdopen(fd, "rb") as f:
                fd = -1
                data = json.loads(f.read())
            loaded = _validate(data, store, stage)
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            log.debug("ignoring unreadable cache file: %s", path)
            return None
        finally:
            if fd >= 0:
                os.close(fd)
        if loaded is None:
            return None
        snapshot, sealed = loaded
        return self._unseal(snapshot, sealed, store, stage)

    def _unseal(self, snapshot: Snapshot, sealed: dict[str, Any] | None, store: str, stage: str) -> Snapshot:
        """Open the sealed secrets into ``secrets``; any that cannot be opened become withheld."""
        if not sealed:
            return snapshot
        opened: dict[str, str] = {}
        if self.sealer is not None:
            try:
                opened = self.sealer.open(
                    {"key": sealed["key"], "values": {k: v for k, (v, _) in sealed["values"].items()}},
                    aad=f"{store}\0{stage}",
                )
            except ConfstageError as exc:
                log.debug("sealed cache entries not opened (refetching them): %s", type(exc).__name__)
        withheld = set(snapshot.withheld)
        for key, (_, at) in sealed["values"].items():
            if key in opened:
                snapshot.secrets[key] = (opened[key], at)
            elif snapshot.complete_at is not None:
                withheld.add(key)
        return snapshot._replace(withheld=frozenset(withheld))

    def save(self, source: Source, stage: str, snapshot: Snapshot) -> None:
        """Write a snapshot atomically; on failure turn the layer off with one warning."""
        if not self._usable():
            return
        store = store_identity(source)
        secrets = snapshot.secrets
        sealed = self._seal(secrets, store, stage)
        complete = snapshot.complete_at is not None
        payload = {
            "format": FORMAT,
            "source": store,
            "stage": stage,
            "values": snapshot.values,
            "complete_at": snapshot.complete_at,
            "sealed": sealed,
            # secrets left out (no sealer), and keys a new process must fetch to know (a value that did not open)
            "withheld": sorted((set(secrets) if complete and sealed is None else set()) | snapshot.withheld),
        }
        tmp = os.path.join(self.directory, f".tmp-{os.getpid()}-{os.urandom(6).hex()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:
            self._disable(f"cannot create a file in it ({exc.strerror})")
            return
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(payload, f, separators=(",", ":"))
            os.replace(tmp, self.path(store, stage))
        except (OSError, TypeError, ValueError) as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            self._disable(f"cannot write to it ({getattr(exc, 'strerror', None) or type(exc).__name__})")

    def _seal(self, secrets: dict[str, tuple[str, float]], source: str, stage: str) -> dict[str, Any] | None:
        """Secrets sealed for the file, or None (left out) without a sealer or when KMS fails."""
        if not secrets or self.sealer is None:
            return None
        try:
            sealed = self.sealer.seal({k: v for k, (v, _) in secrets.items()}, aad=f"{source}\0{stage}")
        except ConfstageError as exc:
            if not self._seal_warned:
                self._seal_warned = True
                log.warning("cannot seal secrets for the /tmp cache (%s); they stay in memory only", exc)
            return None
        return {"key": sealed["key"], "values": {k: [sealed["values"][k], at] for k, (_, at) in secrets.items()}}

    def _usable(self) -> bool:
        if self._checked:
            return self.enabled
        with self._lock:
            if not self._checked:
                problem = _prepare(self.directory)
                self._checked = True
                if problem:
                    self._disable(problem)
        return self.enabled

    def _disable(self, problem: str) -> None:
        if self.enabled:
            self.enabled = False
            log.warning("/tmp cache disabled, using memory only: %s %s", self.directory, problem)


def _prepare(directory: str) -> str | None:
    """Create or check the cache directory; return what is wrong with it, or None."""
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        return f"cannot be created ({exc.strerror})"
    try:
        info = os.lstat(directory)
    except OSError as exc:
        return f"cannot be inspected ({exc.strerror})"
    if stat.S_ISLNK(info.st_mode):
        return "is a symlink"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid != os.geteuid():
        return "is owned by another user"
    if info.st_mode & 0o077:
        try:
            os.chmod(directory, 0o700)
        except OSError as exc:
            return f"is not private and cannot be made so ({exc.strerror})"
    if not os.access(directory, os.W_OK | os.X_OK):
        return "is not writable"
    return None


def _validate(data: Any, store: str, stage: str) -> tuple[Snapshot, dict[str, Any] | None] | None:
    """Check a loaded file's shape: the snapshot and its sealed entries, or None when it is not ours or not whole."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    if data.get("source") != store or data.get("stage") != stage:
        return None  # a hash collision or a hand-edited file
    complete_at = data["complete_at"]
    if complete_at is not None and not isinstance(complete_at, (int, float)):
        return None
    values: dict[str, tuple[str | None, float]] = {}
    for key, entry in data["values"].items():
        value, at = entry
        if not isinstance(key, str) or not (value is None or isinstance(value, str)):
            return None
        if not isinstance(at, (int, float)):
            return None
        values[key] = (value, float(at))
    withheld = data["withheld"]
    if not isinstance(withheld, list) or not all(isinstance(k, str) for k in withheld):
        return None
    sealed = data.get("sealed")
    if sealed is not None:
        if not isinstance(sealed, dict) or not isinstance(sealed.get("key"), str):
            return None
        entries: dict[str, tuple[str, float]] = {}
        for key, (blob, at) in sealed["values"].items():
            if not isinstance(key, str) or not isinstance(blob, str) or not isinstance(at, (int, float)):
                return None
            entries[key] = (blob, float(at))
        sealed = {"key": sealed["key"], "values": entries}
    return Snapshot(values, {}, complete_at, frozenset(withheld)), sealed


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")


def _escape(text: str) -> str:
    """A file-name-safe, injective spelling: safe characters kept, every other one as ``_XX_``."""
    return "".join(c if c in _SAFE else f"_{ord(c):x}_" for c in text)
