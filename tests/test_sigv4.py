"""confstage.transport.sigv4 signs byte for byte as botocore's SigV4Auth and S3SigV4Auth do.

Differential: the same request (method, URL, headers, body, credentials, clock) is signed by botocore's
public ``add_auth`` and by ``sigv4.sign``; canonical request, string to sign and Authorization header must
match, over hypothesis-generated paths, query strings, header values and unicode.
"""

from __future__ import annotations

import datetime
import hashlib
from typing import Any
from unittest import mock
from urllib.parse import quote

import pytest
from botocore.auth import S3SigV4Auth, SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotoCredentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confstage.transport import sigv4
from confstage.transport.endpoints import s3_address

STAMP = "20260314T092653Z"
NOW = datetime.datetime(2026, 3, 14, 9, 26, 53, tzinfo=datetime.timezone.utc)
EXAMPLES = 100  # each example signs twice (ours and botocore's); TRICKY makes every one count

# Characters that stress the encoders: reserved, unreserved, percent, plus, space, unicode of every width.
TRICKY = "aZ09-_.~!$&'()*+,;=:@/?#[]% \t\"<>\\^`{|}é中𝄞\u00a0\u2028"
segments = st.text(alphabet=st.sampled_from(TRICKY) | st.characters(codec="utf-8"), max_size=12).filter(
    lambda s: "/" not in s
)
query_text = st.text(alphabet=st.sampled_from(TRICKY + "=") | st.characters(codec="utf-8"), max_size=10)
header_names = st.from_regex(r"\A[A-Za-z][A-Za-z0-9-]{0,15}\Z").filter(
    lambda n: (
        n.lower() not in {"host", "authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256", "date"}
    )
)
header_values = st.text(
    alphabet=st.sampled_from(" \t abc XYZ 0123 ,;=\"'é\u00a0\u0085")
    | st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    max_size=20,
)
credentials = st.builds(
    sigv4.Credentials,
    st.from_regex(r"\A(AKIA|ASIA)[A-Z0-9]{16}\Z"),
    st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40),
    st.none() | st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=60),
)
regions = st.sampled_from(["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1", "us-isob-east-1"])
hosts = st.sampled_from(["dynamodb.us-east-1.amazonaws.com", "127.0.0.1:5000", "kms.cn-north-1.amazonaws.com.cn"])


def botocore_signed(
    method: str, url: str, headers: dict[str, str], body: bytes, *, service: str, region: str, creds: Any, s3: bool
) -> tuple[str, str, str]:
    """(canonical request, string to sign, Authorization) as botocore's public add_auth makes them at STAMP."""
    request = AWSRequest(method=method, url=url, headers=dict(headers), data=body)
    auth = (S3SigV4Auth if s3 else SigV4Auth)(
        BotoCredentials(creds.access_key, creds.secret_key, creds.token), service, region
    )
    with mock.patch("botocore.auth.get_current_datetime", return_value=NOW.replace(tzinfo=None)):
        auth.add_auth(request)
    authorization = request.headers["Authorization"]
    del request.headers["Authorization"]
    canonical = auth.canonical_request(request)
    return canonical, auth.string_to_sign(request, canonical), authorization


def ours(
    method: str,
    path: str,
    query: list[tuple[str, str]],
    headers: dict[str, str],
    body: bytes,
    *,
    service: str,
    region: str,
    creds: sigv4.Credentials,
    s3: bool,
) -> sigv4.Signed:
    return sigv4.sign(
        method,
        path,
        query,
        headers,
        payload_hash=hashlib.sha256(body).hexdigest(),
        service=service,
        region=region,
        credentials=creds,
        timestamp=STAMP,
        s3=s3,
    )


def wire_query(query: list[tuple[str, str]]) -> str:
    return "&".join(f"{sigv4.quote_query(k)}={sigv4.quote_query(v)}" for k, v in query)


def assert_same(signed: sigv4.Signed, theirs: tuple[str, str, str]) -> None:
    canonical, string_to_sign, authorization = theirs
    assert signed.canonical_request == canonical
    assert signed.string_to_sign == string_to_sign
    assert signed.headers["Authorization"] == authorization


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "HEAD"]),
    host=hosts,
    path=st.lists(segments, max_size=5).map(lambda parts: "/" + "/".join(parts)),
    query=st.lists(st.tuples(query_text, query_text), max_size=5),
    headers=st.lists(st.tuples(header_names, header_values), max_size=5),
    body=st.binary(max_size=64),
    service=st.sampled_from(["dynamodb", "kms", "ssm", "secretsmanager", "sts"]),
    region=regions,
    creds=credentials,
)
def test_sigv4_matches_botocore(
    method: str,
    host: str,
    path: str,
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    body: bytes,
    service: str,
    region: str,
    creds: sigv4.Credentials,
) -> None:
    """Non-S3 signing (dot segments removed, path encoded twice) equals botocore's SigV4Auth for any request."""
    wire_path = quote(path.encode("utf-8"), safe="/~")
    url = f"https://{host}{wire_path}" + (f"?{wire_query(query)}" if query else "")
    header_map = {"Host": host, **dict(headers)}
    signed = ours(method, wire_path, query, header_map, body, service=service, region=region, creds=creds, s3=False)
    theirs = botocore_signed(method, url, header_map, body, service=service, region=region, creds=creds, s3=False)
    assert_same(signed, theirs)


