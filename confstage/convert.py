"""The conversions of the typed getters and typed settings, in one place (cheap to import: no json here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from .errors import ConversionError

__all__ = ["BOOL_WORDS", "parse", "parse_bool"]

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
