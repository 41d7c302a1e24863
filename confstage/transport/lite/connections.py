"""The lite transport's connections: keep-alive pools per endpoint, S3 bodies read as streams, network errors.

``Pool`` lends each thread its own connection to an endpoint and takes it back when the answer has been read;
``StreamingBody`` is an S3 ``Body`` read within the call's deadline; ``network_error`` names what failed (never
a request or a body) and whether another attempt may help.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from confstage.transport import NetworkError
from confstage.transport.endpoints import split_host

from . import http as _http

__all__ = ["Pool", "StreamingBody", "TransientNetworkError", "network_error"]

_IDLE_PER_ENDPOINT = 8
_MAX_IDLE = 60.0  # seconds a pooled connection may sit unused (the AWS SDKs for Java and Go: 60 s, 90 s)


class TransientNetworkError(NetworkError):
    """A network failure worth another attempt (connection refused or reset, a timeout, a bad checksum)."""


def _describe(exc: BaseException) -> str:
    # OSError texts are safe ("[Errno 111] Connection refused"); a ProtocolError's is written in _http.
    if isinstance(exc, _http.ProtocolError):
        return str(exc)
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__


def network_error(exc: BaseException, limits: _http.Limits, what: str, during: str) -> NetworkError:
    """The ``NetworkError`` for a failed socket or HTTP operation, transient unless the deadline passed."""
    ssl = sys.modules.get("ssl")  # no TLS in use: no TLS error to tell apart, and no import on a failure path
    left = limits.left()
    failure: NetworkError
    if isinstance(exc, _http.DeadlinePassed) or (left is not None and left <= 0):
        failure = NetworkError(f"{what}: the deadline passed while {during}", operation=what)
    elif isinstance(exc, TimeoutError):
        message = f"{what}: timed out after {limits.read_timeout:g} s while {during}"
        failure = TransientNetworkError(message, operation=what)
    elif ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):  # another attempt fails the same way
        failure = NetworkError(f"{what}: {_describe(exc)} while {during}", operation=what)
    else:
        failure = TransientNetworkError(f"{what}: {_describe(exc)} while {during}", operation=what)
    failure.__cause__ = exc
    return failure


class Pool:
    """Idle keep-alive connections per endpoint; a connection is used by one thread at a time.

    A connection idle for more than a minute (wall clock: a frozen Lambda environment's idle time counts) is
    closed rather than reused: the service or a NAT on the way may have dropped it without a word, and a
    silent dead connection costs a whole read timeout where a new one costs a handshake.
    """

    def __init__(
        self, clock: Callable[[], float], ssl_context: Callable[[], Any], wall: Callable[[], float] = time.time
    ) -> None:
        self._clock = clock
        self._wall = wall
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._idle: dict[tuple[str, str], list[tuple[_http.Connection, float]]] = {}

    def take(self, scheme: str, host: str) -> tuple[_http.Connection, bool]:
        """An idle connection to the endpoint (True: reused) or a new, not yet connected one."""
        expired = []
        found = None
        with self._lock:
            idle = self._idle.get((scheme, host), [])
            oldest = self._wall() - _MAX_IDLE
            while idle and found is None:
                conn, since = idle.pop()
                if since >= oldest:
                    found = conn
                else:
                    expired.append(conn)
        for conn in expired:
            conn.close()
        if found is not None:
            return found, True
        return self.new(scheme, host), False

    def new(self, scheme: str, host: str) -> _http.Connection:
        hostname, port = split_host(host)
        context = self._ssl_context() if scheme == "https" else None
        return _http.Connection(scheme, hostname, port, _http.Limits(self._clock), context)

    def give(self, scheme: str, host: str, conn: _http.Connection) -> None:
        """Keep a connection whose last answer was read whole, for the next request to the endpoint."""
        if not conn.reusable:
            conn.close()
            return
        with self._lock:
            idle = self._idle.setdefault((scheme, host), [])
            if len(idle) < _IDLE_PER_ENDPOINT:
                idle.append((conn, self._wall()))
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle = [conn for conns in self._idle.values() for conn, _ in conns]
            self._idle.clear()
        for conn in idle:
            conn.close()


# -- the S3 body ---------------------------------------------------------------------------------


class StreamingBody:
    """S3's ``Body``: ``read(n)``, ``read()``, ``iter_chunks()``, ``close()``; reads keep to the call's deadline.

    Reading it to the end hands the connection back for reuse; closing it early closes the connection.
    A failed read (deadline, timeout, the peer gone, fewer bytes than announced) is a ``NetworkError``.
    """

    def __init__(self, response: _http.Response, conn: _http.Connection, release: Callable[[], None], what: str):
        self._response = response
        self._conn = conn
        self._release = release
        self._what = what
        self._open = True
        if response.done:
            self._finish()

    def __repr__(self) -> str:
        return f"StreamingBody({self._what}, {'open' if self._open else 'closed'})"

    def readable(self) -> bool:
        return True

    def read(self, amt: int | None = None) -> bytes:
        """Up to ``amt`` bytes (all that is left when None); ``b""`` at the end."""
        if not self._open:
            return b""
        try:
            data = self._response.read(amt)
        except (OSError, _http.ProtocolError) as exc:
            self._open = False
            self._conn.close()
            raise network_error(exc, self._conn.limits, self._what, "reading the body") from exc
        if self._response.done:
            self._finish()
        return data

    def iter_chunks(self, chunk_size: int = 1024) -> Iterator[bytes]:
        """The rest of the body in pieces of at most ``chunk_size`` bytes."""
        while chunk := self.read(chunk_size):
            yield chunk

    def __iter__(self) -> Iterator[bytes]:
        return self.iter_chunks()

    def close(self) -> None:
        """Stop reading: the connection, with the rest of the body still on it, is closed."""
        if self._open:
            self._open = False
            self._conn.close()

    def _finish(self) -> None:
        self._open = False
        self._release()

    def __enter__(self) -> StreamingBody:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()
