"""``appconfig://``: sessions, tokens and poll intervals over both transports, the extension, errors, /tmp."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from confstage import Config
from confstage.errors import ConfigurationError, KeyNotFoundError, SourceError
from confstage.sources import build_source
from confstage.sources.appconfig import AppConfigSource, agent_port, extension_present
from confstage.testing import AppConfigServer
from confstage.transport import Transport
from confstage.transport.botocore import BotocoreTransport
from confstage.transport.lite.transport import LiteTransport

from .conftest import FakeClock

TRANSPORTS: dict[str, Callable[[], Transport]] = {"lite": LiteTransport, "botocore": BotocoreTransport}
START, LATEST = "StartConfigurationSession", "GetLatestConfiguration"
DOCUMENT = {"db_url": "postgres://prd", "port": 5432, "debug": False, "limits": {"rps": 10}, "name": None}


@pytest.fixture(name="server")
def fixture_server(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[AppConfigServer]:
    """An emulator on the test's fake clock, with AppConfigData pointed at it (one attempt per call)."""
    with AppConfigServer(clock=clock) as server:
        monkeypatch.setenv("AWS_ENDPOINT_URL_APPCONFIGDATA", server.endpoint)
        monkeypatch.setenv("CONFSTAGE_MAX_ATTEMPTS", "1")
        server.deploy("app", "prd", "main", DOCUMENT)
        yield server


@pytest.fixture(name="transport", params=list(TRANSPORTS))
def fixture_transport(request: pytest.FixtureRequest, server: AppConfigServer) -> Iterator[Transport]:
    """Each test once per transport (made after the endpoint is set)."""
    made = TRANSPORTS[request.param]()
    yield made
    close = getattr(made, "close", None)
    if callable(close):
        close()


def source(transport: Transport | None, clock: FakeClock, url: str = "appconfig://app/main", **kw: Any) -> Any:
    made = build_source(url, transport=transport)
    assert isinstance(made, AppConfigSource)
    made._clock = clock  # the poll interval measured on the test's clock
    for name, value in kw.items():
        setattr(made, name, value)
    return made


def client(src: AppConfigSource, clock: FakeClock, **kw: Any) -> Config:
    kw.setdefault("cache_dir", "")
    return Config([src], stage="PRD", clock=clock, **kw)


def test_a_document_is_a_stage_and_non_strings_are_json_text(
    server: AppConfigServer, transport: Transport, clock: FakeClock
) -> None:
    """Each top-level key is a key; numbers, booleans, objects and null come as JSON text the typed getters read."""
    cfg = client(source(transport, clock), clock)
    assert cfg.get("db_url") == "postgres://prd"
    assert cfg.get_int("port") == 5432
    assert cfg.get_bool("debug") is False
    assert cfg.get_json("limits") == {"rps": 10}
    assert cfg.get("name") == "null"
    with pytest.raises(KeyNotFoundError):
        cfg.get("absent")
    assert server.requests == [START, LATEST]


def test_the_poll_interval_is_honoured_whatever_the_ttl(
    server: AppConfigServer, transport: Transport, clock: FakeClock
) -> None:
    """Before the interval no request goes out, even forced; after it one poll, whose empty answer keeps the value."""
    src = source(transport, clock)
    cfg = client(src, clock, ttl=1)
    assert cfg.get("db_url") == "postgres://prd"
    server.deploy("app", "prd", "main", {**DOCUMENT, "db_url": "postgres://new"})
    clock.tick(30)
    assert cfg.get("db_url") == "postgres://prd"
    assert cfg.get("db_url", force=True) == "postgres://prd"
    assert server.requests == [START, LATEST]
    clock.tick(30)
    assert cfg.get("db_url") == "postgres://new"
    assert src.version("PRD") == "2"
    clock.tick(60)
    assert cfg.get("db_url") == "postgres://new"  # an empty answer: unchanged
    assert server.requests == [START, *[LATEST] * 3]
    assert src.version("PRD") == "2"


def test_the_interval_the_session_asked_for_is_the_one_kept(
    server: AppConfigServer, transport: Transport, clock: FakeClock
) -> None:
    """``?poll_interval=120``: the service answers 120 s, and no poll goes out before."""
    cfg = client(source(transport, clock, "appconfig://app/main?poll_interval=120"), clock, ttl=0.5)
    cfg.get("port")
    clock.tick(119)
    cfg.get("port")
    assert server.requests == [START, LATEST]
    clock.tick(1)
    cfg.get("port")
    assert server.requests == [START, LATEST, LATEST]


