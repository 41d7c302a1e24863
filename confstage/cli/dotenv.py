"""``.env`` and JSON files in and out.

The ``.env`` dialect read here is the common one:

* blank lines and ``# comments`` are skipped; ``export KEY=VALUE`` is the same as ``KEY=VALUE``;
* the value is everything after the first ``=`` (so ``url=a=b`` is ``a=b``), trimmed;
* an unquoted value ends at `` #`` (a ``#`` after whitespace starts a comment);
* ``'single quotes'`` are literal; ``"double quotes"`` understand ``\\n \\r \\t \\" \\\\``;
  either may span lines; after the closing quote only a comment may follow;
* nothing is interpolated (``$HOME`` stays ``$HOME``).

``format_dotenv`` writes what ``parse_dotenv`` reads back unchanged. Errors name the line,
never the value.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from confstage.errors import ConfstageError

__all__ = ["DotenvError", "format_dotenv", "load_values", "parse_dotenv", "parse_json_values"]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")
_BARE = re.compile(r"[A-Za-z0-9_.,:/@+=\-]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_UNESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class DotenvError(ConfstageError, ValueError):
    """A file that is not a valid ``.env`` or JSON object of values; names the line, never a value."""


def parse_dotenv(text: str, *, name: str = "<.env>") -> dict[str, str]:
    """The key → value pairs of a ``.env`` document (a later duplicate wins)."""
    values: dict[str, str] = {}
    # Only \n (or \r\n) ends a line: str.splitlines would also split on \x1e, \u2028 and friends.
    lines = text.replace("\r\n", "\n").split("\n")
    i = 0
    while i < len(lines):
        number = i + 1
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith(("export ", "export\t")):
            line = line[len("export") :].lstrip()
        key, sep, rest = line.partition("=")
        key = key.strip()
        if not sep:
            raise DotenvError(f"{name}, line {number}: expected KEY=VALUE")
        if not _KEY.fullmatch(key):
            raise DotenvError(f"{name}, line {number}: {key!r} is not a valid key")
        rest = rest.lstrip()
        if rest[:1] in ("'", '"'):
            quote = rest[0]
            body = rest[1:]
            # A quoted value may span lines: gather until the closing quote.
            while _closing(body, quote) < 0:
                if i >= len(lines):
                    raise DotenvError(f"{name}, line {number}: unterminated {quote} quote")
                body += "\n" + lines[i]
                i += 1
            end = _closing(body, quote)
            tail = body[end + 1 :].strip()
            if tail and not tail.startswith("#"):
                raise DotenvError(f"{name}, line {number}: unexpected text after the closing quote")
            raw = body[:end]
            values[key] = _unescape(raw) if quote == '"' else raw
        else:
            values[key] = re.split(r"\s#", rest, maxsplit=1)[0].strip()
    return values


def _closing(body: str, quote: str) -> int:
    """Index of the unescaped closing quote in ``body``, or -1."""
    i = 0
    while i < len(body):
        char = body[i]
        if char == "\\" and quote == '"':
            i += 2
            continue
        if char == quote:
            return i
        i += 1
    return -1


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), raw, flags=re.DOTALL)


def format_dotenv(values: Mapping[str, str]) -> str:
    """A ``.env`` document of ``values``, quoted where needed, that ``parse_dotenv`` reads back exactly."""
    lines = []
    for key, value in values.items():
        if not _KEY.fullmatch(key):
            raise DotenvError(f"key {key!r} cannot be written to a .env file; use --format json")
        if _BARE.fullmatch(value):
            lines.append(f"{key}={value}")
        else:
            escaped = "".join(_UNESCAPES.get(char, char) for char in value)
            lines.append(f'{key}="{escaped}"')
    return "".join(line + "\n" for line in lines)


def parse_json_values(text: str, *, name: str = "<json>") -> dict[str, str]:
    """A JSON object of values; numbers and booleans become their JSON text, objects and arrays compact JSON."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise DotenvError(f"{name} is not valid JSON{where}") from None
    if not isinstance(document, dict):
        raise DotenvError(f"{name} must hold a JSON object of key → value")
    values: dict[str, str] = {}
    for key, value in document.items():
        if isinstance(value, str):
            values[key] = value
        elif value is None:
            raise DotenvError(f"{name}: key {key!r} is null; a value must be a string, number, boolean or JSON")
        else:
            values[key] = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return values


def load_values(text: str, *, name: str) -> dict[str, str]:
    """Values from a file's text: JSON when it is a ``.json`` file or starts with ``{``, else ``.env``."""
    if name.lower().endswith(".json") or text.lstrip().startswith("{"):
        return parse_json_values(text, name=name)
    return parse_dotenv(text, name=name)
