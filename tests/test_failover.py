"""Regional failover: a read the home region cannot answer goes to the next region, and only then.

The home region is us-east-1, reached through a fault proxy (``ByRegion`` sends its requests there); the
fallback, us-west-2, is moto's own backend for that region, behind a second, healthy proxy that counts what
reaches it. Both transports, lite and botocore, make the calls.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Collection, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from confstage import Config, ConfigurationError, KeyNotFoundError, SourceError
from confstage.emf import Emitter
from confstage.errors import ConfstageError
from confstage.sources import build_source
from confstage.sources.base import Fetched
from confstage.sources.failover import FailoverSource, RegionalFetched, check_regions, worth_failing_over
from confstage.testing import MockTransport
from confstage.transport import AwsError, AwsRequest, NetworkError, Transport
from confstage.transport.botocore import BotocoreTransport
from confstage.transport.lite.transport import LiteTransport, Settings

from .conftest import confstage_garbage, create_stage_key_table
from .faultproxy import FaultProxy

pytestmark = pytest.mark.integration

HOME, WEST = "us-east-1", "us-west-2"
SOURCES = {
    "dynamodb": f"dynamodb://cfg?fallback_regions={WEST}",
    "ssm": f"ssm:///app?fallback_regions={WEST}",
    "secretsmanager": f"secretsmanager://app?fallback_regions={WEST}",
    "s3": f"s3://cfg-{{region}}/app?fallback_regions={WEST}",
}


class ByRegion:
    """A real transport whose requests go to one endpoint per region (a region not listed: the configured one)."""

    def __init__(self, inner: Transport, endpoints: dict[str, str]) -> None:
        self.inner = inner
        self.endpoints = endpoints
        self.name = inner.name

    def call(self, request: AwsRequest) -> dict[str, Any]:
        endpoint = self.endpoints.get(request.region or HOME)
        return self.inner.call(request._replace(endpoint_url=endpoint) if endpoint else request)

    def identity(self, service: str) -> str:
        return str(self.inner.identity(service))  # type: ignore[attr-defined]


def seed(boto: Callable[..., Any], region: str, value: str) -> None:
    """The key ``k`` of stage PRD, holding ``value``, in every store of ``region``."""
    import boto3

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=region)

    create_stage_key_table(client("dynamodb"), "cfg")
    client("dynamodb").put_item(TableName="cfg", Item={"stage": {"S": "PRD"}, "key": {"S": "k"}, "value": {"S": value}})
    client("ssm").put_parameter(Name="/app/PRD/k", Value=value, Type="String")
    client("secretsmanager").create_secret(Name="app/PRD", SecretString=json.dumps({"k": value}))
    s3 = client("s3")
    bucket = f"cfg-{region}"
    extra = {} if region == HOME else {"CreateBucketConfiguration": {"LocationConstraint": region}}
    s3.create_bucket(Bucket=bucket, **extra)
    s3.put_object(Bucket=bucket, Key="app/PRD/k", Body=value.encode())


@pytest.fixture(scope="module", name="proxies")
def fixture_proxies(aws_server: str) -> Iterator[tuple[FaultProxy, FaultProxy]]:
    """Two proxies in front of moto for the module (one pair for every test: fewer servers to start)."""
    home = FaultProxy(aws_server, slow_seconds=1.0).start()
    west = FaultProxy(aws_server).start()
    yield home, west
    home.stop()
    west.stop()


@pytest.fixture(name="regions")
def fixture_regions(
    aws_endpoint: str, boto: Callable[..., Any], proxies: tuple[FaultProxy, FaultProxy]
) -> tuple[FaultProxy, FaultProxy]:
    """(home proxy, fallback proxy), healed, counts at zero; each region seeded with its own value."""
    seed(boto, HOME, "east")
    seed(boto, WEST, "west")
    for proxy in proxies:
        proxy.heal()
        proxy.requests = 0
    return proxies


@pytest.fixture(name="lite_transport")
def fixture_lite_transport() -> Iterator[Callable[..., LiteTransport]]:
    """Makes lite transports (``attempts``, ``timeout``; retries without sleeping), closed after the test."""
    made: list[LiteTransport] = []

    def make(attempts: int = 2, timeout: float = 0.5) -> LiteTransport:
        settings = Settings(connect_timeout=timeout, read_timeout=timeout, max_attempts=attempts)
        made.append(LiteTransport(settings=settings, environ=os.environ, sleep=lambda _: None))
        return made[-1]

    yield make
    for transport in made:
        transport.close()


def botocore_transport(monkeypatch: pytest.MonkeyPatch) -> BotocoreTransport:
    monkeypatch.setenv("CONFSTAGE_MAX_ATTEMPTS", "1")  # botocore's own retry backoff would sleep up to a second
    monkeypatch.setenv("CONFSTAGE_READ_TIMEOUT", "0.5")
    return BotocoreTransport()


def routed(inner: Transport, home: FaultProxy, west: FaultProxy) -> ByRegion:
    return ByRegion(inner, {HOME: home.url, WEST: west.url})


def failover_of(config: Config) -> FailoverSource:
    source = config._chain.layers[0].source  # the one source of the test's chain
    assert isinstance(source, FailoverSource)
    return source


# -- which failures fail over ---------------------------------------------------------------------------------


def _source_error(cause: BaseException | None, *, throttled: bool = False) -> SourceError:
    error = SourceError("x failed", source="s", operation="dynamodb:Query", throttled=throttled)
    error.__cause__ = cause
    return error


@pytest.mark.parametrize(
    ("cause", "throttled", "expected"),
    [
        (NetworkError("connection refused"), False, True),
        (AwsError("InternalServerError", status=500), False, True),
        (AwsError("ServiceUnavailable", status=503), False, True),
        (AwsError("ThrottlingException", status=400), True, True),
        (AwsError("AccessDeniedException", status=400), False, False),
        (AwsError("ResourceNotFoundException", status=400), False, False),
        (AwsError("NoSuchBucket", status=404), False, False),
        (None, False, False),  # a document that does not parse: the same in every region
    ],
)
def test_only_a_region_that_cannot_answer_fails_over(cause: Any, throttled: bool, expected: bool) -> None:
    """Network errors, 5xx and throttling fail over; AccessDenied, not-found and broken data never do."""
    assert worth_failing_over(_source_error(cause, throttled=throttled)) is expected


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=20))
def test_a_name_that_is_not_a_region_is_refused_by_name(name: str) -> None:
    """check_regions accepts what some partition calls a region and names anything else in its error."""
    import re

    from confstage.transport.endpoints import PARTITIONS

    region = any(
        (name in p.regions and not name.endswith("-global")) or re.match(p.region_regex, name) for p in PARTITIONS
    )
    if region:
        assert check_regions([name], what="w") == (name,)
    else:
        with pytest.raises(ConfigurationError, match=re.escape(repr(name))):
            check_regions([name], what="w")


def test_bad_fallback_regions_are_configuration_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """A bad name in the URL or in CONFSTAGE_FALLBACK_REGIONS is a ConfigurationError naming it and where it was."""
    with pytest.raises(ConfigurationError, match=r"fallback_regions of dynamodb://t.*'mars-1' is not an AWS region"):
        build_source("dynamodb://t?fallback_regions=us-west-2,mars-1")
    monkeypatch.setenv("CONFSTAGE_FALLBACK_REGIONS", "eu-west-1, moon")
    with pytest.raises(ConfigurationError, match=r"CONFSTAGE_FALLBACK_REGIONS: 'moon' is not an AWS region"):
        build_source("ssm:///app")
    with pytest.raises(ConfigurationError, match="unknown parameter"):
        build_source("env://?fallback_regions=us-west-2")  # no region to fail over from


@pytest.mark.parametrize(
    ("home", "fallback"), [("us-east-1", "cn-north-1"), ("cn-north-1", "us-west-2"), ("us-gov-west-1", "us-east-1")]
)
def test_a_fallback_in_another_partition_is_refused_naming_both(
    monkeypatch: pytest.MonkeyPatch, home: str, fallback: str
) -> None:
    """Credentials and endpoints belong to a partition: a read cannot fail over across one, so it is refused when
    the source is made, naming the fallback, the home region and their partitions; within one it is taken."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")  # it would win over AWS_REGION, as botocore has it
    monkeypatch.setenv("AWS_REGION", home)
    with pytest.raises(ConfigurationError, match=rf"'{fallback}' is in the partition .*the home region '{home}'"):
        build_source(f"ssm:///app?fallback_regions={fallback}")
    monkeypatch.setenv("CONFSTAGE_FALLBACK_REGIONS", fallback)
    with pytest.raises(ConfigurationError, match=rf"CONFSTAGE_FALLBACK_REGIONS: '{fallback}' is in the partition"):
        build_source("dynamodb://t")
    partner = {"cn-north-1": "cn-northwest-1", "us-west-2": "us-east-1", "us-east-1": "us-west-2"}[fallback]
    monkeypatch.setenv("AWS_REGION", partner)  # a home in the fallback's own partition
    source = build_source("dynamodb://t")
    assert isinstance(source, FailoverSource)
    assert source.fallbacks == (fallback,)


