"""``.env`` and JSON files in and out.

``.env`` files are read by python-dotenv's parser (``dotenv.parser.parse_stream``: the dialect most tools
share), with confstage's stricter checks on top:

* blank lines and ``# comments`` are skipped; ``export KEY=VALUE`` is the same as ``KEY=VALUE``;
* the value is everything after the first ``=`` (so ``url=a=b`` is ``a=b``), trimmed; an unquoted value ends
  at `` #`` (a ``#`` after whitespace starts a comment) and at the end of its line;
* ``'single quotes'`` keep their text (only ``\\'`` and ``\\\\`` are escapes); ``"double quotes"``
  understand ``\\n \\r \\t \\" \\\\`` (and ``\\' \\a \\b \\f \\v``); either may span lines;
  after the closing quote only a comment may follow;
* nothing is interpolated (``$HOME`` stays ``$HOME``); a leading byte-order mark is ignored.

On top of python-dotenv: a bare ``KEY`` line (no ``=``) is an error, not an unset key; an unquoted value that
opens a PEM block (``-----BEGIN``) without closing it is an error, not a value cut short; a key is letters,
digits and ``_ . - /``, starting with a letter or ``_``, and must follow the key rule
(``confstage.names.KEY_RULE``); a JSON key need only follow the key rule.

``format_dotenv`` writes what ``parse_dotenv`` reads back unchanged. An error names the file, the line and
the column, never anything the file holds: a password pasted where a key belongs, or a PEM block that is not
quoted, must not reach a terminal or a CI log. python-dotenv is imported only when a ``.env`` file is read.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import NamedTuple

from confstage.errors import ConfstageError
from confstage.names import key_refusal
from confstage.stores.file import PEM_OPENING, env_value

__all__ = [
    "DotenvError",
    "Entry",
    "dotenv_entries",
    "format_dotenv",
    "load_entries",
    "load_values",
    "parse_dotenv",
    "parse_json_values",
]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/]*")
_KEY_CHARS = "letters, digits and _ . - /, starting with a letter or _"
_BOM = "\ufeff"

# Where python-dotenv finds the parts of a binding (its own patterns), to say where a problem is.
_SPACE = re.compile(r"\s*")
_EXPORT = re.compile(r"export[^\S\r\n]+")
_UNQUOTED_KEY = re.compile(r"[^=\#\s]*")
_SINGLE_QUOTED_KEY = re.compile(r"'[^']*'")
_ASSIGN = re.compile(r"[^\S\r\n]*=[^\S\r\n]*")
_QUOTED = {
    "'": re.compile(r"'(?:\\.|[^'\\])*'", re.DOTALL),
    '"': re.compile(r'"(?:\\.|[^"\\])*"', re.DOTALL),
}
_AFTER_QUOTE = re.compile(r"[^\S\r\n]*(?:#[^\r\n]*)?(?:\r|\n|$)")
_NEWLINE = re.compile(r"\r\n|\n|\r")
_BLANK = re.compile(r"[^\S\r\n]*")


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


class _Binding:
    """Where the parts of one python-dotenv binding are: offsets into its original text, and its first line."""

    def __init__(self, text: str, line: int) -> None:
        self.text = text
        self.line = line
        pos = _SPACE.match(text).end()  # type: ignore[union-attr]  # \s* always matches
        export = _EXPORT.match(text, pos)
        self.key = export.end() if export else pos
        quoted = _SINGLE_QUOTED_KEY.match(text, self.key) if text.startswith("'", self.key) else None
        self.key_end = (quoted or _UNQUOTED_KEY.match(text, self.key)).end()  # type: ignore[union-attr]
        if quoted:
            self.key += 1  # the key's first character, inside its quotes
        assign = _ASSIGN.match(text, self.key_end)
        self.value = assign.end() if assign else None

    def at(self, offset: int) -> tuple[int, int]:
        """Line and column (1-based, in characters) of ``offset`` into the binding's text."""
        before = self.text[:offset]
        breaks = list(_NEWLINE.finditer(before))
        start = breaks[-1].end() if breaks else 0
        return self.line + len(breaks), offset - start + 1

    def problem(self, name: str) -> DotenvError:
        """What is wrong with a binding python-dotenv could not read, and where."""
        if self.value is None:
            if "=" not in (self.text[self.key :].splitlines() or [""])[0]:
                return _error(name, self.at(self.key)[0], None, "expected KEY=VALUE")
            return _error(name, *self.at(self.key_end), f"not a valid key: a key is {_KEY_CHARS}")
        if self.key_end == self.key:
            return _error(name, *self.at(self.key), f"not a valid key: a key is {_KEY_CHARS}")
        quote = self.text[self.value : self.value + 1]
        kind = "single" if quote == "'" else "double"
        closed = _QUOTED[quote].match(self.text, self.value) if quote in _QUOTED else None
        if closed is None:
            return _error(name, *self.at(self.value), f"unterminated {kind} quote")
        if _AFTER_QUOTE.match(self.text, closed.end()) is None:
            tail = _BLANK.match(self.text, closed.end()).end()  # type: ignore[union-attr]  # always matches
            return _error(name, *self.at(tail), "unexpected text after the closing quote")
        return _error(name, self.at(self.key)[0], None, "not a valid KEY=VALUE line")


