"""confstage.transport.endpoints resolves hosts as botocore does: partitions, services, S3 addressing, env overrides.

Differential against botocore's own data and code: its ``partitions.json``, its endpoint rule sets evaluated by
its ``EndpointProvider`` for every listed region and generated ones, and, for S3 and the ``AWS_ENDPOINT_URL*``
variables, the URL a real boto3 client puts on the wire.
"""

from __future__ import annotations

import os
import re
from typing import Any

import boto3
import pytest
from botocore.endpoint_provider import EndpointProvider
from botocore.loaders import create_loader
from hypothesis import given, settings
from hypothesis import strategies as st

from confstage.transport import endpoints

SERVICES = ["dynamodb", "ssm", "secretsmanager", "kms", "sts"]
LOADER = create_loader()
PARTITION_DATA = LOADER.load_data("partitions")
LISTED = sorted(r for p in PARTITION_DATA["partitions"] for r in p["regions"] if not r.endswith("-global"))
generated_regions = st.from_regex(
    r"\A(us|eu|ap|sa|ca|me|af|il|mx|cn|us-gov|us-iso|us-isob|us-isof|eu-isoe|eusc-de|xx)-[a-z]{2,9}-[0-9]{1,2}\Z"
)
buckets = st.from_regex(r"\A[a-zA-Z0-9._-]{1,70}\Z").filter(
    lambda b: not b.endswith(("--x-s3", "--xa-s3", "--op-s3")) and not b.startswith("arn")
)


def provider(service: str) -> EndpointProvider:
    return EndpointProvider(
        ruleset_data=LOADER.load_service_model(service, "endpoint-rule-set-1"), partition_data=PARTITION_DATA
    )


PROVIDERS = {service: provider(service) for service in [*SERVICES, "s3"]}


def botocore_url(service: str, region: str, **params: Any) -> str:
    endpoint = PROVIDERS[service].resolve_endpoint(Region=region, UseFIPS=False, UseDualStack=False, **params)
    return str(endpoint.url)


def test_partitions_are_botocores() -> None:
    """The embedded partitions (names, listed regions, regexes, DNS suffixes, order) are botocore's partitions.json."""
    theirs = [
        (p["id"], frozenset(p["regions"]), p["regionRegex"], p["outputs"]["dnsSuffix"])
        for p in PARTITION_DATA["partitions"]
    ]
    assert [tuple(p) for p in endpoints.PARTITIONS] == theirs


@pytest.mark.parametrize("service", SERVICES)
def test_every_listed_region_resolves_as_botocore(service: str) -> None:
    """For every region botocore lists, each JSON service's host is the one its endpoint rule set gives."""
    for region in LISTED:
        params = {"UseGlobalEndpoint": False} if service == "sts" else {}
        assert endpoints.resolve(service, region, environ={}).url == botocore_url(service, region, **params) + "/"


@settings(max_examples=150, deadline=None)
@given(region=generated_regions, service=st.sampled_from(SERVICES))
def test_unlisted_regions_resolve_as_botocore(region: str, service: str) -> None:
    """A region botocore does not list yet lands in the partition its regex names, with that partition's suffix."""
    params = {"UseGlobalEndpoint": False} if service == "sts" else {}
    assert endpoints.resolve(service, region, environ={}).url == botocore_url(service, region, **params) + "/"


def test_sts_legacy_global_endpoint() -> None:
    """AWS_STS_REGIONAL_ENDPOINTS=legacy sends the legacy regions to sts.amazonaws.com (signed for us-east-1)."""
    legacy = {"AWS_STS_REGIONAL_ENDPOINTS": "legacy"}
    for region in LISTED:
        ours = endpoints.resolve("sts", region, environ=legacy)
        global_endpoint = ours.host == "sts.amazonaws.com"
        assert ours.url == botocore_url("sts", region, UseGlobalEndpoint=global_endpoint) + "/"
        assert ours.signing_region == ("us-east-1" if global_endpoint else region)
    assert endpoints.resolve("sts", "us-east-1", environ=legacy).host == "sts.amazonaws.com"
    assert endpoints.resolve("sts", "eu-south-1", environ=legacy).host == "sts.eu-south-1.amazonaws.com"


@settings(max_examples=300, deadline=None)
@given(bucket=buckets, region=st.sampled_from(LISTED) | generated_regions)
def test_s3_bucket_addressing_matches_the_rule_set(bucket: str, region: str) -> None:
    """Virtual-hosted where botocore's rules allow it, path-style elsewhere, legacy global host in us-east-1."""
    ours = endpoints.s3_address(bucket, None, region, environ={})
    theirs = botocore_url("s3", region, Bucket=bucket, UseGlobalEndpoint=region == "us-east-1", ForcePathStyle=False)
    assert ours.url.rstrip("/") == theirs.rstrip("/")
    assert ours.signing_region == region


@pytest.fixture(scope="module", name="wire")
def fixture_wire() -> Any:
    """The URL a real boto3 client would send for an S3 call (nothing is sent)."""
    clients: dict[tuple[str, str | None], Any] = {}
    seen: dict[str, str] = {}

    class Captured(Exception):
        pass

    def capture(request: Any, **_: Any) -> None:
        seen["url"] = request.url
        raise Captured

    def url(region: str, operation: str, endpoint: str | None = None, **params: Any) -> str:
        client = clients.get((region, endpoint))
        if client is None:
            client = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b").client(
                "s3", region_name=region, endpoint_url=endpoint
            )
            client.meta.events.register("before-send", capture)
            clients[(region, endpoint)] = client
        with pytest.raises(Captured):
            getattr(client, operation)(**params)
        return seen["url"]

    return url


