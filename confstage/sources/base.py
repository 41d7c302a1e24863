"""The source interface: one method, ``fetch(stage, keys)``, plus the URL helper every source parses with.

A source returns the values it holds (missing keys left out) or raises ``SourceError`` when it is
broken — "not found" falls through to the next source, a failure never does (the botocore
credential-chain rule). Writing is a separate protocol, used only by the admin CLI.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

from confstage.errors import ConfigurationError

if TYPE_CHECKING:
    from datetime import datetime

    from confstage.errors import ConfstageError

__all__ = ["Fetched", "Source", "SourceURL", "StoredValue", "Version", "WritableSource"]


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
    region, endpoint and principal: ``aws.store_identity``); without it the URL does.
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
    """The admin side of a store: used by the CLI, never on the runtime path."""

    url: str

    def init(self) -> None:
        """Create what the store needs (table, bucket); harmless when it exists."""
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

    def put_many(self, stage: str, values: Mapping[str, str], *, kms_key: str | None = None) -> None:
        """Write many values in as few requests as the store allows."""
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
        except ValueError:
            raise self.error(f"parameter {name!r} must be a number of seconds, got {raw!r}") from None
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
