"""The admin side of ``file://PATH``: ``put``, ``delete``, ``list`` and ``import`` rewrite the stage's file.

::

    FileStore._edit(stage, values, remove)   read and parse the file (a malformed one: nothing written)
      ├── json: re-dumped with an indent of 2 (comments are not JSON)
      ├── toml: tomlkit, so comments, order and layout stay (refused with a clear message without tomlkit)
      ├── env:  python-dotenv's parser; each line not written is kept as it was, comments included
      └── _replace(path, text)   a temporary file beside it, fsync, the old mode, ``os.replace``: never half written

A value that replaces a non-string JSON/TOML value keeps its type when it parses as one (``port = 5432`` stays a
number). The file keeps no versions (``history`` is empty, ``rollback`` refused) and never holds a secret in
plaintext: ``--secure`` is refused.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import tempfile
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from confstage.errors import ConfigurationError, SourceError
from confstage.sources.file import FileSource, decode, parse_document, parser_for

from .base import Store, StoredValue, Version, WriteLog

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["PEM_OPENING", "FileStore", "env_value"]

_BARE = re.compile(r"[A-Za-z0-9_.,:/@+=\-]+")  # a .env value written without quotes
PEM_OPENING = "-----BEGIN"  # unquoted, the CLI's reader takes it for a PEM block cut short (cli.dotenv)
_ENV_KEY = re.compile(r"[^=#\s'\"]+")  # what python-dotenv reads as an unquoted key
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}


class FileStore(Store):
    """Writes a ``file://`` source's files in their own format; no versions, no secrets."""

    def __init__(self, reader: FileSource, transport: Transport | None = None) -> None:
        # No AWS call is ever made: the base class's caller and transport are not built.
        self.reader = reader
        self.url = reader.url

    def limit(self, stage: str, key: str, value: str) -> str | None:
        if self.reader.format == "env" and not _ENV_KEY.fullmatch(key):
            return "a .env key has no whitespace, '=', '#' or quotes"
        return None

    def _put(self, stage: str, key: str, value: str, kms_key: str | None, expect_version: str | None) -> str | None:
        _refuse_secure(kms_key, self.url)
        if expect_version not in (None, "0"):
            raise ConfigurationError(f"{self.url} keeps no versions: only --expect-version 0 (must not exist) applies")
        self._edit(stage, {key: value}, (), absent=(key,) if expect_version == "0" else ())
        return None

    def _prepare(self, stage: str, values: Mapping[str, str], kms_key: str | None, encrypted: frozenset[str]) -> Any:
        _refuse_secure(kms_key, self.url)
        return values

    def _put_many(self, stage: str, prepared: Any, log: WriteLog) -> None:
        self._edit(stage, prepared, ())
        log.done(list(prepared))

    def delete(self, stage: str, key: str) -> bool:
        return key in self._edit(stage, {}, (key,))

    def items(self, stage: str, *, decrypt: bool = False) -> dict[str, StoredValue]:
        return {key: StoredValue(value) for key, value in self.reader.fetch(stage, ()).items()}

    def history(self, stage: str, key: str) -> list[Version]:
        return []  # a file keeps no versions (the CLI says the key has none)

    def rollback(self, stage: str, key: str, version: str) -> str | None:
        raise ConfigurationError(f"{self.url} keeps no versions to roll back to (keep the file in version control)")

    def _edit(
        self, stage: str, values: Mapping[str, str], remove: Collection[str], absent: Collection[str] = ()
    ) -> set[str]:
        """Set ``values`` and remove ``remove`` in the stage's file; return the keys that were there before."""
        path = os.path.realpath(self.reader.path_for(stage))  # a symlink stays a symlink: its target is rewritten
        try:
            with open(path, "rb") as stream:
                data = stream.read()
                mode: int | None = os.fstat(stream.fileno()).st_mode & 0o7777
        except FileNotFoundError:
            data, mode = b"", None
        except OSError as exc:
            raise SourceError(f"cannot read {path}: {exc.strerror}", source=self.url, operation="read") from exc
        text = decode(path, data, source=self.url)
        fmt = self.reader.format
        if fmt == "env":
            new, before = _edit_env(path, text, values, remove, self.url)
        elif fmt == "toml":
            new, before = _edit_toml(path, text, values, remove, self.url)
        else:
            document = parse_document(path, text, "json", source=self.url) if text.strip() else {}
            before = set(document)
            for key in remove:
                document.pop(key, None)
            for key, value in values.items():
                document[key] = _like(document.get(key), value)
            new = json.dumps(document, indent=2, ensure_ascii=False) + "\n"
        taken = before.intersection(absent)
        if taken:
            raise ConfigurationError(
                f"{self.url}: stage {stage} already has {', '.join(sorted(taken))}; nothing written"
            )
        if new != text:
            _replace(path, new, mode)
        return before


