"""The global options, declared once on the group, and the one ``Settings`` object they make.

Each option has its environment variable (``envvar=``): click takes the command line first, then the
variable. The group puts the ``Settings`` on ``ctx.obj`` and every command takes it with
``@click.pass_obj``. CONTRACT §5 accepts the options before or after the command name: ``hoist`` moves
those given after it in front of it before click parses (a value after the command name wins), so the
commands themselves declare only their own options; ``ConfstageCommand`` lists the global ones in each
command's ``--help`` too (click alone shows a command only the options it declares).

Region, profile and endpoint reach AWS as arguments of the transport the settings make
(``Settings.transport``), never through ``os.environ``. Only values given on the command line are passed:
one click took from the environment is one botocore reads itself, and reads more finely
(``AWS_ENDPOINT_URL_<SERVICE>`` before ``AWS_ENDPOINT_URL``, ``AWS_DEFAULT_REGION`` before ``AWS_REGION``).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import click

from confstage.sources import split_urls
from confstage.variables import DEFAULT_SOURCES

from .checks import valid_stage

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = [
    "GLOBAL_OPTIONS",
    "ConfstageCommand",
    "Settings",
    "ValueCommand",
    "global_options",
    "hoist",
    "settings_from",
]

F = TypeVar("F", bound=Callable[..., Any])

# name on the command line -> (parameter name, environment variable, metavar or choices, help)
GLOBAL_OPTIONS: dict[str, tuple[str, str, Any, str]] = {
    "--source": ("sources", "CONFSTAGE_SOURCES", "URL", "Source URL (repeatable; default env://)."),
    "--stage": ("stage", "CONFSTAGE_STAGE", "STAGE", "Stage to act on."),
    "--region": ("region", "AWS_REGION", "REGION", "AWS region."),
    "--profile": ("profile", "AWS_PROFILE", "NAME", "AWS profile."),
    "--endpoint-url": ("endpoint_url", "AWS_ENDPOINT_URL", "URL", "AWS endpoint for every service."),
    "--output": ("output", "CONFSTAGE_OUTPUT", ("table", "json"), "Output format (default table)."),
}


@dataclass
class Settings:
    """The global options of one CLI run, and the transport they ask for."""

    sources: tuple[str, ...] = ()
    stage: str | None = None
    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    output: str | None = None
    given: frozenset[str] = frozenset()  # parameters given on the command line (not from the environment)
    _transport: Transport | None = field(default=None, repr=False)

    @property
    def urls(self) -> list[str]:
        """``--source`` values (or ``$CONFSTAGE_SOURCES``), else ``env://``."""
        return [url for spec in self.sources for url in split_urls(spec)] or [DEFAULT_SOURCES]

    @property
    def explicit_urls(self) -> bool:
        """Whether sources were named (``--source`` or ``$CONFSTAGE_SOURCES``) rather than defaulted."""
        return any(split_urls(spec) for spec in self.sources)

    @property
    def json(self) -> bool:
        return self.output == "json"

    def option(self, name: str) -> Any:
        """The value of a global option if it was given on the command line, else None."""
        return getattr(self, name) if name in self.given else None

    def require_stage(self) -> str:
        """``--stage`` (or ``$CONFSTAGE_STAGE``), checked against the stage rule; a usage error without one.

        An empty ``--stage ''`` is an illegal stage, not a missing one (an empty variable is unset).
        """
        if self.stage is None:
            raise click.UsageError("no stage: pass --stage STAGE or set CONFSTAGE_STAGE")
        return valid_stage(self.stage, what=self.stage_origin)

    @property
    def stage_origin(self) -> str:
        """Where the stage came from, as messages name it."""
        return "--stage" if "stage" in self.given else "CONFSTAGE_STAGE"

    def transport(self) -> Transport:
        """The botocore transport of this run: the command line's profile, region and endpoint, else botocore's own."""
        if self._transport is None:
            from confstage.transport.botocore import ADMIN_READ_TIMEOUT, BotocoreTransport

            self._transport = BotocoreTransport(
                profile=self.option("profile"),
                region=self.option("region"),
                endpoint_url=self.option("endpoint_url"),
                read_timeout=ADMIN_READ_TIMEOUT,
            )
        return self._transport


