"""A minimal HTTP/1.1 client over one socket: what the lite transport needs of HTTP and nothing more.

Not ``http.client``: it imports the ``email`` package to parse headers, two thirds of its import time
and the largest single cost left on the lite cold path (benchmarks/cold_path.py). What AWS answers with
is plain HTTP/1.1: a status line, ``Name: value`` headers, a body framed by ``Content-Length`` or chunked.

Every socket operation (connect, TLS handshake, send, each ``recv``) waits at most ``min(timeout, time
left before the deadline)``, so a peer that trickles bytes cannot hold a read past the deadline and no
thread is needed to enforce it. Only name resolution (``getaddrinfo``) is not bounded.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

__all__ = ["Connection", "DeadlinePassed", "Disconnected", "Limits", "ProtocolError", "Response"]

_MAX_LINE = 65536
_MAX_HEADERS = 200
_RECV = 65536


class DeadlinePassed(TimeoutError):
    """The call's deadline passed before a socket operation could start."""


class Disconnected(ConnectionError):
    """The peer closed the connection before sending a status line."""


class ProtocolError(Exception):
    """An answer that is not HTTP/1.1, or a body that ended before its announced end."""


class Limits:
    """The time limits of the exchange a connection is serving; set by the thread that holds it."""

    __slots__ = ("clock", "deadline", "read_timeout")

    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self.deadline: float | None = None
        self.read_timeout = 3.0

    def left(self) -> float | None:
        """Seconds until the deadline (None: no deadline)."""
        return None if self.deadline is None else self.deadline - self.clock()

    def timeout(self, limit: float | None = None) -> float:
        """``min(limit or the read timeout, time left)``; ``DeadlinePassed`` when none is left."""
        limit = self.read_timeout if limit is None else limit
        left = self.left()
        if left is None:
            return limit
        if left <= 0:
            raise DeadlinePassed("deadline passed")
        return min(limit, left)


class Connection:
    """One keep-alive connection to ``host:port``; used by one thread at a time."""

    def __init__(self, scheme: str, host: str, port: int | None, limits: Limits, ssl_context: Any = None) -> None:
        self.scheme = scheme
        self.host = host
        self.port = port or (443 if scheme == "https" else 80)
        self.limits = limits
        self._ssl_context = ssl_context
        self._sock: socket.socket | None = None
        self._buffer = b""
        self.reusable = False  # True once an answer was read whole on a connection that stays open

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def connect(self, connect_timeout: float) -> None:
        """TCP (and TLS) within ``min(connect_timeout, time left)``."""
        timeout = self.limits.timeout(connect_timeout)
        sock = socket.create_connection((self.host, self.port), timeout)
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.scheme == "https":
                sock = self._ssl_context.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise
        self._sock, self._buffer = sock, b""

    def close(self) -> None:
        sock, self._sock = self._sock, None
        self.reusable = False
        if sock is not None:
            sock.close()

    def request(
        self, method: str, target: str, headers: dict[str, str], body: bytes, connect_timeout: float
    ) -> Response:
        """Send one request and read the answer's status line and headers; the body is left to ``Response``."""
        if self._sock is None:
            self.connect(connect_timeout)
        self.reusable = False
        lines = [f"{method} {target} HTTP/1.1"]
        lines.extend(f"{name}: {value}" for name, value in headers.items())
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self._send(head + body if len(body) < 65536 else head)  # one segment for small requests
        if len(body) >= 65536:
            self._send(body)
        return self._response(method)

    # -- the wire ----------------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        sock = self._require()
        sock.settimeout(self.limits.timeout())
        sock.sendall(data)

    def _require(self) -> socket.socket:
        if self._sock is None:
            raise Disconnected("the connection is closed")
        return self._sock

    def _recv(self) -> bytes:
        sock = self._require()
        sock.settimeout(self.limits.timeout())
        return sock.recv(_RECV)

    def readline(self) -> bytes:
        """One line with its CRLF (b"" at EOF before any byte); ``ProtocolError`` past 64 KiB."""
        while True:
            end = self._buffer.find(b"\n")
            if end > _MAX_LINE or (end < 0 and len(self._buffer) > _MAX_LINE):
                raise ProtocolError("a line longer than 64 KiB")
            if end >= 0:
                line, self._buffer = self._buffer[: end + 1], self._buffer[end + 1 :]
                return line
            chunk = self._recv()
            if not chunk:
                line, self._buffer = self._buffer, b""
                return line
            self._buffer += chunk

    def read_some(self, limit: int) -> bytes:
        """Between 1 and ``limit`` bytes (b"" at EOF), waiting for at most one ``recv``."""
        if not self._buffer:
            self._buffer = self._recv()
        data, self._buffer = self._buffer[:limit], self._buffer[limit:]
        return data

    def _response(self, method: str) -> Response:
        while True:
            line = self.readline()
            if not line:
                raise Disconnected("the connection closed before an answer")
            parts = line.decode("latin-1").rstrip("\r\n").split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
                raise ProtocolError("an answer that is not HTTP/1.x")
            version, status = parts[0], int(parts[1])
            headers = self._headers()
            if 100 <= status < 200:  # informational (100 Continue): the real answer follows
                continue
            return Response(self, method, version, status, headers)

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            line = self.readline()
            if not line:
                raise ProtocolError("the connection closed inside the headers")
            if line in (b"\r\n", b"\n"):
                return headers
            name, sep, value = line.decode("latin-1").partition(":")
            if not sep:
                raise ProtocolError("a header line without a colon")
            name, value = name.strip().lower(), value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        raise ProtocolError(f"more than {_MAX_HEADERS} headers")


