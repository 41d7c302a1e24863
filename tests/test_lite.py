"""The lite transport's HTTP behaviour against a scripted loopback server: signing on the wire, keep-alive,
threads, retries and backoff (botocore's standard mode), deadlines, S3 streams and redirects, error parsing,
configuration errors, TLS, and what it must never show (bodies, secrets).
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import os
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials

from confstage.errors import ConfigurationError
from confstage.transport import AwsError, AwsRequest, NetworkError
from confstage.transport.lite.transport import LiteTransport, Settings

from .scripted import Answer, Scripted, Seen

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
TOKEN = "IQoJb3JpZ2luX2VjEXAMPLETOKEN"
ENV = {"AWS_ACCESS_KEY_ID": "ASIAEXAMPLEKEYID0000", "AWS_SECRET_ACCESS_KEY": SECRET, "AWS_SESSION_TOKEN": TOKEN}
ENV["AWS_REGION"] = "eu-west-1"


@pytest.fixture(name="server")
def fixture_server() -> Iterator[Scripted]:
    """A scripted keep-alive server on 127.0.0.1 (default answer: 200 ``{}``)."""
    server = Scripted().start()
    yield server
    server.stop()


class Made:
    """A LiteTransport with recorded sleeps, a fixed jitter and its own environment."""

    def __init__(self, environ: dict[str, str] | None = None, *, from_environ: bool = False, **settings: Any) -> None:
        self.sleeps: list[float] = []
        self.wall = [1_700_000_000.0]
        self.environ = dict(ENV if environ is None else environ)
        values = {"connect_timeout": 1.0, "read_timeout": 1.0, "max_attempts": 3, **settings}
        self.transport = LiteTransport(
            settings=None if from_environ else Settings(**values),
            environ=self.environ,
            sleep=self.sleeps.append,
            jitter=lambda: 1.0,
            wall=lambda: self.wall[0],
        )


@pytest.fixture(name="make")
def fixture_make() -> Iterator[Callable[..., Made]]:
    """Builds lite transports for a test and closes their idle connections afterwards."""
    made: list[Made] = []

    def build(environ: dict[str, str] | None = None, *, from_environ: bool = False, **settings: Any) -> Made:
        made.append(Made(environ, from_environ=from_environ, **settings))
        return made[-1]

    yield build
    for item in made:
        item.transport.close()


def kms(url: str, deadline: float | None = None, **params: Any) -> AwsRequest:
    return AwsRequest("kms", "Decrypt", params or {"CiphertextBlob": b"\x00blob"}, endpoint_url=url, deadline=deadline)


def json_error(status: int, code: str, message: str = "m", **extra: Any) -> Answer:
    return Answer(status, json.dumps({"__type": code, "message": message, **extra}).encode())


def signature_verifies(seen: Seen, secret: str = SECRET, token: str | None = TOKEN) -> bool:
    """Re-derive the signature from the request as received, with botocore, as a service (or moto) does."""
    authorization = seen.headers["authorization"]
    names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    key_id, _, region, service, _ = authorization.split("Credential=")[1].split(",")[0].split("/")
    request = AWSRequest(
        method=seen.method,
        url=f"http://{seen.headers['host']}{seen.path}",
        data=seen.body,
        headers={name: seen.headers[name] for name in names},
    )
    request.context["timestamp"] = seen.headers["x-amz-date"]
    auth = (S3SigV4Auth if service == "s3" else SigV4Auth)(BotoCredentials(key_id, secret, token), service, region)
    canonical = auth.canonical_request(request)
    return bool(
        auth.signature(auth.string_to_sign(request, canonical), request) == authorization.split("Signature=")[1]
    )


# -- what goes on the wire -------------------------------------------------------------------


def test_json_request_is_signed_for_the_region_with_the_session_token(server: Scripted, make: Any) -> None:
    """A KMS call is a JSON 1.1 POST with X-Amz-Target, blobs in base64, signed (with the token) for AWS_REGION."""
    server.default = Answer(body=json.dumps({"Plaintext": base64.b64encode(b"plain").decode(), "KeyId": "k"}).encode())
    result = make().transport.call(kms(server.url))
    assert result["Plaintext"] == b"plain"
    assert result["KeyId"] == "k"
    (seen,) = server.seen
    assert (seen.method, seen.path) == ("POST", "/")
    assert seen.headers["x-amz-target"] == "TrentService.Decrypt"
    assert seen.headers["content-type"] == "application/x-amz-json-1.1"
    assert json.loads(seen.body) == {"CiphertextBlob": base64.b64encode(b"\x00blob").decode()}
    assert seen.headers["x-amz-security-token"] == TOKEN
    assert "/eu-west-1/kms/aws4_request" in seen.headers["authorization"]
    assert signature_verifies(seen)
    assert not signature_verifies(seen, secret="wrong")


def test_region_of_the_request_wins_and_default_region_comes_first(server: Scripted, make: Any) -> None:
    """request.region beats the environment; AWS_DEFAULT_REGION beats AWS_REGION (as confstage.aws orders them)."""
    made = make({**ENV, "AWS_DEFAULT_REGION": "ap-south-2"})
    made.transport.call(kms(server.url))
    made.transport.call(AwsRequest("kms", "Decrypt", {}, region="sa-east-1", endpoint_url=server.url))
    scopes = [seen.headers["authorization"].split("Credential=")[1].split("/")[2] for seen in server.seen]
    assert scopes == ["ap-south-2", "sa-east-1"]


def test_s3_get_sends_conditions_and_signs_the_payload_hash(server: Scripted, make: Any) -> None:
    """GetObject puts Range/If-None-Match in headers and VersionId in the query, path-style on a custom endpoint."""
    server.default = Answer(body=b"value", headers=(("ETag", '"e"'), ("x-amz-version-id", "v1")))
    request = AwsRequest(
        "s3",
        "GetObject",
        {"Bucket": "bkt", "Key": "DEV/ü x+y", "Range": "bytes=0-3", "IfNoneMatch": '"old"', "VersionId": "v 1"},
        endpoint_url=server.url,
    )
    result = make().transport.call(request)
    assert result["Body"].read() == b"value"
    assert (result["ETag"], result["VersionId"], result["ContentLength"]) == ('"e"', "v1", 5)
    (seen,) = server.seen
    assert seen.path == "/bkt/DEV/%C3%BC%20x%2By?versionId=v%201"
    assert (seen.headers["range"], seen.headers["if-none-match"]) == ("bytes=0-3", '"old"')
    assert seen.headers["x-amz-content-sha256"] == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert signature_verifies(seen)


# -- connections -------------------------------------------------------------------------------


def test_keep_alive_reuses_one_connection(server: Scripted, make: Any) -> None:
    """Sequential calls to one endpoint share one TCP connection."""
    transport = make().transport
    for _ in range(5):
        transport.call(kms(server.url))
    assert server.connections == 1
    assert {seen.connection for seen in server.seen} == {1}


def test_threads_share_the_pool_safely(server: Scripted, make: Any) -> None:
    """Calls from many threads at once all succeed, each connection serving one call at a time, then reused."""
    server.default = Answer(body=json.dumps({"Plaintext": base64.b64encode(b"p").decode()}).encode())
    transport = make().transport
    barrier = threading.Barrier(12, timeout=30)
    results: list[Any] = []

    def work() -> None:
        barrier.wait()
        for _ in range(5):
            results.append(transport.call(kms(server.url))["Plaintext"])

    threads = [threading.Thread(target=work) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [b"p"] * 60
    assert server.connections <= 12
    before = server.connections
    transport.call(kms(server.url))
    assert server.connections == before


def test_a_connection_the_server_closed_while_idle_is_replaced_without_an_attempt(server: Scripted, make: Any) -> None:
    """A keep-alive connection closed by the server is retried at once on a new one: no backoff, no attempt spent."""
    server.script = [Answer(close=True)]
    made = make()
    made.transport.call(kms(server.url))
    result = made.transport.call(kms(server.url))
    assert result["ResponseMetadata"]["RetryAttempts"] == 0
    assert made.sleeps == []
    assert server.connections == 2


def test_a_connection_idle_for_over_a_minute_is_not_reused(server: Scripted, make: Any) -> None:
    """A pooled connection idle longer than 60 s (wall clock, so a frozen Lambda's pause counts) is replaced."""
    made = make()
    made.transport.call(kms(server.url))
    made.wall[0] += 59
    made.transport.call(kms(server.url))
    assert server.connections == 1
    made.wall[0] += 61
    made.transport.call(kms(server.url))
    assert server.connections == 2


# -- retries -------------------------------------------------------------------------------------


def test_5xx_is_retried_with_botocores_backoff(server: Scripted, make: Any) -> None:
    """500 then 503 then 200: two retries, sleeping rand * 50 ms * 2**i (25 ms for DynamoDB)."""
    server.script = [json_error(500, "InternalFailure"), Answer(503, b""), Answer()]
    made = make()
    assert made.transport.call(kms(server.url))["ResponseMetadata"]["RetryAttempts"] == 2
    assert made.sleeps == [0.05, 0.1]
    server.script = [json_error(500, "InternalServerError"), Answer()]
    made.transport.call(AwsRequest("dynamodb", "GetItem", {"TableName": "t", "Key": {}}, endpoint_url=server.url))
    assert made.sleeps[2:] == [0.025]


def test_throttling_backs_off_from_one_second_and_honours_retry_after(server: Scripted, make: Any) -> None:
    """Throttling errors (by code, or a bare 429) back off from 1 s; x-amz-retry-after raises a wait (≤ 5 s more)."""
    throttled = Answer(400, json.dumps({"__type": "ThrottlingException"}).encode(), (("x-amz-retry-after", "3000"),))
    server.script = [throttled, Answer(429, b""), Answer()]
    made = make()
    made.transport.call(kms(server.url))
    assert made.sleeps == [3.0, 2.0]


def test_gives_up_after_max_attempts(server: Scripted, make: Any) -> None:
    """A 500 that never ends fails after CONFSTAGE_MAX_ATTEMPTS requests with the service's error."""
    server.default = json_error(500, "InternalFailure", "try later")
    with pytest.raises(AwsError) as caught:
        make().transport.call(kms(server.url))
    assert (caught.value.code, caught.value.status, len(server.seen)) == ("InternalFailure", 500, 3)
    made = make({**ENV, "CONFSTAGE_MAX_ATTEMPTS": "5"}, from_environ=True)
    assert made.transport.settings.max_attempts == 5
    with pytest.raises(AwsError):
        made.transport.call(kms(server.url))
    assert len(server.seen) == 3 + 5


def test_client_errors_are_not_retried(server: Scripted, make: Any) -> None:
    """A 4xx that is not throttling fails at once, its code and message kept."""
    server.default = json_error(400, "com.amazonaws.kms#InvalidCiphertextException:http://x", "bad blob")
    with pytest.raises(AwsError) as caught:
        make().transport.call(kms(server.url))
    assert (caught.value.code, caught.value.status, caught.value.throttled) == (
        "InvalidCiphertextException",
        400,
        False,
    )
    assert str(caught.value) == "InvalidCiphertextException: bad blob"
    assert caught.value.operation == "kms:Decrypt"
    assert len(server.seen) == 1


def test_retry_quota_stops_retry_storms(server: Scripted, make: Any) -> None:
    """Once the retry quota (500, 14 a retry) is spent, failures are no longer retried until successes refill it."""
    server.default = json_error(500, "InternalFailure")
    transport = make(max_attempts=40).transport
    with pytest.raises(AwsError):
        transport.call(kms(server.url))
    assert len(server.seen) == 1 + 500 // 14
    server.default = Answer()
    transport.call(kms(server.url))


def test_a_backoff_that_would_pass_the_deadline_is_not_slept(server: Scripted, make: Any) -> None:
    """With 0.5 s left and a 1 s throttling backoff due, the throttling error comes back at once."""
    server.default = json_error(400, "ThrottlingException")
    made = make()
    started = time.monotonic()
    with pytest.raises(AwsError) as caught:
        made.transport.call(kms(server.url, deadline=time.monotonic() + 0.5))
    assert caught.value.throttled
    assert (len(server.seen), made.sleeps) == (1, [])
    assert time.monotonic() - started < 0.5


def test_a_passed_deadline_sends_nothing(server: Scripted, make: Any) -> None:
    """A call whose deadline has passed fails with NetworkError before any request."""
    with pytest.raises(NetworkError, match="deadline"):
        make().transport.call(kms(server.url, deadline=time.monotonic() - 1))
    assert server.seen == []


@pytest.mark.parametrize(
    "body",
    [b"<html>MARKER</html>", b'["MARKER"]', b'{"Plaintext": "MARKER!"}', b'{"Plaintext": "MARKER\xff"}'],
    ids=["html", "array", "bad-blob", "bad-utf8"],
)
def test_an_unparseable_200_is_a_network_error_not_an_empty_result(server: Scripted, make: Any, body: bytes) -> None:
    """A 2xx whose body does not parse is a NetworkError (not retried), never an empty answer."""
    server.default = Answer(body=body)
    with pytest.raises(NetworkError) as caught:
        make().transport.call(kms(server.url))
    assert len(server.seen) == 1
    assert "MARKER" not in str(caught.value)


def test_dynamodb_crc32_mismatch_is_retried(server: Scripted, make: Any) -> None:
    """A DynamoDB answer failing its x-amz-crc32 check is retried, as botocore does."""
    body = json.dumps({"Item": {"k": {"S": "v"}, "b": {"B": base64.b64encode(b"\x00\x01").decode()}}}).encode()
    good = str(binascii.crc32(body))
    server.script = [
        Answer(body=body, headers=(("x-amz-crc32", "12345"),)),
        Answer(body=body, headers=(("x-amz-crc32", good),)),
    ]
    result = make().transport.call(
        AwsRequest("dynamodb", "GetItem", {"TableName": "t", "Key": {}}, endpoint_url=server.url)
    )
    assert result["Item"] == {"k": {"S": "v"}, "b": {"B": b"\x00\x01"}}
    assert len(server.seen) == 2


# -- S3 ------------------------------------------------------------------------------------------


def s3_get(url: str, key: str = "k", deadline: float | None = None, **params: Any) -> AwsRequest:
    return AwsRequest("s3", "GetObject", {"Bucket": "bkt", "Key": key, **params}, endpoint_url=url, deadline=deadline)


def test_s3_body_streams_and_hands_the_connection_back(server: Scripted, make: Any) -> None:
    """A body read to its end, in chunks, returns its connection to the pool for the next call."""
    payload = bytes(range(256)) * 400
    server.default = Answer(body=payload)
    transport = make().transport
    body = transport.call(s3_get(server.url))["Body"]
    assert b"".join(body.iter_chunks(4096)) == payload
    assert body.read() == b""
    transport.call(s3_get(server.url))["Body"].read()
    assert server.connections == 1


def test_s3_body_closed_early_closes_its_connection(server: Scripted, make: Any) -> None:
    """Closing a body before its end closes the connection instead of reusing a half-read one."""
    server.default = Answer(body=b"x" * 100_000)
    transport = make().transport
    with transport.call(s3_get(server.url))["Body"] as body:
        assert body.read(10) == b"x" * 10
    assert transport.call(s3_get(server.url))["Body"].read() == b"x" * 100_000
    assert server.connections == 2


@pytest.mark.parametrize("whole", [True, False], ids=["read()", "read(n)"])
def test_s3_body_cut_short_is_a_network_error(server: Scripted, make: Any, whole: bool) -> None:
    """A body shorter than its Content-Length is a NetworkError, read whole or in pieces."""
    server.default = Answer(body=b"0123456789", length=100, close=True)
    body = make().transport.call(s3_get(server.url))["Body"]

    def drain() -> None:
        if whole:
            body.read()
        while body.read(7):
            pass

    with pytest.raises(NetworkError):
        drain()


def test_s3_status_only_and_xml_errors(server: Scripted, make: Any) -> None:
    """304 is NotModified, an XML error keeps S3's code, a bodiless HEAD 404 is NotFound."""
    xml = b"<?xml version='1.0'?><Error><Code>NoSuchKey</Code><Message>gone</Message><Key>k</Key></Error>"
    server.script = [Answer(304, b""), Answer(404, xml), Answer(404, b"")]
    transport = make().transport
    codes = []
    for request in (
        s3_get(server.url, IfNoneMatch='"e"'),
        s3_get(server.url),
        AwsRequest("s3", "HeadObject", {"Bucket": "bkt", "Key": "k"}, endpoint_url=server.url),
    ):
        with pytest.raises(AwsError) as caught:
            transport.call(request)
        codes.append((caught.value.code, caught.value.status))
    assert codes == [("NotModified", 304), ("NoSuchKey", 404), ("NotFound", 404)]


def test_s3_wrong_region_is_redirected_once_and_remembered(server: Scripted, make: Any) -> None:
    """A 301 naming the bucket's region is re-signed for that region at once, and later calls go there directly."""
    moved = b"<Error><Code>PermanentRedirect</Code><Message>elsewhere</Message></Error>"
    server.script = [Answer(301, moved, (("x-amz-bucket-region", "eu-central-1"),)), Answer(body=b"v")]
    transport = make().transport
    assert transport.call(s3_get(server.url))["Body"].read() == b"v"
    transport.call(s3_get(server.url))["Body"].read()
    scopes = [seen.headers["authorization"].split("Credential=")[1].split("/")[2] for seen in server.seen]
    assert scopes == ["eu-west-1", "eu-central-1", "eu-central-1"]
    assert all(signature_verifies(seen) for seen in server.seen)


# -- errors, messages, configuration -------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (json_error(400, "com.amazonaws.dynamodb.v20120810#ResourceNotFoundException"), "ResourceNotFoundException"),
        (Answer(400, b'{"code": "AccessDeniedException", "Message": "no"}'), "AccessDeniedException"),
        (
            Answer(400, b"", (("x-amzn-ErrorType", "UnrecognizedClientException:http://internal"),)),
            "UnrecognizedClientException",
        ),
        (Answer(503, b"<html>busy</html>"), "503"),
        (
            Answer(
                403, b"<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code></Error></Errors></ErrorResponse>"
            ),
            "InvalidClientTokenId",
        ),
    ],
    ids=["type-with-namespace", "code-field", "header-only", "status-only", "xml-in-front"],
)
def test_json_error_codes(server: Scripted, make: Any, answer: Answer, code: str) -> None:
    """JSON errors take botocore's code (__type cut of namespace and suffix, code, x-amzn-ErrorType, the status);
    an XML error a proxy or moto puts in front of a JSON API gives its code too."""
    server.default = answer
    with pytest.raises(AwsError) as caught:
        make(max_attempts=1).transport.call(kms(server.url))
    assert caught.value.code == code