def dotenv_entries(text: str, *, name: str) -> Iterator[Entry]:
    """The entries of a ``.env`` document, checked: confstage's one ``.env`` reader.

    ``confstage import`` reads with it, and so should anything else that reads ``.env`` text (a ``file://``
    source's ``.env`` files): python-dotenv's parser, with the checks of this module on top. An error
    (``DotenvError``) names ``name``, the line and the column, never the text.
    """
    from io import StringIO

    from dotenv.parser import parse_stream

    text = text.removeprefix(_BOM).replace("\r\n", "\n")
    if text.startswith(_BOM):  # python-dotenv drops a byte-order mark itself: a second one is no key
        raise _error(name, 1, 1, f"not a valid key: a key is {_KEY_CHARS}")
    for binding in parse_stream(StringIO(text)):
        where = _Binding(binding.original.string, binding.original.line)
        if binding.error:
            raise where.problem(name)
        if binding.key is None:  # blank lines and comments
            continue
        line, column = where.at(where.key)
        if binding.value is None:
            raise _error(name, line, None, "expected KEY=VALUE")
        bad = _first_bad_key_char(binding.key)
        if bad is not None:
            raise _error(name, line, column + bad, f"not a valid key: a key is {_KEY_CHARS}")
        _check_key(binding.key, name, line, column)
        value, start = binding.value, where.value or 0
        unquoted = where.text[start : start + 1] not in _QUOTED
        if unquoted and value.startswith(PEM_OPENING) and "-----END" not in value:
            raise _error(
                name, *where.at(start), "a value that opens a PEM block must be in double quotes to span lines"
            )
        yield Entry(binding.key, value, line, column)


def _first_bad_key_char(key: str) -> int | None:
    """Index of the first character that breaks the ``.env`` key syntax (None when it holds)."""
    if _KEY.fullmatch(key):
        return None
    if not key:
        return 0
    match = _KEY.match(key)
    return match.end() if match else 0


def parse_dotenv(text: str, *, name: str = "<.env>") -> dict[str, str]:
    """The key -> value pairs of a ``.env`` document (a later duplicate wins), read by ``dotenv_entries``."""
    return {entry.key: entry.value for entry in dotenv_entries(text, name=name)}


def format_dotenv(values: Mapping[str, str]) -> str:
    """A ``.env`` document of ``values``, quoted where needed, that ``parse_dotenv`` reads back exactly."""
    lines = []
    for key, value in values.items():
        if not _KEY.fullmatch(key):
            raise DotenvError(f"key {key!r} cannot be written to a .env file; use --format json")
        lines.append(f"{key}={env_value(value)}")
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
        entries = dotenv_entries(text, name=name)
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
