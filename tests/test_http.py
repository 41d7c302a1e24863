"""confstage.transport.lite.http reads HTTP/1.1 answers byte-exactly: lengths, chunks, closes, informational answers,
and refuses what is not HTTP; every answer here is written byte for byte by a loopback socket server. HTTP dates
(protocols.http_date/parse_http_date) agree with the email package.
"""

from __future__ import annotations

import datetime
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confstage.transport import protocols
from confstage.transport.lite import http as _http


class Canned:
    """A loopback server answering each request with the next canned bytes; records the raw requests."""

    def __init__(self) -> None:
        self.answers: list[bytes] = []
        self.requests: list[bytes] = []
        self.clients: list[_http.Connection] = []  # closed by stop(), so no socket outlives its test
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            threading.Thread(target=self._connection, args=(sock,), daemon=True).start()

    def _connection(self, sock: socket.socket) -> None:
        with sock:
            buffer = b""
            while True:
                while b"\r\n\r\n" not in buffer:
                    chunk = sock.recv(65536)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                while len(buffer) < length:
                    buffer += sock.recv(65536)
                self.requests.append(head + b"\r\n\r\n" + buffer[:length])
                buffer = buffer[length:]
                if not self.answers:
                    return
                answer = self.answers.pop(0)
                sock.sendall(answer)
                if answer.endswith(b"<close>"):
                    return

    def stop(self) -> None:
        for conn in self.clients:
            conn.close()
        self._listener.close()


@pytest.fixture(name="canned")
def fixture_canned() -> Iterator[Canned]:
    """A canned-answer server on 127.0.0.1."""
    server = Canned()
    yield server
    server.stop()


def connect(canned: Canned, deadline: float | None = None) -> _http.Connection:
    limits = _http.Limits(time.monotonic)
    limits.deadline, limits.read_timeout = deadline, 2.0
    canned.clients.append(_http.Connection("http", "127.0.0.1", canned.port, limits))
    return canned.clients[-1]


def exchange(conn: _http.Connection, method: str = "GET", body: bytes = b"") -> _http.Response:
    return conn.request(method, "/p?q=1", {"Host": "h", "X-A": "1"}, body, 1.0)


def chunked(pieces: list[bytes], trailer: bytes = b"") -> bytes:
    """Chunked framing of ``pieces``, with a chunk extension on every size line and ``trailer`` at the end."""
    out = b"".join(f"{len(p):x};ext=1\r\n".encode() + p + b"\r\n" for p in pieces if p)
    return out + b"0\r\n" + trailer + b"\r\n"


def test_request_bytes_on_the_wire(canned: Canned) -> None:
    """The request line, the headers as given and a Content-Length for a body, nothing else."""
    canned.answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"]
    response = exchange(connect(canned), "POST", b'{"a":1}')
    assert (response.status, response.read()) == (200, b"ok")
    assert canned.requests == [b'POST /p?q=1 HTTP/1.1\r\nHost: h\r\nX-A: 1\r\nContent-Length: 7\r\n\r\n{"a":1}']


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=st.binary(max_size=3000),
    cuts=st.lists(st.integers(min_value=1, max_value=700), max_size=8),
    amt=st.none() | st.integers(min_value=1, max_value=900),
    framing=st.sampled_from(["length", "chunked", "close"]),
)
def test_bodies_come_back_whole(canned: Canned, body: bytes, cuts: list[int], amt: int | None, framing: str) -> None:
    """Any body, framed by length, by chunks of any size (extensions, trailers) or by the close, reads back whole."""
    pieces, rest = [], body
    for cut in cuts:
        pieces.append(rest[:cut])
        rest = rest[cut:]
    pieces.append(rest)
    if framing == "length":
        answer = f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    elif framing == "chunked":
        answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(pieces, b"X-T: 1\r\n")
    else:
        answer = b"HTTP/1.1 200 OK\r\n\r\n" + body + b"<close>"
        body += b"<close>"
    canned.answers = [answer]
    conn = connect(canned)
    response = exchange(conn)
    got = []
    while piece := response.read(amt):
        got.append(piece)
        if amt is not None:
            assert len(piece) <= amt
        if amt is None:
            break
    assert b"".join(got) == body
    assert response.done
    assert conn.reusable == (framing != "close")


