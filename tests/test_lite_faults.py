"""The lite transport under HTTP faults (tests/faultproxy.py in front of the local endpoint): every call, timed,
ends within its deadline with the right error and the right number of attempts.

Settings: 0.5 s connect and read timeouts, 3 attempts, a 2 s deadline; the proxy's slow answers come after 1 s
and a trickled body gets one byte every 0.2 s (each read succeeds, the whole never would).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from confstage.transport import AwsError, AwsRequest, NetworkError
from confstage.transport.lite.transport import LiteTransport, Settings

from .conftest import seed_stage
from .faultproxy import FaultProxy

pytestmark = pytest.mark.integration

DEADLINE = 2.0
SLACK = 0.3  # scheduling on a loaded 2-core machine
TIMEOUT = 0.5
REPORT: dict[str, dict[str, float]] = {}


@pytest.fixture(scope="module", name="report")
def fixture_report() -> Iterator[dict[str, dict[str, float]]]:
    """Collects each call's duration; written to $CONFSTAGE_LITE_FAULT_REPORT when set (for the closing note)."""
    yield REPORT
    target = os.environ.get("CONFSTAGE_LITE_FAULT_REPORT")
    if target:
        Path(target).write_text(json.dumps(REPORT, indent=2, sort_keys=True))


@pytest.fixture(name="proxy")
def fixture_proxy(boto: Callable[[str], Any], fault_proxy: Callable[..., FaultProxy]) -> FaultProxy:
    """A fault proxy in front of the local endpoint, with a DynamoDB stage and an S3 object behind it."""
    seed_stage(boto, "cfg", "DEV", {"k": "v" * 50})
    s3 = boto("s3")
    s3.create_bucket(Bucket="cfg")
    s3.put_object(Bucket="cfg", Key="DEV/config.json", Body=json.dumps({"k": "v" * 50}).encode())
    return fault_proxy(route=False, slow_seconds=1.0, trickle_seconds=0.2)


@pytest.fixture(name="lite")
def fixture_lite(aws_endpoint: str) -> Iterator[LiteTransport]:
    """A lite transport with short timeouts and a fixed jitter (throttling backoffs of 0.1 s, then 0.2 s)."""
    transport = LiteTransport(
        settings=Settings(connect_timeout=TIMEOUT, read_timeout=TIMEOUT, max_attempts=3),
        environ=os.environ,
        jitter=lambda: 0.1,
    )
    yield transport
    transport.close()


def query(url: str, deadline: float | None) -> AwsRequest:
    params = {
        "TableName": "cfg",
        "KeyConditionExpression": "#s = :s",
        "ExpressionAttributeNames": {"#s": "stage"},
        "ExpressionAttributeValues": {":s": {"S": "DEV"}},
    }
    return AwsRequest("dynamodb", "Query", params, endpoint_url=url, deadline=deadline)


def get_object(url: str, deadline: float | None) -> AwsRequest:
    return AwsRequest(
        "s3", "GetObject", {"Bucket": "cfg", "Key": "DEV/config.json"}, endpoint_url=url, deadline=deadline
    )


def list_objects(url: str, deadline: float | None) -> AwsRequest:
    return AwsRequest("s3", "ListObjectsV2", {"Bucket": "cfg", "Prefix": "DEV/"}, endpoint_url=url, deadline=deadline)


OPERATIONS = {"dynamodb:Query": query, "s3:GetObject": get_object, "s3:ListObjectsV2": list_objects}


def timed_call(lite: LiteTransport, request: AwsRequest) -> tuple[Any, float]:
    """The answer (an S3 Body read to its end) or the exception, and how long it all took."""
    started = time.monotonic()
    try:
        result: Any = lite.call(request)
        if "Body" in result:
            result["Body"] = result["Body"].read()
    except Exception as exc:
        result = exc
    return result, time.monotonic() - started


