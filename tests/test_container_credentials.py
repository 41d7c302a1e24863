"""The lite transport's container credential provider, against a real credentials endpoint on 127.0.0.1.

What SnapStart functions and ECS tasks get instead of key variables: ``AWS_CONTAINER_CREDENTIALS_FULL_URI`` (or
``_RELATIVE_URI``) and a token. Checked here as botocore's ``ContainerProvider`` behaves: the token sent (the file
re-read on each fetch), credentials refreshed before their ``Expiration`` on an injected clock, only the hosts
botocore allows, a dead or garbled endpoint failing within its timeout, one fetch however many threads ask.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from confstage import Config, aws
from confstage.errors import ConfigurationError
from confstage.transport import AwsRequest, NetworkError
from confstage.transport.identity import digest
from confstage.transport.lite.container import (
    ContainerCredentials,
    _expiry,
    _parse,
    _split,
    container_uri,
    uri_problem,
)
from confstage.transport.lite.transport import LiteTransport
from confstage.transport.selection import choose

from .conftest import FakeClock, create_stage_key_table

TOKEN = "token-from-lambda"  # a made-up token the endpoint checks
HOUR = 3600.0


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Endpoint:
    """A credentials endpoint as Lambda and ECS serve one: checks the token, serves what ``answer`` returns.

    ``answer()`` gives (status, body). ``gate`` (when set) holds every request until released; ``tokens`` is
    each request's ``Authorization`` header in order.
    """

    def __init__(self, token: str | None = TOKEN) -> None:
        self.token = token
        self.tokens: list[str | None] = []
        self.serial = 0
        self.expires_in = HOUR
        self.clock: Callable[[], float] = time.time
        self.answer: Callable[[], tuple[int, bytes]] = self.credentials
        self.gate: threading.Event | None = None
        self.arrived = threading.Event()  # set when a request comes in
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # http.server's spelling
                endpoint.tokens.append(self.headers.get("Authorization"))
                endpoint.arrived.set()
                if endpoint.gate is not None:
                    endpoint.gate.wait(5)
                if endpoint.token is not None and self.headers.get("Authorization") != endpoint.token:
                    status, body = 403, b'{"message": "bad token"}'
                else:
                    status, body = endpoint.answer()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # a caller past its timeout left
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.uri = f"http://127.0.0.1:{self.server.server_port}/2021-04-23/credentials"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def credentials(self) -> tuple[int, bytes]:
        """Fresh credentials, numbered, expiring ``expires_in`` seconds after the endpoint's clock."""
        self.serial += 1
        body = {
            "AccessKeyId": f"ASIACONTAINER{self.serial:04d}",
            "SecretAccessKey": f"secret-{self.serial}",
            "Token": f"session-{self.serial}",
            "Expiration": _iso(self.clock() + self.expires_in),
        }
        return 200, json.dumps(body).encode()

    def environ(self, **more: str) -> dict[str, str]:
        """A SnapStart function's environment: the endpoint and its token, a region, no key variables."""
        env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": self.uri, "AWS_REGION": "us-east-1"}
        if self.token is not None:
            env["AWS_CONTAINER_AUTHORIZATION_TOKEN"] = self.token
        return {**env, **more}

    def close(self) -> None:
        if self.gate is not None:
            self.gate.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(name="endpoint")
def fixture_endpoint() -> Iterator[Endpoint]:
    served = Endpoint()
    yield served
    served.close()


def _no_sleep(seconds: float) -> None:
    pass


def _provider(env: dict[str, str], clock: FakeClock | None = None, **kwargs: Any) -> ContainerCredentials:
    return ContainerCredentials(env, now=clock or time.time, sleep=_no_sleep, **kwargs)


# -- signing real requests ----------------------------------------------------------------------------------


