"""Typed settings: a dataclass or a pydantic v2 model filled from the sources, and the ``Secret`` field type.

``Config.settings(cls)`` (and ``confstage.settings(cls)``) reads every field's key in one resolution, converts
each value as the typed getters do, and reports every missing or invalid field in one ``SettingsError``
naming the field, its key and the type expected, never a value. The object is kept in the snapshot it was
built from, so within an invocation it is the same object and costs a dict lookup; a refresh between
invocations builds a new one.

A field's key is its name, or ``field(metadata={"key": ...})`` on a dataclass, or the field's alias on a
pydantic model. Dataclass fields may be ``str``, ``Secret``, ``int``, ``float``, ``bool``, ``dict``/``list``
(JSON, parametrised or not), an ``Enum`` (by value), a ``Literal`` of strings, or ``X | None`` of these; a
field that is absent takes its default, ``None`` for ``X | None``, else it is reported missing. Pydantic
models are validated by pydantic itself (``SecretStr`` works as pydantic intends); pydantic is imported only
when a pydantic model is passed.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import types
import typing
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, NamedTuple

from .convert import BOOL_WORDS, parse_bool
from .errors import ConfigurationError, SettingsError
from .names import validate_key

__all__ = ["SETTINGS", "Plan", "Secret", "build", "plan"]

SETTINGS = "confstage.settings"  # the first element of the snapshot key under which a built object is kept
_MASK = "********"


class Secret(str):
    """A ``str`` whose ``repr`` and ``str`` are masked; ``reveal()`` (or ``get_secret_value()``) gives the value.

    It stays a ``str`` for everything that reads its characters (a database driver, ``+``, ``encode``), so it
    can be passed where a password is expected; only printing it (``print``, f-strings, ``%s``, ``logging``)
    shows the mask. ``json.dumps`` and ``str.join`` read the characters: do not serialise a Secret.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return f"Secret('{_MASK}')"

    def __str__(self) -> str:
        return _MASK

    def __format__(self, spec: str) -> str:
        return format(_MASK, spec)

    def reveal(self) -> str:
        """The value, as a plain ``str``."""
        return str.__getitem__(self, slice(None))

    get_secret_value = reveal  # pydantic's SecretStr spelling

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """So that a pydantic model may declare ``Secret`` fields (pydantic is imported only then)."""
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(cls, core_schema.str_schema())


class Field(NamedTuple):
    """One field of a dataclass: where its value comes from and how it is converted."""

    name: str
    key: str
    expected: str  # the type, as the error message names it
    convert: Callable[[str], Any]  # raises ValueError (or TypeError) when the value does not fit
    default: Callable[[], Any] | None  # None: required


class Plan(NamedTuple):
    """How to build one class: its fields (dataclass) or its keys by field (pydantic)."""

    cls: type
    keys: tuple[str, ...]
    fields: tuple[Field, ...]  # dataclasses
    pydantic_keys: Mapping[str, str]  # pydantic: field name -> key


_plans: dict[type, Plan] = {}


def plan(cls: type) -> Plan:
    """What ``build`` needs to know about ``cls``, worked out once per class."""
    found = _plans.get(cls)
    if found is None:
        found = _plans[cls] = _make_plan(cls)
    return found


def build(how: Plan, values: Mapping[str, str]) -> Any:
    """An instance of ``how.cls`` from ``values`` (key -> raw string, absent keys left out)."""
    if how.pydantic_keys:
        return _build_pydantic(how, values)
    kwargs: dict[str, Any] = {}
    problems: list[str] = []
    for field in how.fields:
        raw = values.get(field.key)
        if raw is None:
            if field.default is None:
                problems.append(f"{_where(field.name, field.key)} is missing (expected {field.expected})")
            else:
                kwargs[field.name] = field.default()
            continue
        try:
            kwargs[field.name] = field.convert(raw)
        except (ValueError, TypeError, RecursionError):
            problems.append(f"{_where(field.name, field.key)} is not a valid {field.expected}")
    if problems:
        raise SettingsError(how.cls.__name__, problems)
    return how.cls(**kwargs)


def _where(name: str, key: str) -> str:
    return f"field {name!r}" if name == key else f"field {name!r} (key {key!r})"


# -- dataclasses --------------------------------------------------------------------------------