# fault → per protocol: expected error class, code (None: NetworkError), the requests the proxy may see. A read
# timeout (slow, hang) costs 0.5 s an attempt: the third starts at about 1.2 s of the 2 s deadline, or, on a loaded
# machine whose first attempts ran long, not before the deadline at all (the deadline, not the count, is the rule).
EXPECTED: dict[str, tuple[type[Exception], dict[str, str | None], tuple[int, ...]]] = {
    "500": (AwsError, {"json": "InternalServerError", "xml": "InternalError"}, (3,)),
    "throttle": (AwsError, {"json": "ThrottlingException", "xml": "SlowDown"}, (3,)),
    "drop": (NetworkError, {}, (3,)),
    "slow": (NetworkError, {}, (2, 3)),
    "hang": (NetworkError, {}, (2, 3)),
    "trickle": (NetworkError, {}, (1,)),
    "garbage": (NetworkError, {}, (1,)),
}


@pytest.mark.parametrize("operation", list(OPERATIONS))
@pytest.mark.parametrize("fault", list(EXPECTED))
def test_fault_ends_within_the_deadline_with_the_right_error(
    proxy: FaultProxy, lite: LiteTransport, report: dict[str, dict[str, float]], fault: str, operation: str
) -> None:
    """Each fault gives its error (or, for S3 GetObject garbage, the bytes as the object) inside the deadline."""
    proxy.fault = fault
    result, elapsed = timed_call(lite, OPERATIONS[operation](proxy.url, time.monotonic() + DEADLINE))
    report.setdefault(fault, {})[operation] = round(elapsed, 3)
    assert elapsed < DEADLINE + SLACK
    if fault == "garbage" and operation == "s3:GetObject":  # an object's bytes are whatever came: botocore agrees
        assert result["Body"].startswith(b"<html>")
        assert proxy.requests == 1
        return
    error, codes, requests = EXPECTED[fault]
    assert isinstance(result, error), result
    if isinstance(result, AwsError):
        assert result.code == codes["json" if operation.startswith("dynamodb") else "xml"]
    assert proxy.requests in requests
    if fault in ("trickle",):
        assert "deadline" in str(result)
        assert elapsed > DEADLINE - SLACK  # it was the deadline, not a timeout, that ended it


@pytest.mark.parametrize("fault", ["slow", "hang"])
def test_without_a_deadline_the_read_timeout_bounds_each_attempt(
    proxy: FaultProxy, lite: LiteTransport, fault: str
) -> None:
    """With no deadline, an endpoint that never answers costs attempts x read timeout (plus small backoffs)."""
    proxy.fault = fault
    result, elapsed = timed_call(lite, query(proxy.url, None))
    assert isinstance(result, NetworkError)
    assert "timed out" in str(result)
    assert 3 * TIMEOUT - 0.05 < elapsed < 3 * TIMEOUT + SLACK + 0.2
    assert proxy.requests == 3


def test_recovers_after_the_fault_and_reuses_the_connection(proxy: FaultProxy, lite: LiteTransport) -> None:
    """After failures the next call succeeds, and calls after it share one connection to the proxy."""
    proxy.fault = "drop"
    assert isinstance(timed_call(lite, query(proxy.url, time.monotonic() + DEADLINE))[0], NetworkError)
    proxy.fault = None
    for _ in range(3):
        result, _elapsed = timed_call(lite, query(proxy.url, time.monotonic() + DEADLINE))
        assert result["Items"][0]["value"] == {"S": "v" * 50}


def test_concurrent_callers_each_end_within_the_deadline(proxy: FaultProxy, lite: LiteTransport) -> None:
    """Eight threads calling a hanging endpoint at once each get NetworkError inside their own deadline."""
    proxy.fault = "hang"
    barrier = threading.Barrier(8, timeout=30)
    results: list[tuple[Any, float]] = []

    def work() -> None:
        barrier.wait()
        results.append(timed_call(lite, query(proxy.url, time.monotonic() + 1.0)))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 8
    for result, elapsed in results:
        assert isinstance(result, NetworkError)
        assert elapsed < 1.0 + SLACK
