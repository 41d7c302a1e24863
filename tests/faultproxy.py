"""A fault-injecting HTTP proxy on 127.0.0.1 between boto3 and the local AWS endpoint.

Faults are real at the HTTP level, so botocore's retries, timeouts and error parsing run exactly
as they would against AWS: ``"500"`` (an InternalError), ``"throttle"`` (ThrottlingException for
JSON APIs, 503 SlowDown for S3), ``"drop"`` (the connection closes with no response) and
``"slow"`` (the answer comes after ``slow_seconds``, past the client's read timeout), ``"hang"``
(the connection is accepted and never answered), ``"trickle"`` (the real answer, its body one byte every
``trickle_seconds``, so no single read times out) and ``"garbage"`` (a 200 whose body, ``garbage_body``, is
not the protocol's JSON or XML: by default an HTML page that is not even UTF-8). ``fail_after(n, fault)``
lets the next ``n`` requests through and gives every later one ``fault``: a store failing midway through a
batch of writes.
"""

from __future__ import annotations

import http.client
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

FAULTS = ("500", "throttle", "drop", "slow", "hang", "trickle", "garbage")
GARBAGE = b"<html><body>502 upstream gone \xff\xfe</body>"


class _QuietServer(ThreadingHTTPServer):
    """A client hanging up on a kept-alive connection (a body closed unread, a test ending) is no error here."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FaultProxy:
    """Forwards to ``upstream`` unless ``fault`` is set; counts the requests it sees."""

    def __init__(self, upstream: str, *, slow_seconds: float = 1.5, trickle_seconds: float = 0.5) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.fault: str | None = None
        self.slow_seconds = slow_seconds
        self.trickle_seconds = trickle_seconds
        self.garbage_body = GARBAGE
        self.requests = 0
        self._after: tuple[int, str] | None = None  # (request number, fault): requests past it get the fault
        self._count = threading.Lock()
        self._stop = threading.Event()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # serve_forever notices shutdown() only between polls: at its default 0.5 s every test using a proxy
        # waited half a second in teardown (a minute over the suite); 20 ms costs nothing measurable.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_after(self, n: int, fault: str) -> None:
        """Let the next ``n`` requests through, then answer every later one with ``fault``."""
        with self._count:
            self._after = (self.requests + n, fault)

    def heal(self) -> None:
        """Forward every request again (no ``fault``, no ``fail_after``)."""
        with self._count:
            self.fault = None
            self._after = None

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _handle(self) -> None:
            with proxy._count:
                proxy.requests += 1
                number, after = proxy.requests, proxy._after
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            json_api = "X-Amz-Target" in self.headers
            fault = proxy.fault
            if fault is None and after is not None and number > after[0]:
                fault = after[1]
            if fault == "drop":
                self.close_connection = True
                return
            if fault == "500":
                self._error(500, "InternalError" if not json_api else "InternalServerError", json_api)
                return
            if fault == "throttle":
                if json_api:
                    self._error(400, "ThrottlingException", json_api)
                else:
                    self._error(503, "SlowDown", json_api)
                return
            if fault == "slow" and proxy._stop.wait(proxy.slow_seconds):
                return
            if fault == "hang":
                proxy._stop.wait()
                return
            if fault == "garbage":
                self._garbage(json_api)
                return
            self._forward(body, trickle=fault == "trickle")

        def _garbage(self, json_api: bool) -> None:
            payload = proxy.garbage_body
            self.send_response(200)
            ctype = "application/x-amz-json-1.1" if json_api else "application/xml"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def _error(self, status: int, code: str, json_api: bool) -> None:
            if json_api:
                payload = json.dumps({"__type": code, "message": "injected fault"}).encode()
                ctype = "application/x-amz-json-1.1"
            else:
                payload = f"<Error><Code>{code}</Code><Message>injected fault</Message></Error>".encode()
                ctype = "application/xml"
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("x-amzn-ErrorType", code)
            self.end_headers()
            self.wfile.write(payload)

        def _forward(self, body: bytes, *, trickle: bool = False) -> None:
            conn = http.client.HTTPConnection(*proxy.upstream, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request(self.command, self.path, body=body or None, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                self.send_response(response.status, response.reason)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length", "date", "server"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command == "HEAD":
                    return
                if not trickle:
                    self.wfile.write(payload)
                    return
                for i in range(len(payload)):  # one byte at a time: every read succeeds, the whole never ends
                    if proxy._stop.wait(proxy.trickle_seconds):
                        return
                    self.wfile.write(payload[i : i + 1])
                    self.wfile.flush()
            finally:
                conn.close()

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _handle

    return Handler
