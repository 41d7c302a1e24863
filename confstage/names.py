"""The rules for stage names and key names, checked once per distinct name (slow path only).

A stage follows Lambda's alias rule, so every alias is a legal stage and nothing else is: no
``/``, ``..``, spaces or empty names that would reach outside a stage's folder, path or items.
A key may be nested (``db/url``) but never escapes its stage (no ``.``/``..`` or empty segments).
"""

from __future__ import annotations

import re

from .errors import KeyNameError, StageError

__all__ = ["KEY_RULE", "STAGE_RULE", "key_refusal", "validate_key", "validate_stage"]

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


def validate_stage(stage: object, *, what: str = "") -> str:
    """Return ``stage`` if it is a legal stage name, else raise ``StageError`` naming the rule (and ``what``)."""
    if not isinstance(stage, str):
        raise StageError(f"a stage must be a string, got {type(stage).__name__}")
    if stage in _valid_stages:
        return stage
    if _STAGE_NAME.fullmatch(stage) is None or stage.isdigit():
        where = f"{what}: " if what else ""
        raise StageError(f"{where}{_shown(stage)} is not a valid stage name: {STAGE_RULE}")
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


def key_refusal(key: str) -> str | None:
    """Why ``key`` breaks the key rule, without quoting it (it may be a pasted value); None when it is legal."""
    try:
        validate_key(key)
    except KeyNameError:
        return f"{_broken_part(key)}; a key is {KEY_RULE}"
    return None


def _broken_part(key: str) -> str:
    """Which part of the key rule ``key`` breaks, by position only."""
    if not key:
        return "the key is empty"
    control = next((i for i, char in enumerate(key) if char < " " or char == "\x7f"), None)
    if control is not None:
        return f"the key has a control character at position {control + 1}"
    if len(key) > _MAX_KEY:
        return f"the key is {len(key)} characters long"
    if key.startswith("/") or key.endswith("/"):
        return "the key starts or ends with '/'"
    return "the key has an empty, '.' or '..' segment"


def _remember(seen: set[str], name: str) -> None:
    if len(seen) >= _CHECKED_LIMIT:
        seen.clear()
    seen.add(name)


def _shown(name: str) -> str:
    """A name as it may appear in an error: repr'd (control characters visible), long ones cut."""
    return repr(name) if len(name) <= 64 else f"{name[:60]!r}… ({len(name)} characters)"
