"""The manifest: the keys a function needs, and the check that every stage has them, valid.

Read by ``confstage check`` (the CLI, a deploy pipeline's step) and ``confstage.prefetch(manifest=...)`` (a
function's init). A manifest comes from a file (TOML or JSON) or from a settings class (the dataclasses and
pydantic models ``confstage.settings`` reads)::

    stages = ["DEV", "PRD"]           # optional: the stages checked when none is named

    [[keys]]
    key = "db_url"
    type = "str"                      # str (default), int, float, bool, json
    pattern = "^postgres://"          # a regular expression the value must contain (re.search)

    [[keys]]
    key = "limits"
    type = "json"
    schema = {type = "object", required = ["rps"]}   # a JSON Schema (needs jsonschema)
    stages = ["PRD"]                  # checked in these stages only
    secret = true                     # documentation only: no value is ever shown, secret or not
    required = false                  # absent is fine; present must be valid

::

    load(thing)                     a path, "module:Class", a class or a Manifest → Manifest (ManifestError: usage)
    check(config, manifest, stages) → [Problem(stage, key, problem, source)]: Config.locate, one fetch per
                                      stage and source whatever the number of keys
    require(config, manifest, stage) → raise CheckFailed naming every problem (prefetch)

A problem names the stage, the key, what is wrong and the source, never a value: a pattern that does not match
is named by the pattern, a schema by the keyword and where in the schema it failed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from .convert import BOOL_WORDS, parse_bool
from .errors import ConfigurationError, ConfstageError, SettingsError
from .names import key_refusal, validate_stage

if TYPE_CHECKING:
    from .client import Config

__all__ = ["TYPES", "CheckFailed", "Entry", "Manifest", "ManifestError", "Problem", "check", "load", "require"]

# type name in a manifest -> (the type as problems name it, the conversion the typed getters use)
TYPES: dict[str, tuple[str, Callable[[str], Any]]] = {
    "str": ("str", str),
    "int": ("int", int),
    "float": ("float", float),
    "bool": (f"bool ({BOOL_WORDS})", parse_bool),
    "json": ("JSON document", json.loads),
}
_ENTRY_FIELDS = frozenset({"key", "type", "secret", "required", "stages", "pattern", "schema"})


class ManifestError(ConfigurationError):
    """A manifest that cannot be used: unreadable, an unknown type, a malformed pattern or schema; names the entry."""


class CheckFailed(SettingsError):
    """Keys a manifest requires that are missing or invalid (``prefetch(manifest=...)``); ``records`` has them all."""

    def __init__(self, origin: str, records: Sequence[Problem]) -> None:
        self.records = tuple(records)
        super().__init__(origin, [f"stage {p.stage}: {p.key or '(source)'} {p.problem}" for p in self.records])


class Entry(NamedTuple):
    """One key a manifest requires, and what its value must be."""

    key: str
    expected: str  # the type, as problems name it
    convert: Callable[[str], Any]  # raises ValueError (or TypeError) when the value is not of the type
    secret: bool = False
    required: bool = True
    stages: frozenset[str] | None = None  # None: every stage checked
    pattern: re.Pattern[str] | None = None
    schema: Any = None  # a jsonschema validator


class Manifest(NamedTuple):
    """The entries of a manifest, the stages it names (may be empty), and where it came from (for messages)."""

    entries: tuple[Entry, ...]
    stages: tuple[str, ...]
    origin: str


class Problem(NamedTuple):
    """One thing wrong: a record of ``confstage check --output json``. ``key`` is empty when a source failed."""

    stage: str
    key: str
    problem: str
    source: str


# -- loading --------------------------------------------------------------------------------------


def load(thing: Any) -> Manifest:
    """A manifest from a file path (``.toml``/``.json``), ``"module:Class"``, a settings class, or a Manifest."""
    if isinstance(thing, Manifest):
        return thing
    if isinstance(thing, type):
        return from_settings(thing)
    if isinstance(thing, (str, os.PathLike)):
        text = os.fspath(thing)
        if ":" in text and not os.path.exists(text) and not text.endswith((".toml", ".json")):
            return from_settings(import_class(text))
        return from_file(text)
    raise ManifestError(f"a manifest is a file path, 'module:Class' or a settings class, not {type(thing).__name__}")


def import_class(spec: str) -> type:
    """The class ``module:Class`` names (the working directory importable, as for a local module)."""
    import importlib
    import sys

    module_name, _, name = spec.partition(":")
    if not module_name or not name:
        raise ManifestError(f"--settings {spec!r}: expected MODULE:CLASS, e.g. app.settings:Settings")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ManifestError(f"--settings {spec!r}: cannot import {module_name} ({exc})") from exc
    found: Any = module
    for part in name.split("."):
        found = getattr(found, part, None)
        if found is None:
            raise ManifestError(f"--settings {spec!r}: {module_name} has no {name}")
    if not isinstance(found, type):
        raise ManifestError(f"--settings {spec!r}: {name} is not a class")
    return found


def from_settings(cls: type) -> Manifest:
    """The keys of a settings class: a field without a default is required; each checked as ``settings`` converts."""
    from .typed import plan

    try:
        how = plan(cls)
    except (TypeError, ConfigurationError) as exc:
        raise ManifestError(f"settings class {cls.__name__}: {exc}") from exc
    if how.pydantic_keys:
        return Manifest(tuple(_pydantic_entries(cls, how.pydantic_keys)), (), cls.__name__)
    entries = tuple(
        Entry(
            field.key, field.expected, field.convert, secret="secret" in field.expected, required=field.default is None
        )
        for field in how.fields
    )
    return Manifest(entries, (), cls.__name__)


def _pydantic_entries(cls: Any, keys: Mapping[str, str]) -> Iterable[Entry]:
    from pydantic import TypeAdapter

    for name, key in keys.items():
        info = cls.model_fields[name]
        adapter = TypeAdapter(info.annotation)
        expected = getattr(info.annotation, "__name__", None) or repr(info.annotation)
        secret = "Secret" in expected
        yield Entry(key, expected, adapter.validate_python, secret=secret, required=info.is_required())


def from_file(path: str) -> Manifest:
    """A manifest file: TOML or JSON, by its suffix."""
    from .sources.file import decode, parse_document

    fmt = "toml" if path.endswith(".toml") else "json" if path.endswith(".json") else None
    if fmt is None:
        raise ManifestError(f"manifest {path}: name it *.toml or *.json")
    try:
        with open(path, "rb") as stream:
            data = stream.read()
    except OSError as exc:
        raise ManifestError(f"manifest {path}: cannot read it ({exc.strerror})") from exc
    try:
        document = parse_document(path, decode(path, data), fmt)
    except ConfstageError as exc:
        raise ManifestError(f"manifest {exc}") from None
    return from_document(document, path)


def from_document(document: Mapping[str, Any], origin: str) -> Manifest:
    """A manifest from its parsed document: ``stages`` (optional) and ``keys``, a list of entries."""
    unknown = sorted(set(document) - {"stages", "keys"})
    if unknown:
        raise ManifestError(f"manifest {origin}: unknown field(s) {', '.join(unknown)}; expected stages and keys")
    stages = _stages(document.get("stages", []), f"manifest {origin}: stages")
    raw = document.get("keys")
    if not isinstance(raw, list) or not raw:
        raise ManifestError(f"manifest {origin}: 'keys' must be a non-empty list of entries ([[keys]] in TOML)")
    entries: list[Entry] = []
    seen: set[str] = set()
    for number, item in enumerate(raw, 1):
        entry = _entry(item, f"manifest {origin}: entry {number}")
        if entry.key in seen:
            raise ManifestError(f"manifest {origin}: entry {number}: key {entry.key!r} is listed twice")
        seen.add(entry.key)
        entries.append(entry)
    return Manifest(tuple(entries), tuple(stages), origin)


def _entry(item: Any, where: str) -> Entry:
    if not isinstance(item, dict):
        raise ManifestError(f"{where}: expected a table of key, type, ...")
    key = item.get("key")
    if not isinstance(key, str):
        raise ManifestError(f"{where}: 'key' is required and must be a string")
    refusal = key_refusal(key)
    if refusal:
        raise ManifestError(f"{where}: not a valid key: {refusal}")
    where = f"{where} (key {key!r})"
    unknown = sorted(set(item) - _ENTRY_FIELDS)
    if unknown:
        raise ManifestError(
            f"{where}: unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(_ENTRY_FIELDS))}"
        )
    kind = item.get("type", "str")
    if kind not in TYPES:
        raise ManifestError(f"{where}: unknown type {kind!r}; use {', '.join(TYPES)}")
    expected, convert = TYPES[kind]
    flags = {}
    for name, default in (("secret", False), ("required", True)):
        flags[name] = item.get(name, default)
        if not isinstance(flags[name], bool):
            raise ManifestError(f"{where}: {name!r} must be true or false")
    stages = frozenset(_stages(item["stages"], f"{where}: stages")) if "stages" in item else None
    pattern = None
    if "pattern" in item:
        if not isinstance(item["pattern"], str):
            raise ManifestError(f"{where}: 'pattern' must be a string (a regular expression)")
        try:
            pattern = re.compile(item["pattern"])
        except re.error as exc:
            raise ManifestError(f"{where}: malformed pattern: {exc}") from None
    schema = _validator(item["schema"], where) if "schema" in item else None
    return Entry(key, expected, convert, flags["secret"], flags["required"], stages, pattern, schema)


def _stages(raw: Any, where: str) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(stage, str) for stage in raw):
        raise ManifestError(f"{where} must be a list of stage names")
    for stage in raw:
        validate_stage(stage, what=where)
    return list(raw)


def _validator(schema: Any, where: str) -> Any:
    import importlib

    try:
        jsonschema: Any = importlib.import_module("jsonschema")  # no type stubs; optional
    except ImportError:
        raise ManifestError(f"{where}: a 'schema' needs jsonschema (pip install jsonschema)") from None
    if not isinstance(schema, (dict, bool)):
        raise ManifestError(f"{where}: 'schema' must be a JSON Schema (an object)")
    cls = jsonschema.validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except jsonschema.SchemaError as exc:
        at = "/".join(str(part) for part in exc.absolute_path) or "its root"
        raise ManifestError(f"{where}: malformed schema at {at}: {exc.message}") from None
    return cls(schema)


# -- checking -------------------------------------------------------------------------------------


def check(config: Config, manifest: Manifest, stages: Sequence[str]) -> list[Problem]:
    """Every problem of ``manifest`` in each of ``stages``, read through ``config``'s sources (never a value)."""
    problems: list[Problem] = []
    tried = " ".join(config.stats()["sources"])  # every source URL of the chain, in order
    for stage in stages:
        entries = [e for e in manifest.entries if e.stages is None or stage in e.stages]
        if not entries:
            continue
        try:
            located = config.locate([e.key for e in entries], stage=stage)
        except ConfstageError as exc:  # a source failed: its keys cannot be judged
            problems.append(Problem(stage, "", f"cannot be read: {exc}", getattr(exc, "source", "") or tried))
            continue
        for entry in entries:
            found = located.get(entry.key)
            if found is None:
                if entry.required:
                    problems.append(Problem(stage, entry.key, "is missing", tried))
                continue
            problem = judge(entry, found.value)
            if problem:
                problems.append(Problem(stage, entry.key, problem, found.source))
    return problems


def judge(entry: Entry, raw: str) -> str | None:
    """What is wrong with ``raw`` as the value of ``entry`` (never quoting it), or None."""
    try:
        value = entry.convert(raw)
    except (ValueError, TypeError, RecursionError):
        return f"is not a valid {entry.expected}"  # pydantic's ValidationError is a ValueError too
    if entry.pattern is not None and entry.pattern.search(raw) is None:
        return f"does not match the pattern {entry.pattern.pattern!r}"
    if entry.schema is not None:
        error = next(iter(entry.schema.iter_errors(value)), None)
        if error is not None:
            at = "/".join(str(part) for part in error.relative_schema_path)
            return f"does not match its schema ({error.validator!r} failed at schema path {at})"
    return None


def require(config: Config, manifest: Any, stage: str) -> None:
    """Raise ``CheckFailed`` naming every key of ``manifest`` missing or invalid in ``stage`` (``prefetch``)."""
    loaded = load(manifest)
    problems = check(config, loaded, [stage])
    if problems:
        raise CheckFailed(f"manifest {loaded.origin}", problems)