def test_an_expired_token_starts_one_new_session(
    server: AppConfigServer, transport: Transport, clock: FakeClock
) -> None:
    """A token the service refuses (24 h old) is replaced by exactly one new session, whose answer is served."""
    src = source(transport, clock)
    assert src.fetch("PRD", ())["port"] == "5432"
    clock.tick(24 * 3600 + 1)
    assert src.fetch("PRD", ())["port"] == "5432"
    assert server.requests == [START, LATEST, LATEST, START, LATEST]


def test_a_second_refusal_fails_the_fetch_and_stale_values_are_served(
    server: AppConfigServer, transport: Transport, clock: FakeClock
) -> None:
    """Refused again after the new session: a SourceError, and the cache layer serves what it held."""
    src = source(transport, clock)
    cfg = client(src, clock, ttl=1)
    assert cfg.get("port") == "5432"
    clock.tick(60)
    server.fail_next(3, status=400)
    with pytest.raises(SourceError) as exc:
        src.fetch("PRD", ())
    assert "BadRequestException" in str(exc.value)
    assert server.requests == [START, LATEST, LATEST, START]  # one new session, refused too
    server.fail_next(3, status=400)
    assert cfg.get("port") == "5432"  # stale-on-error
    assert cfg.stats()["sources"]["appconfig://app/main"]["stale"] == 1


def test_a_network_failure_is_retried_on_the_next_fetch_with_the_same_session(
    server: AppConfigServer, transport: Transport, clock: FakeClock
) -> None:
    """A 503 fails the fetch; the token was not used, so the next fetch polls with it (no new session)."""
    src = source(transport, clock)
    src.fetch("PRD", ())
    clock.tick(60)
    server.fail_next(1, status=503)
    with pytest.raises(SourceError):
        src.fetch("PRD", ())
    assert src.fetch("PRD", ())["db_url"] == "postgres://prd"
    assert server.requests == [START, LATEST, LATEST, LATEST]


@pytest.mark.parametrize(
    ("url", "stage"),
    [("appconfig://nope/main", "PRD"), ("appconfig://app/main", "DEV"), ("appconfig://app/nope", "PRD")],
)
def test_unknown_identifiers_are_named(
    server: AppConfigServer, transport: Transport, clock: FakeClock, url: str, stage: str
) -> None:
    """An unknown application, environment or profile is a SourceError naming all three."""
    with pytest.raises(SourceError) as exc:
        source(transport, clock, url).fetch(stage, ())
    message = str(exc.value)
    assert "ResourceNotFoundException" in message
    app, _, profile = url.removeprefix("appconfig://").partition("/")
    assert f"{app}/{stage.lower()}/{profile}" in message


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("not json: hunter2", "is not valid JSON"),
        ('["hunter2"]', "must be a JSON object, not a JSON array"),
        ('"hunter2"', "must be a JSON object, not a JSON string"),
    ],
)
def test_a_document_that_is_not_a_json_object_is_named_never_quoted(
    server: AppConfigServer, transport: Transport, clock: FakeClock, content: str, problem: str
) -> None:
    """Not JSON, or JSON that is not an object: the error names configuration and version, never the content."""
    server.deploy("app", "prd", "main", content, content_type="text/plain")
    with pytest.raises(SourceError) as exc:
        source(transport, clock).fetch("PRD", ())
    assert problem in str(exc.value)
    assert "app/prd/main (version 2)" in str(exc.value)
    if problem == "is not valid JSON":
        assert "is not valid JSON (line 1, column 1); it was sent as text/plain" in str(exc.value)
    assert "hunter2" not in str(exc.value)
    assert exc.value.__cause__ is None
    assert exc.value.__context__ is None


