"""The CLI's exit statuses and its expected-failure exceptions (one line on stderr, no traceback)."""

from __future__ import annotations

import click

__all__ = ["EXIT_FAILED", "EXIT_USAGE", "Failed", "UsageFailed"]

EXIT_FAILED = 1
EXIT_USAGE = 2


class Failed(click.ClickException):
    """An expected failure: one line on stderr and exit status 1."""

    exit_code = EXIT_FAILED


class UsageFailed(Failed):
    """A request that cannot work as given (bad source URL, no stage): exit status 2."""

    exit_code = EXIT_USAGE
