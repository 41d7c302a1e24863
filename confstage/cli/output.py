"""Rendering: machine-readable output on stdout, everything else on stderr; secrets masked.

rich is imported only when a table or a progress bar is drawn.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

import click

__all__ = ["MASK", "Progress", "emit", "emit_json", "mask", "message", "progress", "reading", "report", "table"]

MASK = "********"

# Imports with fewer values than this finish too fast for a progress bar to mean anything.
PROGRESS_THRESHOLD = 50


def mask(value: str, hidden: bool, reveal: bool = False) -> str:
    """The value to show: ``MASK`` for a hidden one (a secure value, a secret) unless ``reveal``."""
    return value if reveal or not hidden else MASK


def emit(text: str) -> None:
    """One line of machine-readable output on stdout."""
    click.echo(text)


def emit_json(document: Any) -> None:
    """A JSON document on stdout."""
    click.echo(json.dumps(document, indent=2, ensure_ascii=False, default=str))


def message(text: str) -> None:
    """A human message on stderr (never a value)."""
    click.echo(text, err=True)


def report(as_json: bool, record: dict[str, Any], text: str) -> None:
    """What a write did (or would do): ``record`` as JSON on stdout with ``--output json``, else ``text`` on
    stderr. Neither ever holds a value."""
    if as_json:
        emit_json(record)
    else:
        message(text)


def table(columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None) -> None:
    """A table on stdout (for people; use ``--output json`` for machines)."""
    from rich import box
    from rich.console import Console
    from rich.table import Table

    grid = Table(*columns, title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for row in rows:
        grid.add_row(*("" if cell is None else str(cell) for cell in row))
    # Piped output is not cut to 80 columns: a truncated value would be wrong, not just ugly.
    width = None if sys.stdout.isatty() else 240
    Console(soft_wrap=False, width=width).print(grid)


class Progress(Protocol):
    def advance(self, n: int) -> None: ...


class _Bar:
    def __init__(self, bar: Any, task: Any) -> None:
        self._bar = bar
        self._task = task

    def advance(self, n: int) -> None:
        self._bar.advance(self._task, n)


class _Silent:
    def advance(self, n: int) -> None:
        pass


@contextmanager
def progress(description: str, total: int) -> Iterator[Progress]:
    """A progress bar on stderr for ``total`` items (silent below ``PROGRESS_THRESHOLD``)."""
    if total < PROGRESS_THRESHOLD:
        yield _Silent()
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with RichProgress(*columns, console=Console(stderr=True), transient=False) as bar:
        yield _Bar(bar, bar.add_task(description, total=total))


@contextmanager
def reading(description: str) -> Iterator[None]:
    """A spinner on stderr while a stage is read, on a terminal only (a store reads a stage in one call, so
    there is no count to show; the bar of ``progress`` follows for the writes)."""
    if not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(description):
        yield
