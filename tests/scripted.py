"""A keep-alive HTTP/1.1 server on 127.0.0.1 that answers from a script and records what it was sent.

For transport tests that need exact answers (a 301 with a region, a wrong CRC32, a connection closed while
idle, a body cut short) where a real service cannot be made to misbehave on cue.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple


class Answer(NamedTuple):
    """One scripted answer; ``close`` ends the connection after it without saying so, ``drop`` sends nothing."""

    status: int = 200
    body: bytes = b"{}"
    headers: tuple[tuple[str, str], ...] = ()
    close: bool = False
    drop: bool = False
    length: int | None = None  # the Content-Length to announce (default: the body's)


class Seen(NamedTuple):
    """A request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    connection: int


class Scripted:
    """Answers requests in order from ``script`` (then ``default``); counts connections; thread-safe."""

    def __init__(self, default: Answer | None = None, *, tls: Any = None) -> None:
        self.script: list[Answer | Callable[[Seen], Answer]] = []
        self.default = default or Answer()
        self.seen: list[Seen] = []
        self.connections = 0
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._scheme = "http"
        if tls is not None:  # an ssl.SSLContext with the server's certificate
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
            self._scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{self._scheme}://{host!s}:{port}"

    def start(self) -> Scripted:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, seen: Seen) -> Answer:
        with self._lock:
            self.seen.append(seen)
            step = self.script.pop(0) if self.script else self.default
        return step(seen) if callable(step) else step

    def _connected(self) -> int:
        with self._lock:
            self.connections += 1
            return self.connections


def _handler_for(server: Scripted) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def setup(self) -> None:
            super().setup()
            self.number = server._connected()

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, self.number)
            answer = server._next(seen)
            if answer.drop:
                self.close_connection = True
                return
            self.send_response(answer.status)
            for name, value in answer.headers:
                self.send_header(name, value)
            announced = len(answer.body) if answer.length is None else answer.length
            self.send_header("Content-Length", str(announced))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)
            self.wfile.flush()
            if answer.close:
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_HEAD = _handle

    return Handler