def test_the_variable_applies_to_every_aws_source_and_the_url_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    """CONFSTAGE_FALLBACK_REGIONS gives every AWS source its fallbacks (the home region left out); a URL's own win."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", HOME)
    monkeypatch.setenv("CONFSTAGE_FALLBACK_REGIONS", f"{HOME},{WEST},eu-west-1")
    source = build_source("secretsmanager://app")
    assert isinstance(source, FailoverSource)
    assert source.fallbacks == (WEST, "eu-west-1")
    assert source.url == "secretsmanager://app"
    own = build_source("dynamodb://t?fallback_regions=eu-central-1&ttl=5")
    assert isinstance(own, FailoverSource)
    assert (own.fallbacks, own.ttl, own.table) == (("eu-central-1",), 5.0, "t")  # the rest is the home source's
    assert not isinstance(build_source("env://"), FailoverSource)
    monkeypatch.delenv("CONFSTAGE_FALLBACK_REGIONS")
    assert not isinstance(build_source("dynamodb://t"), FailoverSource)


def test_access_denied_at_home_is_raised_and_no_other_region_is_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    """An AccessDenied is the answer: the fetch fails with it and the fallback region hears nothing."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", HOME)

    def answer(request: AwsRequest) -> dict[str, Any]:
        raise AwsError("AccessDeniedException", "no", status=400, operation=request.operation)

    transport = MockTransport(answer)
    source = build_source(f"dynamodb://t?fallback_regions={WEST}", transport=transport)
    with pytest.raises(SourceError, match="AccessDeniedException"):
        source.fetch("PRD", ["k"])
    assert [r.region for r in transport.requests] == [None]


