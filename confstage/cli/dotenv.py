"""``.env`` and JSON files in and out.

The ``.env`` dialect read here is the common one:

* blank lines and ``# comments`` are skipped; ``export KEY=VALUE`` is the same as ``KEY=VALUE``;
* the value is everything after the first ``=`` (so ``url=a=b`` is ``a=b``), trimmed;
* an unquoted value ends at `` #`` (a ``#`` after whitespace starts a comment), and at the end of
  its line: one that opens a PEM block (``-----BEGIN``) without closing it is an error, not a
  value cut short;
* ``'single quotes'`` are literal; ``"double quotes"`` understand ``\\n \\r \\t \\" \\\\``;
  either may span lines; after the closing quote only a comment may follow;
* nothing is interpolated (``$HOME`` stays ``$HOME``); a leading byte-order mark is ignored.

A key is letters, digits and ``_ . - /``, starting with a letter or ``_``, and must follow the
key rule (``confstage.names.KEY_RULE``); a JSON key need only follow the key rule.

``format_dotenv`` writes what ``parse_dotenv`` reads back unchanged. An error names the file,
the line and the column, never anything the file holds: a password pasted where a key belongs,
or a PEM block that is not quoted, must not reach a terminal or a CI log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from confstage.errors import ConfstageError
from confstage.sources.base import key_refusal

__all__ = [
    "DotenvError",
    "Entry",
    "format_dotenv",
    "load_entries",
    "load_values",
    "parse_dotenv",
    "parse_json_values",
]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")
_KEY_CHARS = "letters, digits and _ . - /, starting with a letter or _"
_BARE = re.compile(r"[A-Za-z0-9_.,:/@+=\-]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_UNESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
# The body of a double-quoted value up to its closing quote: linear, however long the file.
_DOUBLE_QUOTED = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*', re.DOTALL)
_BOM = "\ufeff"


class DotenvError(ConfstageError, ValueError):
    """A file that is not a valid ``.env`` or JSON object of values; names the line, never its content."""

    def __init__(self, message: str, *, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class Entry(NamedTuple):
    """One value of a file, and where its key is (1-based line and column)."""

    key: str
    value: str
    line: int
    column: int


def _error(name: str, line: int, column: int | None, problem: str) -> DotenvError:
    where = f"line {line}" if column is None else f"line {line}, column {column}"
    return DotenvError(f"{name}, {where}: {problem}", line=line, column=column)


def _check_key(key: str, name: str, line: int, column: int) -> None:
    reason = key_refusal(key)
    if reason:
        raise _error(name, line, column, f"not a valid key name: {reason}")


def _dotenv_entries(text: str, name: str) -> Iterator[Entry]:
    text = text.removeprefix(_BOM).replace("\r\n", "\n")
    size = len(text)
    number = 0
    pos = 0
    while pos <= size:
        number += 1
        end = text.find("\n", pos)
        end = size if end < 0 else end
        start, line = pos, text[pos:end]
        pos = end + 1
        body = line.lstrip()
        if not body or body.startswith("#"):
            continue
        if body.startswith(("export ", "export\t")):
            body = body[len("export") :].lstrip()
        column = len(line) - len(body) + 1
        key, sep, rest = body.partition("=")
        key = key.rstrip()
        if not sep:
            raise _error(name, number, None, "expected KEY=VALUE")
        bad = _first_bad_key_char(key)
        if bad is not None:
            raise _error(name, number, column + bad, f"not a valid key: a key is {_KEY_CHARS}")
        _check_key(key, name, number, column)
        value = rest.lstrip()
        value_column = len(line) - len(value) + 1
        if value[:1] not in ("'", '"'):
            value = re.split(r"\s#", value, maxsplit=1)[0].strip()
            if value.startswith("-----BEGIN") and "-----END" not in value:
                raise _error(
                    name, number, value_column, "a value that opens a PEM block must be in double quotes to span lines"
                )
            yield Entry(key, value, number, column)
            continue
        quote = value[0]
        opening = start + value_column - 1  # index of the opening quote in text
        if quote == "'":
            closing = text.find("'", opening + 1)
        else:
            match = _DOUBLE_QUOTED.match(text, opening + 1)
            closing = match.end() if match and match.end() < size and text[match.end()] == '"' else -1
        kind = "single" if quote == "'" else "double"
        if closing < 0:
            raise _error(name, number, value_column, f"unterminated {kind} quote")
        raw = text[opening + 1 : closing]
        key_line = number
        number += raw.count("\n")
        end = text.find("\n", closing)
        end = size if end < 0 else end
        after = text[closing + 1 : end]
        tail = after.lstrip()
        if tail.rstrip() and not tail.startswith("#"):
            tail_column = closing + 1 + len(after) - len(tail) - (text.rfind("\n", 0, closing) + 1) + 1
            raise _error(name, number, tail_column, "unexpected text after the closing quote")
        pos = end + 1
        yield Entry(key, _unescape(raw) if quote == '"' else raw, key_line, column)


def _first_bad_key_char(key: str) -> int | None:
    """Index of the first character that breaks the ``.env`` key syntax (None when it holds)."""
    if _KEY.fullmatch(key):
        return None
    if not key:
        return 0
    match = _KEY.match(key)
    return match.end() if match else 0


def _unescape(raw: str) -> str:
    return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(0)), raw, flags=re.DOTALL)


def parse_dotenv(text: str, *, name: str = "<.env>") -> dict[str, str]:
    """The key -> value pairs of a ``.env`` document (a later duplicate wins)."""
    return {entry.key: entry.value for entry in _dotenv_entries(text, name)}


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


def _json_entries(text: str, name: str) -> Iterator[Entry]:
    text = text.removeprefix(_BOM)
    try:
        document = json.loads(text)
    except RecursionError:
        raise DotenvError(f"{name} nests JSON too deeply to be read") from None
    except ValueError as exc:
        # ``from None``: the decoder's exception carries the document.
        if isinstance(exc, json.JSONDecodeError):
            raise _error(name, exc.lineno, exc.colno, "not valid JSON") from None
        raise DotenvError(f"{name} is not valid JSON (a number too long to read?)") from None
    if not isinstance(document, dict):
        raise DotenvError(f"{name} must hold a JSON object of key -> value, not a JSON {_json_type(document)}")
    # The text is valid JSON: walk the top-level object again to learn where each key is.
    decoder = json.JSONDecoder()
    lines = _Lines(text)
    pos = _skip_space(text, _skip_space(text, 0) + 1)  # past the opening brace
    while text[pos] != "}":
        key_line, key_column = lines.at(pos)
        key, pos = decoder.raw_decode(text, pos)
        _check_key(key, name, key_line, key_column)
        pos = _skip_space(text, _skip_space(text, pos) + 1)  # past the colon
        value, end = decoder.raw_decode(text, pos)
        if value is None:
            raise _error(name, *lines.at(pos), "the value is null; a value is a string, number, boolean or JSON")
        if not isinstance(value, str):
            value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
        yield Entry(key, value, key_line, key_column)
        pos = _skip_space(text, end)
        if text[pos] == ",":
            pos = _skip_space(text, pos + 1)


def _skip_space(text: str, pos: int) -> int:
    """The first offset from ``pos`` that is not JSON whitespace."""
    while pos < len(text) and text[pos] in " \t\n\r":
        pos += 1
    return pos


def parse_json_values(text: str, *, name: str = "<json>") -> dict[str, str]:
    """A JSON object of values; numbers and booleans become their JSON text, objects and arrays compact JSON."""
    return {entry.key: entry.value for entry in _json_entries(text, name)}


def load_entries(text: str, *, name: str) -> dict[str, Entry]:
    """The entries of a file's text by key (a later duplicate wins): JSON when it is a ``.json`` file
    or starts with ``{``, else ``.env``."""
    if name.lower().endswith(".json") or text.removeprefix(_BOM).lstrip().startswith("{"):
        entries = _json_entries(text, name)
    else:
        entries = _dotenv_entries(text, name)
    return {entry.key: entry for entry in entries}


def load_values(text: str, *, name: str) -> dict[str, str]:
    """Values from a file's text, as ``load_entries`` reads them."""
    return {key: entry.value for key, entry in load_entries(text, name=name).items()}


class _Lines:
    """Line and column of increasing offsets into one text, counted in one pass over it."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._offset = 0
        self._line = 1
        self._line_start = 0

    def at(self, offset: int) -> tuple[int, int]:
        newlines = self._text.count("\n", self._offset, offset)
        if newlines:
            self._line += newlines
            self._line_start = self._text.rfind("\n", self._offset, offset) + 1
        self._offset = offset
        return self._line, offset - self._line_start + 1


def _json_type(value: object) -> str:
    names = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
    return names.get(type(value), "value")
