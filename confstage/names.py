"""The rules for stage names and key names, checked once per distinct name (slow path only).

A stage follows Lambda's alias rule, so every alias is a legal stage and nothing else is: no
``/``, ``..``, spaces or empty names that would reach outside a stage's folder, path or items.
A key may be nested (``db/url``) but never escapes its stage (no ``.``/``..`` or empty segments).
"""

from __future__ import annotations

import re

from .errors import KeyNameError, StageError

__all__ = ["KEY_RULE", "STAGE_RULE", "validate_key", "validate_stage"]

STAGE_RULE = "letters, digits, '-' and '_', 1-128 characters, not all digits (Lambda's alias rule)"
KEY_RULE = (
    "1-1024 characters, no control characters, not starting or ending with '/', "
    "and no empty, '.' or '..' segments between '/'"
)
_STAGE_NAME = re.compile(r"[A-Za-z0-9_-]{1,128}")
_BAD_KEY = re.compile(r"[\x00-\x1f\x7f]|^/|/$|//|(?:^|/)\.{1,2}(?:/|$)")
_MAX_KEY = 1024
_CHECKED_LIMIT = 4096  # names come from code and aliases: a handful; the bound stops a flood of distinct names

_valid_stages: set[str] = set()
_valid_keys: set[str] = set()


def validate_stage(stage: object) -> str:
    """Return ``stage`` if it is a legal stage name, else raise ``StageError`` naming the rule."""
    if not isinstance(stage, str):
        raise StageError(f"a stage must be a string, got {type(stage).__name__}")
    if stage in _valid_stages:
        return stage
    if _STAGE_NAME.fullmatch(stage) is None or stage.isdigit():
        raise StageError(f"{_shown(stage)} is not a valid stage name: {STAGE_RULE}")
    _remember(_valid_stages, stage)
    return stage


def validate_key(key: object) -> str:
    """Return ``key`` if it is a legal key name, else raise ``TypeError`` (not a str) or ``KeyNameError``."""
    if not isinstance(key, str):
        raise TypeError(f"a key must be a string, got {type(key).__name__}")
    if key in _valid_keys:
        return key
    if not key or len(key) > _MAX_KEY or _BAD_KEY.search(key):
        raise KeyNameError(f"{_shown(key)} is not a valid key name: {KEY_RULE}")
    _remember(_valid_keys, key)
    return key


def _remember(seen: set[str], name: str) -> None:
    if len(seen) >= _CHECKED_LIMIT:
        seen.clear()
    seen.add(name)


def _shown(name: str) -> str:
    """A name as it may appear in an error: repr'd (control characters visible), long ones cut."""
    return repr(name) if len(name) <= 64 else f"{name[:60]!r}… ({len(name)} characters)"
