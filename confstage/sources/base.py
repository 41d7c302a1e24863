"""The source interface: one method, ``fetch(stage, keys)``, plus what every source parses and reads with.

A source returns the values it holds (missing keys left out) or raises ``SourceError`` when it is
broken — "not found" falls through to the next source, a failure never does (the botocore
credential-chain rule). Sources only read; writing is the stores' (``confstage.stores``, the admin CLI's).
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from confstage.errors import ConfigurationError, DecryptError, SourceError

if TYPE_CHECKING:
    from confstage.aws import Caller
    from confstage.errors import ConfstageError

__all__ = ["REGIONAL_SCHEMES", "Fetched", "Source", "SourceURL", "open_envelopes", "parse_json_object"]

ENVELOPE_PREFIX = "cs1:"  # crypto.PREFIX: what every envelope starts with (tests/test_crypto.py holds them equal)

# Schemes whose sources read AWS in a region, and so accept ``?fallback_regions=`` (``sources.failover``).
REGIONAL_SCHEMES = frozenset({"dynamodb", "s3", "ssm", "secretsmanager", "kms-env", "appconfig"})


class Fetched(Mapping[str, str]):
    """What one fetch returned: values by key, which of them are secrets (never on disk in plaintext),
    and the keys the source holds but could not give (``errors``: a value that does not decrypt).

    A key in ``errors`` fails only reads of that key, with its error; every other key is served. ``version``:
    what the store calls this version of the stage, when it says (AppConfig's version label), kept with the
    load in memory and in its /tmp file.
    """

    __slots__ = ("_values", "errors", "secret", "version")

    def __init__(
        self,
        values: Mapping[str, str],
        secret: Collection[str] = (),
        errors: Mapping[str, ConfstageError] | None = None,
        version: str | None = None,
    ) -> None:
        self._values = dict(values)
        self.secret = frozenset(secret)
        self.errors: Mapping[str, ConfstageError] = dict(errors) if errors else {}
        self.version = version

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
    ``identity() -> str``, what names its store there when the URL alone does not (an AWS source adds
    region, endpoint and principal: ``aws.endpoint_identity``); without it the URL does. Sources are built from
    their URL by ``from_url(url, transport=None)``: the transport their AWS calls go through (None: the runtime's).
    A source that does no I/O sets ``inline = True``: the cache layer then fetches in the caller's thread.
    """

    url: str
    ttl: float | None
    whole_stage: bool
    persist: bool

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        """Return the values of ``keys`` for ``stage`` (or of the whole stage), leaving out missing ones."""
        ...


_JSON_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
_INVALID: Any = object()  # what a document that does not parse is read as


def load_json_object(
    text: str | bytes, *, what: str, source: str, operation: str, wanted: str = "a JSON object", hint: str = ""
) -> dict[str, Any]:
    """``text`` as a JSON object; a ``SourceError`` naming ``what``, never content, when it does not parse (with
    ``hint``) or is another JSON value (``wanted`` says what it must be).

    Raised without cause or context: a ``JSONDecodeError`` keeps the whole text in its ``doc``, and a handler
    that logs an exception's chain would show it.
    """
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        at = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        document = _INVALID
    if document is _INVALID:
        raise SourceError(f"{what} is not valid JSON{at}{hint}", source=source, operation=operation)
    if not isinstance(document, dict):
        kind = _JSON_KINDS.get(type(document), "value")
        raise SourceError(f"{what} must be {wanted}, not a JSON {kind}", source=source, operation=operation)
    return document


def parse_json_object(text: str, *, what: str, source: str, operation: str) -> dict[str, str]:
    """``text`` as a JSON object of string values (an S3 document, a secret); errors name ``what``, never content."""
    wanted = "a JSON object of string values"
    document = load_json_object(text, what=what, source=source, operation=operation, wanted=wanted)
    wrong = [key for key, value in document.items() if not isinstance(value, str)]
    if wrong:
        more = f" (and {len(wrong) - 1} more)" if len(wrong) > 1 else ""
        kind = _JSON_KINDS.get(type(document[wrong[0]]), "value")
        raise SourceError(
            f"{what}: the value of key {wrong[0]!r}{more} must be a JSON string, not a JSON {kind}",
            source=source,
            operation=operation,
        )
    return document


def open_envelopes(raw: Mapping[str, str], *, stage: str, kms: Caller) -> Fetched:
    """What a store fetched, with every envelope (``crypto``'s ``cs1:`` format) decrypted and its key a secret.

    An envelope that does not open (``DecryptError``: tampered, copied from another key or stage, malformed)
    fails only its own key: it goes into ``Fetched.errors`` and every other key is served. A KMS failure
    (throttling, AccessDenied, the network) is the fetch's: ``SourceError`` is raised, so the cache layer can
    serve stale values. ``kms`` is how the source calls AWS (KMS is asked only when there is an envelope to open).
    """
    if not any(value.startswith(ENVELOPE_PREFIX) for value in raw.values()):
        return Fetched(raw)  # no envelope: crypto (and its import, about 0.4 ms of a cold start) is not needed
    from confstage import crypto

    values: dict[str, str] = {}
    secret: list[str] = []
    errors: dict[str, DecryptError] = {}
    for key, value in raw.items():
        if not crypto.is_envelope(value):
            values[key] = value
            continue
        secret.append(key)
        try:
            values[key] = crypto.decrypt(value, stage=stage, key=key, kms=kms)
        except DecryptError as exc:
            errors[key] = exc
    return Fetched(values, secret=secret, errors=errors)


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

    def take_float(self, name: str, default: float | None = None, *, high: float = 365 * 24 * 3600.0) -> float | None:
        """A number of seconds from 0 to ``high`` (finite: ``inf`` and ``1e400`` are refused), or ``default``."""
        raw = self._params.pop(name, None)
        if raw is None:
            return default
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if not (math.isfinite(number) and 0 <= number <= high):
            raise self.error(f"parameter {name!r} must be a number of seconds from 0 to {high:.0f}, got {raw!r}")
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


# -- objects streamed to files (get_path; ``confstage.objects``) ------------------------------------


class _NotModified:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_MODIFIED"


NOT_MODIFIED = _NotModified()


@runtime_checkable
class ObjectBody(Protocol):
    """An object's body as a stream, with what identifies its version."""

    etag: str
    size: int | None  # bytes, when the store says so before the body is read

    def read(self, size: int) -> bytes: ...

    def close(self) -> None: ...


@runtime_checkable
class ObjectSource(Protocol):
    """A source whose keys are objects that can be streamed (the S3 objects layout)."""

    url: str

    def open_object(self, stage: str, key: str, *, etag: str | None) -> ObjectBody | _NotModified | None:
        """The object's body; ``NOT_MODIFIED`` when its ETag is still ``etag``; None when there is no such object."""
        ...
