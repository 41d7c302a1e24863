"""Shared fixtures: a local AWS endpoint (moto server on 127.0.0.1), clean state, request counting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

import confstage
from confstage import aws
from confstage.sources.dynamodb import DynamoDBSource
from confstage.sources.s3 import S3Source
from confstage.stores.dynamodb import DynamoDBStore
from confstage.stores.s3 import S3Store
from confstage.transport.botocore import ADMIN_READ_TIMEOUT, BotocoreTransport, add_client_hook

from ._motoserver import threaded_moto
from .faultproxy import FaultProxy

# Nothing in the test suite may reach real AWS: credentials are fake and any client that is not
# pointed at the local endpoint (or inside moto.mock_aws) talks to a closed loopback port.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
    }
)
DEAD_ENDPOINT = "http://127.0.0.1:9"

# tox (and so CI) sets HYPOTHESIS_PROFILE=ci: the same examples on every run, so a red run is a change's doing
# and reproduces, never a new draw's. Running pytest by hand keeps drawing new examples, and finds new failures.
settings.register_profile("ci", derandomize=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(autouse=True)
def _clean_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """Every test starts without CONFSTAGE_* variables, default client or cached boto3 clients."""
    for name in list(os.environ):
        if name.startswith(("CONFSTAGE_", "AWS_ENDPOINT_URL")):
            monkeypatch.delenv(name)
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", DEAD_ENDPOINT)
    monkeypatch.setenv("CONFSTAGE_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("CONFSTAGE_TTL_JITTER", "0")  # TTLs exact unless a test asks for jitter
    monkeypatch.setenv("CONFSTAGE_CONNECT_TIMEOUT", "1")
    monkeypatch.setenv("CONFSTAGE_READ_TIMEOUT", "2")
    confstage.reset()
    aws.reset()
    yield
    confstage.reset()
    aws.reset()


@pytest.fixture(scope="session", autouse=True)
def _one_botocore_loader() -> Iterator[None]:
    """Every botocore session of the test process shares one data loader (one per ``AWS_DATA_PATH``).

    Each test starts on fresh transports (``aws.reset()``), as a new Lambda process would, and each transport makes
    its own boto3 session, whose new loader parsed the service models, endpoints and rule sets again: about a
    fifth of the CPU of an integration test went to ``json.loads``. One loader parses each file once per worker;
    the sessions, clients and everything confstage does with them stay per test.
    """
    import functools

    import botocore.session

    shared = functools.cache(botocore.session.create_loader)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session, "create_loader", shared)
        yield


@pytest.fixture(scope="session", name="aws_server")
def fixture_aws_server() -> Iterator[str]:
    """A moto server on 127.0.0.1 (random port) for the whole session; yields its URL."""
    with threaded_moto() as url:
        yield url


@pytest.fixture(name="aws_endpoint")
def fixture_aws_endpoint(aws_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """The local endpoint, emptied, with boto3 pointed at it through AWS_ENDPOINT_URL."""
    request = urllib.request.Request(f"{aws_server}/moto-api/reset", method="POST")  # noqa: S310
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # the loopback moto server
        assert response.status == 200
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_server)
    _batch_skips_deleted_secrets(monkeypatch)
    aws.reset()
    return aws_server


def _batch_skips_deleted_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto 5.2's BatchGetSecretValue with ``Filters`` reads every matching secret, one scheduled for deletion too,
    and then fails the whole call (InvalidRequestException); AWS's filtered listing leaves such secrets out, as
    moto's own ListSecrets does. The server runs in this process, so its backend is corrected here."""
    from moto.secretsmanager import models

    original = models.SecretsManagerBackend.batch_get_secret_value

    def batch_get_secret_value(
        self: Any,
        secret_id_list: list[str] | None = None,
        filters: list[dict[str, Any]] | None = None,
        max_results: int | None = None,
        next_token: str | None = None,
    ) -> Any:
        if not filters or secret_id_list:
            return original(self, secret_id_list, filters, max_results, next_token)
        live = [s for s in self.secrets.values() if isinstance(s, models.FakeSecret) and not s.is_deleted()]
        values = [self.get_secret_value(s.secret_id, "", "") for s in live if models._matches(s, filters)]
        page, token = self._get_secret_values_page_and_next_token(values, max_results, next_token)
        return page, [], token

    monkeypatch.setattr(models.SecretsManagerBackend, "batch_get_secret_value", batch_get_secret_value)


