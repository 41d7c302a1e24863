"""``file://PATH``: a local file per stage — a JSON object, a TOML table or a ``.env`` file.

For local development and for configuration baked into the deployment package. ``PATH`` may hold
``{stage}`` (the stage lowercased, as ``env://``'s template) or ``{STAGE}`` (as it is); a relative path is
relative to the working directory when the source is built (``/var/task``, the package root, in Lambda).
The format comes from the file name (``.json``, ``.toml``, ``.env``/``*.env``/``.env.*``) or ``?format=``.

::

    fetch(stage, keys)   stat the opened file: unchanged (inode, mtime_ns, size) → the last parse, else parse
      └── parse(path, data, fmt)   → {key: str}; a non-string JSON/TOML value as JSON text

A missing file is "not found" (an empty stage: the next source answers); one that cannot be read or does not
parse is a ``SourceError`` naming the file and the line, never anything the file holds. TOML reads with
``tomllib`` (``tomli`` on Python 3.10), ``.env`` with python-dotenv's parser; both are imported on first use.
"""

from __future__ import annotations

import datetime
import json
import os
import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from confstage.errors import ConfigurationError, SourceError

from .base import Fetched, SourceURL

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["FORMATS", "FileSource", "format_of", "parse", "stage_path"]

FORMATS = ("json", "toml", "env")
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_KINDS = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}
_TOML_AT = re.compile(r"\(at line (\d+), column (\d+)\)")


def format_of(path: str) -> str | None:
    """The format a file name says (``json``, ``toml``, ``env``), or None."""
    name = os.path.basename(path).lower()
    if name.endswith(".json"):
        return "json"
    if name.endswith(".toml"):
        return "toml"
    if name == ".env" or name.endswith(".env") or name.startswith(".env."):
        return "env"
    return None


def stage_path(template: str, stage: str) -> str:
    """The file of ``stage``: ``{stage}`` lowercased, ``{STAGE}`` as it is (a legal stage has no ``/`` or ``..``)."""
    return template.replace("{STAGE}", stage).replace("{stage}", stage.lower())


class FileSource:
    """A JSON, TOML or ``.env`` file per stage, parsed again only when it changes on disk."""

    whole_stage = True
    persist = False  # the file is as near as the /tmp cache would be
    inline = True  # a stat and, when the file changed, a parse: done in the caller's thread

    def __init__(self, path: str, *, fmt: str | None = None, url: str | None = None) -> None:
        self.template = os.path.abspath(path)
        self.url = url or f"file://{path}"
        fmt = fmt or format_of(path)
        if fmt not in FORMATS:
            raise ConfigurationError(
                f"bad source URL {self.url!r}: cannot tell the format from the file name; "
                "name it *.json, *.toml or *.env, or add ?format=json|toml|env"
            )
        self.format = fmt
        # A stat per fetch is the freshness check: an edit is seen on the next read (?ttl= to read less often).
        self.ttl: float | None = 0.0
        self._parsed: dict[str, tuple[tuple[int, int, int], Fetched]] = {}  # path -> (inode, mtime_ns, size), values

    @classmethod
    def from_url(cls, url: SourceURL, transport: Transport | None = None) -> FileSource:
        """A ``file://PATH`` source (no AWS call: ``transport`` is not used)."""
        path = url.netloc + url.path
        if not path:
            raise url.error("file:// needs a path, e.g. file://config/{stage}.json")
        fmt = url.take("format")
        if fmt is not None and fmt not in FORMATS:
            raise url.error(f"parameter 'format' must be one of {', '.join(FORMATS)}, got {fmt!r}")
        source = cls(path, fmt=fmt, url=url.url)
        parser_for(source.format, url.url)  # a missing parser is a configuration error now, not at the first read
        return source

    def path_for(self, stage: str) -> str:
        """The file that holds ``stage``."""
        return stage_path(self.template, stage)

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        path = self.path_for(stage)
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except (FileNotFoundError, NotADirectoryError):
            return Fetched({})
        except OSError as exc:
            raise SourceError(f"cannot open {path}: {exc.strerror}", source=self.url, operation="open") from exc
        try:
            info = os.fstat(fd)
            signature = (info.st_ino, info.st_mtime_ns, info.st_size)
            known = self._parsed.get(path)
            if known is not None and known[0] == signature:
                return known[1]
            with os.fdopen(fd, "rb", closefd=False) as stream:
                data = stream.read()
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror}", source=self.url, operation="read") from exc
        finally:
            os.close(fd)
        fetched = Fetched(parse(path, data, self.format, source=self.url))
        self._parsed[path] = (signature, fetched)
        return fetched

    def __repr__(self) -> str:
        return f"FileSource({self.url!r})"