# -- against moto's regions, through the fault proxy ------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_each_source_fails_over_to_the_same_data_in_the_next_region(
    kind: str, regions: tuple[FaultProxy, FaultProxy], tmp_path: Path, lite_transport: Callable[..., LiteTransport]
) -> None:
    """Home answering 500: the value comes from us-west-2, stats count it, the snapshot names that region."""
    home, west = regions
    home.fault = "500"
    transport = lite_transport()
    config = Config(
        sources=[SOURCES[kind]], stage="PRD", cache_dir=str(tmp_path), transport=routed(transport, home, west)
    )
    assert config.get("k") == "west"
    stats = config.stats()
    assert stats["sources"][SOURCES[kind]]["fallback"] == 1
    assert stats["total"]["fallback"] == 1
    assert home.requests == 2  # two attempts at home, then the fallback
    assert west.requests >= 1
    if kind != "secretsmanager":  # secrets never reach /tmp
        # The snapshot (or the journal a per-key source appends to) names the store it came from, region included.
        written = [p.read_text() for p in tmp_path.iterdir() if p.is_file()]
        assert written
        assert all(f"region={WEST}" in text for text in written)


@pytest.mark.parametrize("fault", ["500", "throttle", "drop", "garbage"])
def test_every_kind_of_regional_failure_fails_over(
    fault: str, regions: tuple[FaultProxy, FaultProxy], lite_transport: Callable[..., LiteTransport]
) -> None:
    """A 5xx, throttling after retries, a dropped connection or a body that is no answer: the fallback serves."""
    home, west = regions
    home.fault = fault
    transport = lite_transport()
    config = Config(sources=[SOURCES["dynamodb"]], stage="PRD", cache_dir="", transport=routed(transport, home, west))
    assert config.get("k") == "west"


@pytest.mark.parametrize("kind", ["s3", "ssm"])
def test_a_200_that_is_no_aws_answer_fails_over(
    kind: str, regions: tuple[FaultProxy, FaultProxy], lite_transport: Callable[..., LiteTransport]
) -> None:
    """An HTML page with a 200 (a captive proxy, a broken endpoint): S3's streamed GetObject has no ETag, SSM's
    JSON does not parse; either way the region gave no answer, and the fallback serves."""
    home, west = regions
    home.fault = "garbage"
    transport = routed(lite_transport(), home, west)
    config = Config(sources=[SOURCES[kind]], stage="PRD", cache_dir="", transport=transport)
    assert config.get("k") == "west"


def test_botocore_fails_over_too(regions: tuple[FaultProxy, FaultProxy], monkeypatch: pytest.MonkeyPatch) -> None:
    """The botocore transport's clients are made per region: the same failover."""
    home, west = regions
    home.fault = "500"
    transport = botocore_transport(monkeypatch)
    config = Config(sources=[SOURCES["ssm"]], stage="PRD", cache_dir="", transport=routed(transport, home, west))
    assert config.get("k") == "west"
    assert config.stats()["total"]["fallback"] == 1
    line = json.loads(Emitter(config.stats, environ={}).line("PRD"))
    assert line["FallbackReads"] == 1  # EMF counts them too
    assert {"Name": "FallbackReads", "Unit": "Count"} in line["_aws"]["CloudWatchMetrics"][0]["Metrics"]


