"""The conversions of the typed getters and typed settings, in one place (cheap to import: no json here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from .errors import ConversionError

__all__ = ["BOOL_WORDS", "parse", "parse_bool", "typed_get"]

T = TypeVar("T")

_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
BOOL_WORDS = "true/false, 1/0, yes/no, on/off"


def parse_bool(raw: str) -> bool:
    """``true/false, 1/0, yes/no, on/off`` in any case, surrounding blanks ignored; else ``ValueError``."""
    word = raw.strip().lower()
    if word in _TRUE:
        return True
    if word in _FALSE:
        return False
    raise ValueError("not a bool word")


def parse(key: str, raw: str, convert: Callable[[str], T], expected: str) -> T:
    """Convert a value; on failure raise ConversionError outside the ``except`` block, so that neither
    ``__cause__`` nor ``__context__`` carries the converter's message (which may quote the value)."""
    try:
        return convert(raw)
    except (ValueError, RecursionError):  # RecursionError: JSON nested deeper than the interpreter allows
        pass
    raise ConversionError(key, expected)


def typed_get(
    get: Callable[..., str], key: str, default: object, kwargs: dict[str, Any], convert: Callable[[str], Any], what: str
) -> Any:
    """A typed getter: ``get`` then ``convert``; the default (when given and the key is absent) is returned as it is."""
    from ._state import Missing

    if isinstance(default, Missing):
        return parse(key, get(key, **kwargs), convert, what)
    raw = get(key, _NONE, **kwargs)
    return default if raw is _NONE else parse(key, raw, convert, what)


_NONE: Any = object()  # "not found" from get() inside the typed getters
