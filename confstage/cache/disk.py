"""The /tmp layer: one JSON file per (source, stage), shared by every process on the machine.

A restarted runtime, a second worker or the CLI reads a fresh file instead of the network.
Files are written atomically (an ``O_EXCL`` temporary file + ``os.replace``) with mode 0600 in a 0700 directory
owned by this user and not itself a symlink, under ancestors that only root or this user can change
(ssh's StrictModes rule, ``_files.unsafe_ancestor``). Anything unreadable is ignored (and overwritten by the
next save), never raised; an unusable directory turns the layer off with one warning.

A file is read only if it is a regular file private to this user (checked with ``fstat`` on a
descriptor opened ``O_NONBLOCK|O_NOFOLLOW``, so a FIFO or a symlink planted at its path cannot
block or redirect the read) and at most ``MAX_BYTES`` long; a file nested too deep to parse, or
whose times are not finite or lie in the future (beyond ``CLOCK_SKEW``: a planted time would keep
its values fresh forever), is ignored as well. A stage whose file would exceed ``MAX_BYTES``
stays in memory only.

A per-key source (DynamoDB's flat layout, S3's objects) learns a stage key by key: each fetch *appends* its
entries, as one line, to the stage's journal (``….journal``) instead of rewriting the whole file, so reading
n keys one by one writes O(n) bytes, not O(n²). When the journal outgrows the file (and 64 KiB), the whole
stage is written once and the journal removed: bounded, and linear overall. A torn or foreign line is skipped.

No secret reaches these files in plaintext. Without a sealer, secrets are left out and their names
listed as *withheld* (a new process fetches exactly those). With a ``crypto.Sealer`` (a KMS key in
``CONFSTAGE_CACHE_KMS_KEY``), they are stored sealed under the process's KMS data key, so a new
process opens them all with one KMS call.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import stat
import threading
import time
import zlib
from collections.abc import Callable, Collection, Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from confstage import _log as log
from confstage.errors import ConfstageError

from ._private import prepare_directory, read_private, read_private_from

if TYPE_CHECKING:
    from confstage.crypto import Sealer
    from confstage.sources.base import Source
    from confstage.transport import Transport

__all__ = ["DiskCache", "Mark", "StageFile", "source_identity"]

FORMAT = 1
# 2 MiB holds a big stage (2,000 values of 1 KB, or 500 SSM parameters at their 4 KB maximum, with the
# JSON around them) and bounds what a load costs: a file of that size made of nothing but tiny entries
# parses to ~45 MB of Python objects at worst, a real stage to a few MB.
MAX_BYTES = 2 * 1024 * 1024
CLOCK_SKEW = 5.0  # seconds a time in a file may be ahead of our clock (processes of one machine share it)
LOCK_STRIPES = 256  # lock files per cache directory: fetches of unrelated stages rarely share one
_LOCK_FLAGS = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
JOURNAL_MIN = 64 * 1024  # a journal is folded into its file once larger than this and than the file
_APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0)


class _SealedEntries(NamedTuple):
    """The sealed secrets of a file: the wrapped data key, and per key the sealed value and when it was fetched."""

    key: str
    values: dict[str, tuple[str, float]]


class Mark(NamedTuple):
    """How far a process has read the files of one stage: the stage file's (inode, mtime, size) when read,
    and the journal's (inode, bytes read)."""

    stored: tuple[int, int, int] | None
    journal: tuple[int, int] | None


class StageFile(NamedTuple):
    """What is known of one stage of one source, as it travels between the memory layer and /tmp."""

    values: dict[str, tuple[str | None, float]]  # key -> (plain value, None when known absent; fetched at)
    secrets: dict[str, tuple[str, float]]  # key -> (secret value, fetched at): sealed on disk, or withheld
    complete_at: float | None  # when the whole stage was loaded; None when it holds single keys only
    withheld: frozenset[str] = frozenset()  # keys of a complete stage the file leaves out: only a fetch knows them
    version: str | None = None  # what the store calls this version of the stage (AppConfig's label), if it says


