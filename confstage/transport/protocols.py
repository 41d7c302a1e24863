"""The wire formats of the lite transport: botocore's input shapes to HTTP requests (the answers: ``answers``).

::

    JSON 1.0/1.1   dynamodb, kms, ssm, secretsmanager   POST /, X-Amz-Target, any operation
    REST-XML       s3: GetObject, HeadObject, ListObjectsV2   GET, headers and query from the params
    REST-JSON      appconfigdata: StartConfigurationSession (POST JSON), GetLatestConfiguration (GET, query)
    query          sts: GetCallerIdentity                    POST form, XML answer

Blobs go out base64-encoded; a parameter this transport cannot send is refused before any request.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, NamedTuple

from . import AwsRequest
from .endpoints import Address, resolve, s3_address

if TYPE_CHECKING:  # imported where a timestamp is met: a DynamoDB read never needs the module
    from datetime import datetime

__all__ = [
    "REST_JSON_SERVICES",
    "SPECIAL_BUCKET_SUFFIXES",
    "TRANSIENT_CODES",
    "Prepared",
    "http_date",
    "parse_http_date",
    "prepare",
]

TRANSIENT_CODES = frozenset({"RequestTimeout", "RequestTimeoutException", "PriorRequestNotComplete"})
# Buckets S3's endpoint rules send elsewhere: directory buckets (S3 Express) and Outposts access point aliases.
SPECIAL_BUCKET_SUFFIXES = ("--x-s3", "--xa-s3", "--op-s3")

_JSON_SERVICES = {
    "dynamodb": ("application/x-amz-json-1.0", "DynamoDB_20120810"),
    "kms": ("application/x-amz-json-1.1", "TrentService"),
    "ssm": ("application/x-amz-json-1.1", "AmazonSSM"),
    "secretsmanager": ("application/x-amz-json-1.1", "secretsmanager"),
}

# rest-json operations: botocore's service → {operation: (method, path, query members as wire names)}; the
# members not in the query go in a JSON body. Signed as ``appconfig`` (the service model's signingName).
_REST_JSON = {
    "appconfigdata": {
        "StartConfigurationSession": ("POST", "/configurationsessions", {}),
        "GetLatestConfiguration": ("GET", "/configuration", {"ConfigurationToken": "configuration_token"}),
    },
}
_SIGNING_NAMES = {"appconfigdata": "appconfig"}
REST_JSON_SERVICES = frozenset(_REST_JSON)

# S3 input members → (where, wire name), from the service model of GetObject/HeadObject/ListObjectsV2.
_S3_OBJECT_INPUT = {
    "IfMatch": ("header", "If-Match"),
    "IfNoneMatch": ("header", "If-None-Match"),
    "IfModifiedSince": ("header", "If-Modified-Since"),
    "IfUnmodifiedSince": ("header", "If-Unmodified-Since"),
    "Range": ("header", "Range"),
    "VersionId": ("query", "versionId"),
    "PartNumber": ("query", "partNumber"),
    "ChecksumMode": ("header", "x-amz-checksum-mode"),
    "ExpectedBucketOwner": ("header", "x-amz-expected-bucket-owner"),
    "RequestPayer": ("header", "x-amz-request-payer"),
}
_S3_LIST_INPUT = {
    "Prefix": ("query", "prefix"),
    "Delimiter": ("query", "delimiter"),
    "MaxKeys": ("query", "max-keys"),
    "ContinuationToken": ("query", "continuation-token"),
    "StartAfter": ("query", "start-after"),
    "FetchOwner": ("query", "fetch-owner"),
    "EncodingType": ("query", "encoding-type"),
    "ExpectedBucketOwner": ("header", "x-amz-expected-bucket-owner"),
    "RequestPayer": ("header", "x-amz-request-payer"),
}


class Prepared(NamedTuple):
    """One HTTP request, ready to sign: no Host, date or Authorization yet."""

    method: str
    address: Address
    query: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    body: bytes
    signing_name: str
    s3: bool = False
    stream: bool = False  # the answer's body is handed over as a stream (S3 GetObject)
    bucket: str | None = None  # S3: the bucket, for a region redirect


def _unsupported(request: AwsRequest, what: str = "") -> ValueError:
    detail = f" ({what})" if what else ""
    return ValueError(f"the lite transport does not support {request.service}:{request.operation}{detail}")


def _json_default(value: object) -> object:
    from datetime import datetime

    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime):
        return value.timestamp()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def http_date(value: datetime) -> str:
    """``Wed, 21 Oct 2015 07:28:00 GMT`` (RFC 7231's IMF-fixdate) for an aware datetime."""
    from datetime import timezone

    utc = value.astimezone(timezone.utc)
    return (
        f"{_DAYS[utc.weekday()]}, {utc.day:02d} {_MONTHS[utc.month - 1]} {utc.year:04d} "
        f"{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d} GMT"
    )


def parse_http_date(text: str) -> datetime | None:
    """The aware datetime of an IMF-fixdate header (what S3 sends in Last-Modified), or None."""
    from datetime import datetime, timezone

    parts = text.replace(",", " ").split()
    if len(parts) != 6 or parts[5] not in ("GMT", "UTC") or parts[2] not in _MONTHS:
        return None
    hour, minute, second = [*parts[4].split(":"), "", "", ""][:3]
    try:
        return datetime(
            int(parts[3]),
            _MONTHS.index(parts[2]) + 1,
            int(parts[1]),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone.utc,
        )
    except ValueError:
        return None


def _text(value: object) -> str:
    from datetime import datetime

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return http_date(value)
    return str(value)


def prepare(request: AwsRequest, region: str, *, environ: Mapping[str, str] | None = None) -> Prepared:
    """The HTTP request for an API call in ``region`` (endpoints from ``request.endpoint_url`` or the environment)."""
    service = request.service
    params = request.params
    if service in _JSON_SERVICES:
        content_type, prefix = _JSON_SERVICES[service]
        address = resolve(service, region, endpoint_url=request.endpoint_url, environ=environ)
        body = json.dumps(params, separators=(",", ":"), default=_json_default).encode("utf-8")
        headers = {"Content-Type": content_type, "X-Amz-Target": f"{prefix}.{request.operation}"}
        return Prepared("POST", address, (), headers, body, service)
    if service == "s3":
        return _prepare_s3(request, region, environ)
    if service in _REST_JSON:
        return _prepare_rest_json(request, region, environ)
    if service == "sts" and request.operation == "GetCallerIdentity":
        address = resolve(service, region, endpoint_url=request.endpoint_url, environ=environ)
        headers = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}
        body = b"Action=GetCallerIdentity&Version=2011-06-15"
        return Prepared("POST", address, (), headers, body, "sts")
    raise _unsupported(request)


