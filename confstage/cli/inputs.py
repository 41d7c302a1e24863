"""Checks of what the command line and files give: stage and key names, files, text.

Every failure is one line naming the argument, the file, the line: never a key that breaks the
rule, a value, or a path that could not be opened, since each may be a secret pasted in the wrong
place and the message may end up in a CI log.
"""

from __future__ import annotations

import os
import stat
import sys

from confstage.errors import StageError
from confstage.names import key_refusal, validate_stage

from .errors import Failed, UsageFailed

__all__ = ["MAX_INPUT", "decode", "read_input", "valid_key", "valid_stage"]

MAX_INPUT = 64 * 1024 * 1024  # bytes read from a file or stdin: values and value files are held in memory whole

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def valid_stage(stage: str, *, what: str) -> str:
    """``stage`` if it follows the stage rule, else a usage error naming ``what`` and the rule."""
    try:
        return validate_stage(stage)
    except StageError as exc:
        raise UsageFailed(f"{what}: {exc}") from None


def valid_key(key: str, *, what: str = "KEY") -> str:
    """``key`` if it follows the key rule, else a usage error naming ``what`` and the rule (not the key)."""
    reason = key_refusal(key)
    if reason:
        raise UsageFailed(f"{what} is not a valid key name: {reason}")
    return key


def read_input(path: str, *, what: str) -> bytes:
    """The bytes of the regular file ``path`` (``-``: stdin), at most ``MAX_INPUT`` of them.

    The file is opened without blocking and its type checked before a byte is read, so a FIFO
    with no writer is refused instead of hanging. A path that cannot be opened is not repeated.
    """
    if path == "-":
        data: bytes = sys.stdin.buffer.read(MAX_INPUT + 1)
    else:
        flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            fd = os.open(path, flags)
        except OSError as exc:
            # ``from None``: the OSError holds the path, which may be a value pasted where a path belongs.
            raise Failed(f"cannot open {what}: {exc.strerror or type(exc).__name__}") from None
        try:
            mode = os.fstat(fd).st_mode
            kind = next((name for test, name in _KINDS if test(mode)), None)
            if kind is not None:
                raise Failed(f"{what} {path!r} is {kind}, not a regular file ('-' reads stdin)")
            with open(fd, "rb", closefd=False) as stream:
                data = stream.read(MAX_INPUT + 1)
        except OSError as exc:
            raise Failed(f"cannot read {what} {path!r}: {exc.strerror or type(exc).__name__}") from None
        finally:
            os.close(fd)
    if len(data) > MAX_INPUT:
        raise Failed(f"{what} is larger than {MAX_INPUT // 2**20} MiB")
    return data


def decode(data: bytes, *, what: str) -> str:
    """``data`` as UTF-8 text; otherwise an error naming the line and byte, never the bytes."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        # ``from None``: the UnicodeDecodeError holds the whole input.
        raise Failed(f"{what} is not UTF-8 text (line {line}, byte {column})") from None
