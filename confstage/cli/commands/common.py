"""What the commands share: building sources from the global options, reading a value."""

from __future__ import annotations

import sys
from typing import IO

import click

from confstage.cli.errors import Failed, UsageFailed
from confstage.cli.options import Settings
from confstage.sources import Source, WritableSource, build_sources

__all__ = ["chain", "drop_newline", "read_value", "store"]


def chain(options: Settings) -> list[Source]:
    """The sources named by ``--source`` / ``$CONFSTAGE_SOURCES``, in order."""
    return build_sources(options.urls)


def store(options: Settings) -> WritableSource:
    """The store the admin commands write to: the first writable source of the chain."""
    sources = chain(options)
    for source in sources:
        if isinstance(source, WritableSource):
            return source
    urls = ", ".join(source.url for source in sources)
    raise UsageFailed(
        f"no writable source among {urls}; pass --source dynamodb://TABLE, s3://BUCKET, ssm:///PATH "
        "or secretsmanager://PREFIX (or set CONFSTAGE_SOURCES)"
    )


def drop_newline(text: str) -> str:
    """``text`` without one trailing newline (``\\n`` or ``\\r\\n``): what an editor or ``echo`` adds."""
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith("\n"):
        return text[:-1]
    return text


def read_value(value: str | None, file: IO[bytes] | None, *, what: str, secret: bool = False) -> str:
    """A value from the argument, ``--file``, or stdin (prompted for, hidden, on a terminal)."""
    if value is not None and file is not None:
        raise click.UsageError(f"give {what} as an argument or with --file, not both")
    if value is not None:
        return value
    if file is not None:
        data = file.read()
    elif sys.stdin.isatty():
        return str(click.prompt(what, hide_input=secret, err=True))
    else:
        data = sys.stdin.buffer.read()
    try:
        return drop_newline(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise Failed(f"{what} is not UTF-8 text") from None