def _prepare_rest_json(request: AwsRequest, region: str, environ: Mapping[str, str] | None) -> Prepared:
    known = _REST_JSON[request.service].get(request.operation)
    if known is None:
        raise _unsupported(request)
    method, path, in_query = known
    params = dict(request.params)
    query = tuple((wire, _text(params.pop(name))) for name, wire in in_query.items() if name in params)
    address = resolve(request.service, region, endpoint_url=request.endpoint_url, environ=environ)
    base = address.path.rstrip("/")
    address = address._replace(path=base + path)
    headers: dict[str, str] = {}
    body = b""
    if method == "POST":
        headers["Content-Type"] = "application/json"
        body = json.dumps(params, separators=(",", ":"), default=_json_default).encode("utf-8")
    elif params:
        raise _unsupported(request, f"parameter {sorted(params)[0]}")
    signing = _SIGNING_NAMES.get(request.service, request.service)
    return Prepared(method, address, query, headers, body, signing)


def _prepare_s3(request: AwsRequest, region: str, environ: Mapping[str, str] | None) -> Prepared:
    params = dict(request.params)
    bucket = params.pop("Bucket", None)
    if not isinstance(bucket, str) or not bucket:
        raise _unsupported(request, "a Bucket is required")
    if bucket.startswith("arn:") or bucket.endswith(SPECIAL_BUCKET_SUFFIXES):
        raise _unsupported(request, "access point ARNs, directory buckets and Outposts aliases need botocore")
    if request.operation in ("GetObject", "HeadObject"):
        key = params.pop("Key", None)
        if not isinstance(key, str) or not key:
            raise _unsupported(request, "a Key is required")
        members, query, method = _S3_OBJECT_INPUT, [], "GET" if request.operation == "GetObject" else "HEAD"
    elif request.operation == "ListObjectsV2":
        key = None
        members, query, method = _S3_LIST_INPUT, [("list-type", "2")], "GET"
        if "EncodingType" not in params:
            query.append(("encoding-type", "url"))  # as botocore: keys XML 1.0 cannot carry survive the trip
    else:
        raise _unsupported(request)
    headers: dict[str, str] = {}
    for name, value in params.items():
        if name not in members:
            raise _unsupported(request, f"parameter {name}")
        where, wire = members[name]
        if where == "header":
            headers[wire] = _text(value)
        else:
            query.append((wire, _text(value)))
    address = s3_address(bucket, key, region, endpoint_url=request.endpoint_url, environ=environ)
    stream = request.operation == "GetObject"
    return Prepared(method, address, tuple(query), headers, b"", "s3", s3=True, stream=stream, bucket=bucket)
