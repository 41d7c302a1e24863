"""The confstage exception hierarchy.

::

    ConfstageError                    (base; also a ValueError for the typed getters)
    ├── KeyNotFoundError              (also a KeyError: key, stage, sources tried)
    ├── StageError                    (no stage resolvable, a malformed ARN, an illegal stage name)
    ├── KeyNameError                  (also a ValueError: a key name outside the rule, names.KEY_RULE)
    ├── SourceError                   (a backend failed: source, operation)
    │   └── DecryptError              (a value could not be decrypted: what, never the value)
    │   (``throttled`` is True when the service refused for rate)
    ├── ConfigurationError            (a bad source URL or setting)
    ├── ConversionError               (also a ValueError: a value did not parse as int/float/bool/JSON: key, type)
    ├── SettingsError                 (also a ValueError: every missing or invalid field of a settings class)
    └── FlagSchemaError               (also a ValueError: every problem of a feature-flag document, by path)

No message, log line or ``repr`` built here ever contains a configuration value.

Every error pickles and copies with its message and attributes (``ConfstageError.__reduce__``), so it crosses
a process pool: an error built from keyword attributes cannot be remade by calling its class with its message.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: the annotations below are strings, typing is not needed
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "ConfigurationError",
    "ConfstageError",
    "ConversionError",
    "DecryptError",
    "FlagSchemaError",
    "KeyNameError",
    "KeyNotFoundError",
    "SettingsError",
    "SourceError",
    "StageError",
]


class ConfstageError(Exception):
    """Base class of every error confstage raises."""

    def __reduce__(self) -> tuple[Any, ...]:
        # Exception's own reduce remakes the error as ``cls(*args)``, which calls ``__init__`` with the message
        # where it expects keyword attributes (``KeyNotFoundError(key, stage, sources)``). Remade without
        # ``__init__`` instead: the same args (so the same message), then the attributes from ``__dict__``.
        return _remake, (type(self), self.args), self.__dict__


def _remake(cls: type[ConfstageError], args: tuple[Any, ...]) -> ConfstageError:
    """An instance of ``cls`` with ``args`` and no ``__init__`` run (pickle then restores its ``__dict__``)."""
    return cls.__new__(cls, *args)


class KeyNotFoundError(ConfstageError, KeyError):
    """No source holds the key for the stage."""

    def __init__(self, key: str | Sequence[str], stage: str | None, sources: Sequence[str] = ()) -> None:
        self.keys = (key,) if isinstance(key, str) else tuple(key)
        self.key = self.keys[0] if self.keys else ""
        self.stage = stage
        self.sources = tuple(sources)
        tried = ", ".join(self.sources) or "no sources"
        what = f"key {self.key!r}" if len(self.keys) == 1 else f"keys {', '.join(map(repr, self.keys))}"
        super().__init__(f"{what} not found for stage {stage!r} (tried: {tried})")

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message; keep it readable.
        return str(self.args[0])


class StageError(ConfstageError):
    """No stage can be resolved, or an ARN is not a Lambda function ARN."""


class KeyNameError(ConfstageError, ValueError):
    """A key name breaks the rule (empty, control characters, '.'/'..' or empty segments)."""


class SourceError(ConfstageError):
    """A backend failed: names the source and the AWS operation, never a value."""

    def __init__(self, message: str, *, source: str = "", operation: str = "", throttled: bool = False) -> None:
        self.source = source
        self.operation = operation
        self.throttled = throttled  # the service refused for rate: counted apart, backed off from
        parts = [message]
        if source:
            parts.append(f"source={source}")
        if operation:
            parts.append(f"operation={operation}")
        super().__init__(" | ".join(parts) if len(parts) > 1 else message)


class DecryptError(SourceError):
    """A value could not be decrypted; names what it was (variable, key), never the value."""


class ConfigurationError(ConfstageError):
    """A source URL or a setting is malformed."""


class ConversionError(ConfstageError, ValueError):
    """A value did not parse as the requested type; names the key, never the value."""

    def __init__(self, key: str, expected: str) -> None:
        self.key = key
        self.expected = expected
        super().__init__(f"value of key {key!r} is not a valid {expected}")


class SettingsError(ConfstageError, ValueError):
    """Fields of a settings class that are missing or do not convert; names each field and type, never a value."""

    def __init__(self, settings: str, problems: Sequence[str]) -> None:
        self.settings = settings
        self.problems = tuple(problems)
        count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        super().__init__(f"settings {settings}: {count}: " + "; ".join(self.problems))


class FlagSchemaError(ConfstageError, ValueError):
    """A feature-flag document breaks the schema: every problem as a path and what is wrong, never a value."""

    def __init__(self, problems: Sequence[str], *, key: str | None = None) -> None:
        self.problems = tuple(problems)
        self.key = key
        count = f"{len(self.problems)} problem{'s' if len(self.problems) != 1 else ''}"
        where = f" at key {key!r}" if key else ""
        super().__init__(f"feature flags{where}: {count}: " + "; ".join(self.problems))

    def __reduce__(self) -> tuple[Any, tuple[tuple[str, ...], str | None]]:
        # Pickle's default would call __init__(message) and lose the problems and the key.
        return (_flag_schema_error, (self.problems, self.key))


def _flag_schema_error(problems: Sequence[str], key: str | None) -> FlagSchemaError:
    return FlagSchemaError(problems, key=key)