def test_a_broken_deployment_keeps_failing_until_a_good_one(
    server: AppConfigServer, transport: Transport, clock: FakeClock
) -> None:
    """A document that does not parse fails every fetch (a new session each time), never passing the document
    held before off as current; the next good deployment is read."""
    src = source(transport, clock)
    src.fetch("PRD", ())
    server.deploy("app", "prd", "main", "{broken")
    clock.tick(60)
    for _ in range(2):
        with pytest.raises(SourceError, match="is not valid JSON"):
            src.fetch("PRD", ())
    server.deploy("app", "prd", "main", {"fixed": "yes"})
    assert dict(src.fetch("PRD", ())) == {"fixed": "yes"}
    assert src.version("PRD") == "3"
    assert server.requests == [START, LATEST, LATEST, START, LATEST, START, LATEST]


def test_keys_that_break_the_key_rule_are_left_out(
    server: AppConfigServer, transport: Transport, clock: FakeClock
) -> None:
    """A top-level name that is no legal key is not served; the others are."""
    server.deploy("app", "prd", "main", {"": "x", "bad key\n": "y", "good": "z"})
    assert dict(source(transport, clock).fetch("PRD", ())) == {"good": "z"}


def test_the_environment_template(server: AppConfigServer, clock: FakeClock) -> None:
    """``{stage}`` is the stage in lower case, ``{STAGE}`` the stage as it is, anything else verbatim."""
    server.deploy("app", "PRD", "main", {"k": "upper"})
    server.deploy("app", "live-prd", "main", {"k": "prefixed"})
    assert source(None, clock, "appconfig://app/main?environment={STAGE}").fetch("PRD", ())["k"] == "upper"
    assert "k" not in source(None, clock, "appconfig://app/main").fetch("PRD", ())  # prd: the document
    assert source(None, clock, "appconfig://app/main?environment=live-{stage}").fetch("PRD", ())["k"] == "prefixed"


def test_a_tmp_snapshot_serves_a_new_process_and_never_holds_a_token(
    server: AppConfigServer, transport: Transport, clock: FakeClock, tmp_path: Path
) -> None:
    """A second client (a new process) reads the stage file with no request, and knows its version label; no file
    holds a session token."""
    cache = str(tmp_path / "snapshots")
    src = source(transport, clock)
    assert client(src, clock, cache_dir=cache).get("db_url") == "postgres://prd"
    token = src._sessions["PRD"].token
    assert token
    again = client(source(transport, clock), clock, cache_dir=cache)
    assert again.get_int("port") == 5432
    assert server.requests == [START, LATEST]
    # The version label travels with the values (the new process knows what it serves), the token never does.
    label = src.version("PRD")
    assert label
    assert again._chain.layers[0].version("PRD") == label
    stage_files = list(Path(cache).rglob("*.json"))
    assert [json.loads(p.read_text()).get("version") for p in stage_files] == [label]
    for path in Path(cache).rglob("*"):
        if path.is_file():
            assert token not in path.read_text()


def test_concurrent_reads_make_one_session(server: AppConfigServer, clock: FakeClock) -> None:
    """Callers of one stage share one flight, so one session and one poll."""
    from concurrent.futures import ThreadPoolExecutor

    cfg = client(source(None, clock), clock)
    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(lambda _: cfg.get("db_url"), range(16))) == {"postgres://prd"}
    assert server.requests == [START, LATEST]


# -- the extension -------------------------------------------------------------------------------


@pytest.fixture(name="agent_env")
def fixture_agent_env(server: AppConfigServer, monkeypatch: pytest.MonkeyPatch) -> AppConfigServer:
    """The extension's port pointed at the emulator's local path."""
    monkeypatch.setenv("AWS_APPCONFIG_EXTENSION_HTTP_PORT", str(server.port))
    return server


def test_the_extension_is_read_unsigned_with_no_session(agent_env: AppConfigServer, clock: FakeClock) -> None:
    """``via=agent``: one GET of the local path per fetch, the same keys as through the API."""
    src = source(None, clock, "appconfig://app/main?via=agent")
    assert src.via == "agent"
    assert dict(src.fetch("PRD", ())) == dict(source(None, clock, "appconfig://app/main?via=api").fetch("PRD", ()))
    assert agent_env.requests == ["Agent", START, LATEST]