KEYS = ["k", "DEV/db_url", "a b/c+d=e", "ü/中文/𝄞", "~tilde/!$&'()*,;:@", "dir//double/./dot/../x", "%41%2F"]


@pytest.mark.parametrize(
    "endpoint", [None, "http://127.0.0.1:5000", "http://localhost:4566", "https://s3.example.com/base/"]
)
@pytest.mark.parametrize("bucket", ["bucket", "my.dotted.bucket", "Upper_Case"])
def test_s3_object_urls_match_boto3(
    wire: Any, endpoint: str | None, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GetObject and ListObjectsV2 go to the URL boto3 builds: host, path-style or not, the key's encoding."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    for region in ["us-east-1", "eu-west-1", "cn-north-1"]:
        for key in KEYS:
            ours = endpoints.s3_address(bucket, key, region, endpoint_url=endpoint, environ={})
            assert ours.url == wire(region, "get_object", endpoint, Bucket=bucket, Key=key)
        listing = endpoints.s3_address(bucket, None, region, endpoint_url=endpoint, environ={})
        theirs = wire(region, "list_objects_v2", endpoint, Bucket=bucket).split("?")[0]
        assert listing.url.rstrip("/") == theirs.rstrip("/")


def test_s3_regional_us_east_1() -> None:
    """AWS_S3_US_EAST_1_REGIONAL_ENDPOINT=regional moves us-east-1 off the global host, as in boto3."""
    ours = endpoints.s3_address("bucket", "k", "us-east-1", environ={"AWS_S3_US_EAST_1_REGIONAL_ENDPOINT": "regional"})
    assert ours.host == "bucket.s3.us-east-1.amazonaws.com"
    assert endpoints.s3_address("bucket", "k", "us-east-1", environ={}).host == "bucket.s3.amazonaws.com"


ENV_CASES = [
    {"AWS_ENDPOINT_URL": "http://all:1"},
    {"AWS_ENDPOINT_URL": "http://all:1", "AWS_ENDPOINT_URL_DYNAMODB": "http://ddb:2"},
    {"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://sm:3", "AWS_ENDPOINT_URL_SSM": "https://ssm.example"},
    {"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_KMS": "http://kms:4"},
    {"AWS_ENDPOINT_URL_DYNAMODB": "", "AWS_ENDPOINT_URL": "http://all:5"},
    {"AWS_ENDPOINT_URL": "http://all:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "TRUE"},
    {"AWS_ENDPOINT_URL": "http://all:1", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "false"},
    {"AWS_ENDPOINT_URL_S3": "http://s3:6", "AWS_ENDPOINT_URL_STS": "http://sts:7"},
]


@pytest.mark.parametrize("environ", ENV_CASES)
def test_endpoint_variables_as_boto3(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL and AWS_IGNORE_CONFIGURED_ENDPOINT_URLS pick what boto3 picks."""
    for name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    session = boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b")
    for service in [*SERVICES, "s3"]:
        theirs = session.client(service, region_name="eu-west-1").meta.endpoint_url
        if service == "s3":
            ours = endpoints.s3_address("bucket", None, "eu-west-1", environ=environ)
            expected = re.sub(r"^https://s3\.", "https://bucket.s3.", theirs)
            assert ours.url.rstrip("/") in (expected, f"{theirs.rstrip('/')}/bucket")
        else:
            assert endpoints.resolve(service, "eu-west-1", environ=environ).url.rstrip("/") == theirs.rstrip("/")


def test_explicit_endpoint_wins_and_keeps_its_port_and_path() -> None:
    """An explicit endpoint beats the variables; default ports drop, others stay; its base path prefixes S3 paths."""
    env = {"AWS_ENDPOINT_URL_DYNAMODB": "http://env:1"}
    assert endpoints.resolve("dynamodb", "eu-west-1", endpoint_url="https://x.example:443", environ=env).url == (
        "https://x.example/"
    )
    assert (
        endpoints.resolve("dynamodb", "eu-west-1", endpoint_url="http://[::1]:8000", environ=env).host == "[::1]:8000"
    )
    assert endpoints.s3_address("b", "k", "eu-west-1", endpoint_url="http://h:9/base/", environ={}).path == "/base/b/k"


def test_not_an_endpoint_url() -> None:
    """A malformed endpoint URL is refused by name rather than sent somewhere odd."""
    with pytest.raises(ValueError, match="not an http"):
        endpoints.resolve("kms", "eu-west-1", endpoint_url="ftp://x", environ={})


@settings(max_examples=300, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https", "HTTPS"]),
    host=st.sampled_from(["localhost", "S3.Example.COM", "127.0.0.1", "[::1]", "[2001:DB8::1]", "user:pw@h.example"]),
    port=st.none() | st.integers(min_value=1, max_value=65535),
    path=st.sampled_from(["", "/", "/base", "/base/", "/a/b?x=1", "#frag", "/p#f"]),
)
def test_endpoint_urls_split_as_urlsplit(scheme: str, host: str, port: int | None, path: str) -> None:
    """Endpoint URLs split (without urllib.parse) into the host, port and path urlsplit finds."""
    from urllib.parse import urlsplit

    url = f"{scheme}://{host}{'' if port is None else f':{port}'}{path}"
    parts = urlsplit(url)
    address = endpoints.resolve("kms", "eu-west-1", endpoint_url=url, environ={})
    expected_host = f"[{parts.hostname}]" if ":" in (parts.hostname or "") else parts.hostname
    if parts.port is not None and parts.port != (443 if parts.scheme == "https" else 80):
        expected_host = f"{expected_host}:{parts.port}"
    assert (address.scheme, address.host, address.path) == (parts.scheme, expected_host, parts.path.rstrip("/") or "/")
    assert endpoints.split_host(parts.netloc) == (parts.hostname, parts.port)