def source_identity(source: Source) -> str | None:
    """What names a source's store in the /tmp cache, or None when its values never go there.

    The file of one store is never read for another: a source that reaches AWS defines
    ``identity()``, its URL plus the region, endpoint and principal its client uses
    (``aws.endpoint_identity``), so the same table in another region, behind another endpoint or
    seen by other credentials has another file. A source without ``identity`` is named by its URL;
    one that does not ``persist`` (env://, secrets) has none.
    """
    if not source.persist:
        return None
    identity = getattr(source, "identity", None)
    return identity() if callable(identity) else source.url


class DiskCache:
    """Files in ``directory``; ``load`` and ``save`` never raise."""

    def __init__(
        self,
        directory: str,
        *,
        kms_key: str | None = None,
        transport: Transport | None = None,
        clock: Callable[[], float] = time.time,
        wall: Callable[[], float] | None = None,
    ) -> None:
        self.directory = os.path.abspath(directory)
        self.sealer: Sealer | None = None  # seals secrets under kms_key (``crypto`` imported only then)
        if kms_key:
            from confstage.crypto import Sealer

            self.sealer = Sealer(kms_key, transport=transport)
        # Memory keeps times on the cache layer's ``clock`` (monotonic: a wall-clock step cannot freeze or expire
        # it); files keep wall-clock times, which compare across processes. Times are moved between the two at
        # save and load. ``wall`` defaults to ``clock`` itself (a test's one fake clock; plain wall-clock use).
        self._clock = clock
        self._wall = wall or clock
        self._seal_warned = False
        self._locks: str | None = None  # the directory of fetch locks (``exclusive``); "" when unusable
        self.enabled = True
        self._checked = False
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"DiskCache({self.directory!r}, enabled={self.enabled})"

    def path(self, source: str, stage: str) -> str:
        """The stage file of (source, stage): a readable, injective escape of both, hashed only when long."""
        name = _escape(f"{source}\0{stage}")
        if len(name) > 180:  # file names stop at 255 bytes; the file records source and stage anyway
            name = f"{name[:140]}-{zlib.crc32(name.encode()):08x}-{len(name)}"
        return os.path.join(self.directory, f"{name}.json")

    def load(self, source: Source, stage: str) -> StageFile | None:
        """The file saved for (source, stage), or None when absent, foreign or damaged."""
        return self.load_new(source, stage, None)[0]

    def load_new(self, source: Source, stage: str, mark: Mark | None) -> tuple[StageFile | None, Mark | None]:
        """What the files of (source, stage) hold that was not there at ``mark`` (None: everything), and the mark
        to pass next time. An unchanged stage file is not read again, and of its journal only the lines
        appended since: a process reading a stage key by key reads each line once, not the stage per miss."""
        if not self._usable():
            return None, mark
        store = self._store(source)
        if store is None:
            return None, mark
        path = self.path(store, stage)
        wall = self._wall()
        stored: StageFile | None = None
        seen_file = None
        try:
            info = os.lstat(path)
            seen_file = (info.st_ino, info.st_mtime_ns, info.st_size)
        except OSError:
            pass
        again = mark is None or mark.stored != seen_file
        if again and seen_file is not None:
            stored = self._read(path, store, stage, wall)
        offset = 0 if again or mark is None or mark.journal is None else mark.journal[1]
        journal = read_private_from(_journal(path), MAX_BYTES, offset)
        known = mark.journal if mark is not None else None
        if journal is not None and offset and known is not None and journal[1].st_ino != known[0]:
            offset = 0  # a new journal (folded and begun again): read it whole
            journal = read_private_from(_journal(path), MAX_BYTES)
        seen_journal = None
        if journal is not None:
            data, info = journal
            complete = data.rfind(b"\n") + 1  # a line still being written is read next time, whole
            for line in data[:complete].splitlines():
                entries = self._parse(line, path, store, stage, wall)
                if entries is not None and entries.complete_at is None:
                    stored = entries if stored is None else _merged(stored, entries)
            seen_journal = (info.st_ino, offset + complete)
        found = None if stored is None else _shifted(stored, self._clock() - wall)
        return found, Mark(seen_file, seen_journal)

    def _read(self, path: str, store: str, stage: str, wall: float) -> StageFile | None:
        raw = read_private(path, MAX_BYTES)
        return None if raw is None else self._parse(raw, path, store, stage, wall)

    def _parse(self, raw: bytes, path: str, store: str, stage: str, wall: float) -> StageFile | None:
        """One file document (a file, or a line of its journal), unsealed; None when unusable."""
        try:
            data = json.loads(raw)
        except (ValueError, RecursionError):  # not UTF-8, not JSON, nested past the parser's limit, or torn
            log.debug("ignoring unreadable cache file or journal line: %s", path)
            return None
        loaded = _validate(data, store, stage, latest=wall + CLOCK_SKEW)
        if loaded is None:
            log.debug("ignoring cache file of another shape, store or stage, or with times ahead: %s", path)
            return None
        stored, sealed = loaded
        return self._unseal(stored, sealed, store, stage)

    def _unseal(self, stored: StageFile, sealed: _SealedEntries | None, store: str, stage: str) -> StageFile:
        """Open the sealed secrets into ``secrets``; any that cannot be opened become withheld."""
        if sealed is None:
            return stored
        opened: dict[str, str] = {}
        if self.sealer is not None:
            from confstage.crypto import Sealed

            try:
                blobs = {key: blob for key, (blob, _) in sealed.values.items()}
                opened = self.sealer.open(Sealed(sealed.key, blobs), aad=f"{store}\0{stage}")
            except ConfstageError as exc:
                log.debug("sealed cache entries not opened (refetching them): %s", type(exc).__name__)
        withheld = set(stored.withheld)
        for key, (_, at) in sealed.values.items():
            if key in opened:
                stored.secrets[key] = (opened[key], at)
            elif stored.complete_at is not None:
                withheld.add(key)
        return stored._replace(withheld=frozenset(withheld))

    @contextlib.contextmanager
    def exclusive(self, source: Source, stage: str, keys: Collection[str] | None, wait: float) -> Iterator[bool]:
        """Hold the fetch lock of (source, stage[, keys]) among this machine's processes for the block, waiting up
        to ``wait`` seconds for it; yields whether it is held (False: no file to lock, or still held elsewhere).

        An advisory ``flock`` on one of ``LOCK_STRIPES`` files in a private directory beside the cache directory
        (``.confstage.locks`` beside ``/tmp/confstage``): the kernel releases it
        when its holder exits or is killed, so a process that dies mid-fetch holds nobody up. Two stages that
        share a stripe only wait for each other, within ``wait``.
        """
        fd = self._lock_file(source, stage, keys)
        if fd is None:
            yield False
            return
        import fcntl

        held = False
        try:
            held = _flock(fd, wait, fcntl)
            yield held
        finally:
            if held:
                with contextlib.suppress(OSError):
                    fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _lock_file(self, source: Source, stage: str, keys: Collection[str] | None) -> int | None:
        if not self._usable():
            return None
        store = self._store(source)
        if store is None:
            return None
        if self._locks is None:
            # Beside the cache directory, not in it: what the directory holds stays the files alone.
            where = os.path.join(os.path.dirname(self.directory), f".{os.path.basename(self.directory)}.locks")
            self._locks = "" if prepare_directory(where) else where
        if not self._locks:
            return None
        named = f"{store}\0{stage}\0{'' if keys is None else chr(0).join(sorted(keys))}"
        stripe = zlib.crc32(named.encode("utf-8", "surrogatepass")) % LOCK_STRIPES
        path = os.path.join(self._locks, f"{stripe:03d}")
        try:
            fd = os.open(path, _LOCK_FLAGS, 0o600)
        except OSError:
            return None
        try:
            info = os.fstat(fd)
        except OSError:
            os.close(fd)
            return None
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            os.close(fd)  # not ours: fetch without it rather than wait on a file another user controls
            return None
        return fd

    def append(self, source: Source, stage: str, entries: StageFile, whole: Callable[[], StageFile]) -> None:
        """Record what one per-key fetch learnt (``entries``) as a line of the stage's journal; when the journal has
        outgrown the stage file, write ``whole()`` (the stage as memory knows it) and remove the journal."""
        written = self._written(source, stage, entries)
        if written is None or len(written[1]) > MAX_BYTES:
            return
        path, text = written
        journal = _journal(path)
        try:
            fd = os.open(journal, _APPEND_FLAGS, 0o600)
        except OSError as exc:
            log.debug("cannot append to %s (%s); writing the stage whole", journal, exc.strerror)
            self.save(source, stage, whole())
            return
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
                log.debug("ignoring a journal that is not a private file of ours: %s", journal)
                return
            os.write(fd, (text + "\n").encode("ascii"))  # one write: lines of concurrent appenders never interleave
            size = info.st_size + len(text) + 1
        except OSError:
            return
        finally:
            os.close(fd)
        try:
            folded = os.stat(path).st_size
        except OSError:
            folded = 0
        if size > max(JOURNAL_MIN, folded):
            self.save(source, stage, whole())  # the stage written once; lines appended meanwhile are only misses
            with contextlib.suppress(OSError):
                os.unlink(journal)

    def save(self, source: Source, stage: str, stored: StageFile) -> None:
        """Write a file atomically; on failure turn the layer off with one warning."""
        written = self._written(source, stage, stored)
        if written is None:
            return
        path, text = written
        if len(text) > MAX_BYTES:
            log.debug(
                "stage %r of %s is too big for the /tmp cache (%d bytes); memory only", stage, source.url, len(text)
            )
            for stale in (path, _journal(path)):
                with contextlib.suppress(OSError):
                    os.unlink(stale)  # an older, smaller file would no longer be the newest
            return
        tmp = os.path.join(self.directory, f".tmp-{os.getpid()}-{os.urandom(6).hex()}")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
        except OSError as exc:
            self._disable(f"cannot create a file in it ({exc.strerror})")
            return
        try:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(text)
            os.replace(tmp, path)
        except IsADirectoryError:  # something planted a directory at the path: this one file is skipped
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            log.debug("cannot replace %s (a directory); stage %r stays in memory only", path, stage)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            self._disable(f"cannot write to it ({getattr(exc, 'strerror', None) or type(exc).__name__})")

    def _written(self, source: Source, stage: str, stored: StageFile) -> tuple[str, str] | None:
        """Where ``stored`` goes for ``stage`` and its text; None when the layer is off or has nothing to write."""
        if not self._usable():
            return None
        store = self._store(source)
        if store is None:
            return None
        text = self._text(store, stage, stored)
        return None if text is None else (self.path(store, stage), text)

    def _text(self, store: str, stage: str, stored: StageFile) -> str | None:
        """The JSON document of a file (times on the wall clock, secrets sealed or withheld); None when it
        cannot be written (the layer is then off)."""
        stored = _shifted(stored, self._wall() - self._clock())
        secrets = stored.secrets
        sealed = self._seal(secrets, store, stage)
        complete = stored.complete_at is not None
        payload = {
            "format": FORMAT,
            "source": store,
            "stage": stage,
            "values": stored.values,
            "complete_at": stored.complete_at,
            "sealed": None if sealed is None else {"key": sealed.key, "values": sealed.values},
            # secrets left out (no sealer), and keys a new process must fetch to know (a value that did not open)
            "withheld": sorted((set(secrets) if complete and sealed is None else set()) | stored.withheld),
        }
        if stored.version is not None:
            payload["version"] = stored.version  # the store's name for this version (AppConfig's label)
        try:
            return json.dumps(payload, separators=(",", ":"))  # ASCII: as many bytes as characters
        except (TypeError, ValueError) as exc:
            self._disable(f"cannot write to it ({type(exc).__name__})")
            return None

    def _seal(self, secrets: dict[str, tuple[str, float]], source: str, stage: str) -> _SealedEntries | None:
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
        return _SealedEntries(sealed.key, {k: (sealed.values[k], at) for k, (_, at) in secrets.items()})

    def _store(self, source: Source) -> str | None:
        """``source_identity(source)``; None (no file) when the store cannot be named."""
        try:
            return source_identity(source)
        except Exception as exc:  # whatever stops naming the store (no region, no credentials) stops using its file
            log.debug("not using the /tmp cache for %s: %s", source.url, type(exc).__name__)
            return None

    def _usable(self) -> bool:
        if self._checked:
            return self.enabled
        with self._lock:
            if not self._checked:
                problem = prepare_directory(self.directory)
                self._checked = True
                if problem:
                    self._disable(problem)
        return self.enabled

    def _disable(self, problem: str) -> None:
        if self.enabled:
            self.enabled = False
            log.warning("/tmp cache disabled, using memory only: %s %s", self.directory, problem)


