"""/tmp snapshots are keyed by the store, not the URL: region, endpoint and principal (issue 10, item 11).

Each test reads the same ``dynamodb://cfg`` URL against two stores that each hold their own value,
with one cache directory, as two processes would: the second must fetch (a request counted) and get
its own value, and the first, read again, is still served from its own snapshot with no request.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

import confstage
from confstage import Config, SourceError, aws
from confstage.cache.disk import source_identity
from confstage.sources import build_source
from confstage.sources.dynamodb import DynamoDBSource
from confstage.transport.botocore import BotocoreTransport

from .faultproxy import FaultProxy

pytestmark = pytest.mark.integration

URL = "dynamodb://cfg"


def seed(client: Any, value: str) -> None:
    """Create table ``cfg`` through ``client`` (its region, endpoint and account) holding ``k`` = ``value``."""
    with contextlib.suppress(client.exceptions.ResourceInUseException):  # the second endpoint outlives a test
        client.create_table(
            TableName="cfg",
            KeySchema=[{"AttributeName": "stage", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": n, "AttributeType": "S"} for n in ("stage", "key")],
            BillingMode="PAY_PER_REQUEST",
        )
    client.put_item(TableName="cfg", Item={"stage": {"S": "DEV"}, "key": {"S": "k"}, "value": {"S": value}})


def new_process(monkeypatch: pytest.MonkeyPatch, **env: str) -> None:
    """What a new process with this environment starts from: no clients, no default client, the variables set."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    confstage.reset()
    aws.reset()


def read(cache_dir: Path) -> str:
    """``get('k')`` of stage DEV through a new client on the shared cache directory."""
    return Config(URL, stage="DEV", cache_dir=str(cache_dir)).get("k")