@pytest.fixture(name="boto")
def fixture_boto(aws_endpoint: str) -> Any:
    """A factory of plain boto3 clients on the local endpoint, for arranging and checking state."""
    import boto3

    def make(service: str) -> Any:
        return boto3.client(service, endpoint_url=aws_endpoint, region_name="us-east-1")

    return make


@pytest.fixture(name="kms_key")
def fixture_kms_key(boto: Any) -> str:
    """A symmetric KMS key on the local endpoint; yields its id."""
    key_id: str = boto("kms").create_key(Description="confstage tests")["KeyMetadata"]["KeyId"]
    return key_id


@pytest.fixture(name="requests_made")
def fixture_requests_made() -> Iterator[Counter[str]]:
    """Counts HTTP requests by ``service.Operation`` on every confstage client made during the test."""
    counts: Counter[str] = Counter()

    def count(event_name: str, **_: Any) -> None:
        # event_name is "before-send.<service>.<Operation>"; retries send again and count again.
        counts[event_name.split(".", 1)[1]] += 1

    def hook(client: Any) -> None:
        client.meta.events.register("before-send", count)

    remove = add_client_hook(hook)
    yield counts
    remove()


class FakeClock:
    """An injectable wall clock that only moves when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(name="clock")
def fixture_clock() -> FakeClock:
    """A fake clock for TTL tests: nothing sleeps, time moves with ``clock.tick(s)``."""
    return FakeClock()


# -- stores made by their own init, on a transport of the test's own ---------------------------------------------

TABLE = "config"
BUCKET = "confstage-config"


@pytest.fixture(name="admin")
def fixture_admin(aws_endpoint: str) -> BotocoreTransport:
    """A transport of the test's own, its clients made before request counting starts (its requests not counted)."""
    transport = BotocoreTransport(read_timeout=ADMIN_READ_TIMEOUT)
    for service in ("dynamodb", "s3", "kms", "sts"):  # sts: the writer's ARN, which writes record
        transport.client(service)
    return transport


@pytest.fixture(name="table")
def fixture_table(admin: BotocoreTransport) -> DynamoDBStore:
    """A stage-key table, created by the store's own ``init``; ``table.reader`` reads it."""
    store = DynamoDBStore(DynamoDBSource(TABLE, transport=admin), admin)
    store.init()
    return store


@pytest.fixture(name="flat")
def fixture_flat(admin: BotocoreTransport) -> DynamoDBStore:
    """A flat-layout table (hash key ``{key}_{STAGE}``), created by ``init``."""
    store = DynamoDBStore(DynamoDBSource("flat-config", layout="flat", transport=admin), admin)
    store.init()
    return store


@pytest.fixture(name="bucket")
def fixture_bucket(admin: BotocoreTransport) -> S3Store:
    """A versioned bucket made by the store's own ``init``; ``bucket.reader`` reads the objects layout."""
    store = S3Store(S3Source(BUCKET, "app", transport=admin), admin)
    store.init()
    return store


@pytest.fixture(name="document")
def fixture_document(bucket: S3Store, admin: BotocoreTransport) -> S3Store:
    """The document layout on the same bucket and prefix."""
    return S3Store(S3Source(BUCKET, "app", layout="document", transport=admin), admin)


@pytest.fixture(name="fault_proxy")
def fixture_fault_proxy(aws_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FaultProxy]]:
    """The one way a test puts a fault proxy (``tests/faultproxy.py``) in front of the local endpoint:
    ``fault_proxy(settings={...}, **proxy_options)`` starts one, points ``AWS_ENDPOINT_URL`` at it (``route=False``:
    not), sets each ``CONFSTAGE_*`` setting given (None: unset it), and stops every proxy after the test."""
    started: list[FaultProxy] = []

    def start(*, route: bool = True, settings: Mapping[str, str | None] | None = None, **options: float) -> FaultProxy:
        proxy = FaultProxy(aws_endpoint, **options).start()
        started.append(proxy)
        if route:
            monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        for name, value in (settings or {}).items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        aws.reset()  # the runtime's transport is made again, for the proxy and these settings
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