def test_errors_and_reprs_show_no_body_or_secret(server: Scripted, make: Any) -> None:
    """Neither an error nor a repr shows a credential, the request body or anything but the service's message."""
    server.default = json_error(400, "ValidationException", "x" * 1000, Echo="SECRET-IN-BODY")
    made = make()
    with pytest.raises(AwsError) as caught:
        made.transport.call(kms(server.url, CiphertextBlob=b"PLAINTEXT-ISH"))
    shown = " ".join([str(caught.value), repr(caught.value), repr(made.transport)])
    for secret in (
        SECRET,
        TOKEN,
        ENV["AWS_ACCESS_KEY_ID"],
        "SECRET-IN-BODY",
        base64.b64encode(b"PLAINTEXT-ISH").decode(),
    ):
        assert secret not in shown
    assert len(str(caught.value)) < 400


def test_configuration_errors(server: Scripted, make: Any) -> None:
    """Missing credentials or region, FIPS/dual-stack or a proxy: ConfigurationError naming the variable."""
    for environ, name in [
        ({"AWS_REGION": "eu-west-1"}, "AWS_ACCESS_KEY_ID"),
        ({**ENV, "AWS_REGION": ""}, "AWS_REGION"),
        ({**ENV, "AWS_USE_FIPS_ENDPOINT": "true"}, "AWS_USE_FIPS_ENDPOINT"),
        ({**ENV, "AWS_USE_DUALSTACK_ENDPOINT": "True"}, "AWS_USE_DUALSTACK_ENDPOINT"),
        ({**ENV, "HTTPS_PROXY": "http://proxy:3128"}, "HTTPS_PROXY"),
    ]:
        with pytest.raises(ConfigurationError, match=name):
            LiteTransport(environ=environ)
    made = make()
    del made.environ["AWS_SECRET_ACCESS_KEY"]
    with pytest.raises(ConfigurationError, match="no longer set"):
        made.transport.call(kms(server.url))
    assert server.seen == []