def test_lite_signs_with_the_endpoints_credentials(aws_endpoint: str, boto: Any, endpoint: Endpoint) -> None:
    """Role credentials from STS, served by the endpoint, sign lite's requests: moto names the assumed role."""
    role = boto("sts").assume_role(RoleArn="arn:aws:iam::123456789012:role/orders", RoleSessionName="snapstart")
    issued = role["Credentials"]
    body = {
        "AccessKeyId": issued["AccessKeyId"],
        "SecretAccessKey": issued["SecretAccessKey"],
        "Token": issued["SessionToken"],
        "Expiration": _iso(time.time() + HOUR),
    }
    endpoint.answer = lambda: (200, json.dumps(body).encode())
    env = endpoint.environ(AWS_ENDPOINT_URL=aws_endpoint, AWS_LAMBDA_FUNCTION_NAME="orders", HOME="/nonexistent")
    assert choose(env).name == "lite"
    transport = LiteTransport(environ=env)
    try:
        for _ in range(3):
            answer = transport.call(AwsRequest("sts", "GetCallerIdentity", {}))
            assert answer["Arn"] == "arn:aws:sts::123456789012:assumed-role/orders/snapstart"
        boto("secretsmanager").create_secret(Name="app/PRD", SecretString='{"db_url": "postgres://prd"}')
        secret = transport.call(AwsRequest("secretsmanager", "GetSecretValue", {"SecretId": "app/PRD"}))
        assert json.loads(secret["SecretString"]) == {"db_url": "postgres://prd"}
    finally:
        transport.close()
    assert endpoint.tokens == [TOKEN]  # one fetch, with the token, for every request


def test_key_variables_win_over_the_endpoint(aws_endpoint: str, endpoint: Endpoint) -> None:
    """botocore's order: key variables in the environment first; the endpoint is not even asked."""
    env = endpoint.environ(
        AWS_ENDPOINT_URL=aws_endpoint, AWS_ACCESS_KEY_ID="AKIAKEYVARIABLE", AWS_SECRET_ACCESS_KEY="testing"
    )
    transport = LiteTransport(environ=env)
    try:
        assert transport.call(AwsRequest("sts", "GetCallerIdentity", {}))["Account"] == "123456789012"
        assert transport.identity("dynamodb").endswith(f"principal={digest('AKIAKEYVARIABLE')}")
    finally:
        transport.close()
    assert endpoint.tokens == []


def test_identity_is_the_fetched_key_id(endpoint: Endpoint) -> None:
    """The /tmp cache's principal is the digest of the credentials' key id, not of the URI: new credentials
    (another role behind the same URI) name another principal."""
    env = endpoint.environ(AWS_ENDPOINT_URL="http://127.0.0.1:9")
    clock = FakeClock(time.time())
    endpoint.clock = clock
    transport = LiteTransport(environ=env, wall=clock, sleep=_no_sleep)
    first = transport.identity("dynamodb")
    assert first == f"region=us-east-1 endpoint=http://127.0.0.1:9 principal={digest('ASIACONTAINER0001')}"
    assert transport.identity("dynamodb") == first
    clock.tick(HOUR - 14 * 60)  # refreshed: ASIACONTAINER0002
    assert transport.identity("dynamodb") == first.replace(digest("ASIACONTAINER0001"), digest("ASIACONTAINER0002"))
    assert TOKEN not in first
    assert endpoint.uri not in first


# -- refresh before expiry --------------------------------------------------------------------------------------


def test_refreshed_in_the_advisory_window_and_kept_when_that_fails(endpoint: Endpoint, clock: FakeClock) -> None:
    """More than 15 min left: no fetch. Less: a fetch, whose failure keeps the old ones. Less than 10: it must work."""
    endpoint.clock = clock
    provider = _provider(endpoint.environ(), clock)
    assert provider.get().access_key == "ASIACONTAINER0001"
    clock.tick(HOUR - 15 * 60 - 1)  # 15 min and 1 s left
    assert provider.get().access_key == "ASIACONTAINER0001"
    assert len(endpoint.tokens) == 1
    clock.tick(2)  # under 15 min: refreshed
    assert provider.get().access_key == "ASIACONTAINER0002"
    assert len(endpoint.tokens) == 2

    clock.tick(HOUR - 14 * 60)  # 14 min left, and the endpoint fails
    endpoint.answer = lambda: (500, b"{}")
    assert provider.get().access_key == "ASIACONTAINER0002"  # advisory: the old ones stay
    assert len(endpoint.tokens) == 2 + 3  # three attempts
    clock.tick(5 * 60)  # 9 min left: mandatory
    with pytest.raises(NetworkError, match="answered HTTP 500"):
        provider.get()
    endpoint.answer = endpoint.credentials
    assert provider.get().access_key == "ASIACONTAINER0003"