@pytest.fixture(name="where", params=["environment", "botocore"])
def fixture_where(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """How the store is named: from the environment alone, or by botocore (a shared config file exists)."""
    if request.param == "botocore":
        config_file = tmp_path / "aws-config"
        config_file.write_text("[default]\noutput = json\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config_file))
    else:
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-such-file"))
    return str(request.param)


def test_two_regions_never_share_a_snapshot(
    where: str, aws_endpoint: str, tmp_path: Path, requests_made: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same table in us-east-1 and eu-west-1: each region's run fetches and gets its own value."""
    for region in ("us-east-1", "eu-west-1"):
        seed(boto3.client("dynamodb", endpoint_url=aws_endpoint, region_name=region), f"value of {region}")
    cache = tmp_path / "shared-cache"

    new_process(monkeypatch, AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
    assert read(cache) == "value of us-east-1"
    new_process(monkeypatch, AWS_REGION="eu-west-1", AWS_DEFAULT_REGION="eu-west-1")
    assert read(cache) == "value of eu-west-1"
    assert requests_made["dynamodb.Query"] == 2
    new_process(monkeypatch, AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
    assert read(cache) == "value of us-east-1"
    assert requests_made["dynamodb.Query"] == 2  # served by its own snapshot
    assert len(list(cache.iterdir())) == 2


def test_a_region_without_the_table_fails_instead_of_reading_another_region(
    aws_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's run: after us-east-1, eu-west-1 (no such table there) raises SourceError, not the us-east-1 value."""
    seed(boto3.client("dynamodb", endpoint_url=aws_endpoint, region_name="us-east-1"), "value of us-east-1")
    cache = tmp_path / "shared-cache"
    new_process(monkeypatch, AWS_REGION="us-east-1", AWS_DEFAULT_REGION="us-east-1")
    assert read(cache) == "value of us-east-1"

    new_process(monkeypatch, AWS_REGION="eu-west-1", AWS_DEFAULT_REGION="eu-west-1")
    with pytest.raises(SourceError, match="ResourceNotFoundException"):
        read(cache)


@pytest.fixture(scope="module", name="other_endpoint")
def fixture_other_endpoint() -> Iterator[str]:
    """A second local AWS endpoint in its own process, so its stores are not the first one's."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    moto_server = Path(sys.executable).with_name("moto_server")
    server = subprocess.Popen(
        [str(moto_server), "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"{url}/moto-api/", timeout=1):  # noqa: S310  # loopback only
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)  # waiting for a process to listen: there is no clock to inject
        yield url
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_two_endpoints_never_share_a_snapshot(
    where: str,
    aws_endpoint: str,
    other_endpoint: str,
    tmp_path: Path,
    requests_made: Counter[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The same table behind two endpoints (AWS_ENDPOINT_URL, then AWS_ENDPOINT_URL_DYNAMODB): each gets its own."""
    seed(boto3.client("dynamodb", endpoint_url=aws_endpoint, region_name="us-east-1"), "first endpoint")
    seed(boto3.client("dynamodb", endpoint_url=other_endpoint, region_name="us-east-1"), "second endpoint")
    cache = tmp_path / "shared-cache"

    new_process(monkeypatch)
    assert read(cache) == "first endpoint"
    new_process(monkeypatch, AWS_ENDPOINT_URL_DYNAMODB=other_endpoint)
    assert read(cache) == "second endpoint"
    assert requests_made["dynamodb.Query"] == 2
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB")
    new_process(monkeypatch)
    assert read(cache) == "first endpoint"
    assert requests_made["dynamodb.Query"] == 2


def test_two_principals_never_share_a_snapshot(
    where: str, aws_endpoint: str, tmp_path: Path, requests_made: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Credentials of another account (an assumed role) get that account's table, and no file shows the key id."""
    sts = boto3.client("sts", endpoint_url=aws_endpoint, region_name="us-east-1")
    other = sts.assume_role(RoleArn="arn:aws:iam::111111111111:role/reader", RoleSessionName="reader")["Credentials"]
    seed(boto3.client("dynamodb", endpoint_url=aws_endpoint, region_name="us-east-1"), "first account")
    seed(
        boto3.client(
            "dynamodb",
            endpoint_url=aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id=other["AccessKeyId"],
            aws_secret_access_key=other["SecretAccessKey"],
            aws_session_token=other["SessionToken"],
        ),
        "other account",
    )
    cache = tmp_path / "shared-cache"
    first = {name: os.environ[name] for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")}

    new_process(monkeypatch)
    assert read(cache) == "first account"
    new_process(
        monkeypatch,
        AWS_ACCESS_KEY_ID=other["AccessKeyId"],
        AWS_SECRET_ACCESS_KEY=other["SecretAccessKey"],
        AWS_SESSION_TOKEN=other["SessionToken"],
    )
    assert read(cache) == "other account"
    assert requests_made["dynamodb.Query"] == 2
    new_process(monkeypatch, **first)
    assert read(cache) == "first account"
    assert requests_made["dynamodb.Query"] == 2
    for path in cache.iterdir():
        assert other["AccessKeyId"] not in path.name
        assert other["AccessKeyId"] not in path.read_text()


def test_the_store_is_named_by_region_endpoint_and_principal_never_the_key_id() -> None:
    """source_identity changes with each of them, a service's own endpoint wins, and the key id never shows."""
    base = {
        "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEYID0001",
        "AWS_SECRET_ACCESS_KEY": "x",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": "http://one:4566",
        "AWS_CONFIG_FILE": "/nonexistent/aws-config",
    }
    named = aws.endpoint_identity("dynamodb", environ=base)
    assert "AKIAEXAMPLEKEYID0001" not in named
    assert named.startswith("region=us-east-1 endpoint=http://one:4566 principal=")
    variants = [
        {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEYID0002"},
        {"AWS_DEFAULT_REGION": "us-gov-west-1"},
        {"AWS_ENDPOINT_URL": "http://two:4566"},
        {"AWS_ENDPOINT_URL_DYNAMODB": "http://dynamo:8000"},
    ]
    assert len({named, *(aws.endpoint_identity("dynamodb", environ={**base, **v}) for v in variants)}) == 5
    assert "endpoint=http://dynamo:8000" in aws.endpoint_identity(
        "dynamodb", environ={**base, "AWS_ENDPOINT_URL_DYNAMODB": "http://dynamo:8000"}
    )
    assert "endpoint=default" in aws.endpoint_identity(
        "dynamodb", environ={**base, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}
    )


def test_a_given_transport_names_its_own_store(aws_endpoint: str) -> None:
    """A source built on a caller's transport is named by its region and endpoint, not the environment's."""
    transport = BotocoreTransport(endpoint_url="http://elsewhere:8000", region="ap-south-1")
    named = source_identity(DynamoDBSource("cfg", transport=transport))
    assert named is not None
    assert "region=ap-south-1 endpoint=http://elsewhere:8000" in named
    assert named != source_identity(DynamoDBSource("cfg"))


def test_a_forced_lite_transport_names_its_store_the_same_in_every_process(
    aws_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """CONFSTAGE_TRANSPORT=lite beside a shared config file (which botocore would read and lite does not): the
    store is named from the environment lite signs with, so a second process is served from /tmp with no
    request, and another principal's process is not (requests counted by a proxy: lite has no botocore events)."""
    seed(boto3.client("dynamodb", endpoint_url=aws_endpoint, region_name="us-east-1"), "value")
    proxy = FaultProxy(aws_endpoint).start()
    try:
        config_file = tmp_path / "aws-config"
        config_file.write_text("[default]\noutput = json\n")
        env = {"AWS_CONFIG_FILE": str(config_file), "CONFSTAGE_TRANSPORT": "lite", "AWS_ENDPOINT_URL": proxy.url}
        counts = []
        for key_id in ("testing", "testing", "another-principal"):
            new_process(monkeypatch, **env, AWS_ACCESS_KEY_ID=key_id)
            before = proxy.requests
            assert read(tmp_path / "cache") == "value"
            counts.append(proxy.requests - before)
        assert counts == [1, 0, 1]
        assert len(list((tmp_path / "cache").iterdir())) == 2  # one file per principal (one per process before)
    finally:
        proxy.stop()


def test_sources_that_never_persist_have_no_store_name() -> None:
    """env://, kms-env:// and Secrets Manager snapshots never go to /tmp: they have no name there."""
    for url in ("env://", "kms-env://", "secretsmanager://app"):
        assert source_identity(build_source(url)) is None


def test_a_warm_tmp_hit_in_a_new_process_imports_no_aws_library(aws_endpoint: str, tmp_path: Path) -> None:
    """With credentials and region in the environment, a new process's /tmp hit imports neither boto3 nor botocore."""
    seed(boto3.client("dynamodb", endpoint_url=aws_endpoint, region_name="us-east-1"), "warm value")
    env = {
        **os.environ,
        "CONFSTAGE_SOURCES": URL,
        "CONFSTAGE_STAGE": "DEV",
        "CONFSTAGE_CACHE_DIR": str(tmp_path / "cache"),
        "AWS_CONFIG_FILE": str(tmp_path / "no-such-file"),
    }
    script = "import confstage, json, sys; v = confstage.get('k'); print(json.dumps([v, sorted(sys.modules)]))"
    runs = [subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True)]
    runs.append(subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True))
    (cold_value, cold_modules), (warm_value, warm_modules) = (json.loads(r.stdout.splitlines()[-1]) for r in runs)
    assert cold_value == warm_value == "warm value"
    assert "botocore" in cold_modules
    assert not {m for m in warm_modules if m.split(".")[0] in ("boto3", "botocore")}
