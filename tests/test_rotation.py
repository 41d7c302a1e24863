"""Secret rotation: ``refresh_on`` refreshes what a failed call read and retries once; secrets go stale sooner."""

from __future__ import annotations

import asyncio
import json
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

import confstage
from confstage import Config, SourceError, refresh_on
from confstage.testing import MemorySource, lambda_context

from .conftest import FakeClock
from .fakes import DictSource


class AuthError(Exception):
    """What a database driver raises for a wrong password."""


class Database:
    """Accepts only its current password, as a database after a rotation does."""

    def __init__(self, password: str) -> None:
        self.password = password
        self.logins = 0

    def login(self, password: str) -> str:
        self.logins += 1
        if password != self.password:
            raise AuthError("password authentication failed")
        return "connected"


@pytest.fixture(name="source")
def fixture_source() -> DictSource:
    return DictSource({"PRD": {"db_password": "old", "host": "db.internal"}}, secret={"db_password"})


def logging_in(database: Database) -> Callable[[Any, Any], str]:
    """A Lambda handler that logs in with the password it reads, retried once after a refresh on ``AuthError``."""

    @confstage.handler
    @refresh_on(AuthError)
    def lambda_handler(event: Any, context: Any) -> str:
        return database.login(confstage.get("db_password"))

    return lambda_handler


@pytest.fixture(name="config")
def fixture_config(source: DictSource, clock: FakeClock) -> Config:
    return confstage.configure(sources=[source], cache_dir="", clock=clock, ttl=300)


def test_a_rotated_password_is_refreshed_and_the_call_retried_once(
    source: DictSource, config: Config, clock: FakeClock
) -> None:
    """The first attempt fails with the old password; one refresh, and the retry logs in."""
    database = Database("old")

    lambda_handler = logging_in(database)

    assert lambda_handler({}, lambda_context("PRD")) == "connected"
    fetches = source.fetches
    source.values["PRD"]["db_password"] = "new"
    database.password = "new"
    clock.tick(10)
    assert lambda_handler({}, lambda_context("PRD")) == "connected"
    assert source.fetches == fetches + 1
    assert database.logins == 3
    assert lambda_handler({}, lambda_context("PRD")) == "connected"  # the next invocation has the new value
    assert source.fetches == fetches + 1


def test_a_failure_that_persists_is_raised_after_one_retry(source: DictSource, config: Config) -> None:
    """If the refreshed value fails too, the second error propagates; there is no loop."""
    database = Database("something-else")
    confstage.configure(sources=[source], stage="PRD", cache_dir="")

    @refresh_on(AuthError)
    def connect() -> str:
        return database.login(confstage.get("db_password"))

    with pytest.raises(AuthError):
        connect()
    assert database.logins == 2


def test_a_refresh_that_fails_raises_the_original_error_with_the_cause_chained(
    source: DictSource, config: Config, clock: FakeClock
) -> None:
    """When the refresh itself fails, the call's own error is raised, its __cause__ the SourceError."""
    database = Database("new")

    lambda_handler = logging_in(database)

    assert confstage.get("db_password", stage="PRD") == "old"  # cached: the call reads it without a fetch
    clock.tick(10)
    source.failing = "ThrottlingException"
    source.values["PRD"]["db_password"] = "new"
    with pytest.raises(AuthError) as info:
        lambda_handler({}, lambda_context("PRD"))
    assert isinstance(info.value.__cause__, SourceError)