def _refuse_secure(kms_key: str | None, url: str) -> None:
    if kms_key is not None:
        raise ConfigurationError(f"{url} holds plaintext: a secure value is never written to a local file")


def _like(old: Any, text: str) -> Any:
    """``text`` as the type of the value it replaces (a number stays a number), else the string itself."""
    if old is None or isinstance(old, str):
        return text
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    same = type(parsed) is type(old) or (type(old) in (int, float) and type(parsed) in (int, float))
    return parsed if same else text


def _edit_env(
    path: str, text: str, values: Mapping[str, str], remove: Collection[str], url: str
) -> tuple[str, set[str]]:
    """The ``.env`` text with ``values`` set (each on the line of its last binding) and ``remove`` gone."""
    parse_stream = parser_for("env", url)
    bindings = list(parse_stream(io.StringIO(text)))
    last: dict[str, int] = {}
    for index, binding in enumerate(bindings):
        if binding.error:
            raise SourceError(
                f"{path}, line {binding.original.line}: not a KEY=VALUE line", source=url, operation="parse"
            )
        if binding.key is not None:
            last[binding.key] = index
    lines: list[str] = []
    for index, binding in enumerate(bindings):
        key = binding.key
        if key is None or (key not in values and key not in remove):
            lines.append(binding.original.string)
            continue
        original = binding.original.string
        body = original.lstrip()
        lines.append(original[: len(original) - len(body)])  # python-dotenv gives a binding the blank lines before it
        if key in values and last[key] == index:
            export = "export " if body.startswith("export") else ""
            ending = "\n" if original.endswith(("\n", "\r")) else ""
            lines.append(f"{export}{key}={env_value(values[key])}{ending}")
    kept = "".join(lines)
    added = "".join(f"{key}={env_value(value)}\n" for key, value in values.items() if key not in last)
    if added and kept and not kept.endswith(("\n", "\r")):
        kept += "\n"
    return kept + added, set(last)


def env_value(value: str) -> str:
    """A value as python-dotenv (and so the CLI's reader) reads it back unchanged: bare when safe, else
    double-quoted and escaped. The one .env value writer: ``put`` on a ``file://`` .env, and ``export``."""
    if _BARE.fullmatch(value) and not value.startswith(PEM_OPENING):
        return value
    return '"' + "".join(_ESCAPES.get(char, char) for char in value) + '"'


def _edit_toml(
    path: str, text: str, values: Mapping[str, str], remove: Collection[str], url: str
) -> tuple[str, set[str]]:
    """The TOML text with ``values`` set and ``remove`` gone, comments and layout kept (tomlkit)."""
    parse_document(path, text, "toml", source=url)  # the reader's errors: file and line, never content
    try:
        import tomlkit
    except ImportError:
        raise ConfigurationError(
            f"{url}: writing TOML needs tomlkit, which keeps the file's comments (pip install 'confstage[file]')"
        ) from None
    document = tomlkit.parse(text)
    before = set(document)
    for key in remove:
        document.pop(key, None)
    for key, value in values.items():
        old: Any = document.get(key)
        document[key] = _like(old.unwrap() if hasattr(old, "unwrap") else old, value)
    return tomlkit.dumps(document), before


def _replace(path: str, text: str, mode: int | None) -> None:
    """Write ``path`` whole or not at all: a temporary file beside it, flushed, given the old mode, then renamed."""
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    if mode is None:  # a new file: what open() would have made under the umask
        umask = os.umask(0)
        os.umask(umask)
        mode = 0o666 & ~umask
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