def _make_plan(cls: type) -> Plan:
    if not isinstance(cls, type):
        raise TypeError(f"settings() takes a class (a dataclass or a pydantic model), got {type(cls).__name__}")
    if _is_pydantic(cls):
        return _pydantic_plan(cls)
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"settings() takes a dataclass or a pydantic v2 model; {cls.__name__} is neither")
    hints = typing.get_type_hints(cls, include_extras=False)
    fields = []
    for item in dataclasses.fields(cls):
        if not item.init:
            continue
        key = str(item.metadata.get("key", item.name))
        try:
            validate_key(key)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{cls.__name__}.{item.name}: {exc}") from exc
        expected, convert, optional = _converter(hints[item.name], f"{cls.__name__}.{item.name}")
        default: Callable[[], Any] | None = None
        if item.default is not dataclasses.MISSING:
            value = item.default
            default = lambda value=value: value  # noqa: E731 - one small closure per field
        elif item.default_factory is not dataclasses.MISSING:
            default = item.default_factory
        elif optional:
            default = _none
        fields.append(Field(item.name, key, expected, convert, default))
    return Plan(cls, tuple(f.key for f in fields), tuple(fields), {})


def _none() -> None:
    return None


def _converter(annotation: Any, where: str) -> tuple[str, Callable[[str], Any], bool]:
    """(name of the type, conversion from the raw string, whether None is allowed)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(members) != 1 or len(typing.get_args(annotation)) != 2:
            raise ConfigurationError(f"{where}: only X | None unions are supported, got {annotation!r}")
        expected, convert, _ = _converter(members[0], where)
        return expected, convert, True
    if annotation is str:
        return "str", str, False
    if annotation is Secret:
        return "str (secret)", Secret, False
    if annotation is int:
        return "int", int, False
    if annotation is float:
        return "float", float, False
    if annotation is bool:
        return f"bool ({BOOL_WORDS})", parse_bool, False
    if annotation in (dict, list) or origin in (dict, list):
        container = annotation if origin is None else origin
        return f"JSON {'object' if container is dict else 'array'}", _json_of(container), False
    if origin is typing.Literal:
        allowed = typing.get_args(annotation)
        if not all(isinstance(a, str) for a in allowed):
            raise ConfigurationError(f"{where}: only Literal[...] of strings is supported")
        return f"one of {', '.join(allowed)}", _literal(frozenset(allowed)), False
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return f"{annotation.__name__} ({', '.join(str(m.value) for m in annotation)})", _enum(annotation), False
    raise ConfigurationError(
        f"{where}: type {annotation!r} is not supported "
        "(str, Secret, int, float, bool, dict, list, an Enum, a Literal of strings, or X | None of these)"
    )


def _json_of(container: type) -> Callable[[str], Any]:
    def convert(raw: str) -> Any:
        value = json.loads(raw)
        if not isinstance(value, container):
            raise ValueError("wrong JSON type")
        return value

    return convert


def _literal(allowed: frozenset[str]) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        if raw not in allowed:
            raise ValueError("not an allowed value")
        return raw

    return convert


def _enum(cls: type[Enum]) -> Callable[[str], Enum]:
    def convert(raw: str) -> Enum:
        for member in cls:
            if str(member.value) == raw:
                return member
        raise ValueError("not a member")

    return convert


# -- pydantic -----------------------------------------------------------------------------------


def _is_pydantic(cls: type) -> bool:
    """Whether ``cls`` is a pydantic v2 model, without importing pydantic (it is loaded already if so)."""
    if "pydantic" not in sys.modules:
        return False
    from pydantic import BaseModel

    return issubclass(cls, BaseModel)


def _pydantic_plan(cls: type) -> Plan:
    keys: dict[str, str] = {}
    for name, info in cls.model_fields.items():  # type: ignore[attr-defined]
        key = info.alias if isinstance(info.alias, str) else name
        try:
            validate_key(key)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"{cls.__name__}.{name}: {exc}") from exc
        keys[name] = key
    return Plan(cls, tuple(keys.values()), (), keys)


def _build_pydantic(how: Plan, values: Mapping[str, str]) -> Any:
    from pydantic import ValidationError

    data = {key: values[key] for key in how.pydantic_keys.values() if key in values}
    try:
        return how.cls.model_validate(data)  # type: ignore[attr-defined]
    except ValidationError as exc:
        by_key = {key: name for name, key in how.pydantic_keys.items()}
        problems = []
        # include_input=False: pydantic's own messages may quote the value; ours name the field and the error type.
        for error in exc.errors(include_input=False, include_url=False, include_context=False):
            loc = error.get("loc") or ("?",)
            key = str(loc[0])
            name = by_key.get(key, key)
            annotation = how.cls.model_fields[name].annotation if name in how.cls.model_fields else None  # type: ignore[attr-defined]
            expected = getattr(annotation, "__name__", None) or repr(annotation)
            if error.get("type") == "missing":
                problems.append(f"{_where(name, key)} is missing (expected {expected})")
            else:
                problems.append(f"{_where(name, key)} is not a valid {expected} ({error.get('type')})")
        raise SettingsError(how.cls.__name__, problems) from None  # the ValidationError may quote values
