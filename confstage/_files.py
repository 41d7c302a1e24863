"""Private files under a shared directory (/tmp): a directory only this user can change, reads that cannot block.

Used by the /tmp layer (``disk``). Every check is made on what was opened or looked up, never on a path
name checked earlier and used later, and a problem is returned as a phrase, never raised.
"""

from __future__ import annotations

import os
import stat

from . import _log as log

__all__ = ["prepare_directory", "read_private", "read_private_from", "unsafe_ancestor", "unsafe_directory"]

_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def prepare_directory(directory: str) -> str | None:
    """Create (0700, with any missing parent, each 0700) or check a private directory; what is wrong, or None."""
    parent = os.path.dirname(directory)
    if parent != directory and not os.path.lexists(parent):
        problem = prepare_directory(parent)  # a parent that does not exist yet is made private, as this one is
        if problem:
            return problem
    problem = unsafe_ancestor(parent)
    if problem:
        return problem
    try:
        os.mkdir(directory, 0o700)
    except FileExistsError:
        pass
    except OSError as exc:
        return f"cannot be created ({exc.strerror})"
    try:
        info = os.lstat(directory)
    except OSError as exc:
        return f"cannot be inspected ({exc.strerror})"
    if stat.S_ISLNK(info.st_mode):
        return "is a symlink"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid != os.geteuid():
        return "is owned by another user"
    if info.st_mode & 0o077:
        try:
            os.chmod(directory, 0o700)
        except OSError as exc:
            return f"is not private and cannot be made so ({exc.strerror})"
    if not os.access(directory, os.W_OK | os.X_OK):
        return "is not writable"
    return None


def read_private(path: str, limit: int) -> bytes | None:
    """The bytes of a regular file private to this user and at most ``limit`` bytes long, or None.

    Opened with ``O_NONBLOCK`` (a FIFO would block the open forever) and ``O_NOFOLLOW``, checked with
    ``fstat`` on that descriptor before a byte is read, and read up to the cap only.
    """
    found = read_private_from(path, limit)
    return None if found is None else found[0]


def read_private_from(path: str, limit: int, offset: int = 0) -> tuple[bytes, os.stat_result] | None:
    """``read_private`` from ``offset`` on (what a journal gained since it was last read), with the file's
    ``fstat`` (its inode and size tell whether it changed); None when unusable or shorter than ``offset``."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o077:
            log.debug("ignoring cache file that is not a regular file private to this user: %s", path)
            return None
        if info.st_size > limit or info.st_size < offset:
            log.debug("ignoring cache file of %d bytes (more than %d): %s", info.st_size, limit, path)
            return None
        if offset:
            os.lseek(fd, offset, os.SEEK_SET)
        chunks: list[bytes] = []
        left = limit + 1 - offset  # one byte more tells a file that grew since fstat
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return (b"".join(chunks), info) if left > 0 else None


def unsafe_ancestor(path: str) -> str | None:
    """What lets another user change the directory ``path`` or a directory above it, or None.

    ssh's StrictModes rule, applied to every component on the way, one at a time: each directory is
    owned by root or this user and not writable by group or others unless sticky (``/tmp``). A
    symlink on the way is followed only if root or this user owns it (macOS's ``/tmp`` is root's
    link to ``/private/tmp``), and its target is walked the same way. A missing component ends the
    walk: ``mkdir`` then fails, or creates under directories already checked.
    """
    uid = os.geteuid()
    pending = [part for part in path.split("/") if part]
    current = "/"
    problem = unsafe_directory(current, uid)
    links = 0
    while pending and not problem:
        part = pending.pop(0)
        if part in (".", ".."):
            current = current if part == "." else os.path.dirname(current)
            continue
        candidate = os.path.join(current, part)
        try:
            info = os.lstat(candidate)
        except FileNotFoundError:
            return None
        except OSError as exc:
            return f"is under {candidate}, which cannot be inspected ({exc.strerror})"
        if stat.S_ISLNK(info.st_mode):
            links += 1
            if info.st_uid not in (0, uid):
                return f"is reached through {candidate}, a symlink owned by another user"
            if links > 40:
                return f"is reached through too many symlinks ({candidate})"
            target = os.readlink(candidate)
            current = "/" if target.startswith("/") else current
            pending[:0] = [part for part in target.split("/") if part]
            continue
        current = candidate
        problem = unsafe_directory(current, uid, info)
    return problem


def unsafe_directory(path: str, uid: int, info: os.stat_result | None = None) -> str | None:
    """What lets another user change the directory ``path`` itself (see ``unsafe_ancestor``), or None."""
    try:
        info = info or os.lstat(path)
    except OSError as exc:
        return f"is under {path}, which cannot be inspected ({exc.strerror})"
    if not stat.S_ISDIR(info.st_mode):
        return f"is under {path}, which is not a directory"
    if info.st_uid not in (0, uid):
        return f"is under {path}, which is owned by another user"
    if info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX:
        return f"is under {path}, which other users can write to"
    return None