def _flock(fd: int, wait: float, fcntl: Any) -> bool:
    """Take an exclusive ``flock`` on ``fd`` within ``wait`` seconds (polled: ``flock`` has no timeout)."""
    deadline = time.monotonic() + wait
    pause = 0.002
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            time.sleep(min(pause, left))  # another process is fetching: its answer is what we wait for
            pause = min(pause * 2, 0.05)
        except OSError:
            return False


def _journal(path: str) -> str:
    """The journal beside a stage file (per-key sources append their fetches there)."""
    return f"{path[: -len('.json')]}.journal"


def _merged(older: StageFile, newer: StageFile) -> StageFile:
    """Per-key entries of two documents of one stage: for each key, the one fetched last."""
    values = dict(older.values)
    secrets = dict(older.secrets)
    for key, entry in newer.values.items():
        if key not in values or values[key][1] <= entry[1]:
            values[key] = entry
            secrets.pop(key, None)
    for key, (value, at) in newer.secrets.items():
        if key not in secrets or secrets[key][1] <= at:
            secrets[key] = (value, at)
            values.pop(key, None)
    return older._replace(values=values, secrets=secrets, withheld=older.withheld | newer.withheld)


def _shifted(stored: StageFile, by: float) -> StageFile:
    """``stored`` with every time moved by ``by`` seconds (between the memory clock and the wall clock)."""
    if not by:
        return stored
    return stored._replace(
        values={k: (v, at + by) for k, (v, at) in stored.values.items()},
        secrets={k: (v, at + by) for k, (v, at) in stored.secrets.items()},
        complete_at=None if stored.complete_at is None else stored.complete_at + by,
    )