@settings(max_examples=EXAMPLES, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(
    bucket=st.sampled_from(["bucket", "my.dotted.bucket", "Upper_Case", "a-b-c", "192.168.0.1"]),
    key=st.lists(segments, min_size=1, max_size=5).map("/".join).filter(bool),
    endpoint=st.sampled_from([None, "http://127.0.0.1:5000", "https://s3.example.com/base"]),
    query=st.lists(st.tuples(query_text, query_text), max_size=4),
    headers=st.lists(st.tuples(header_names, header_values), max_size=4),
    region=regions,
    creds=credentials,
)
def test_s3_sigv4_matches_botocore(
    bucket: str,
    key: str,
    endpoint: str | None,
    query: list[tuple[str, str]],
    headers: list[tuple[str, str]],
    region: str,
    creds: sigv4.Credentials,
) -> None:
    """S3 signing (path as sent, x-amz-content-sha256) equals botocore's S3SigV4Auth for any object key."""
    address = s3_address(bucket, key, region, endpoint_url=endpoint, environ={})
    url = address.url + (f"?{wire_query(query)}" if query else "")
    header_map = {"Host": address.host, **dict(headers)}
    signed = ours("GET", address.path, query, header_map, b"", service="s3", region=region, creds=creds, s3=True)
    theirs = botocore_signed("GET", url, header_map, b"", service="s3", region=region, creds=creds, s3=True)
    assert_same(signed, theirs)
    assert signed.headers["X-Amz-Content-SHA256"] == sigv4.EMPTY_SHA256


@settings(max_examples=EXAMPLES, deadline=None)
@given(query=st.lists(st.tuples(query_text, query_text), max_size=8))
def test_canonical_query_matches_botocore_params(query: list[tuple[str, str]]) -> None:
    """The canonical query of decoded pairs equals botocore's, whether it reads them from params or the URL."""
    auth = SigV4Auth(BotoCredentials("a", "b"), "s3", "us-east-1")
    from_params = auth.canonical_query_string(AWSRequest(method="GET", url="https://h/", params=query))
    url = "https://h/" + (f"?{wire_query(query)}" if query else "")
    from_url = auth.canonical_query_string(AWSRequest(method="GET", url=url))
    assert sigv4.canonical_query(query) == from_params == from_url


def test_aws_documentation_example() -> None:
    """AWS's published IAM ListUsers example gives its published signature."""
    signed = sigv4.sign(
        "GET",
        "/",
        [("Action", "ListUsers"), ("Version", "2010-05-08")],
        {"Host": "iam.amazonaws.com", "Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        payload_hash=sigv4.EMPTY_SHA256,
        service="iam",
        region="us-east-1",
        credentials=sigv4.Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        timestamp="20150830T123600Z",
    )
    assert signed.signature == "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"


def test_signing_key_example_and_cache() -> None:
    """The signing key of AWS's derivation example is right, and is computed once per (secret, day, region, service)."""
    args = ("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", "20120215", "us-east-1", "iam")
    first = sigv4.signing_key(*args)
    assert first.hex() == "f4780e2d9f65fa895f9c67b32ce1baf0b0d8a43505a000a1a9e090d414db404d"
    with mock.patch("hmac.new", side_effect=AssertionError("recomputed")):
        assert sigv4.signing_key(*args) is first


def test_session_token_is_signed() -> None:
    """A session token travels as X-Amz-Security-Token and is among the signed headers."""
    creds = sigv4.Credentials("ASIAEXAMPLE", "secret", "token/with+odd=chars")
    signed = sigv4.sign(
        "POST",
        "/",
        [],
        {"Host": "h"},
        payload_hash=sigv4.EMPTY_SHA256,
        service="kms",
        region="eu-west-1",
        credentials=creds,
    )
    assert signed.headers["X-Amz-Security-Token"] == "token/with+odd=chars"
    assert "x-amz-security-token" in signed.headers["Authorization"].split("SignedHeaders=")[1]


def test_hop_by_hop_headers_are_not_signed() -> None:
    """User-Agent, Connection and the like are sent unsigned, as botocore leaves them."""
    signed = sigv4.sign(
        "GET",
        "/",
        [],
        {"Host": "h", "User-Agent": "x", "Connection": "keep-alive", "X-Amzn-Trace-Id": "t"},
        payload_hash=sigv4.EMPTY_SHA256,
        service="s3",
        region="us-east-1",
        credentials=sigv4.Credentials("a", "b"),
        s3=True,
    )
    assert signed.headers["Authorization"].split("SignedHeaders=")[1].split(",")[0] == (
        "host;x-amz-content-sha256;x-amz-date"
    )


@pytest.mark.parametrize("token", [None, "tok"])
def test_reprs_show_no_secret(token: str | None) -> None:
    """Neither credentials nor a signing result show a key, a secret, a token or a signature in their repr."""
    creds = sigv4.Credentials("AKIASECRETIDENTITY", "very-secret", token)
    signed = sigv4.sign(
        "GET", "/", [], {"Host": "h"}, payload_hash=sigv4.EMPTY_SHA256, service="s3", region="r", credentials=creds
    )
    for text in (repr(creds), repr(signed), str(creds)):
        assert "AKIASECRETIDENTITY" not in text
        assert "very-secret" not in text
        assert "tok" not in text.replace("token", "")
        assert signed.signature not in text


@settings(max_examples=EXAMPLES, deadline=None)
@given(
    text=st.text(alphabet=st.sampled_from(TRICKY) | st.characters(codec="utf-8")),
    safe=st.sampled_from(["", "/~", "-_.~", "/"]),
)
def test_percent_encode_is_urllib_quote(text: str, safe: str) -> None:
    """The encoder that spares importing urllib.parse encodes exactly as urllib.parse.quote."""
    assert sigv4.percent_encode(text, safe) == quote(text, safe=safe)