def seed_stage(boto: Callable[[str], Any], table: str, stage: str, values: Mapping[str, str]) -> str:
    """A stage-key table (made as ``confstage init`` makes it, unless it exists) holding ``values`` for ``stage``,
    written with plain boto3; its source URL."""
    dynamodb = boto("dynamodb")
    if table not in dynamodb.list_tables()["TableNames"]:
        create_stage_key_table(dynamodb, table)
    for key, value in values.items():
        dynamodb.put_item(TableName=table, Item={"stage": {"S": stage}, "key": {"S": key}, "value": {"S": value}})
    return f"dynamodb://{table}"


def seed_ssm(boto: Callable[[str], Any], value: str) -> str:
    """The key ``k`` of stage DEV as the SSM parameter /app/DEV/k; its source URL."""
    boto("ssm").put_parameter(Name="/app/DEV/k", Value=value, Type="String")
    return "ssm:///app"


def seed_secretsmanager(boto: Callable[[str], Any], value: str) -> str:
    """The key ``k`` of stage DEV in the JSON secret app/DEV; its source URL."""
    boto("secretsmanager").create_secret(Name="app/DEV", SecretString=json.dumps({"k": value}))
    return "secretsmanager://app"


def seed_secrets(boto: Callable[[str], Any], value: str) -> str:
    """The key ``k`` of stage DEV as the secret app/DEV/k (the secrets layout); its source URL."""
    boto("secretsmanager").create_secret(Name="app/DEV/k", SecretString=value)
    return "secretsmanager://app?layout=secrets"


_PACKAGE = os.path.dirname(confstage.__file__) + os.sep


def _made_by_confstage(thing: object) -> bool:
    """Whether a piece of garbage is confstage's: its own objects, or a frame, traceback or error of its code."""
    if isinstance(thing, types.TracebackType):
        thing = thing.tb_frame
    if isinstance(thing, types.FrameType):
        return thing.f_code.co_filename.startswith(_PACKAGE)
    return type(thing).__module__.startswith("confstage")


def confstage_garbage(action: Callable[[], object]) -> list[str]:
    """The types of what the cycle collector finds of confstage's after ``action`` (none: no reference cycle).

    Only confstage's own garbage counts: under xdist, threads left by earlier tests in the same worker (a
    server, a pool) make garbage of their own while the collector is off.
    """
    import gc

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        action()
        gc.collect()
        return [type(thing).__name__ for thing in gc.garbage if _made_by_confstage(thing)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


@pytest.fixture(name="cfg_table")
def fixture_cfg_table(aws_endpoint: str) -> str:
    """The stage-key table cfg on the local endpoint, made by its store's ``init``; its source URL."""
    DynamoDBStore(DynamoDBSource("cfg")).init()
    return "dynamodb://cfg"


def create_stage_key_table(dynamodb: Any, name: str) -> None:
    """A stage-key table as ``confstage init`` makes it, with a plain boto3 client (no confstage transport)."""
    schema = [{"AttributeName": "stage", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}]
    dynamodb.create_table(
        TableName=name,
        KeySchema=schema,
        AttributeDefinitions=[{"AttributeName": k["AttributeName"], "AttributeType": "S"} for k in schema],
        BillingMode="PAY_PER_REQUEST",
    )


def run_benchmark(
    script: str, *args: str, out: Path, drop: tuple[str, ...] = ("CONFSTAGE_", "AWS_")
) -> tuple[str, dict[str, Any]]:
    """Run ``benchmarks/SCRIPT ARGS --json OUT`` in a fresh interpreter from the repository root, without the
    test's variables starting with ``drop``; its stdout and the JSON it wrote."""
    root = Path(__file__).resolve().parent.parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    done = subprocess.run(
        [sys.executable, str(root / "benchmarks" / script), *args, "--json", str(out)],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    results: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return done.stdout, results
