"""The store interface: what the admin CLI does to a store, and what every store shares to do it.

A store writes, lists and rolls back what its runtime source reads (``store.reader``); it is built only by
the CLI, so a Lambda never imports this package. ``put_many`` validates everything before its first write,
and a failure after it is a ``PartialWriteError`` naming the keys written and those not. ``Store`` is the
one base class: the validation and the bookkeeping of partial writes live there once.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from confstage.aws import Caller
from confstage.errors import KeyNameError, SourceError
from confstage.names import key_refusal, validate_stage

if TYPE_CHECKING:
    from datetime import datetime

    from confstage.transport import Transport

__all__ = [
    "NOT_RECORDED",
    "PartialWriteError",
    "Store",
    "StoredValue",
    "Version",
    "WriteLog",
    "admin_transport",
    "utf8_size",
]


class StoredValue(NamedTuple):
    """A value as a store holds it: ``secure`` values are envelope-encrypted at rest."""

    value: str
    secure: bool = False
    version: str | None = None


# Why a version of a store confstage writes has no writer: written before confstage recorded one, by another tool,
# or while STS did not answer.
NOT_RECORDED = "not recorded (written by another tool, by an older confstage, or while STS did not answer)"


class Version(NamedTuple):
    """One stored version of a key, and who wrote it: ``by`` (an IAM ARN) when the store knows, else None and
    ``by_unknown`` saying why (never a guess)."""

    version: str
    modified: datetime | None
    latest: bool
    secure: bool = False
    by: str | None = None
    by_unknown: str | None = None


class Store:
    """The admin side of a source: used by the CLI, never on the runtime path.

    ``reader`` is the runtime source of the same URL (where keys live, how values decode). ``put`` and
    ``put_many`` validate everything before their first write: the stage, every key against the key rule
    and the store's own limits (``check_write``), and, when values are to be encrypted, the KMS key (every
    value is encrypted, or the first write is a secure one, before anything else is written). So an
    exception other than ``PartialWriteError`` means nothing was written. A store says how it writes one
    value (``_put``) and many (``_prepare``, then ``_put_many``).

    ``default_kms_key`` encrypts secure values when no key is named (SSM's AWS-managed key; None for the
    others); ``needs_kms_key`` says whether a secure value can be written at all without one (not for
    Secrets Manager, which encrypts every value with the secret's own key).
    """

    default_kms_key: str | None = None
    needs_kms_key: bool = True

    def __init__(self, reader: Any, transport: Transport | None = None) -> None:
        self.reader = reader
        self.url: str = reader.url
        self.transport = admin_transport(transport or reader.aws.transport)
        self.aws = Caller(self.url, self.transport)
        self._writer: str | None = None
        self._writer_asked = False
        self._writer_lock = threading.Lock()

    def writer(self) -> str | None:
        """The ARN of the principal writing (STS GetCallerIdentity, asked once per store, on the first write that
        records it); None when STS does not answer: the write goes on, and its version says "not recorded"."""
        with self._writer_lock:
            if not self._writer_asked:
                try:
                    arn = self.aws.call("sts:GetCallerIdentity", {}).get("Arn")
                except SourceError as exc:
                    from confstage import _log as log

                    log.warning("writes to %s will not record who made them: %s", self.url, exc)
                    arn = None
                self._writer = arn if isinstance(arn, str) and arn else None
                self._writer_asked = True
            return self._writer

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    def init(self) -> None:
        """Create what the store needs (table, bucket); harmless when it exists. Nothing, unless overridden."""

    def check_write(self, stage: str, values: Mapping[str, str]) -> dict[str, str]:
        """Why each key of ``values`` cannot be written to ``stage`` (key -> reason, never quoting
        the key or its value); empty when every one can. An illegal stage raises ``StageError``."""
        validate_stage(stage)
        refused: dict[str, str] = {}
        for key, value in values.items():
            reason = key_refusal(key) or self.limit(stage, key, value)
            if reason:
                refused[key] = reason
        return refused

    def limit(self, stage: str, key: str, value: str) -> str | None:
        """Why the store itself cannot hold this key and value (its size limits, its names); None when it can."""
        return None

    def refuse(self, stage: str, values: Mapping[str, str]) -> None:
        """Raise, before any write, when ``values`` cannot be written: each refused key and why (never a value)."""
        refused = self.check_write(stage, values)
        if refused:
            shown = "; ".join(f"{key!r}: {reason}" for key, reason in list(refused.items())[:5])
            more = f"; and {len(refused) - 5} more" if len(refused) > 5 else ""
            raise KeyNameError(f"cannot write to {self.url}, nothing written: {shown}{more}")

    def put(
        self,
        stage: str,
        key: str,
        value: str,
        *,
        kms_key: str | None = None,
        expect_version: str | None = None,
    ) -> str | None:
        """Write one value (envelope-encrypted when ``kms_key`` is given); return the new version.

        ``expect_version`` guards the write: it must be the stored version ("0": the key must not exist).
        """
        self.refuse(stage, {key: value})
        return self._put(stage, key, value, kms_key, expect_version)

    def put_many(
        self,
        stage: str,
        values: Mapping[str, str],
        *,
        kms_key: str | None = None,
        secure: Collection[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Write many values in as few requests as the store allows, all or ``PartialWriteError``.

        With ``kms_key``, the keys in ``secure`` (default: all of them) are encrypted under it.
        ``progress(n)`` is called as the store confirms each batch of ``n`` values.
        """
        self.refuse(stage, values)
        encrypted = frozenset(values if secure is None else secure) if kms_key else frozenset()
        prepared = self._prepare(stage, values, kms_key, encrypted)
        log = WriteLog(values, progress)
        try:
            self._put_many(stage, prepared, log)
        except Exception as exc:
            raise log.failed(exc, source=self.url) from exc

    def delete(self, stage: str, key: str) -> bool:
        """Remove a key; False when it did not exist."""
        raise NotImplementedError

    def items(self, stage: str, *, decrypt: bool = False) -> dict[str, StoredValue]:
        """Every key of a stage; secure values stay ciphertext unless ``decrypt``."""
        raise NotImplementedError

    def history(self, stage: str, key: str) -> list[Version]:
        """Stored versions of a key, newest first (empty when the store keeps none)."""
        raise NotImplementedError

    def rollback(self, stage: str, key: str, version: str) -> str | None:
        """Make ``version`` the current value again; return the new version."""
        raise NotImplementedError

    def _put(self, stage: str, key: str, value: str, kms_key: str | None, expect_version: str | None) -> str | None:
        raise NotImplementedError

    def _prepare(self, stage: str, values: Mapping[str, str], kms_key: str | None, encrypted: frozenset[str]) -> Any:
        """What ``_put_many`` writes, made before the first write (values encrypted, requests built); may refuse."""
        return values

    def _put_many(self, stage: str, prepared: Any, log: WriteLog) -> None:
        raise NotImplementedError


class PartialWriteError(SourceError):
    """A ``put_many`` failed after it had begun writing: which keys were written, which were not.

    ``written`` the store confirmed; ``not_written`` it refused, never received, or received without
    answering (a timeout: such a write may still have landed). Writing them again is safe, a put
    overwrites. The failure is the ``__cause__``; names only, never a value.
    """

    def __init__(
        self,
        cause: BaseException,
        *,
        written: Iterable[str],
        not_written: Iterable[str],
        source: str = "",
        operation: str = "",
    ) -> None:
        self.written = tuple(written)
        self.not_written = tuple(not_written)
        total = len(self.written) + len(self.not_written)
        # A ConfstageError's text is ours (never a value); anything else is named by its type only.
        what = str(cause) if isinstance(cause, SourceError) else type(cause).__name__
        done = f"{len(self.written)} of {total} value(s) written" if self.written else "nothing written"
        super().__init__(f"{done}, then {what}")
        self.source = source or getattr(cause, "source", "")
        self.operation = operation or getattr(cause, "operation", "")


class WriteLog:
    """The keys a ``put_many`` has written so far, turning a failure midway into ``PartialWriteError``."""

    def __init__(self, keys: Iterable[str], progress: Callable[[int], None] | None = None) -> None:
        self._order = list(keys)
        self._written: set[str] = set()
        self._progress = progress

    def done(self, keys: Collection[str]) -> None:
        """The store confirmed ``keys``."""
        self._written.update(keys)
        if self._progress is not None and keys:
            self._progress(len(keys))

    def failed(self, cause: BaseException, *, source: str) -> PartialWriteError:
        """The error to raise (``from cause``) when a write failed after the ones logged."""
        written = [key for key in self._order if key in self._written]
        not_written = [key for key in self._order if key not in self._written]
        return PartialWriteError(cause, written=written, not_written=not_written, source=source)


def admin_transport(transport: Transport | None = None) -> Transport:
    """What a store writes through: ``transport``, else a botocore one that waits ``ADMIN_READ_TIMEOUT`` for answers.

    Writes keep botocore whatever reads use: its clients cover every admin operation (and the CLI's profiles). The
    runtime's transport is not borrowed: its short read timeout suits reads, and a write retried after it can be
    applied twice.
    """
    if transport is not None:
        return transport
    from confstage.transport.botocore import ADMIN_READ_TIMEOUT, BotocoreTransport

    return BotocoreTransport(read_timeout=ADMIN_READ_TIMEOUT)


def utf8_size(text: str) -> int:
    """Bytes of ``text`` as UTF-8 (what AWS limits count)."""
    return len(text.encode("utf-8", "surrogatepass"))
