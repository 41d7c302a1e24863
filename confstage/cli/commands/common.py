"""What the commands share: the store and the client the global options name, reading a value, reporting writes."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from confstage.cli.checks import decode, read_input, valid_key
from confstage.cli.errors import Failed, UsageFailed, failure
from confstage.cli.options import Settings
from confstage.client import Config
from confstage.errors import ConfstageError
from confstage.sources import build_sources
from confstage.stores import PartialWriteError, Store, build_store

__all__ = ["client", "drop_newline", "keyed", "read_value", "store", "writing"]


def client(options: Settings, stage: str) -> Config:
    """A client of the chain ``--source`` names, for ``stage``, with no /tmp cache: an admin reads what is stored."""
    return Config(options.urls, stage=stage, cache_dir="", transport=options.transport())


def store(options: Settings) -> Store:
    """The store the admin commands write to: the first source of the chain that has one."""
    sources = build_sources(options.urls, transport=options.transport())  # every URL checked first
    for url in options.urls:
        found = build_store(url, transport=options.transport())
        if found is not None:
            return found
    urls = ", ".join(source.url for source in sources)
    raise UsageFailed(
        f"no writable source among {urls}; pass --source dynamodb://TABLE, s3://BUCKET, ssm:///PATH, "
        "secretsmanager://PREFIX or file://PATH (or set CONFSTAGE_SOURCES)"
    )


def keyed(options: Settings, key: str) -> tuple[str, Store]:
    """What a command on KEY acts on: the stage and the store (KEY checked against the key rule first)."""
    valid_key(key)
    return options.require_stage(), store(options)


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
        raise failure(exc, f"{what} failed, nothing written: {exc}") from None
