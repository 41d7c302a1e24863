"""Which stage an invocation runs in: ARN parsing and alias mapping, as pure functions.

The invocation in force (and so the bound stage) lives in ``_state``; the name rules in ``names``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from ._context import Invocation, running
from .errors import ConfigurationError, StageError
from .names import validate_stage

__all__ = ["FunctionArn", "parse_aliases", "parse_arn", "stage_from_arn", "stage_in_force", "stage_of"]

# arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]
_ARN = re.compile(
    r"arn:(?P<partition>aws[a-z0-9-]*):lambda:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"function:(?P<function>[A-Za-z0-9_-]{1,140})(?::(?P<qualifier>\$LATEST|[A-Za-z0-9_-]{1,128}))?"
)
_VERSION = re.compile(r"\d+")


class FunctionArn(NamedTuple):
    """The parts of a Lambda function ARN; ``qualifier`` is an alias, a version, ``$LATEST`` or None."""

    partition: str
    region: str
    account: str
    function: str
    qualifier: str | None

    @property
    def alias(self) -> str | None:
        """The qualifier when it is an alias (not a version number nor ``$LATEST``)."""
        q = self.qualifier
        if q is None or q == "$LATEST" or _VERSION.fullmatch(q):
            return None
        return q


def parse_arn(arn: str) -> FunctionArn:
    """Split a Lambda function ARN of any partition; ``StageError`` if it is not one."""
    if not isinstance(arn, str):
        raise StageError(f"expected a Lambda function ARN string, got {type(arn).__name__}")
    m = _ARN.fullmatch(arn)
    if m is None:
        raise StageError(
            f"not a Lambda function ARN: {arn!r}; expected "
            "arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:ALIAS|VERSION|$LATEST]"
        )
    return FunctionArn(**m.groupdict())


def parse_aliases(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """Parse ``live=PRD,test=TST`` (or pass a mapping through) into an alias → stage dict."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        return _checked({str(k): str(v) for k, v in spec.items()})
    aliases: dict[str, str] = {}
    for pair in spec.replace(";", ",").split(","):
        pair = pair.strip()
        if not pair:
            continue
        alias, sep, stage = pair.partition("=")
        if not sep or not alias.strip() or not stage.strip():
            raise ConfigurationError(f"bad alias mapping {pair!r} in CONFSTAGE_ALIASES; expected alias=STAGE")
        aliases[alias.strip()] = stage.strip()
    return _checked(aliases)


def _checked(aliases: dict[str, str]) -> dict[str, str]:
    """Every stage an alias maps to must be a legal stage name."""
    for alias, stage in aliases.items():
        try:
            validate_stage(stage)
        except StageError as exc:
            raise ConfigurationError(f"alias {alias!r} maps to an illegal stage: {exc}") from exc
    return aliases


def stage_from_arn(arn: str, aliases: Mapping[str, str] | None = None) -> str | None:
    """The stage an invoked ARN maps to, or None when it carries no alias."""
    alias = parse_arn(arn).alias
    if alias is None:
        return None
    return (aliases or {}).get(alias, alias)


def stage_of(target: Any, aliases: Mapping[str, str] | None = None) -> str | None:
    """The stage named by a stage name, an ARN, or a Lambda context object."""
    arn = getattr(target, "invoked_function_arn", None)
    if arn is not None:
        return stage_from_arn(arn, aliases)
    if isinstance(target, str):
        if target.startswith("arn:"):
            return stage_from_arn(target, aliases)
        return validate_stage(target)
    if target is None:
        return None
    raise StageError(
        f"cannot bind a stage from a {type(target).__name__}; expected a stage, an ARN or a Lambda context"
    )


def stage_in_force(stage: str | None, invocation: Invocation | None, configured: str | None) -> str:
    """The stage a call reads: ``stage=``, else its invocation's, else that of the invocations running
    (a worker thread without a context), else the configured one; ``StageError`` saying what was tried."""
    if stage is not None:
        return validate_stage(stage)
    if invocation is not None:
        if invocation.stage is None:
            raise StageError(
                "no stage: the invocation's ARN carries no alias (unqualified, $LATEST or a version) "
                "and CONFSTAGE_STAGE is not set"
            )
        return invocation.stage
    stages = {other.stage for other in running() if other.stage is not None}
    if len(stages) == 1:
        return stages.pop()
    if stages:
        raise StageError(
            f"this thread has no invocation of its own and invocations of several stages are running "
            f"({', '.join(sorted(stages))}); pass stage=, or start the thread with contextvars.copy_context().run"
        )
    if configured is None:
        raise StageError(
            "no stage: nothing bound by @confstage.handler or confstage.bind() "
            "(an invoked ARN with an alias), and CONFSTAGE_STAGE is not set"
        )
    return configured
