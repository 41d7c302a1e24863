"""Paging always ends: on a token the store already gave, at a page cap, and at the fetch's deadline.

A store that answered empty pages with a new NextToken for ever (seen with BatchGetSecretValue) kept the fetch
thread paging after ``get`` had given up, and every later refresh started another such thread. These tests drive
``Caller.pages`` with token scripts drawn by hypothesis (loops, endless runs, deadlines passing mid-walk), then an
endless-token HTTP server through a real client on both transports.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confstage import Config, SourceError, _context, aws
from confstage.testing import MockTransport
from confstage.transport import AwsRequest, Transport
from confstage.transport.botocore import BotocoreTransport
from confstage.transport.lite.transport import LiteTransport
from confstage.transport.lite.transport import Settings as LiteSettings

CAP = 12  # aws.MAX_PAGES for the generated walks


@pytest.fixture(autouse=True)
def _small_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aws, "MAX_PAGES", CAP, raising=False)


def walk(operation: str, script: list[str | None], late_after: int | None) -> tuple[list[AwsRequest], Exception | None]:
    """Page ``operation`` against a store whose n-th page hands back ``script[n]`` as its next token (None: the
    last page; past the script: a new token each time); the fetch deadline passes after ``late_after`` pages."""
    ask, answer = aws.PAGES[operation][0]

    def handler(request: AwsRequest) -> dict[str, Any]:
        n = len(transport.requests) - 1
        if late_after is not None and n + 1 >= late_after:
            _context.DEADLINE.set(time.monotonic() - 1.0)  # this thread's fetch deadline has now passed
        token = script[n] if n < len(script) else f"fresh-{n}"
        page: dict[str, Any] = {"SecretValues": [], "Parameters": [], "Items": [], "IsTruncated": token is not None}
        if token is not None:
            page[answer] = token if ask != "ExclusiveStartKey" else {"id": {"S": token}}
        return page

    transport = MockTransport(handler)
    caller = aws.Caller("test://paging", transport)
    error: Exception | None = None
    token = _context.DEADLINE.set(None)
    try:
        for _ in caller.pages(operation, {}):
            pass
    except SourceError as exc:
        error = exc
    finally:
        _context.DEADLINE.reset(token)
    return transport.requests, error


PAGED = ["dynamodb:Query", "ssm:GetParametersByPath", "s3:ListObjectsV2", "secretsmanager:BatchGetSecretValue"]


@settings(max_examples=200, deadline=None)
@given(
    operation=st.sampled_from(PAGED),
    script=st.lists(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])), max_size=20),
    late_after=st.one_of(st.none(), st.integers(min_value=1, max_value=20)),
)
def test_every_walk_ends_and_says_why(operation: str, script: list[str | None], late_after: int | None) -> None:
    """The walk stops at the first of: the last page, a repeated token, the deadline, the cap; never later."""
    requests, error = walk(operation, script, late_after)
    # The oracle: replay the script.
    seen: set[str] = set()
    expected_requests, expected = 0, "end"
    for n in range(CAP):
        expected_requests = n + 1
        token = script[n] if n < len(script) else f"fresh-{n}"
        if token is None:
            expected = "end"
            break
        if token in seen:
            expected = "loop"
            break
        seen.add(token)
        if late_after is not None and n + 1 >= late_after and n + 1 < CAP:  # checked before asking for a next page
            expected = "deadline"
            break
    else:
        expected = "cap"
    assert len(requests) == expected_requests
    if expected == "end":
        assert error is None
    else:
        assert error is not None
        assert {"loop": "already given", "deadline": "deadline passed", "cap": "pages (the cap)"}[expected] in str(
            error
        )
        assert operation in str(error)


def test_the_first_page_is_asked_even_with_no_deadline_left() -> None:
    """The deadline is checked before each *next* page; the first request is the transport's to refuse."""
    requests, error = walk("ssm:GetParametersByPath", [None], late_after=1)
    assert len(requests) == 1
    assert error is None


# -- an endless store over HTTP, through a real client on both transports -----------------------


class EndlessSecrets(ThreadingHTTPServer):
    """Answers every BatchGetSecretValue with no secrets and a new NextToken, for ever; records when."""

    daemon_threads = True

    def __init__(self) -> None:
        self.times: list[float] = []
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _EndlessHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _EndlessHandler(BaseHTTPRequestHandler):
    server: EndlessSecrets
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with self.server.lock:
            self.server.times.append(time.monotonic())
            n = len(self.server.times)
        body = json.dumps({"SecretValues": [], "Errors": [], "NextToken": f"token-{n}"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(name="endless")
def fixture_endless() -> Iterator[EndlessSecrets]:
    server = EndlessSecrets()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def fetch_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "confstage-fetch"]


@pytest.mark.parametrize("kind", ["lite", "botocore"])
def test_no_request_after_the_fetch_deadline_on_either_transport(
    endless: EndlessSecrets, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The reproduced defect: get() gives up at its deadline, and the fetch thread stops asking there too."""
    monkeypatch.setattr(
        aws, "MAX_PAGES", 1_000_000, raising=False
    )  # the deadline, not the cap, is what must stop this walk
    monkeypatch.setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", endless.url)
    transport: Transport
    if kind == "lite":
        transport = LiteTransport(settings=LiteSettings(0.5, 0.5, 1), environ=dict(os.environ))
    else:
        transport = BotocoreTransport(endpoint_url=endless.url)
    before = set(fetch_threads())
    client = Config(
        "secretsmanager://app?layout=secrets", stage="PRD", cache_dir="", fetch_timeout=0.4, transport=transport
    )
    started = time.monotonic()
    with pytest.raises(SourceError):
        client.get("db")
    gave_up = time.monotonic()  # get waits for the flight until the flight's own deadline, then raises
    assert gave_up - started < 2.0
    for thread in set(fetch_threads()) - before:
        thread.join(timeout=5)
        assert not thread.is_alive(), "the fetch thread kept paging after its deadline"
    assert endless.times, "the store was asked at least once"
    # A request may start just before the deadline (and reach the server a moment later), none after it.
    assert max(endless.times) <= gave_up + 0.05
    asked = len(endless.times)
    # A later forced get inside the failure backoff starts no second endless walk: it is refused at once.
    with pytest.raises(SourceError, match="next attempt in"):
        client.get("db", force=True)
    assert not [t for t in set(fetch_threads()) - before if t.is_alive()]
    assert len(endless.times) == asked
    transport.close()  # its idle connections, not left for the garbage collector to warn about in another test