def test_unsupported_calls_are_refused_by_name(make: Any) -> None:
    """Operations, parameters and buckets the lite transport does not speak are a ValueError, not a guess."""
    transport = make().transport
    for request, what in [
        (AwsRequest("s3", "PutObject", {"Bucket": "b", "Key": "k"}), "s3:PutObject"),
        (AwsRequest("sts", "AssumeRole", {}), "sts:AssumeRole"),
        (AwsRequest("lambda", "Invoke", {}), "lambda:Invoke"),
        (AwsRequest("s3", "GetObject", {"Bucket": "b", "Key": "k", "SSECustomerKey": "x"}), "SSECustomerKey"),
        (AwsRequest("s3", "GetObject", {"Bucket": "b--x-s3", "Key": "k"}), "directory buckets"),
    ]:
        with pytest.raises(ValueError, match=what):
            transport.call(request)


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def test_https_with_a_ca_bundle_keeps_alive_and_keeps_deadlines(tmp_path: Path, make: Any) -> None:
    """Over TLS (AWS_CA_BUNDLE trusted), calls share one connection and a trickling body still meets its deadline."""
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = Scripted(Answer(body=b'{"KeyId": "k"}'), tls=context).start()
    try:
        transport = make({**ENV, "AWS_CA_BUNDLE": str(cert)}).transport
        for _ in range(3):
            assert transport.call(kms(server.url))["KeyId"] == "k"
        assert server.connections == 1
        with pytest.raises(NetworkError, match=r"SSLCertVerificationError|CERTIFICATE_VERIFY_FAILED"):
            make().transport.call(kms(server.url))
        server.default = Answer(body=b"x" * 10, length=10_000)  # announces more than it sends: the read waits
        started = time.monotonic()
        body = transport.call(s3_get(server.url, deadline=time.monotonic() + 0.6))["Body"]
        with pytest.raises(NetworkError, match=r"deadline|timed out"):
            body.read()
        assert time.monotonic() - started < 0.6 + 0.3
    finally:
        server.stop()
    with pytest.raises(ConfigurationError, match="AWS_CA_BUNDLE"):
        make({**ENV, "AWS_CA_BUNDLE": str(tmp_path / "missing.pem")}).transport.call(kms("https://127.0.0.1:9"))


def test_the_lite_cold_path_imports_no_sdk_and_no_email_package(server: Scripted) -> None:
    """A fresh interpreter making a DynamoDB Query through lite loads no AWS SDK, no http.client/email, and
    ``import confstage`` alone loads no part of the transport."""
    script = (
        "import sys, json, os\n"
        "import confstage\n"
        "before = set(sys.modules)\n"
        "from confstage.transport import AwsRequest\n"
        "from confstage.transport.lite.transport import LiteTransport\n"
        "LiteTransport().call(AwsRequest('dynamodb', 'Query', {'TableName': 't'}, endpoint_url=os.environ['URL']))\n"
        "print(json.dumps([sorted(before), sorted(sys.modules)]))"
    )
    env = {**ENV, "URL": server.url, "PATH": os.environ.get("PATH", "")}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60, env=env
    )
    before, after = (set(names) for names in json.loads(out.stdout))
    assert not {m for m in before if m.startswith("confstage.transport")}
    heavy = {"boto3", "botocore", "s3transfer", "urllib3", "email", "http", "datetime", "ssl", "xml"}
    assert not {m for m in after if m.split(".")[0] in heavy}
    assert len(server.seen) == 1