def test_others_sign_with_the_current_ones_while_one_thread_refreshes(endpoint: Endpoint, clock: FakeClock) -> None:
    """In the advisory window a refresh in progress blocks nobody else: they keep the current credentials."""
    endpoint.clock = clock
    provider = _provider(endpoint.environ(), clock)
    provider.get()
    clock.tick(HOUR - 14 * 60)
    endpoint.gate, endpoint.arrived = threading.Event(), threading.Event()
    refreshing = threading.Thread(target=provider.get)
    refreshing.start()
    assert endpoint.arrived.wait(5)
    try:
        assert provider.get().access_key == "ASIACONTAINER0001"  # not waiting for the gate
    finally:
        endpoint.gate.set()
        refreshing.join(5)
    assert provider.get().access_key == "ASIACONTAINER0002"


def test_already_expired_credentials_are_refused(endpoint: Endpoint, clock: FakeClock) -> None:
    """An endpoint serving credentials past their expiry is an error, as botocore makes it."""
    endpoint.clock = clock
    endpoint.expires_in = -60
    with pytest.raises(NetworkError, match="already expired"):
        _provider(endpoint.environ(), clock).get()


def test_token_file_is_read_on_every_fetch(endpoint: Endpoint, clock: FakeClock, tmp_path: Path) -> None:
    """``AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE`` wins over the variable and is re-read at each fetch (rotation)."""
    endpoint.clock = clock
    endpoint.token = None  # accept any token, record it
    token_file = tmp_path / "token"
    token_file.write_text("first-token")
    env = endpoint.environ(
        AWS_CONTAINER_AUTHORIZATION_TOKEN="ignored", AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(token_file)
    )
    provider = _provider(env, clock)
    provider.get()
    token_file.write_text("second-token")
    clock.tick(HOUR - 14 * 60)
    provider.get()
    assert endpoint.tokens == ["first-token", "second-token"]


@pytest.mark.parametrize("bad", ["abc\r\nX-Injected: 1", "abc\n", "\rabc"])
def test_token_with_cr_or_lf_is_refused(endpoint: Endpoint, tmp_path: Path, bad: str) -> None:
    """A token that would split the request's headers is refused before any request, and not shown."""
    with pytest.raises(ConfigurationError, match="CR or LF") as refused:
        _provider(endpoint.environ(AWS_CONTAINER_AUTHORIZATION_TOKEN=bad)).get()
    assert "abc" not in str(refused.value)
    token_file = tmp_path / "token"
    token_file.write_text(bad)
    with pytest.raises(ConfigurationError, match="AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"):
        _provider(endpoint.environ(AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(token_file))).get()
    with pytest.raises(ConfigurationError, match="cannot be read"):
        _provider(endpoint.environ(AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=str(tmp_path / "missing"))).get()
    assert endpoint.tokens == []


def test_a_wrong_token_is_a_clear_error_without_the_token(endpoint: Endpoint) -> None:
    """The endpoint's refusal is named by its status; neither token nor answer body is in the message."""
    with pytest.raises(NetworkError, match="answered HTTP 403") as failed:
        _provider(endpoint.environ(AWS_CONTAINER_AUTHORIZATION_TOKEN="not-the-token")).get()
    assert "not-the-token" not in str(failed.value)
    assert "bad token" not in str(failed.value)


# -- hosts ------------------------------------------------------------------------------------------------------