def test_not_found_at_home_never_fails_over(
    regions: tuple[FaultProxy, FaultProxy], lite_transport: Callable[..., LiteTransport]
) -> None:
    """A key absent in a healthy home region is absent: no request reaches the fallback region."""
    home, west = regions
    transport = lite_transport()
    config = Config(sources=[SOURCES["ssm"]], stage="PRD", cache_dir="", transport=routed(transport, home, west))
    with pytest.raises(KeyNotFoundError):
        config.get("absent")
    assert config.get("k") == "east"
    assert (west.requests, config.stats()["total"]["fallback"]) == (0, 0)


def test_home_rests_after_a_failover_then_is_tried_again(
    regions: tuple[FaultProxy, FaultProxy], lite_transport: Callable[..., LiteTransport]
) -> None:
    """After a failover the fallback goes first until the rest is over; then home answers again and is used."""
    home, west = regions
    home.fault = "500"
    transport = lite_transport()
    config = Config(sources=[SOURCES["dynamodb"]], stage="PRD", cache_dir="", transport=routed(transport, home, west))
    source = failover_of(config)
    now = [1000.0]
    source.clock = lambda: now[0]
    assert config.get("k") == "west"
    assert source.resting
    home.heal()
    asked = home.requests
    assert config.get("k", force=True) == "west"  # resting: home not asked
    assert home.requests == asked
    now[0] += 301.0  # past the longest rest
    assert config.get("k", force=True) == "east"
    assert not source.resting
    assert config.stats()["total"]["fallback"] == 2


def test_every_region_failing_names_each(
    regions: tuple[FaultProxy, FaultProxy], lite_transport: Callable[..., LiteTransport]
) -> None:
    """When the fallback fails too, the error names every region and what each did; no value anywhere."""
    home, west = regions
    home.fault = west.fault = "500"
    transport = lite_transport()
    source = build_source(SOURCES["dynamodb"], transport=routed(transport, home, west))
    with pytest.raises(
        SourceError, match=rf"every region failed \({HOME}: .*InternalServerError.*; {WEST}: .*InternalServerError"
    ) as caught:
        source.fetch("PRD", ["k"])
    assert "west" not in str(caught.value).replace(WEST, "")


def test_a_hanging_home_leaves_the_fallback_half_the_deadline(
    regions: tuple[FaultProxy, FaultProxy], lite_transport: Callable[..., LiteTransport]
) -> None:
    """Home never answers: with a 1 s fetch deadline it gets 0.5 s, the fallback answers within the rest."""
    home, west = regions
    home.fault = "hang"
    transport = lite_transport(attempts=3, timeout=5.0)  # the deadline, not the timeouts, must end the home attempt
    config = Config(
        sources=[SOURCES["ssm"]], stage="PRD", cache_dir="", fetch_timeout=1.0, transport=routed(transport, home, west)
    )
    started = time.perf_counter()
    assert config.get("k") == "west"
    assert 0.45 < time.perf_counter() - started < 1.0  # within the deadline (a loaded machine adds to the rest)