def parse(path: str, data: bytes, fmt: str, *, source: str = "") -> dict[str, str]:
    """The values of a file's bytes: ``{key: str}``; a ``SourceError`` names ``path`` and the line, never content."""
    text = decode(path, data, source=source)
    if fmt == "env":
        return _parse_env(path, text, source)
    document = parse_document(path, text, fmt, source=source)
    return {key: as_text(value) for key, value in document.items()}


def decode(path: str, data: bytes, *, source: str = "") -> str:
    """A file's bytes as text (UTF-8, a byte-order mark dropped); a ``SourceError`` names the line that is not."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        problem = f"{path}, line {line}: not UTF-8 text"
    raise SourceError(problem, source=source, operation="parse")


def parse_document(path: str, text: str, fmt: str, *, source: str = "") -> dict[str, Any]:
    """A JSON object or a TOML table as a dict, its values as parsed.

    Raised without cause or context: a ``JSONDecodeError`` holds the whole text, and a TOML error may quote a character.
    """
    problem = ""
    document: Any = None
    if fmt == "json":
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            problem = f"{path}, line {exc.lineno}, column {exc.colno}: not valid JSON"
        except RecursionError:
            problem = f"{path}: not valid JSON (nested too deeply)"
    else:
        loads = parser_for("toml", source)
        try:
            document = loads(text)
        except ValueError as exc:  # tomllib.TOMLDecodeError
            at = _TOML_AT.search(str(exc))
            where = f", line {at[1]}, column {at[2]}" if at else ""
            problem = f"{path}{where}: not valid TOML"
    if problem:
        raise SourceError(problem, source=source, operation="parse")
    if not isinstance(document, dict):
        raise SourceError(
            f"{path}: a JSON file must hold an object of keys, not a JSON {_KINDS.get(type(document), 'value')}",
            source=source,
            operation="parse",
        )
    return document


def as_text(value: Any) -> str:
    """A parsed value as confstage serves it: a string as it is, a TOML date as ISO 8601, anything else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_iso)


def _iso(value: Any) -> str:
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _parse_env(path: str, text: str, source: str) -> dict[str, str]:
    parse_stream = parser_for("env", source)
    import io

    values: dict[str, str] = {}
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            raise SourceError(
                f"{path}, line {binding.original.line}: not a KEY=VALUE line", source=source, operation="parse"
            )
        if binding.key is not None and binding.value is not None:  # a bare KEY (no '=') has no value
            values[binding.key] = binding.value
    return values


def parser_for(fmt: str, source: str) -> Any:
    """The parser of a format: ``tomllib.loads`` (or ``tomli``'s), python-dotenv's ``parse_stream``, ``json.loads``.

    A missing optional dependency is a ``ConfigurationError`` saying what to install.
    """
    if fmt == "toml":
        import importlib

        for module in ("tomllib", "tomli"):  # tomli: the same parser, for Python 3.10
            try:
                return importlib.import_module(module).loads
            except ImportError:
                pass
        raise ConfigurationError(f"{source}: reading TOML on Python 3.10 needs tomli (pip install 'confstage[file]')")
    if fmt == "env":
        try:
            from dotenv.parser import parse_stream
        except ImportError:
            raise ConfigurationError(
                f"{source}: reading .env files needs python-dotenv (pip install 'confstage[file]')"
            ) from None
        return parse_stream
    return json.loads