REFUSED = ["http://10.0.0.1/creds", "http://example.com/creds", "http://169.254.169.254/", "http://[fd00:ec2::24]/"]
ALLOWED = [
    "http://127.0.0.1:9001/creds",
    "http://127.1.2.3/",
    "http://[::1]:8080/",
    "http://localhost/",
    "http://LOCALHOST/",
    "http://169.254.170.2/v2/credentials",
    "http://169.254.170.23/v1/credentials",
    "http://[fd00:ec2::23]/v1/credentials",
    "https://example.com/creds",
]


@pytest.mark.parametrize("uri", REFUSED)
def test_hosts_botocore_refuses_are_refused(uri: str) -> None:
    """Over http only loopback and the documented link-local hosts: anything else is a ConfigurationError naming
    the rule (never the token), auto leaves it to botocore and a forced lite refuses."""
    env = {
        "AWS_CONTAINER_CREDENTIALS_FULL_URI": uri,
        "AWS_CONTAINER_AUTHORIZATION_TOKEN": TOKEN,
        "AWS_REGION": "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": "orders",
        "HOME": "/nonexistent",
    }
    with pytest.raises(ConfigurationError, match="not allowed over http") as refused:
        ContainerCredentials(env)
    assert TOKEN not in str(refused.value)
    assert "169.254.170.23" in str(refused.value)
    choice = choose(env)
    assert choice.name == "botocore"
    assert "not allowed over http" in choice.reason
    with pytest.raises(ConfigurationError, match=r"CONFSTAGE_TRANSPORT=lite.*not allowed over http"):
        choose({**env, "CONFSTAGE_TRANSPORT": "lite"})
    with pytest.raises(ConfigurationError, match="not allowed over http"):
        LiteTransport(environ=env)


@pytest.mark.parametrize("uri", ALLOWED)
def test_hosts_botocore_allows_are_allowed(uri: str) -> None:
    """Loopback (127.0.0.0/8, ::1, localhost), 169.254.170.2, 169.254.170.23, fd00:ec2::23, and https anywhere."""
    assert uri_problem(uri) is None
    env = {"AWS_CONTAINER_CREDENTIALS_FULL_URI": uri, "AWS_LAMBDA_FUNCTION_NAME": "f", "AWS_REGION": "us-east-1"}
    assert choose({**env, "HOME": "/nonexistent"}).name == "lite"


def test_relative_uri_is_the_ecs_host_and_wins() -> None:
    """``AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`` means http://169.254.170.2 + the path, before the full URI."""
    env = {"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials/abc", "AWS_CONTAINER_CREDENTIALS_FULL_URI": "x"}
    assert container_uri(env) == "http://169.254.170.2/v2/credentials/abc"
    assert container_uri({"AWS_CONTAINER_CREDENTIALS_FULL_URI": ""}) is None
    assert uri_problem("ftp://127.0.0.1/") is not None
    assert uri_problem("http://127.0.0.1:notaport/") is not None


@settings(deadline=None, max_examples=150)
@given(
    st.sampled_from(["http", "https", "HTTP"]),
    st.one_of(
        st.ip_addresses().map(lambda ip: f"[{ip}]" if ip.version == 6 else str(ip)),
        st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9.-]{0,20}", fullmatch=True),
    ),
    st.one_of(st.none(), st.integers(0, 65535)),
    st.from_regex(r"(/[a-zA-Z0-9._~%-]*){0,3}(\?[a-z=&0-9]*)?", fullmatch=True),
    st.sampled_from(["", "user@", "u:p@"]),
)
def test_host_and_port_are_urlsplits(scheme: str, host: str, port: int | None, path: str, userinfo: str) -> None:
    """The endpoint URI splits as urllib.parse.urlsplit splits it (the parser avoids its import)."""
    from urllib.parse import urlsplit

    uri = f"{scheme}://{userinfo}{host}{'' if port is None else f':{port}'}{path}"
    expected = urlsplit(uri)
    address = _split(uri)
    assert (address.scheme, address.hostname, address.port) == (expected.scheme, expected.hostname, expected.port)
    assert address.target == (expected.path or "/") + (f"?{expected.query}" if expected.query else "")


