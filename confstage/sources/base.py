"""The source interface: one method, ``fetch(stage, keys)``, plus the URL helper every source parses with.

A source returns the values it holds (missing keys left out) or raises ``SourceError`` when it is
broken — "not found" falls through to the next source, a failure never does (the botocore
credential-chain rule). Writing is a separate protocol, used only by the admin CLI.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

from confstage.errors import ConfigurationError, KeyNameError, SourceError

if TYPE_CHECKING:
    from datetime import datetime

    from confstage.errors import ConfstageError

__all__ = [
    "Fetched",
    "PartialWriteError",
    "Source",
    "SourceURL",
    "StoredValue",
    "Version",
    "WritableSource",
    "WriteLog",
    "key_refusal",
    "refuse_writes",
    "refused_error",
    "utf8_size",
]


class Fetched(Mapping[str, str]):
    """What one fetch returned: values by key, which of them are secrets (never on disk in plaintext),
    and the keys the source holds but could not give (``errors``: a value that does not decrypt).

    A key in ``errors`` fails only reads of that key, with its error; every other key is served.
    """

    __slots__ = ("_values", "errors", "secret")

    def __init__(
        self,
        values: Mapping[str, str],
        secret: Collection[str] = (),
        errors: Mapping[str, ConfstageError] | None = None,
    ) -> None:
        self._values = dict(values)
        self.secret = frozenset(secret)
        self.errors: Mapping[str, ConfstageError] = dict(errors) if errors else {}

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        broken = f", errors={sorted(self.errors)!r}" if self.errors else ""
        return f"Fetched(keys={sorted(self._values)!r}, secret={sorted(self.secret)!r}{broken})"


@runtime_checkable
class Source(Protocol):
    """A place configuration values live.

    ``url`` names it in errors and stats. ``whole_stage`` says that ``fetch`` loads the entire
    stage, so a key it leaves out is known to be absent. ``ttl`` overrides the client's TTL
    (``math.inf``: immutable for the life of the process). ``persist`` says whether snapshots
    may go to the /tmp cache (secrets among them never do in plaintext). A source may also define
    ``store_id() -> str``, what names its store there when the URL alone does not (an AWS source adds
    region, endpoint and principal: ``aws.store_identity``); without it the URL does. A source that
    does no I/O sets ``inline = True``: the cache layer then fetches in the caller's thread.
    """

    url: str
    ttl: float | None
    whole_stage: bool
    persist: bool

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        """Return the values of ``keys`` for ``stage`` (or of the whole stage), leaving out missing ones."""
        ...


class StoredValue(NamedTuple):
    """A value as a store holds it: ``secure`` values are envelope-encrypted at rest."""

    value: str
    secure: bool = False
    version: str | None = None


class Version(NamedTuple):
    """One stored version of a key."""

    version: str
    modified: datetime | None
    latest: bool
    secure: bool = False


@runtime_checkable
class WritableSource(Protocol):
    """The admin side of a store: used by the CLI, never on the runtime path.

    ``put_many`` validates everything before its first write: the stage, every key against the key
    rule and the store's own limits (``check_write``), and, when values are to be encrypted, the
    KMS key (every value is sealed, or the first write is a secure one, before anything else is
    written). So an exception other than ``PartialWriteError`` means nothing was written.
    """

    url: str

    def init(self) -> None:
        """Create what the store needs (table, bucket); harmless when it exists."""
        ...

    def check_write(self, stage: str, values: Mapping[str, str]) -> dict[str, str]:
        """Why each key of ``values`` cannot be written to ``stage`` (key -> reason, never quoting
        the key or its value); empty when every one can. An illegal stage raises ``StageError``."""
        ...

    def put(
        self,
        stage: str,
        key: str,
        value: str,
        *,
        kms_key: str | None = None,
        expect_version: str | None = None,
    ) -> str | None:
        """Write one value (envelope-encrypted when ``kms_key`` is given); return the new version."""
        ...

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
        ...

    def delete(self, stage: str, key: str) -> bool:
        """Remove a key; False when it did not exist."""
        ...

    def items(self, stage: str, *, decrypt: bool = False) -> dict[str, StoredValue]:
        """Every key of a stage; secure values stay ciphertext unless ``decrypt``."""
        ...

    def history(self, stage: str, key: str) -> list[Version]:
        """Stored versions of a key, newest first (empty when the store keeps none)."""
        ...

    def rollback(self, stage: str, key: str, version: str) -> str | None:
        """Make ``version`` the current value again; return the new version."""
        ...


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


def key_refusal(key: str) -> str | None:
    """Why ``key`` breaks the key rule (``names.KEY_RULE``), without quoting it; None when it is legal."""
    from confstage.names import KEY_RULE, validate_key

    try:
        validate_key(key)
    except KeyNameError:
        return f"{_broken_part(key)}; a key is {KEY_RULE}"
    return None


def _broken_part(key: str) -> str:
    """Which part of the key rule ``key`` breaks, by position only."""
    if not key:
        return "the key is empty"
    control = next((i for i, char in enumerate(key) if char < " " or char == "\x7f"), None)
    if control is not None:
        return f"the key has a control character at position {control + 1}"
    if len(key) > 1024:
        return f"the key is {len(key)} characters long"
    if key.startswith("/") or key.endswith("/"):
        return "the key starts or ends with '/'"
    return "the key has an empty, '.' or '..' segment"


def refuse_writes(stage: str, values: Mapping[str, str], limit: Callable[[str, str], str | None]) -> dict[str, str]:
    """``check_write`` for a store: the stage rule (raises), then per key the key rule and ``limit(key, value)``."""
    from confstage.names import validate_stage

    validate_stage(stage)
    refused: dict[str, str] = {}
    for key, value in values.items():
        reason = key_refusal(key) or limit(key, value)
        if reason:
            refused[key] = reason
    return refused


def refused_error(refused: Mapping[str, str], *, source: str) -> KeyNameError:
    """The error ``put``/``put_many`` raise for refused keys (before any write): each key and why."""
    shown = "; ".join(f"{key!r}: {reason}" for key, reason in list(refused.items())[:5])
    more = f"; and {len(refused) - 5} more" if len(refused) > 5 else ""
    return KeyNameError(f"cannot write to {source}, nothing written: {shown}{more}")


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


def utf8_size(text: str) -> int:
    """Bytes of ``text`` as UTF-8 (what AWS limits count)."""
    return len(text.encode("utf-8", "surrogatepass"))


class SourceURL:
    """A parsed source URL; each ``take_*`` consumes one query parameter, ``done()`` rejects leftovers."""

    def __init__(self, url: str) -> None:
        self.url = url.strip()
        # scheme://netloc/path?query, parsed by hand: urllib.parse costs more at import than all of this.
        scheme, sep, rest = self.url.partition("://")
        if not sep or not scheme or not scheme.replace("-", "").replace("+", "").replace(".", "").isalnum():
            raise ConfigurationError(f"source URL {url!r} has no scheme; expected e.g. env:// or dynamodb://TABLE")
        self.scheme = scheme.lower()
        rest, _, query = rest.partition("?")
        rest = rest.partition("#")[0]
        query = query.partition("#")[0]
        self.netloc, slash, path = rest.partition("/")
        self.path = slash + path
        self._params: dict[str, str] = {}
        for pair in query.split("&"):
            if not pair:
                continue
            name, _, value = pair.partition("=")
            name, value = _unquote(name), _unquote(value)
            if name in self._params:
                raise self.error(f"parameter {name!r} given twice")
            self._params[name] = value

    def error(self, problem: str) -> ConfigurationError:
        """A ConfigurationError naming this URL and the problem."""
        return ConfigurationError(f"bad source URL {self.url!r}: {problem}")

    def take(self, name: str, default: str | None = None) -> str | None:
        return self._params.pop(name, default)

    def take_bool(self, name: str, default: bool) -> bool:
        raw = self._params.pop(name, None)
        if raw is None:
            return default
        if raw.lower() in ("1", "true", "yes", "on"):
            return True
        if raw.lower() in ("0", "false", "no", "off"):
            return False
        raise self.error(f"parameter {name!r} must be true or false, got {raw!r}")

    def take_float(self, name: str, default: float | None = None) -> float | None:
        raw = self._params.pop(name, None)
        if raw is None:
            return default
        try:
            number = float(raw)
        except ValueError as exc:
            raise self.error(f"parameter {name!r} must be a number of seconds, got {raw!r}") from exc
        if number < 0 or number != number:
            raise self.error(f"parameter {name!r} must not be negative, got {raw!r}")
        return number

    def take_choice(self, name: str, choices: tuple[str, ...]) -> str:
        raw = self._params.pop(name, choices[0])
        if raw not in choices:
            raise self.error(f"parameter {name!r} must be one of {', '.join(choices)}, got {raw!r}")
        return raw

    def take_list(self, name: str) -> tuple[str, ...] | None:
        raw = self._params.pop(name, None)
        if raw is None:
            return None
        items = tuple(item.strip() for item in raw.split(",") if item.strip())
        if not items:
            raise self.error(f"parameter {name!r} must list at least one name")
        return items

    def done(self) -> None:
        """Raise if any parameter was not understood."""
        if self._params:
            raise self.error(f"unknown parameter(s) {', '.join(sorted(self._params))}")


def _unquote(text: str) -> str:
    """Percent-decoding (and ``+`` as space) of one query component."""
    text = text.replace("+", " ")
    if "%" not in text:
        return text
    raw = bytearray()
    i = 0
    while i < len(text):
        if text[i] == "%" and i + 2 < len(text) and _is_hex(text[i + 1 : i + 3]):
            raw.append(int(text[i + 1 : i + 3], 16))
            i += 3
        else:
            raw.extend(text[i].encode("utf-8"))
            i += 1
    return raw.decode("utf-8", errors="replace")


def _is_hex(pair: str) -> bool:
    return len(pair) == 2 and all(c in "0123456789abcdefABCDEF" for c in pair)