def global_options(func: F) -> F:
    """Declare the global options (each with its environment variable) on ``func``: the group."""
    for name, (dest, envvar, meta, text) in reversed(GLOBAL_OPTIONS.items()):
        kind = {"type": click.Choice(meta)} if isinstance(meta, tuple) else {"metavar": meta}
        func = click.option(name, dest, multiple=dest == "sources", envvar=envvar, show_envvar=True, help=text, **kind)(
            func
        )
    return func


def settings_from(ctx: click.Context, values: dict[str, Any]) -> Settings:
    """The ``Settings`` of the group's parsed global options."""
    given = frozenset(
        name for name in values if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    )
    sources = tuple(values.get("sources") or ())
    return Settings(
        sources=sources,
        stage=values.get("stage"),
        region=values.get("region"),
        profile=values.get("profile"),
        endpoint_url=values.get("endpoint_url"),
        output=values.get("output"),
        given=given,
    )


def hoist(args: list[str]) -> list[str]:
    """``args`` with the global options given after the command name moved in front of it.

    Nothing after ``--`` moves (it is a value). Given after the command name, a single-valued option comes
    after the one given before and so wins; ``--source`` given after replaces those given before.
    """
    front, rest = _split_front(args)
    if not rest:
        return args
    command, tail = rest[0], rest[1:]
    moved: list[str] = []
    kept: list[str] = []
    index = 0
    while index < len(tail):
        arg = tail[index]
        if arg == "--":
            kept += tail[index:]
            break
        name = arg.partition("=")[0]
        if name not in GLOBAL_OPTIONS:
            kept.append(arg)
            index += 1
            continue
        if "=" in arg:
            moved.append(arg)
            index += 1
        elif index + 1 < len(tail):
            moved += tail[index : index + 2]
            index += 2
        else:
            raise click.UsageError(f"Option '{name}' requires an argument.")
    if any(arg.partition("=")[0] == "--source" for arg in moved):
        front = _without(front, "--source")
    return [*front, *moved, command, *kept]


def _split_front(args: list[str]) -> tuple[list[str], list[str]]:
    """The group's own arguments, and the command name with what follows it."""
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == "--" or not arg.startswith("-"):
            break
        index += 2 if arg in GLOBAL_OPTIONS else 1  # a global option without '=' takes the next argument
    return args[:index], args[index:]


def _without(args: list[str], option: str) -> list[str]:
    """``args`` without ``option`` and its values."""
    out: list[str] = []
    index = 0
    while index < len(args):
        arg = args[index]
        if arg == option:
            index += 2
        elif arg.startswith(f"{option}="):
            index += 1
        else:
            out.append(arg)
            index += 1
    return out


class ConfstageCommand(click.Command):
    """A command whose ``--help`` also lists the global options, which it accepts after its name, and
    whose did-you-mean for a mistyped option considers them too."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.NoSuchOption as exc:
            names = [name for param in self.get_params(ctx) for name in param.opts if name.startswith("--")]
            close = difflib.get_close_matches(exc.option_name, [*names, *GLOBAL_OPTIONS], n=3, cutoff=0.6)
            raise click.NoSuchOption(exc.option_name, possibilities=close or exc.possibilities, ctx=ctx) from None

    def format_options(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_options(ctx, formatter)
        group = ctx.parent
        if group is None:
            return
        dests = {dest for dest, *_ in GLOBAL_OPTIONS.values()}
        records = [
            record
            for param in group.command.get_params(group)
            if param.name in dests and (record := param.get_help_record(group)) is not None
        ]
        if records:
            with formatter.section("Global options (before or after the command name)"):
                formatter.write_dl(records)


class ValueCommand(ConfstageCommand):
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
