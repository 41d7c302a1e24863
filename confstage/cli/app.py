"""The ``confstage`` click group: global options, command registration, and errors → exit status.

Exit status: 0 success, 1 not found or failed, 2 usage error. An expected failure (a
``ConfstageError``, an AWS error, an unreadable file) is one line on stderr, never a traceback;
so is an unexpected one, named by its type alone, since its message or traceback could quote a value.
"""

from __future__ import annotations

import difflib
from typing import Any

import click

from confstage.errors import ConfigurationError, ConfstageError, StageError

from .commands import check, store, tools, transfer
from .demo import demo
from .errors import UsageFailed, failure
from .options import ConfstageCommand, global_options, hoist, settings_from

__all__ = ["cli"]


class ConfstageGroup(click.Group):
    """A group that takes its options after the command name too, suggests a command for a mistyped one,
    and turns expected exceptions into one-line errors (with a hint for the common ones) and exit statuses."""

    command_class = ConfstageCommand

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[check.ARGS] = list(args)  # check reads every --stage given (the option is single-valued)
        return super().parse_args(ctx, hoist(args))

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = args[0] if args else ""
        if name and not ctx.resilient_parsing and self.get_command(ctx, name) is None:
            close = difflib.get_close_matches(name, self.list_commands(ctx), n=3, cutoff=0.6)
            if close:
                ctx.fail(f"No such command '{name}'. Did you mean {' or '.join(repr(c) for c in close)}?")
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (ConfigurationError, StageError) as exc:
            raise UsageFailed(str(exc)) from None
        except (ConfstageError, OSError) as exc:
            raise failure(exc) from None
        except Exception as exc:  # the last resort: a traceback could quote a file or a value
            raise failure(
                exc,
                f"unexpected {type(exc).__name__} in confstage {ctx.invoked_subcommand or ''} "
                "(its message is left out: it could quote a value); please report it",
            ) from None


@click.group(cls=ConfstageGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="confstage", prog_name="confstage")
@global_options
@click.pass_context
def cli(ctx: click.Context, /, **values: Any) -> None:
    """Stage-aware configuration for AWS Lambda: seed, inspect, promote and roll back values.

    Global options may come before or after the command name.
    """
    ctx.obj = settings_from(ctx, values)


for _module in (store, tools, transfer, check):
    for _command in _module.COMMANDS:
        cli.add_command(_command)
cli.add_command(demo)