def test_a_hanging_home_on_botocore_is_given_up_after_its_share(
    regions: tuple[FaultProxy, FaultProxy], monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore ignores deadlines: its hanging call is left in its thread after home's share, the fallback answers."""
    import threading

    home, west = regions
    home.fault = "hang"
    transport = botocore_transport(monkeypatch)
    monkeypatch.setenv("CONFSTAGE_READ_TIMEOUT", "2.5")  # past the fetch's whole deadline
    monkeypatch.setenv("CONFSTAGE_MAX_ATTEMPTS", "1")  # the abandoned call ends at one read timeout
    config = Config(
        sources=[SOURCES["ssm"]], stage="PRD", cache_dir="", fetch_timeout=2.0, transport=routed(transport, home, west)
    )
    started = time.perf_counter()
    assert config.get("k") == "west"
    # Home's share (1 s) and the grace (0.2 s), then west, whose first botocore client may take a loaded CI
    # machine a few hundred ms to make: within the deadline, never past it.
    assert 1.0 < time.perf_counter() - started < 2.0
    for thread in threading.enumerate():  # the abandoned call ends at its read timeout
        if thread.name == "confstage-failover":
            thread.join(timeout=5)


# -- get_path's objects -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["lite", "botocore"])
def test_get_path_fails_over_to_the_fallback_bucket(
    regions: tuple[FaultProxy, FaultProxy],
    lite_transport: Callable[..., LiteTransport],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    kind: str,
) -> None:
    """An object read with ``get_path`` when home answers 500: the fallback's bucket (``{region}``) serves the
    file, counted under the files layer; a healthy home serves it again after the rest, a new version's file."""
    home, west = regions
    inner: Transport = lite_transport() if kind == "lite" else botocore_transport(monkeypatch)
    clock = [0.0]
    config = Config(
        sources=[SOURCES["s3"]],
        stage="PRD",
        cache_dir=str(tmp_path / "cache"),
        ttl=60,
        clock=lambda: clock[0],
        transport=routed(inner, home, west),
    )
    home.fault = "500"
    path = config.get_path("k")
    assert path.read_bytes() == b"west"
    (files,) = [url for url in config.stats()["sources"] if url.endswith("#files")]
    assert config.stats()["sources"][files]["fallback"] == 1
    assert config.stats()["total"]["fallback"] == 1
    home.heal()
    failover_of(config).clock = lambda: time.monotonic() + 3600  # past home's rest
    clock[0] += 61  # past the TTL
    again = config.get_path("k")
    assert again.read_bytes() == b"east"
    assert path.read_bytes() == b"west"  # the path handed out before is unchanged
    assert config.stats()["total"]["fallback"] == 1


@pytest.mark.parametrize("fault", ["500", "throttle", "drop", "garbage", "hang", "trickle"])
def test_get_path_fails_over_on_every_kind_of_regional_failure_within_the_timeouts(
    fault: str,
    regions: tuple[FaultProxy, FaultProxy],
    lite_transport: Callable[..., LiteTransport],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A download has minutes, so a region's share of a deadline does not bound it: the transport's timeouts do
    (2 attempts x 0.5 s here). Each call is timed: the first, which fails over, and the next, which goes straight
    to the fallback while home rests. The trickle sends a byte a second once the headers are in: each body read
    times out, halfway through the answer (a body trickling faster than the read timeout is an answer, slow)."""
    home, west = regions
    home.fault = fault
    monkeypatch.setattr(home, "trickle_seconds", 1.0)
    transport = routed(lite_transport(), home, west)
    config = Config(sources=[SOURCES["s3"]], stage="PRD", cache_dir=str(tmp_path), ttl=0, transport=transport)
    for _ in range(2):
        started = time.perf_counter()
        assert config.get_path("k").read_bytes() == b"west"
        assert time.perf_counter() - started < 3.0
    assert home.requests <= 2  # the second read did not ask home again: it rests
    assert not list(tmp_path.rglob("*.tmp-*"))  # a body that failed halfway left no partial file


def test_get_path_not_found_at_home_never_fails_over(
    regions: tuple[FaultProxy, FaultProxy], lite_transport: Callable[..., LiteTransport], tmp_path: Path
) -> None:
    home, west = regions
    transport = routed(lite_transport(), home, west)
    config = Config(sources=[SOURCES["s3"]], stage="PRD", cache_dir=str(tmp_path), transport=transport)
    with pytest.raises(KeyNotFoundError):
        config.get_path("absent")
    assert config.get_path("k").read_bytes() == b"east"
    assert west.requests == 0


def test_get_path_is_not_offered_by_a_failover_source_that_streams_no_objects(tmp_path: Path) -> None:
    """An SSM source with fallbacks is no object source: get_path names what it needs."""

    def never(request: AwsRequest) -> dict[str, Any]:
        raise AssertionError(f"no request is made: {request.operation}")

    transport = MockTransport(never)
    config = Config(sources=[SOURCES["ssm"]], stage="PRD", cache_dir=str(tmp_path), transport=transport)
    assert isinstance(failover_of(config), FailoverSource)
    with pytest.raises(ConfigurationError, match="get_path reads objects from an s3:// source"):
        config.get_path("k")


def test_regional_fetched_names_its_region() -> None:
    """What a fallback served keeps its values, secrets and errors, and says where it came from."""
    from confstage.sources.base import Fetched

    error: ConfstageError = SourceError("bad", source="s", operation="o")
    served = RegionalFetched(Fetched({"a": "1", "b": "2"}, secret=["b"], errors={"c": error}), WEST)
    assert (dict(served), served.secret, served.errors, served.region) == (
        {"a": "1", "b": "2"},
        frozenset({"b"}),
        {"c": error},
        WEST,
    )
    assert "region='us-west-2'" in repr(served)
    assert "'1'" not in repr(served)


# -- iam-policy ------------------------------------------------------------------------------------------------


def test_iam_policy_grants_each_fallback_region() -> None:
    """Regional ARNs, a ``{region}`` bucket, KMS keys and ViaService endpoints are granted in the fallbacks too."""
    from confstage.cli.iam import Account, build_policy

    account = Account("aws", HOME, "123456789012")
    policy = build_policy(
        [f"dynamodb://cfg?fallback_regions={WEST}", "s3://cfg-{region}/app", "ssm:///app"],
        account=account,
        fallback_regions=["eu-west-1"],
        secure=True,
    )
    resources = {s["Sid"].rstrip("0123456789"): s["Resource"] for s in policy["Statement"]}
    assert resources["ReadDynamoDBStage"] == [
        f"arn:aws:dynamodb:{HOME}:123456789012:table/cfg",
        f"arn:aws:dynamodb:{WEST}:123456789012:table/cfg",  # the URL's own fallbacks win over the variable's
    ]
    assert resources["ListS3BucketForNotFound"] == ["arn:aws:s3:::cfg-us-east-1", "arn:aws:s3:::cfg-eu-west-1"]
    objects = [arn for s in policy["Statement"] if s["Sid"].startswith("ReadS3Objects") for arn in s["Resource"]]
    assert objects == ["arn:aws:s3:::cfg-us-east-1/app/*", "arn:aws:s3:::cfg-eu-west-1/app/*"]
    assert resources["ReadSSMParameters"] == [
        f"arn:aws:ssm:{HOME}:123456789012:parameter/app/*",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/app/*",
    ]
    via = next(s for s in policy["Statement"] if s["Sid"].startswith("DecryptViaService"))
    assert via["Condition"]["StringEquals"]["kms:ViaService"] == [
        f"ssm.{HOME}.amazonaws.com",
        f"ssm.{WEST}.amazonaws.com",
        "ssm.eu-west-1.amazonaws.com",
    ]
    assert via["Resource"] == [
        f"arn:aws:kms:{HOME}:123456789012:key/*",
        f"arn:aws:kms:{WEST}:123456789012:key/*",
        "arn:aws:kms:eu-west-1:123456789012:key/*",
    ]
    appconfig = build_policy(["appconfig://app/main"], account=account, fallback_regions=[WEST])["Statement"]
    assert [arn.split(":")[3] for arn in appconfig[0]["Resource"]] == [HOME, WEST]
    with pytest.raises(ConfigurationError, match="'nowhere' is not an AWS region"):
        build_policy(["ssm:///app"], fallback_regions=["nowhere"])


# -- secure values ----------------------------------------------------------------------------------------------


@pytest.fixture(name="secure_item")
def fixture_secure_item(regions: tuple[FaultProxy, FaultProxy], boto: Callable[..., Any]) -> None:
    """The item ``s`` of stage PRD, an envelope under a single-Region key of us-east-1, in both regions' tables
    (what a global table replicates)."""
    import boto3

    from confstage.sources.dynamodb import DynamoDBSource
    from confstage.stores.dynamodb import DynamoDBStore

    key = boto("kms").create_key()["KeyMetadata"]["KeyId"]
    admin = BotocoreTransport()
    DynamoDBStore(DynamoDBSource("cfg", transport=admin), admin).put("PRD", "s", "sealed", kms_key=key)
    item = boto("dynamodb").get_item(TableName="cfg", Key={"stage": {"S": "PRD"}, "key": {"S": "s"}})["Item"]
    west = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=WEST)
    west.put_item(TableName="cfg", Item=item)


@pytest.mark.usefixtures("secure_item")
def test_an_envelope_opened_at_home_still_opens_after_a_failover(
    regions: tuple[FaultProxy, FaultProxy], lite_transport: Callable[..., LiteTransport]
) -> None:
    """Data keys stay in memory: a value the home region opened is served by the fallback, KMS not asked there."""
    from confstage import crypto

    home, west = regions
    crypto.clear_data_keys()
    transport = routed(lite_transport(), home, west)
    config = Config(sources=[SOURCES["dynamodb"]], stage="PRD", cache_dir="", transport=transport)
    assert config.get("s") == "sealed"
    home.fault = "500"
    assert config.get("s", force=True) == "sealed"
    assert config.stats()["total"]["fallback"] == 1


@pytest.mark.usefixtures("secure_item")
def test_a_single_region_key_cannot_open_in_the_fallback_and_the_error_says_where(
    regions: tuple[FaultProxy, FaultProxy], lite_transport: Callable[..., LiteTransport]
) -> None:
    """With the home region down and no data key in memory, KMS in the fallback refuses the key: the error names
    the fallback region and what home did, never the value."""
    from confstage import crypto

    home, west = regions
    crypto.clear_data_keys()
    home.fault = "500"
    source = build_source(SOURCES["dynamodb"], transport=routed(lite_transport(), home, west))
    with pytest.raises(
        SourceError,
        match=rf"in fallback region {WEST}: kms:Decrypt .*AccessDenied.*\(after {HOME}: .*InternalServerError",
    ) as caught:
        source.fetch("PRD", ["s"])
    assert "sealed" not in str(caught.value)


def _mrk_ciphertexts(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2 packs a key ID into a 36-byte header field, which cuts a multi-Region key's 40-character
    ``mrk-…`` ID short: its own ciphertexts then refuse to decrypt, in any region. The test widens the field; the
    ciphertext stays moto's own, bound to the key ID and unwrapped by whichever region holds that key."""
    import struct

    from moto.kms import utils

    layout = ">40s12s16s"
    header = struct.calcsize(layout)

    def serialize(ciphertext: Any) -> bytes:
        packed = struct.pack(layout, ciphertext.key_id.encode(), ciphertext.iv, ciphertext.tag)
        return packed + bytes(ciphertext.ciphertext)

    def deserialize(ciphertext_blob: bytes) -> Any:  # moto passes both by keyword
        key_id, iv, tag = struct.unpack(layout, ciphertext_blob[:header])
        body = ciphertext_blob[header:]
        return utils.Ciphertext(key_id=key_id.rstrip(b"\0").decode(), iv=iv, ciphertext=body, tag=tag)

    monkeypatch.setattr(utils, "_serialize_ciphertext_blob", serialize)
    monkeypatch.setattr(utils, "_deserialize_ciphertext_blob", deserialize)


@pytest.fixture(name="multi_region_item")
def fixture_multi_region_item(
    regions: tuple[FaultProxy, FaultProxy], boto: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> str:
    """The item ``s`` of stage PRD, an envelope under a multi-Region key of us-east-1 replicated to us-west-2, in
    both regions' tables; returns the key's ID (``mrk-…``)."""
    import boto3

    from confstage.sources.dynamodb import DynamoDBSource
    from confstage.stores.dynamodb import DynamoDBStore

    _mrk_ciphertexts(monkeypatch)
    key = boto("kms").create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    boto("kms").replicate_key(KeyId=key, ReplicaRegion=WEST)
    admin = BotocoreTransport()
    DynamoDBStore(DynamoDBSource("cfg", transport=admin), admin).put("PRD", "s", "sealed", kms_key=key)
    item = boto("dynamodb").get_item(TableName="cfg", Key={"stage": {"S": "PRD"}, "key": {"S": "s"}})["Item"]
    west = boto3.client("dynamodb", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=WEST)
    west.put_item(TableName="cfg", Item=item)
    return str(key)


@pytest.mark.parametrize("kind", ["lite", "botocore"])
def test_a_multi_region_key_opens_in_the_fallback_with_home_down(
    multi_region_item: str,
    regions: tuple[FaultProxy, FaultProxy],
    lite_transport: Callable[..., LiteTransport],
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    """Home down from the first read and no data key in memory: the fallback region's replica of the ``mrk-`` key
    unwraps the envelope. The item and the data key both come from the fallback; home is asked once."""
    from confstage import crypto

    assert multi_region_item.startswith("mrk-")
    home, west = regions
    crypto.clear_data_keys()
    home.fault = "500"
    inner: Transport = lite_transport() if kind == "lite" else botocore_transport(monkeypatch)
    config = Config(sources=[SOURCES["dynamodb"]], stage="PRD", cache_dir="", transport=routed(inner, home, west))
    assert config.get("s") == "sealed"
    assert config.stats()["total"]["fallback"] == 1
    assert west.requests == 2  # dynamodb:Query, then kms:Decrypt there
    assert home.requests >= 1  # home was asked (and failed) before the fallback


# -- the rest, on a fake clock ----------------------------------------------------------------------------------


class _Gate:
    """A home source whose fetch waits for ``release``, then fails as a region that cannot answer does."""

    url = "gate://"
    whole_stage = True
    persist = False
    ttl: float | None = None

    def __init__(self) -> None:
        self.release = threading.Event()

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        self.release.wait(5)
        raise SourceError("home gave up", source=self.url, operation="fetch") from NetworkError("reset")


class _Answers:
    url = "answers://"
    whole_stage = True
    persist = False
    ttl: float | None = None

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        return Fetched({"k": "west"})


def test_a_home_fetch_given_up_on_leaves_no_reference_cycle_when_it_fails_later() -> None:
    """The home region's share runs out, the fallback answers, and home's fetch, left in its thread, fails later:
    its error, kept for a caller no longer waiting, holds no cycle through the thread's frame."""
    from confstage import _context

    home = _Gate()
    source = FailoverSource(home, [WEST], lambda region: _Answers())
    token = _context.DEADLINE.set(time.monotonic() + 0.2)
    before = set(threading.enumerate())  # an earlier test's regional fetch may still be running in this worker
    try:
        assert source.fetch("PRD", ["k"])["k"] == "west"
    finally:
        _context.DEADLINE.reset(token)
    (thread,) = [t for t in set(threading.enumerate()) - before if t.name == "confstage-failover"]

    def fail_late() -> None:
        home.release.set()
        thread.join(5)

    assert confstage_garbage(fail_late) == []
    assert not thread.is_alive()


def test_the_rest_doubles_with_each_failover_in_a_row_and_ends_on_success(monkeypatch: pytest.MonkeyPatch) -> None:
    """Home rests 30 s, then 60 s after it fails again, capped at 300 s; one answer from home ends the rest."""
    from confstage._backoff import Backoff

    monkeypatch.setenv("AWS_DEFAULT_REGION", HOME)
    down = [True]

    def aws(request: AwsRequest) -> dict[str, Any]:
        if request.region is None and down[0]:
            raise NetworkError("connection refused")
        return {"Parameters": [{"Name": "/app/PRD/k", "Value": request.region or HOME, "Type": "String"}]}

    transport = MockTransport(aws)
    built = build_source(f"ssm:///app?fallback_regions={WEST}", transport=transport)
    assert isinstance(built, FailoverSource)
    now = [0.0]
    source = FailoverSource(
        built.home, built.fallbacks, built.regional, clock=lambda: now[0], rest=Backoff(30, 300, random=lambda: 1.0)
    )

    def fetch() -> tuple[str, list[str | None]]:
        transport.requests.clear()
        value = source.fetch("PRD", ["k"])["k"]
        return value, [r.region for r in transport.requests]

    assert fetch() == (WEST, [None, WEST])
    now[0] = 29.0
    assert fetch() == (WEST, [WEST])  # resting: home not asked
    now[0] = 30.0
    assert fetch() == (WEST, [None, WEST])  # asked again, failed again: 60 s now
    now[0] = 89.0
    assert fetch() == (WEST, [WEST])
    now[0] = 90.0
    down[0] = False
    assert fetch() == (HOME, [None])
    assert not source.resting
    down[0] = True
    assert fetch() == (WEST, [None, WEST])  # a new outage starts again at 30 s
    now[0] = 119.0
    assert source.resting
    now[0] = 120.0
    assert not source.resting


def test_a_region_placeholder_without_fallbacks_names_the_home_bucket(monkeypatch: pytest.MonkeyPatch) -> None:
    """``s3://cfg-{region}/app`` reads the home region's bucket, failover or not; without a region it is refused."""
    from confstage.sources.s3 import S3Source

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    source = build_source("s3://cfg-{region}/app?layout=document")
    assert isinstance(source, S3Source)
    assert (source.bucket, source.prefix, source.layout) == ("cfg-eu-central-1", "app", "document")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    monkeypatch.delenv("AWS_REGION", raising=False)
    with pytest.raises(ConfigurationError, match=r"\{region\} in the bucket needs the home region"):
        build_source("s3://cfg-{region}/app")


def test_stores_write_to_the_home_region_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's store of a URL with fallbacks wraps the home source itself: writes never fail over."""
    from confstage.sources.dynamodb import DynamoDBSource
    from confstage.stores import build_store

    monkeypatch.setenv("CONFSTAGE_FALLBACK_REGIONS", "eu-west-1")
    store = build_store(f"dynamodb://cfg?fallback_regions={WEST}", transport=MockTransport(lambda r: {}))
    assert store is not None
    assert type(store.reader) is DynamoDBSource


def test_appconfig_fails_over_through_the_api_not_the_extension(
    monkeypatch: pytest.MonkeyPatch, lite_transport: Callable[..., LiteTransport]
) -> None:
    """appconfig:// over AppConfigData fails over like any AWS source; through the extension it is left as it is."""
    from confstage.testing import AppConfigServer

    monkeypatch.setenv("AWS_DEFAULT_REGION", HOME)
    with AppConfigServer() as server:
        server.deploy("app", "prd", "main", {"k": "deployed"})
        home = FaultProxy(server.endpoint).start()
        try:
            home.fault = "500"
            transport = ByRegion(lite_transport(), {HOME: home.url, WEST: server.endpoint})
            config = Config(
                sources=[f"appconfig://app/main?via=api&fallback_regions={WEST}"],
                stage="PRD",
                cache_dir="",
                transport=transport,
            )
            assert config.get("k") == "deployed"
            assert config.stats()["total"]["fallback"] == 1
        finally:
            home.stop()
    agent = build_source(f"appconfig://app/main?via=agent&fallback_regions={WEST}")
    assert not isinstance(agent, FailoverSource)
