"""The ``confstage`` click group: global options, command registration, and errors → exit status.

Exit status: 0 success, 1 not found or failed, 2 usage error. An expected failure (a
``ConfstageError``, an AWS error, an unreadable file) is one line on stderr, never a traceback;
so is an unexpected one, named by its type alone, since its message or traceback could quote a value.
"""

from __future__ import annotations

from typing import Any

import click

from confstage.errors import ConfigurationError, ConfstageError, StageError

from .commands import check, store, tools, transfer
from .demo import demo
from .errors import Failed, UsageFailed
from .options import global_options, hoist, settings_from

__all__ = ["cli"]


class ConfstageGroup(click.Group):
    """A group that takes its options after the command name too, and turns expected exceptions into
    one-line errors with the right exit status."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        ctx.meta[check.ARGS] = list(args)  # check reads every --stage given (the option is single-valued)
        return super().parse_args(ctx, hoist(args))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except (ConfigurationError, StageError) as exc:
            raise UsageFailed(str(exc)) from None
        except ConfstageError as exc:
            raise Failed(str(exc)) from None
        except OSError as exc:
            raise Failed(str(exc)) from None
        except Exception as exc:  # the last resort: a traceback could quote a file or a value
            raise Failed(
                f"unexpected {type(exc).__name__} in confstage {ctx.invoked_subcommand or ''} "
                "(its message is left out: it could quote a value); please report it"
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
