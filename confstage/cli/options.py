"""The global options, accepted before or after the command name.

The same options are attached to the group and to every command. Each one records its value
(when given) in the root context; the group's are parsed first, so a value given after the
command name wins. ``settings(ctx)`` reads the merged result once parsing is done and points
boto3 at the requested region, profile and endpoint before any client exists.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from confstage import aws
from confstage.sources import split_urls
from confstage.variables import DEFAULT_SOURCES

from .checks import valid_stage

__all__ = ["Settings", "ValueCommand", "global_options", "settings"]

F = TypeVar("F", bound=Callable[..., Any])

_META = "confstage.settings"


@dataclass
class Settings:
    """The merged global options of one CLI run."""

    sources: tuple[str, ...] = ()
    stage: str | None = None
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    output: str | None = None
    applied: bool = False

    @property
    def urls(self) -> list[str]:
        """``--source`` values, else ``$CONFSTAGE_SOURCES``, else ``env://``."""
        if self.sources:
            return [url for spec in self.sources for url in split_urls(spec)]
        return split_urls(os.environ.get("CONFSTAGE_SOURCES", "")) or [DEFAULT_SOURCES]

    @property
    def explicit_urls(self) -> bool:
        """Whether sources were named (``--source`` or ``$CONFSTAGE_SOURCES``) rather than defaulted."""
        return bool(self.sources or split_urls(os.environ.get("CONFSTAGE_SOURCES", "")))

    @property
    def json(self) -> bool:
        return self.output == "json"

    def require_stage(self) -> str:
        """``--stage``, else ``$CONFSTAGE_STAGE``, checked against the stage rule; a usage error otherwise.

        An empty ``--stage ''`` is an illegal stage, not a missing one (an empty variable is unset).
        """
        if self.stage is not None:
            return valid_stage(self.stage, what="--stage")
        stage = os.environ.get("CONFSTAGE_STAGE")
        if not stage:
            raise click.UsageError("no stage: pass --stage STAGE or set CONFSTAGE_STAGE")
        return valid_stage(stage, what="CONFSTAGE_STAGE")


class ValueCommand(click.Command):
    """A command that may be given a secret on its command line: its usage errors never quote it.

    click repeats an unknown option (``No such option '--p@ss'``) and extra arguments (``Got
    unexpected extra argument (w0rd)``), which is where a value with a leading dash or an unquoted
    space ends up; this command names the problem instead.
    """

    allow_extra_args = True  # leftovers are reported below, without click's quoting of them

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            rest = super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            hint = f" (did you mean {', '.join(exc.possibilities)}?)" if exc.possibilities else ""
            raise click.UsageError(
                f"unknown option{hint}; it is not repeated here, as it may be a value: "
                "a VALUE that starts with '-' goes after '--'",
                ctx,
            ) from None
        if ctx.args:
            ctx.fail(
                f"{len(ctx.args)} unexpected extra argument(s), not repeated here as they may be a value: "
                "quote a VALUE that holds spaces"
            )
        return rest


def _recorder(name: str) -> Callable[[click.Context, click.Parameter, Any], None]:
    def record(ctx: click.Context, param: click.Parameter, value: Any) -> None:
        if value is None or value == ():
            return
        state: Settings = ctx.find_root().meta.setdefault(_META, Settings())
        setattr(state, name, tuple(value) if isinstance(value, (tuple, list)) else value)

    return record


def global_options(func: F) -> F:
    """Attach ``--source --stage --region --profile --endpoint-url --output`` (values go to ``settings``)."""
    options = [
        click.option(
            "--source",
            "source_",
            multiple=True,
            metavar="URL",
            expose_value=False,
            callback=_recorder("sources"),
            help="Source URL (repeatable; default $CONFSTAGE_SOURCES, else env://).",
        ),
        click.option(
            "--stage",
            metavar="STAGE",
            expose_value=False,
            callback=_recorder("stage"),
            help="Stage to act on (default $CONFSTAGE_STAGE).",
        ),
        click.option(
            "--region", metavar="REGION", expose_value=False, callback=_recorder("region"), help="AWS region."
        ),
        click.option(
            "--profile", metavar="NAME", expose_value=False, callback=_recorder("profile"), help="AWS profile."
        ),
        click.option(
            "--endpoint-url",
            metavar="URL",
            expose_value=False,
            callback=_recorder("endpoint_url"),
            help="AWS endpoint for every service (e.g. a local moto server).",
        ),
        click.option(
            "--output",
            type=click.Choice(["table", "json"]),
            expose_value=False,
            callback=_recorder("output"),
            help="Output format (default table).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def settings(ctx: click.Context | None = None) -> Settings:
    """The merged global options; the first call exports them to the environment boto3 reads."""
    ctx = ctx or click.get_current_context()
    state: Settings = ctx.find_root().meta.setdefault(_META, Settings())
    if not state.applied:
        state.applied = True
        changed = False
        for variable, value in (
            ("AWS_ENDPOINT_URL", state.endpoint_url),
            ("AWS_REGION", state.region),
            ("AWS_DEFAULT_REGION", state.region),
            ("AWS_PROFILE", state.profile),
        ):
            if value:
                os.environ[variable] = value
                changed = True
        if not state.region and os.environ.get("AWS_REGION") and not os.environ.get("AWS_DEFAULT_REGION"):
            os.environ["AWS_DEFAULT_REGION"] = os.environ["AWS_REGION"]  # botocore reads only this one
            changed = True
        if state.endpoint_url:
            # --endpoint-url names the endpoint of every service: drop per-service overrides.
            for variable in [name for name in os.environ if name.startswith("AWS_ENDPOINT_URL_")]:
                del os.environ[variable]
        if changed:
            aws.reset()  # clients made before now would not see the new settings
    return state