@settings(deadline=None, max_examples=200)
@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["Z", "+00:00", "-07:00", "+05:30", ""]),
    st.booleans(),
)
def test_expiration_is_read_as_datetime_reads_it(when: datetime, zone: str, fraction: bool) -> None:
    """``Expiration`` is computed without datetime; the same instant as datetime makes of the same text."""
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + (f".{when.microsecond:06d}" if fraction else "") + zone
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    assert _expiry(text) == pytest.approx(parsed.timestamp(), abs=1e-6)


@pytest.mark.parametrize("text", ["soon", "2026-02-30T00:00:00Z", "2026-12-07T24:00:00Z", "2026-12-07", 17])
def test_expiration_that_is_not_a_date_is_refused(text: object) -> None:
    with pytest.raises(ValueError, match="not"):
        _expiry(text)


# -- a dead or garbled endpoint ---------------------------------------------------------------------------------


def test_hanging_endpoint_fails_within_its_timeout(endpoint: Endpoint) -> None:
    """An endpoint that never answers costs ``attempts`` x ``timeout``, then a NetworkError saying it timed out."""
    endpoint.gate = threading.Event()
    provider = ContainerCredentials(endpoint.environ(), timeout=0.2, attempts=2, sleep=_no_sleep)
    started = time.monotonic()
    with pytest.raises(NetworkError, match="timed out") as failed:
        provider.get()
    assert time.monotonic() - started < 1.5
    assert len(endpoint.tokens) == 2
    assert TOKEN not in str(failed.value)


def test_deadline_bounds_the_fetch(endpoint: Endpoint) -> None:
    """A caller's deadline (monotonic) cuts the attempts short: no second attempt that could not finish."""
    endpoint.gate = threading.Event()
    provider = ContainerCredentials(endpoint.environ(), timeout=1.0, attempts=3, sleep=_no_sleep)
    started = time.monotonic()
    with pytest.raises(NetworkError):
        provider.get(deadline=started + 0.2)
    assert time.monotonic() - started < 0.9
    assert len(endpoint.tokens) == 1


def test_lite_read_fails_clearly_when_the_endpoint_is_down(endpoint: Endpoint) -> None:
    """Through the transport the failure names the operation and the credentials, never the token."""
    env = endpoint.environ(AWS_ENDPOINT_URL="http://127.0.0.1:9")
    endpoint.close()
    transport = LiteTransport(environ=env, sleep=_no_sleep)
    with pytest.raises(NetworkError, match=r"sts:GetCallerIdentity: container credentials: .* failed") as failed:
        transport.call(AwsRequest("sts", "GetCallerIdentity", {}))
    assert TOKEN not in str(failed.value)


GARBAGE = [
    (b"not json", "other than a JSON object"),
    (b"[1, 2]", "other than a JSON object"),
    (b'{"AccessKeyId": "A", "SecretAccessKey": "S", "Token": "T"}', "without Expiration"),
    (b'{"AccessKeyId": "A", "Token": "T", "Expiration": "2099-01-01T00:00:00Z"}', "without SecretAccessKey"),
    (b'{"AccessKeyId": "A", "SecretAccessKey": "S", "Token": "T", "Expiration": "soon"}', "not an ISO 8601"),
]


@pytest.mark.parametrize(("body", "named"), GARBAGE)
def test_garbled_answers_are_named_not_shown(endpoint: Endpoint, body: bytes, named: str) -> None:
    """Each malformed answer says what is wrong with it; no field's value appears."""
    endpoint.answer = lambda: (200, body)
    with pytest.raises(NetworkError, match=named) as failed:
        _provider(endpoint.environ()).get()
    assert '"S"' not in str(failed.value)
    assert "'S'" not in str(failed.value)