def test_keep_alive_and_close_rules(canned: Canned) -> None:
    """HTTP/1.1 stays open unless told to close; HTTP/1.0 closes unless told keep-alive; HEAD and 304 have no body."""
    canned.answers = [
        b"HTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",  # a HEAD answer announces a length it does not send
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\na",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\nb",
    ]
    conn = connect(canned)
    assert exchange(conn).read() == b""
    assert conn.reusable
    assert exchange(conn, "HEAD").read() == b""
    assert conn.reusable
    assert exchange(conn).read() == b"a"
    assert conn.reusable
    assert exchange(conn).read() == b"b"
    assert not conn.connected
    assert len(canned.requests) == 4


def test_informational_answers_are_skipped_and_headers_folded(canned: Canned) -> None:
    """A 100 Continue before the answer is skipped; repeated headers join with commas; names are lower-cased."""
    canned.answers = [
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 201 Created\r\nX-Many: a\r\nx-many: b\r\nContent-Length: 0\r\n\r\n"
    ]
    response = exchange(connect(canned))
    assert (response.status, response.headers["x-many"]) == (201, "a, b")


@pytest.mark.parametrize(
    "answer",
    [
        b"SSH-2.0-OpenSSH\r\n\r\n<close>",
        b"HTTP/1.1 OK\r\n\r\n<close>",
        b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n<close>",
        b"HTTP/1.1 200 OK\r\nContent-Length: ten\r\n\r\n<close>",
        b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n<close>",
        b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70000 + b"\r\n\r\n<close>",
    ],
    ids=["not-http", "no-status", "no-colon", "bad-length", "headers-cut", "huge-line"],
)
def test_what_is_not_http_is_a_protocol_error(canned: Canned, answer: bytes) -> None:
    """Garbage instead of a status line or headers is a ProtocolError, not a guess."""
    canned.answers = [answer]
    with pytest.raises(_http.ProtocolError):
        exchange(connect(canned)).read()


@pytest.mark.parametrize(
    "answer",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort<close>",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n<close>",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab<close>",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabXX0\r\n\r\n",
    ],
    ids=["short-length", "bad-chunk-size", "short-chunk", "no-crlf-after-chunk"],
)
def test_a_body_cut_short_is_a_protocol_error(canned: Canned, answer: bytes) -> None:
    """A body that ends before its length or inside a chunk is a ProtocolError."""
    canned.answers = [answer]
    with pytest.raises(_http.ProtocolError):
        exchange(connect(canned)).read()


def test_a_closed_connection_before_the_answer_is_disconnected(canned: Canned) -> None:
    """A peer that closes without a status line raises Disconnected (what a stale keep-alive looks like)."""
    canned.answers = []
    with pytest.raises(_http.Disconnected):
        exchange(connect(canned))


def test_every_read_keeps_to_the_deadline(canned: Canned) -> None:
    """With the deadline passed, no socket operation starts; a silent peer times out at the time left."""
    conn = connect(canned, deadline=time.monotonic() - 1)
    with pytest.raises(_http.DeadlinePassed):
        exchange(conn)
    canned.answers = [b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly-this"]
    conn = connect(canned, deadline=time.monotonic() + 0.3)
    response = exchange(conn)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        response.read()
    assert time.monotonic() - started < 0.3 + 1.0  # the time left, not the 2 s read timeout


def test_limits_timeout() -> None:
    """The socket timeout is the smaller of the limit and the time left; none left raises."""
    now = [100.0]
    limits = _http.Limits(lambda: now[0])
    limits.read_timeout = 3.0
    assert limits.timeout() == 3.0
    limits.deadline = 101.0
    assert limits.timeout() == 1.0
    assert limits.timeout(0.5) == 0.5
    now[0] = 101.0
    with pytest.raises(_http.DeadlinePassed):
        limits.timeout()


@settings(deadline=None)  # a loaded CI machine is no reason to fail
@given(st.datetimes(min_value=datetime.datetime(1970, 1, 1), max_value=datetime.datetime(9999, 12, 31)))
def test_http_dates_as_the_email_package_reads_and_writes_them(moment: datetime.datetime) -> None:
    """Last-Modified and If-Modified-Since dates read and write as email.utils does (without importing it)."""
    from email.utils import format_datetime, parsedate_to_datetime

    aware = moment.replace(microsecond=0, tzinfo=datetime.timezone.utc)
    text = format_datetime(aware, usegmt=True)
    assert protocols.http_date(aware) == text
    assert protocols.parse_http_date(text) == parsedate_to_datetime(text) == aware
    assert protocols.parse_http_date(text.replace("GMT", "+0000")) is None
    assert protocols.parse_http_date("yesterday") is None
