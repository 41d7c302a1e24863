"""An AppConfigData emulator on 127.0.0.1 for tests and the demo: ``confstage.testing.AppConfigServer``.

moto has no ``appconfigdata`` (and its ``appconfig`` has no environments or deployments), so this serves the
wire protocol itself, as botocore's service model (``appconfigdata/2021-11-11``, rest-json) describes it::

    POST /configurationsessions          StartConfigurationSession → 201 {"InitialConfigurationToken": …}
    GET  /configuration?configuration_token=T
                                         GetLatestConfiguration → 200, the body (empty: unchanged since this
                                         session's last answer), Next-Poll-Configuration-Token,
                                         Next-Poll-Interval-In-Seconds, Content-Type, Version-Label
    GET  /applications/A/environments/E/configurations/P
                                         the AppConfig Lambda extension's local path (``agent_url``)

Tokens are single-use and live 24 hours. A reused, unknown or expired token, or a poll before the session's
interval has passed, is a ``BadRequestException`` (400, ``x-amzn-ErrorType``, ``{"Message", "Reason",
"Details"}``) and leaves the token usable (it was not consumed); unknown identifiers are a
``ResourceNotFoundException`` (404) naming the resource type. Nothing checks signatures.

``deploy`` makes an application, environment and profile exist and gives the profile new content there (a new
version label, ``"1"``, ``"2"``…). ``requests`` lists every request received, in order, by operation name
(``StartConfigurationSession``, ``GetLatestConfiguration``, ``Agent``). ``fail_next(n, status=503)`` answers the
next ``n`` requests with an error, ``fail_next(n, hang=2.0)`` holds them that long first (then answers normally,
or with the error when ``status`` is given). ``clock`` (wall seconds) is injectable: poll intervals and token
expiry are measured with it, so tests step a fake clock instead of sleeping.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

__all__ = ["AppConfigServer", "Deployment"]

TOKEN_LIFETIME = 24 * 3600.0  # seconds a configuration token is valid (the service model says 24 hours)
DEFAULT_POLL_INTERVAL = 60  # seconds: AppConfigData's default when RequiredMinimumPollIntervalInSeconds is unset
_MIN_POLL, _MAX_POLL = 15, 86400  # OptionalPollSeconds' bounds
_MAX_IDENTIFIER = 128
_AGENT_PATH = ("applications", "environments", "configurations")  # /applications/A/environments/E/configurations/P


class Deployment(NamedTuple):
    """What a profile serves in one environment: its content, its type and its version label."""

    content: bytes
    content_type: str
    version: str


class _Session:
    __slots__ = ("application", "environment", "interval", "poll_after", "profile", "sent")

    def __init__(self, application: str, environment: str, profile: str, interval: int, now: float) -> None:
        self.application = application
        self.environment = environment
        self.profile = profile
        self.interval = interval
        self.poll_after = now  # the first GetLatestConfiguration may come at once
        self.sent: str | None = None  # the version label this session last answered with content


class _Token(NamedTuple):
    session: _Session
    issued: float


class _Fault(NamedTuple):
    status: int | None
    hang: float


class _Reply(NamedTuple):
    status: int
    headers: dict[str, str]
    body: bytes


class _Answer(Exception):
    """Raised inside a handler: the reply to send."""

    def __init__(self, reply: _Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


_ERROR_STATUS = {
    "BadRequestException": 400,
    "ResourceNotFoundException": 404,
    "ThrottlingException": 429,
    "InternalServerException": 500,
}
_FAULT_CODES = {429: "ThrottlingException", 400: "BadRequestException", 404: "ResourceNotFoundException"}


def _error(code: str, message: str, status: int | None = None, **fields: Any) -> _Answer:
    body = json.dumps({"Message": message, **fields}).encode()
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
    return _Answer(_Reply(status or _ERROR_STATUS.get(code, 500), headers, body))


def _bad_token(problem: str, message: str) -> _Answer:
    details = {"InvalidParameters": {"ConfigurationToken": {"Problem": problem}}}
    return _error("BadRequestException", message, Reason="InvalidParameters", Details=details)


class AppConfigServer:
    """AppConfigData and the AppConfig extension's local path on 127.0.0.1 (a random port), as a context manager.

    ``with AppConfigServer() as server:`` → ``server.endpoint`` (for ``AWS_ENDPOINT_URL_APPCONFIGDATA`` or
    ``AWS_ENDPOINT_URL``, or a boto3 client's ``endpoint_url``) and ``server.agent_url`` (the extension's base
    URL). ``clock``: wall seconds for poll intervals and token expiry.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.requests: list[str] = []
        self._lock = threading.Lock()
        self._deployments: dict[tuple[str, str, str], Deployment] = {}
        self._environments: dict[str, set[str]] = {}  # application -> its environments
        self._profiles: dict[str, set[str]] = {}  # application -> its configuration profiles
        self._tokens: dict[str, _Token] = {}
        self._faults: list[_Fault] = []
        self._released = threading.Event()  # set on close: a hanging request stops waiting
        self._connections: set[socket.socket] = set()  # open keep-alive connections, shut down on close
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> AppConfigServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Listen on 127.0.0.1 (a random port) in a daemon thread."""
        if self._httpd is not None:
            return
        server = self

        class Handler(_Handler):
            emulator = server

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        self._released.clear()
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop serving (hanging requests are released) and free the port."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._released.set()
        httpd.shutdown()
        with self._lock:
            connections = list(self._connections)
        for connection in connections:  # a keep-alive connection waiting for its next request ends now
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
        httpd.server_close()  # joins the handler threads, which close their sockets
        if self._thread is not None:
            self._thread.join(5)

    @property
    def port(self) -> int:
        """The port it listens on (for ``AWS_APPCONFIG_EXTENSION_HTTP_PORT``)."""
        if self._httpd is None:
            raise RuntimeError("the AppConfigServer is not started (use it as a context manager)")
        return int(self._httpd.server_address[1])

    @property
    def endpoint(self) -> str:
        """AppConfigData's endpoint URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def agent_url(self) -> str:
        """The AppConfig extension's base URL (``http://localhost:2772`` in Lambda)."""
        return f"http://127.0.0.1:{self.port}"

    def __repr__(self) -> str:
        where = self.endpoint if self._httpd is not None else "stopped"
        return f"AppConfigServer({where}, deployments={len(self._deployments)})"

    # -- what it serves ----------------------------------------------------------------------

    def deploy(
        self,
        application: str,
        environment: str,
        profile: str,
        content: str | bytes | dict[str, Any],
        content_type: str = "application/json",
    ) -> str:
        """Deploy ``content`` (text, bytes or a JSON-able dict) to a profile in an environment; its version label."""
        if isinstance(content, dict):
            data = json.dumps(content).encode()
        elif isinstance(content, str):
            data = content.encode()
        else:
            data = bytes(content)
        with self._lock:
            self._environments.setdefault(application, set()).add(environment)
            self._profiles.setdefault(application, set()).add(profile)
            key = (application, environment, profile)
            previous = self._deployments.get(key)
            version = str(int(previous.version) + 1) if previous is not None else "1"
            self._deployments[key] = Deployment(data, content_type, version)
        return version

    def deployment(self, application: str, environment: str, profile: str) -> Deployment | None:
        """What a profile serves in an environment, or None."""
        with self._lock:
            return self._deployments.get((application, environment, profile))

    def fail_next(self, n: int = 1, *, status: int | None = 503, hang: float = 0.0) -> None:
        """Answer the next ``n`` requests with HTTP ``status`` (an AWS error), after holding each ``hang`` seconds.

        ``status=None`` with ``hang``: a slow answer that then succeeds.
        """
        with self._lock:
            self._faults.extend(_Fault(status, hang) for _ in range(n))

    def sessions(self) -> int:
        """How many sessions have been started."""
        return self.requests.count("StartConfigurationSession")

    # -- the operations ----------------------------------------------------------------------

    def _handle(self, method: str, target: str, body: bytes) -> _Reply:
        parts = urlsplit(target)
        path = parts.path.rstrip("/")
        segments = [unquote(s) for s in path.split("/")[1:]]
        if method == "POST" and path == "/configurationsessions":
            operation = "StartConfigurationSession"
        elif method == "GET" and path == "/configuration":
            operation = "GetLatestConfiguration"
        elif (
            method == "GET"
            and len(segments) == 6
            and segments[::2] == ["applications", "environments", "configurations"]
        ):
            operation = "Agent"
        else:
            return _error("UnknownOperationException", f"no operation {method} {parts.path}", 404).reply
        with self._lock:
            self.requests.append(operation)
            fault = self._faults.pop(0) if self._faults else None
        if fault is not None:
            if fault.hang:
                self._released.wait(fault.hang)
            if fault.status is not None:
                code = _FAULT_CODES.get(fault.status, "InternalServerException")
                return _error(code, "injected fault", fault.status).reply
        try:
            if operation == "StartConfigurationSession":
                return self._start(body)
            if operation == "GetLatestConfiguration":
                return self._latest(parse_qs(parts.query).get("configuration_token", [""])[0])
            return self._agent(segments[1], segments[3], segments[5])
        except _Answer as answer:
            return answer.reply

    def _start(self, body: bytes) -> _Reply:
        try:
            request = json.loads(body or b"{}")
        except ValueError:
            raise _error("BadRequestException", "the request body is not JSON") from None
        if not isinstance(request, dict):
            raise _error("BadRequestException", "the request body is not a JSON object")
        names = ("ApplicationIdentifier", "EnvironmentIdentifier", "ConfigurationProfileIdentifier")
        for name in names:
            value = request.get(name)
            if not isinstance(value, str) or not 1 <= len(value) <= _MAX_IDENTIFIER:
                raise _error("BadRequestException", f"{name} must be a string of 1 to {_MAX_IDENTIFIER} characters")
        application, environment, profile = (request[name] for name in names)
        interval = request.get("RequiredMinimumPollIntervalInSeconds", DEFAULT_POLL_INTERVAL)
        if isinstance(interval, bool) or not isinstance(interval, int) or not _MIN_POLL <= interval <= _MAX_POLL:
            raise _error(
                "BadRequestException",
                f"RequiredMinimumPollIntervalInSeconds must be an integer from {_MIN_POLL} to {_MAX_POLL}",
            )
        with self._lock:
            self._exists(application, environment, profile)
            now = self.clock()
            token = self._issue(_Session(application, environment, profile, interval, now), now)
        headers = {"Content-Type": "application/json"}
        return _Reply(201, headers, json.dumps({"InitialConfigurationToken": token}).encode())

    def _exists(self, application: str, environment: str, profile: str) -> None:
        """Raise ResourceNotFoundException naming the first identifier that is unknown (the lock held)."""
        if application not in self._environments:
            raise _not_found("Application", application, "ApplicationIdentifier")
        if environment not in self._environments[application]:
            raise _not_found("Environment", environment, "EnvironmentIdentifier")
        if profile not in self._profiles[application]:
            raise _not_found("ConfigurationProfile", profile, "ConfigurationProfileIdentifier")

    def _issue(self, session: _Session, now: float) -> str:
        # Standard base64, as AWS's tokens are: "+", "/" and "=" test how a client encodes its query.
        token = base64.b64encode(secrets.token_bytes(48)).decode("ascii")
        self._tokens[token] = _Token(session, now)
        return token

    def _latest(self, token: str) -> _Reply:
        with self._lock:
            now = self.clock()
            held = self._tokens.get(token)
            if held is None:
                raise _bad_token("Corrupted", "the configuration token is not valid (unknown or already used)")
            if now - held.issued > TOKEN_LIFETIME:
                raise _bad_token("Expired", "the configuration token has expired")
            session = held.session
            if now < session.poll_after:
                raise _bad_token(
                    "PollIntervalNotSatisfied",
                    f"poll interval of {session.interval} s not satisfied: wait {session.poll_after - now:.0f} s",
                )
            found = self._deployments.get((session.application, session.environment, session.profile))
            if found is None:
                raise _not_found("Configuration", session.profile, "ConfigurationProfileIdentifier")
            del self._tokens[token]  # single use
            session.poll_after = now + session.interval
            following = self._issue(session, now)
            body = b"" if session.sent == found.version else found.content
            session.sent = found.version
        headers = {
            "Next-Poll-Configuration-Token": following,
            "Next-Poll-Interval-In-Seconds": str(session.interval),
            "Content-Type": found.content_type,
            "Version-Label": found.version,
        }
        return _Reply(200, headers, body)

    def _agent(self, application: str, environment: str, profile: str) -> _Reply:
        with self._lock:
            found = self._deployments.get((application, environment, profile))
        if found is None:
            text = f"configuration {application}/{environment}/{profile} not found".encode()
            return _Reply(404, {"Content-Type": "text/plain"}, text)
        headers = {"Content-Type": found.content_type, "Configuration-Version": found.version}
        return _Reply(200, headers, found.content)


def _not_found(kind: str, name: str, parameter: str) -> _Answer:
    return _error(
        "ResourceNotFoundException",
        f"{kind} {name!r} not found",
        ResourceType=kind,
        ReferencedBy={parameter: name},
    )


class _Handler(BaseHTTPRequestHandler):
    emulator: AppConfigServer
    protocol_version = "HTTP/1.1"  # keep-alive, as AWS endpoints

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes: without this, Nagle's algorithm holds the body until the
        # client's delayed ACK (~40 ms a request on Linux), a latency no AWS endpoint has.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self.emulator._lock:
            self.emulator._connections.add(self.connection)

    def finish(self) -> None:
        with self.emulator._lock:
            self.emulator._connections.discard(self.connection)
        super().finish()

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.emulator._handle(method, self.path, body)
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("x-amzn-RequestId", secrets.token_hex(16))
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        if reply.body:
            self.wfile.write(reply.body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: tests read ``requests`` instead."""