class Response:
    """An answer's status and headers, and its body read on demand: whole, or in pieces."""

    def __init__(self, conn: Connection, method: str, version: str, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers
        self._conn = conn
        connection = headers.get("connection", "").lower()
        self._keep_alive = "close" not in connection and (version != "HTTP/1.0" or "keep-alive" in connection)
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._chunk_left = 0
        self._remaining: int | None  # bytes of body still to come (None: until the peer closes)
        if method == "HEAD" or status in (204, 304):
            self._remaining = 0
        elif self._chunked:
            self._remaining = None
        elif "content-length" in headers:
            length = headers["content-length"].split(",")[0].strip()
            if not length.isdigit():
                raise ProtocolError("a Content-Length that is not a number")
            self._remaining = int(length)
        else:
            self._remaining, self._keep_alive = None, False
        self.done = False
        if self._remaining == 0 and not self._chunked:
            self._finish()

    def read(self, amt: int | None = None) -> bytes:
        """Up to ``amt`` bytes of the body (all that is left when None); b"" once it has ended."""
        if self.done:
            return b""
        if amt is None or amt < 0:
            pieces = []
            while not self.done:
                pieces.append(self._piece(_RECV))
            return b"".join(pieces)
        return self._piece(amt) if amt else b""

    def _piece(self, amt: int) -> bytes:
        if self._chunked:
            return self._chunk_piece(amt)
        if self._remaining is None:  # delimited by the end of the connection
            data = self._conn.read_some(amt)
            if not data:
                self._finish()
            return data
        data = self._conn.read_some(min(amt, self._remaining))
        if not data:
            raise ProtocolError(f"the connection closed {self._remaining} bytes before the end of the body")
        self._remaining -= len(data)
        if not self._remaining:
            self._finish()
        return data

    def _chunk_piece(self, amt: int) -> bytes:
        if not self._chunk_left:
            line = self._conn.readline()
            size = line.split(b";", 1)[0].strip()
            try:
                self._chunk_left = int(size, 16)
            except ValueError:
                raise ProtocolError("a chunk size that is not hexadecimal") from None
            if self._chunk_left == 0:
                while self._conn.readline() not in (b"\r\n", b"\n", b""):  # trailers
                    pass
                self._finish()
                return b""
        data = self._conn.read_some(min(amt, self._chunk_left))
        if not data:
            raise ProtocolError("the connection closed inside a chunk")
        self._chunk_left -= len(data)
        if not self._chunk_left and self._conn.readline() not in (b"\r\n", b"\n"):
            raise ProtocolError("a chunk not followed by CRLF")
        return data

    def _finish(self) -> None:
        self.done = True
        if self._keep_alive:
            self._conn.reusable = True
        else:
            self._conn.close()