@settings(deadline=None, max_examples=100)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.dictionaries(
            st.sampled_from(["AccessKeyId", "SecretAccessKey", "Token", "Expiration", "Other"]),
            st.one_of(st.none(), st.integers(), st.text(max_size=30), st.lists(st.integers(), max_size=2)),
        ).map(lambda d: json.dumps(d).encode()),
    )
)
def test_any_answer_parses_or_is_a_network_error(body: bytes) -> None:
    """Whatever the endpoint sends, the parser gives credentials or a NetworkError, never another exception."""
    failure: NetworkError | None = None
    try:
        held = _parse(body, "http://127.0.0.1")
    except NetworkError as exc:
        failure = exc
    if failure is None:
        assert held.credentials.access_key
        assert held.credentials.secret_key
        assert held.credentials.token
    else:
        try:
            values = list(json.loads(body).values())
        except (ValueError, AttributeError):
            values = []
        shown = [v for v in values if isinstance(v, str) and len(v) > 3 and v in str(failure)]
        assert shown == [] or all(v in "AccessKeyId SecretAccessKey Token Expiration" for v in shown)


# -- threads ----------------------------------------------------------------------------------------------------


def _together(count: int, call: Callable[[], Any]) -> list[Any]:
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = call()
        except Exception as exc:  # collected for the assertions
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_many_threads_one_fetch(endpoint: Endpoint) -> None:
    """Sixteen threads asking at once while the endpoint is slow: one request, the same credentials for all."""
    endpoint.gate = threading.Event()
    provider = _provider(endpoint.environ())
    timer = threading.Timer(0.2, endpoint.gate.set)
    timer.start()
    results = _together(16, lambda: provider.get().access_key)
    assert results == ["ASIACONTAINER0001"] * 16
    assert len(endpoint.tokens) == 1
    assert provider.fetch_count == 1


def test_threads_waiting_on_a_failed_fetch_share_its_failure(endpoint: Endpoint) -> None:
    """When the one fetch fails, the threads that waited for it get its error instead of each fetching again."""
    endpoint.gate = threading.Event()
    endpoint.answer = lambda: (500, b"{}")
    provider = _provider(endpoint.environ(), attempts=1)
    timer = threading.Timer(0.2, endpoint.gate.set)
    timer.start()
    results = _together(8, provider.get)
    assert all(isinstance(result, NetworkError) and "HTTP 500" in str(result) for result in results)
    assert len(endpoint.tokens) == 1


def test_repr_and_errors_hold_no_secret(endpoint: Endpoint) -> None:
    """The provider's repr names the endpoint's host only; the credentials' repr is masked."""
    provider = _provider(endpoint.environ())
    credentials = provider.get()
    assert TOKEN not in repr(provider)
    assert "/2021-04-23/credentials" not in repr(provider)
    assert "secret-1" not in repr(credentials)
    assert "session-1" not in repr(credentials)
    assert provider.peek() is credentials


# -- the /tmp cache under container credentials ----------------------------------------------------------------


def test_tmp_snapshots_follow_the_fetched_principal(
    aws_endpoint: str, boto: Any, endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A SnapStart-like process reads through auto's lite and writes its /tmp snapshot; the next process with the
    same credentials is served by it, one whose endpoint serves another principal's is not (same URI)."""
    create_stage_key_table(boto("dynamodb"), "cfg")
    boto("dynamodb").put_item(
        TableName="cfg", Item={"stage": {"S": "DEV"}, "key": {"S": "db_url"}, "value": {"S": "postgres://one"}}
    )
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("AWS_CA_BUNDLE", raising=False)
    for name, value in endpoint.environ(AWS_LAMBDA_FUNCTION_NAME="orders", HOME=str(tmp_path)).items():
        monkeypatch.setenv(name, value)
    served = endpoint.credentials()[1]
    endpoint.answer = lambda: (200, served)

    def read() -> str:
        aws.reset()  # a new process: a new transport, credentials fetched again
        return Config("dynamodb://cfg", stage="DEV", cache_dir=str(tmp_path / "cache")).get("db_url")

    assert read() == "postgres://one"
    assert aws.runtime_transport().name == "lite"
    boto("dynamodb").put_item(
        TableName="cfg", Item={"stage": {"S": "DEV"}, "key": {"S": "db_url"}, "value": {"S": "postgres://two"}}
    )
    assert read() == "postgres://one"  # the same principal: its snapshot
    endpoint.answer = endpoint.credentials  # another role behind the same URI
    assert read() == "postgres://two"
    assert len(endpoint.tokens) == 3
