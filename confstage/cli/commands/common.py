"""What the commands share: building sources from the global options, reading a value, reporting writes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from confstage.cli.checks import decode, read_input
from confstage.cli.errors import Failed, UsageFailed
from confstage.cli.options import Settings
from confstage.errors import ConfstageError
from confstage.sources import Source, WritableSource, build_sources
from confstage.sources.base import PartialWriteError

__all__ = ["chain", "drop_newline", "read_value", "store", "writing"]


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


def read_value(value: str | None, path: str | None, *, what: str, secret: bool = False) -> str:
    """A value from the argument, the file ``path`` (``-``: stdin), or stdin (prompted for, hidden, on a terminal).

    A file or stdin with no bytes at all is refused (a failed ``> file`` more likely than a wish to
    store an empty value, which an empty argument ``''`` still does).
    """
    if value is not None and path is not None:
        raise click.UsageError(f"give {what} as an argument or with --file, not both")
    if value is not None:
        return value
    if path is None and sys.stdin.isatty():
        return str(click.prompt(what, hide_input=secret, err=True))
    where = "stdin" if path in (None, "-") else "--file"
    data = read_input(path or "-", what=where)
    if not data:
        raise Failed(f"{where} is empty: no {what} to write (an argument '' is an empty value)")
    return drop_newline(decode(data, what=where))


@contextmanager
def writing(what: str) -> Iterator[None]:
    """Report a failed ``put_many``: the keys written and not (``PartialWriteError``), else that nothing was."""
    try:
        yield
    except PartialWriteError as exc:
        lines = [f"{what} failed: {exc}"]
        if exc.written:
            lines.append(f"written ({len(exc.written)}): {', '.join(exc.written)}")
        if exc.not_written:
            lines.append(f"not written ({len(exc.not_written)}): {', '.join(exc.not_written)}")
        raise Failed("\n".join(lines)) from None
    except ConfstageError as exc:
        raise Failed(f"{what} failed, nothing written: {exc}") from None