def _validate(data: Any, store: str, stage: str, *, latest: float) -> tuple[StageFile, _SealedEntries | None] | None:
    """A loaded file's contents and sealed entries, or None when it is not ours, not whole, or has a bad time.

    No time may be later than ``latest`` or be anything but a finite number.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return None
    if data.get("source") != store or data.get("stage") != stage:
        return None  # a hash collision or a hand-edited file
    if "complete_at" not in data:
        return None
    complete_at = data["complete_at"]
    if complete_at is not None:
        complete_at = _time(complete_at, latest)
        if complete_at is None:
            return None
    values = _entries(data.get("values"), latest, absent=True)
    withheld = data.get("withheld")
    if values is None or not isinstance(withheld, list) or not all(isinstance(k, str) for k in withheld):
        return None
    raw = data.get("sealed")
    sealed = None
    if raw is not None:
        if not isinstance(raw, dict) or not isinstance(raw.get("key"), str):
            return None
        entries = _entries(raw.get("values"), latest, absent=False)
        if entries is None:
            return None
        sealed = _SealedEntries(raw["key"], entries)
    version = data.get("version")
    if version is not None and not isinstance(version, str):
        return None
    return StageFile(values, {}, complete_at, frozenset(withheld), version), sealed


def _entries(raw: Any, latest: float, *, absent: bool) -> dict[str, tuple[Any, float]] | None:
    """``{key: [value, fetched at]}`` with string values (or null for a known absence, when ``absent``)."""
    if not isinstance(raw, dict):
        return None
    entries: dict[str, tuple[Any, float]] = {}
    for key, entry in raw.items():
        if not isinstance(entry, list) or len(entry) != 2:
            return None
        value, at = entry
        if not (isinstance(value, str) or (absent and value is None)):
            return None
        when = _time(at, latest)
        if when is None:
            return None
        entries[key] = (value, when)
    return entries


def _time(raw: Any, latest: float) -> float | None:
    """A time from a file, or None unless it is a finite number no later than ``latest``."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    try:
        when = float(raw)
    except OverflowError:  # an integer of hundreds of digits
        return None
    return when if math.isfinite(when) and when <= latest else None


_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-")


def _escape(text: str) -> str:
    """A file-name-safe, injective spelling: safe characters kept, every other one as ``_XX_``."""
    return "".join(c if c in _SAFE else f"_{ord(c):x}_" for c in text)