def test_the_extension_not_found_and_failing_are_told_apart(agent_env: AppConfigServer, clock: FakeClock) -> None:
    """404: no such configuration; 5xx: the extension failed; nothing listening: it did not answer."""
    with pytest.raises(SourceError, match=r"has no configuration app/dev/main \(HTTP 404"):
        source(None, clock, "appconfig://app/main?via=agent").fetch("DEV", ())
    agent_env.fail_next(1, status=502)
    with pytest.raises(SourceError, match=r"failed for app/prd/main with HTTP 502"):
        source(None, clock, "appconfig://app/main?via=agent").fetch("PRD", ())
    src = source(None, clock, "appconfig://app/main?via=agent")
    src.agent_port = 9  # nothing listens there
    with pytest.raises(SourceError, match="did not answer"):
        src.fetch("PRD", ())


def test_auto_uses_the_extension_when_present_and_logs_why(
    server: AppConfigServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The port variable or an appconfig entry in /opt/extensions means present; otherwise the API."""
    empty = tmp_path / "extensions"
    empty.mkdir()
    assert extension_present({}, str(empty)) is None
    assert extension_present({}, str(tmp_path / "missing")) is None
    (empty / "AWS-AppConfig-Extension").write_text("")
    assert extension_present({}, str(empty)) == f"{empty}/AWS-AppConfig-Extension exists"
    assert (
        extension_present({"AWS_APPCONFIG_EXTENSION_HTTP_PORT": "2773"}) == "AWS_APPCONFIG_EXTENSION_HTTP_PORT is set"
    )
    with caplog.at_level(logging.DEBUG, logger="confstage"):
        assert AppConfigSource("app", "main", extensions_dir=str(empty)).via == "agent"
        assert AppConfigSource("app", "main", extensions_dir=str(tmp_path / "missing")).via == "api"
    assert "AWS-AppConfig-Extension exists" in caplog.text
    assert "no AWS_APPCONFIG_EXTENSION_HTTP_PORT" in caplog.text


def test_the_extension_port() -> None:
    """2772 by default; the variable changes it; a variable that is no port is a ConfigurationError."""
    assert agent_port({}) == 2772
    assert agent_port({"AWS_APPCONFIG_EXTENSION_HTTP_PORT": "2773"}) == 2773
    with pytest.raises(ConfigurationError, match="must be a port number"):
        agent_port({"AWS_APPCONFIG_EXTENSION_HTTP_PORT": "http"})


# -- the URL -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("appconfig://app", "expected appconfig://APPLICATION/PROFILE"),
        ("appconfig://app/a/b", "expected appconfig://APPLICATION/PROFILE"),
        ("appconfig://app/main?via=carrier", "'via' must be one of auto, api, agent"),
        ("appconfig://app/main?poll_interval=5", "'poll_interval' must be a whole number"),
        ("appconfig://app/main?environment=", "must not be empty"),
        ("appconfig://app/main?layout=document", "unknown parameter(s) layout"),
    ],
)
def test_bad_urls_are_configuration_errors(url: str, problem: str) -> None:
    """Each problem of a URL is named."""
    with pytest.raises(ConfigurationError) as exc:
        build_source(url)
    assert problem in str(exc.value)


_READER = AppConfigSource("app", "main", via="api")


@settings(max_examples=25, deadline=None)
@given(
    document=st.dictionaries(
        st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,20}", fullmatch=True),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
            max_leaves=6,
        ),
        max_size=8,
    )
)
def test_every_value_reads_back_as_the_json_it_was(document: dict[str, Any]) -> None:
    """A string is served as it is; anything else as JSON text that parses back to the same value."""
    parsed = _READER._parse(json.dumps(document).encode(), "prd", "1", "test")
    assert parsed.keys() == document.keys()
    for key, value in document.items():
        assert parsed[key] == value if isinstance(value, str) else json.loads(parsed[key]) == value


def test_no_endpoint_variable_leaks_between_tests() -> None:
    """The emulator's endpoint is set only inside the fixture (the suite's dead endpoint otherwise)."""
    assert "AWS_ENDPOINT_URL_APPCONFIGDATA" not in os.environ


CHILD = """
import json, sys
import confstage
values = {key: confstage.get(key) for key in ("db_url", "port")}
sdk = sorted(m for m in sys.modules if m.split(".")[0] in ("boto3", "botocore"))
print(json.dumps({"values": values, "sdk": sdk}))
"""


def test_inside_lambda_the_lite_transport_reads_it_without_botocore(server: AppConfigServer, tmp_path: Path) -> None:
    """A fresh interpreter set up as Lambda starts one reads appconfig:// through lite: no boto3, no botocore."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "CONFSTAGE_")) and not k.endswith(("CA_BUNDLE", "_PROXY", "_proxy"))
    }
    env.update(
        {
            "HOME": str(tmp_path),
            "AWS_LAMBDA_FUNCTION_NAME": "fn",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_APPCONFIGDATA": server.endpoint,
            "CONFSTAGE_SOURCES": "appconfig://app/main",
            "CONFSTAGE_STAGE": "PRD",
            "CONFSTAGE_CACHE_DIR": str(tmp_path / "cache"),
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        }
    )
    done = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=60, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {"values": {"db_url": "postgres://prd", "port": "5432"}, "sdk": []}
    assert server.requests == [START, LATEST]


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1", "ap-southeast-7"])
def test_lite_reaches_the_host_botocore_reaches(region: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """With no endpoint variable, lite's AppConfigData host and signing name are botocore's in every partition."""
    import boto3

    from confstage.transport import AwsRequest
    from confstage.transport.protocols import prepare

    monkeypatch.delenv("AWS_ENDPOINT_URL")
    request = AwsRequest("appconfigdata", "GetLatestConfiguration", {"ConfigurationToken": "a+b/c="})
    prepared = prepare(request, region)
    data = boto3.client("appconfigdata", region_name=region)
    assert f"{prepared.address.scheme}://{prepared.address.host}" == data.meta.endpoint_url
    assert prepared.address.path == "/configuration"
    assert prepared.query == (("configuration_token", "a+b/c="),)
    assert prepared.signing_name == data.meta.service_model.signing_name == "appconfig"


# -- a state machine against a reference model ---------------------------------------------------


class SessionMachine(RuleBasedStateMachine):
    """Fetches, deployments, clock steps (up to past a token's 24 hours) and injected 503s, checked against a
    ten-line model: the exact requests each fetch makes (so an early poll, a refused token or a needless session
    shows) and the value it returns."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.server = AppConfigServer(clock=self.clock)
        self.server.start()
        self.app = "app"
        self.version = 1
        self.server.deploy(self.app, "prd", "main", {"v": "1"})
        environ = {**os.environ, "AWS_ENDPOINT_URL_APPCONFIGDATA": self.server.endpoint, "CONFSTAGE_MAX_ATTEMPTS": "1"}
        self.transport = LiteTransport(environ=environ)
        self.source = AppConfigSource(self.app, "main", via="api", transport=self.transport, clock=self.clock)
        # the model
        self.held: dict[str, str] | None = None
        self.poll_at = -float("inf")
        self.token_at: float | None = None  # when the session's current token was issued (None: no session)
        self.faults = 0

    def teardown(self) -> None:
        self.transport.close()
        self.server.close()

    @rule(seconds=st.sampled_from([1, 14, 59, 60, 61, 600, 24 * 3600 + 1]))
    def tick(self, seconds: float) -> None:
        self.clock.tick(seconds)

    @rule()
    def deploy(self) -> None:
        self.version += 1
        self.server.deploy(self.app, "prd", "main", {"v": str(self.version)})

    @rule()
    def fail_next(self) -> None:
        self.server.fail_next(1, status=503)
        self.faults += 1

    @rule()
    def fetch(self) -> None:
        now = self.clock()
        before = len(self.server.requests)
        if self.held is not None and now < self.poll_at:
            expected, value = [], self.held
        elif self.faults:
            expected, value = [START if self.token_at is None else LATEST], None
        elif self.token_at is None:
            expected, value = [START, LATEST], {"v": str(self.version)}
        elif now - self.token_at > 24 * 3600:
            expected, value = [LATEST, START, LATEST], {"v": str(self.version)}
        else:
            expected, value = [LATEST], {"v": str(self.version)}
        if value is None:
            with pytest.raises(SourceError):
                self.source.fetch("PRD", ())
            self.faults -= 1
        else:
            assert dict(self.source.fetch("PRD", ())) == value
            if expected:
                self.held, self.poll_at, self.token_at = value, now + 60, now
        assert self.server.requests[before:] == expected


TestSessionMachine = SessionMachine.TestCase
TestSessionMachine.settings = settings(max_examples=30, stateful_step_count=20, deadline=None)