def test_a_storm_of_failures_makes_one_request(source: DictSource, config: Config, clock: FakeClock) -> None:
    """Sixteen invocations failing at once after a rotation share one refresh."""
    database = Database("old")
    confstage.get("db_password", stage="PRD")
    clock.tick(10)
    source.values["PRD"]["db_password"] = database.password = "new"
    barrier = threading.Barrier(16, timeout=10)
    results: list[str] = []

    @confstage.handler
    @refresh_on(AuthError)
    def lambda_handler(event: Any, context: Any) -> str:
        password = confstage.get("db_password")
        barrier.wait()  # everyone has read the old password before anyone refreshes
        return database.login(password)

    fetches = source.fetches
    threads = [
        threading.Thread(target=lambda: results.append(lambda_handler({}, lambda_context("PRD")))) for _ in range(16)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert results == ["connected"] * 16
    assert source.fetches == fetches + 1


class TwoStageSources:
    """Two whole-stage sources, to see which of them a refresh asks."""

    def __init__(self) -> None:
        self.secrets = DictSource({"PRD": {"db_password": "old"}}, url="dict://secrets", secret={"db_password"})
        self.plain = DictSource({"PRD": {"host": "db.internal"}}, url="dict://plain")


def test_only_the_keys_the_call_read_are_refreshed(clock: FakeClock) -> None:
    """A key read before the wrapped call (another source) is not refetched; keys= narrows explicitly."""
    both = TwoStageSources()
    confstage.configure(sources=[both.plain, both.secrets], cache_dir="", clock=clock)
    database = Database("new")

    @refresh_on(AuthError)
    def connect() -> str:
        return database.login(confstage.get("db_password"))

    with confstage.bind("PRD"):
        assert confstage.get("host") == "db.internal"
        clock.tick(10)
        both.secrets.values["PRD"]["db_password"] = "new"
        plain, secret = both.plain.fetches, both.secrets.fetches
        assert connect() == "connected"
    assert (both.plain.fetches, both.secrets.fetches) == (plain, secret + 1)


def test_refresh_on_settings_refreshes_their_keys(clock: FakeClock) -> None:
    """A call that reads a settings object kept in the snapshot has read the object's keys."""
    from dataclasses import dataclass

    @dataclass(frozen=True)
    class Db:
        db_password: str
        host: str

    source = DictSource({"PRD": {"db_password": "old", "host": "h"}})
    confstage.configure(sources=[source], cache_dir="", clock=clock)
    database = Database("new")

    @confstage.handler
    @refresh_on(AuthError)
    def lambda_handler(event: Any, context: Any) -> str:
        return database.login(confstage.settings(Db).db_password)

    with pytest.raises(AuthError):
        lambda_handler({}, lambda_context("PRD"))  # the source still holds the old password
    clock.tick(10)
    source.values["PRD"]["db_password"] = "new"
    with confstage.bind("PRD"):
        confstage.settings(Db)  # the settings object is now in the snapshot the next invocation shares
    assert lambda_handler({}, lambda_context("PRD")) == "connected"


def test_async_functions_are_refreshed_too(source: DictSource, config: Config, clock: FakeClock) -> None:
    """refresh_on wraps coroutines: await, refresh, await again."""
    database = Database("new")
    clock.tick(10)
    source.values["PRD"]["db_password"] = "new"

    @confstage.handler
    @refresh_on(AuthError)
    async def lambda_handler(event: Any, context: Any) -> str:
        await asyncio.sleep(0)
        return database.login(confstage.get("db_password"))

    assert asyncio.run(lambda_handler({}, lambda_context("PRD"))) == "connected"


@pytest.mark.parametrize("bad", [(), ("not an exception",), (42,)])
def test_refresh_on_needs_exception_classes(bad: tuple[Any, ...]) -> None:
    """refresh_on() without exception classes is a TypeError at decoration time."""
    with pytest.raises(TypeError):
        refresh_on(*bad)


# -- secrets go stale sooner ---------------------------------------------------------------------


def test_secrets_are_served_stale_for_less_long_than_plain_values(clock: FakeClock) -> None:
    """With a failing source, plain values are served up to max_stale, secrets only up to secret_max_stale."""
    source = DictSource({"PRD": {"password": "p", "host": "h"}}, secret={"password"})
    config = Config([source], stage="PRD", cache_dir="", clock=clock, ttl=60, max_stale=3600, secret_max_stale=900)
    assert config.get_many(["password", "host"]) == {"password": "p", "host": "h"}
    source.failing = "InternalError"
    clock.tick(600)
    assert config.get_many(["password", "host"]) == {"password": "p", "host": "h"}
    clock.tick(400)  # 1000 s: past the secrets' bound, within max_stale
    assert config.get("host") == "h"
    with pytest.raises(SourceError):
        config.get("password")


def test_secret_max_stale_default_is_shorter_than_max_stale(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> None:
    """CONFSTAGE_SECRET_MAX_STALE defaults to 900 s and is read from the environment."""
    source = DictSource({"PRD": {"password": "p"}}, secret={"password"})
    config = Config([source], stage="PRD", cache_dir="", clock=clock, ttl=60)
    config.get("password")
    source.failing = "InternalError"
    clock.tick(899)
    assert config.get("password") == "p"
    clock.tick(2)
    with pytest.raises(SourceError):
        config.get("password")
    monkeypatch.setenv("CONFSTAGE_SECRET_MAX_STALE", "100")
    again = DictSource({"PRD": {"password": "p"}}, secret={"password"})
    config = Config([again], stage="PRD", cache_dir="", clock=clock, ttl=60)
    config.get("password")
    again.failing = "InternalError"
    clock.tick(101)
    with pytest.raises(SourceError):
        config.get("password")


# -- over HTTP: a rotation done with the AWS API mid-test -------------------------------------------


@pytest.mark.integration
def test_rotation_with_the_aws_api_costs_exactly_one_extra_request(
    boto: Any, requests_made: Counter[str], clock: FakeClock
) -> None:
    """Secrets Manager rotated with PutSecretValue mid-test: refresh_on recovers with one GetSecretValue."""
    secrets = boto("secretsmanager")
    secrets.create_secret(Name="app/PRD", SecretString=json.dumps({"db_password": "old", "db_user": "app"}))
    confstage.configure(sources=["secretsmanager://app"], cache_dir="", clock=clock)
    database = Database("old")

    lambda_handler = logging_in(database)

    assert lambda_handler({}, lambda_context("PRD")) == "connected"
    assert requests_made["secrets-manager.GetSecretValue"] == 1, requests_made
    secrets.put_secret_value(SecretId="app/PRD", SecretString=json.dumps({"db_password": "new", "db_user": "app"}))
    database.password = "new"
    clock.tick(10)
    assert lambda_handler({}, lambda_context("PRD")) == "connected"
    assert requests_made["secrets-manager.GetSecretValue"] == 2


def test_outside_a_handler_the_call_runs_as_an_invocation_of_the_stage_in_force(clock: FakeClock) -> None:
    """Without @handler, refresh_on records and refreshes through an invocation of CONFSTAGE_STAGE's stage."""
    source = MemorySource({"PRD": {"token": "t1"}})
    confstage.configure(sources=[source], stage="PRD", cache_dir="", clock=clock)
    accepted = {"t2"}

    @refresh_on(PermissionError)
    def call() -> str:
        token = confstage.get("token")
        if token not in accepted:
            raise PermissionError("rejected")
        return token

    assert confstage.get("token") == "t1"
    clock.tick(10)
    source.values["PRD"]["token"] = "t2"
    assert call() == "t2"
    assert source.fetches == 2


@pytest.mark.parametrize("code", ["ThrottlingException", "InternalServerError"])
def test_a_refresh_on_storm_asks_a_failing_store_once_per_backoff(
    source: DictSource, config: Config, clock: FakeClock, code: str
) -> None:
    """20 failing calls in 0.05 s made 20 requests to a throttled store; a refresh_on refresh backs off as any does."""
    database = Database("old")
    lambda_handler = logging_in(database)
    assert lambda_handler({}, lambda_context("PRD")) == "connected"
    database.password = "rotated"  # the database moved on, and the store now fails
    source.failing = code
    fetches = source.fetches
    for _ in range(20):
        clock.tick(0.0025)
        with pytest.raises(AuthError) as info:
            lambda_handler({}, lambda_context("PRD"))
        assert isinstance(info.value.__cause__, SourceError)  # the refresh's failure, chained
    assert source.fetches == fetches + 1
    clock.tick(600)  # the backoff (and refresh_on's 5 s interval) long over: the next failure asks once more
    with pytest.raises(AuthError):
        lambda_handler({}, lambda_context("PRD"))
    assert source.fetches == fetches + 2
    source.failing = None
    source.values["PRD"]["db_password"] = "rotated"
    clock.tick(600)
    assert lambda_handler({}, lambda_context("PRD")) == "connected"
