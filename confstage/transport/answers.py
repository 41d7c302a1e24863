"""The lite transport's answers: HTTP responses to botocore's output shapes, and errors to ``AwsError``.

Blobs come back as ``bytes`` where botocore's output shape has a blob (KMS plaintexts and ciphertexts,
``SecretBinary``, DynamoDB ``B``/``BS``); timestamps as aware ``datetime`` objects in UTC; S3 object headers as
GetObject's members; S3's XML listings as ListObjectsV2's. An answer that does not parse is a ``NetworkError``
and never an empty result; an error answer is an ``AwsError`` with botocore's code. No message quotes a body.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import THROTTLING_CODES, AwsError, AwsRequest, NetworkError
from .protocols import _JSON_SERVICES, REST_JSON_SERVICES, _unsupported, parse_http_date

if TYPE_CHECKING:
    from datetime import datetime

__all__ = ["bucket_region", "error", "parse", "s3_object_fields"]

# Output members that are blobs (base64 in JSON) and timestamps (epoch seconds), per operation.
_BLOBS = {
    ("kms", "Decrypt"): ("Plaintext",),
    ("kms", "Encrypt"): ("CiphertextBlob",),
    ("kms", "GenerateDataKey"): ("Plaintext", "CiphertextBlob"),
    ("kms", "GenerateDataKeyWithoutPlaintext"): ("CiphertextBlob",),
    ("kms", "ReEncrypt"): ("CiphertextBlob",),
    ("kms", "GenerateRandom"): ("Plaintext",),
    ("secretsmanager", "GetSecretValue"): ("SecretBinary",),
}
_TIMESTAMPS = {("secretsmanager", "GetSecretValue"): ("CreatedDate",)}
_LISTS = {
    # operation: (list member, its blob members, its timestamp members)
    ("secretsmanager", "BatchGetSecretValue"): ("SecretValues", ("SecretBinary",), ("CreatedDate",)),
    ("ssm", "GetParametersByPath"): ("Parameters", (), ("LastModifiedDate",)),
    ("ssm", "GetParameters"): ("Parameters", (), ("LastModifiedDate",)),
}
# S3 object headers → output members (GetObject and HeadObject), and how to read them.
_S3_OBJECT_OUTPUT: dict[str, tuple[str, Callable[[str], Any]]] = {
    "accept-ranges": ("AcceptRanges", str),
    "cache-control": ("CacheControl", str),
    "content-disposition": ("ContentDisposition", str),
    "content-encoding": ("ContentEncoding", str),
    "content-language": ("ContentLanguage", str),
    "content-length": ("ContentLength", int),
    "content-range": ("ContentRange", str),
    "content-type": ("ContentType", str),
    "etag": ("ETag", str),
    "x-amz-version-id": ("VersionId", str),
    "x-amz-delete-marker": ("DeleteMarker", lambda v: v.lower() == "true"),
    "x-amz-expiration": ("Expiration", str),
    "x-amz-server-side-encryption": ("ServerSideEncryption", str),
    "x-amz-server-side-encryption-aws-kms-key-id": ("SSEKMSKeyId", str),
    "x-amz-server-side-encryption-bucket-key-enabled": ("BucketKeyEnabled", lambda v: v.lower() == "true"),
    "x-amz-storage-class": ("StorageClass", str),
    "x-amz-missing-meta": ("MissingMeta", int),
    "x-amz-mp-parts-count": ("PartsCount", int),
    "x-amz-website-redirect-location": ("WebsiteRedirectLocation", str),
    "x-amz-replication-status": ("ReplicationStatus", str),
    "x-amz-checksum-crc32": ("ChecksumCRC32", str),
    "x-amz-checksum-crc32c": ("ChecksumCRC32C", str),
    "x-amz-checksum-crc64nvme": ("ChecksumCRC64NVME", str),
    "x-amz-checksum-sha1": ("ChecksumSHA1", str),
    "x-amz-checksum-sha256": ("ChecksumSHA256", str),
}
# rest-json outputs: members carried by headers (header → member, reader), and the member that is the raw body.
_REST_JSON_OUTPUT: dict[tuple[str, str], tuple[dict[str, tuple[str, Callable[[str], Any]]], str | None]] = {
    ("appconfigdata", "StartConfigurationSession"): ({}, None),
    ("appconfigdata", "GetLatestConfiguration"): (
        {
            "next-poll-configuration-token": ("NextPollConfigurationToken", str),
            "next-poll-interval-in-seconds": ("NextPollIntervalInSeconds", int),
            "content-type": ("ContentType", str),
            "version-label": ("VersionLabel", str),
        },
        "Configuration",
    ),
}
# A status with no body to say more (HEAD, 304): botocore's code would be the number; these read better.
_STATUS_CODES = {304: "NotModified", 400: "BadRequest", 403: "Forbidden", 404: "NotFound", 412: "PreconditionFailed"}


# -- answers -------------------------------------------------------------------------------------


def _garbled(request: AwsRequest, status: int, what: str) -> NetworkError:
    operation = f"{request.service}:{request.operation}"
    return NetworkError(f"{operation} answered HTTP {status} with {what}", operation=operation)


def _blob(request: AwsRequest, status: int, value: object) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise _garbled(request, status, "a blob that is not base64") from None


def _epoch(request: AwsRequest, status: int, value: object) -> datetime:
    from datetime import datetime, timezone

    try:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError
        return datetime.fromtimestamp(value, timezone.utc)
    except (TypeError, ValueError, OverflowError, OSError):
        raise _garbled(request, status, "a timestamp that is not a number") from None


def _convert(
    request: AwsRequest, status: int, item: dict[str, Any], blobs: tuple[str, ...], stamps: tuple[str, ...]
) -> None:
    for name in blobs:
        if item.get(name) is not None:
            item[name] = _blob(request, status, item[name])
    for name in stamps:
        if item.get(name) is not None:
            item[name] = _epoch(request, status, item[name])


def _clean(request: AwsRequest, status: int, node: Any, *, attributes: bool) -> None:
    """In place, at any depth: drop members that are ``null`` (botocore leaves them out) and, for DynamoDB
    (``attributes``), decode the binary attribute values ``B`` and ``BS``."""
    if isinstance(node, dict):
        if attributes and len(node) == 1:
            if isinstance(node.get("B"), str):
                node["B"] = _blob(request, status, node["B"])
                return
            if isinstance(node.get("BS"), list):
                node["BS"] = [_blob(request, status, b) for b in node["BS"]]
                return
        for name in [name for name, value in node.items() if value is None]:
            del node[name]
        for value in node.values():
            if isinstance(value, (dict, list)):
                _clean(request, status, value, attributes=attributes)
    elif isinstance(node, list):
        for value in node:
            if isinstance(value, (dict, list)):
                _clean(request, status, value, attributes=attributes)


def parse(request: AwsRequest, status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """The output shape of a successful (2xx) answer whose body was read whole."""
    service, operation = request.service, request.operation
    if service in _JSON_SERVICES:
        if not body:
            return {}
        try:
            parsed = json.loads(body)
        except ValueError:  # includes UnicodeDecodeError
            raise _garbled(request, status, "a body that is not JSON") from None
        if not isinstance(parsed, dict):
            raise _garbled(request, status, "JSON that is not an object")
        _clean(request, status, parsed, attributes=service == "dynamodb")
        if service == "dynamodb":
            return parsed
        key = (service, operation)
        _convert(request, status, parsed, _BLOBS.get(key, ()), _TIMESTAMPS.get(key, ()))
        if key in _LISTS:
            member, blobs, stamps = _LISTS[key]
            entries = parsed.get(member)
            if entries is not None and not isinstance(entries, list):
                raise _garbled(request, status, f"a {member} that is not a list")
            for entry in entries or ():
                if not isinstance(entry, dict):
                    raise _garbled(request, status, f"a {member} entry that is not an object")
                _convert(request, status, entry, blobs, stamps)
        return parsed
    if service in REST_JSON_SERVICES:
        return _rest_json(request, status, headers, body)
    if service == "s3" and operation == "ListObjectsV2":
        return _list_objects(request, status, body)
    if service == "s3":  # HeadObject (GetObject's body is a stream, see s3_object_fields)
        return s3_object_fields(headers)
    if service == "sts":
        root = _xml(request, status, body)
        result = _child(root, "GetCallerIdentityResult")
        if result is None:
            raise _garbled(request, status, "XML without a GetCallerIdentityResult")
        return {_local(node.tag): node.text or "" for node in result}
    raise _unsupported(request)


def _rest_json(request: AwsRequest, status: int, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
    """A rest-json answer: members from headers, and either the raw body as a blob member or a JSON object."""
    known = _REST_JSON_OUTPUT.get((request.service, request.operation))
    if known is None:
        raise _unsupported(request)
    in_headers, payload = known
    out: dict[str, Any] = {}
    for name, (member, reader) in in_headers.items():
        value = headers.get(name)
        if value is not None:
            try:
                out[member] = reader(value)
            except ValueError:
                raise _garbled(request, status, f"a {name} header that does not parse") from None
    if payload is not None:
        out[payload] = body  # a blob payload: the bytes as they came (botocore hands them over as a stream)
        return out
    if not body:
        return out
    try:
        parsed = json.loads(body)
    except ValueError:
        raise _garbled(request, status, "a body that is not JSON") from None
    if not isinstance(parsed, dict):
        raise _garbled(request, status, "JSON that is not an object")
    _clean(request, status, parsed, attributes=False)
    return {**parsed, **out}


def s3_object_fields(headers: Mapping[str, str]) -> dict[str, Any]:
    """GetObject/HeadObject's members carried by headers (``Metadata`` from ``x-amz-meta-*``)."""
    out: dict[str, Any] = {}
    metadata: dict[str, str] = {}
    for name, value in headers.items():
        if name.startswith("x-amz-meta-"):
            metadata[name[len("x-amz-meta-") :]] = value
            continue
        known = _S3_OBJECT_OUTPUT.get(name)
        if known is not None:
            member, reader = known
            try:
                out[member] = reader(value)
            except ValueError:
                continue  # a header botocore would also fail to read: not worth failing the read for
    last_modified = parse_http_date(headers.get("last-modified", ""))
    if last_modified is not None:  # an odd date is no reason to fail the read
        out["LastModified"] = last_modified
    out["Metadata"] = metadata
    return out


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(node: Any, name: str) -> Any:
    for child in node:
        if _local(child.tag) == name:
            return child
    return None


def _fromstring(body: bytes) -> Any:
    """The root element, or ``ValueError`` for a body that is not XML."""
    from xml.etree.ElementTree import ParseError, fromstring

    try:
        # An AWS answer: ElementTree resolves no external entities and expat (>= 2.4.1) bounds entity expansion.
        return fromstring(body)  # noqa: S314
    except ParseError as exc:
        raise ValueError("not XML") from exc


def _xml(request: AwsRequest, status: int, body: bytes) -> Any:
    try:
        return _fromstring(body)
    except ValueError:
        raise _garbled(request, status, "a body that is not XML") from None


def _iso(request: AwsRequest, status: int, text: str) -> datetime:
    from datetime import datetime, timezone

    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise _garbled(request, status, "a timestamp that does not parse") from None
    return stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=timezone.utc)


def _list_objects(request: AwsRequest, status: int, body: bytes) -> dict[str, Any]:
    from urllib.parse import unquote_plus

    root = _xml(request, status, body)
    if _local(root.tag) != "ListBucketResult":
        raise _garbled(request, status, "XML that is not a ListBucketResult")
    out: dict[str, Any] = {"IsTruncated": False}
    contents: list[dict[str, Any]] = []
    prefixes: list[dict[str, Any]] = []
    integers = ("MaxKeys", "KeyCount")
    for node in root:
        name, text = _local(node.tag), node.text or ""
        if name == "Contents":
            entry: dict[str, Any] = {}
            for field in node:
                fname, ftext = _local(field.tag), field.text or ""
                if fname == "Size":
                    entry[fname] = int(ftext) if ftext.isdigit() else 0
                elif fname == "LastModified":
                    entry[fname] = _iso(request, status, ftext)
                elif fname == "Owner":
                    entry[fname] = {_local(o.tag): o.text or "" for o in field}
                elif fname == "ChecksumAlgorithm":
                    entry.setdefault(fname, []).append(ftext)
                else:
                    entry[fname] = ftext
            contents.append(entry)
        elif name == "CommonPrefixes":
            prefixes.append({_local(p.tag): p.text or "" for p in node})
        elif name == "IsTruncated":
            out[name] = text.strip().lower() == "true"
        elif name in integers:
            out[name] = int(text) if text.strip().isdigit() else 0
        else:
            out[name] = text
    if contents:
        out["Contents"] = contents
    if prefixes:
        out["CommonPrefixes"] = prefixes
    if out.get("EncodingType") == "url" and "EncodingType" not in request.params:
        # botocore decodes what it asked to be encoded (handlers.decode_list_object_v2).
        for name in ("Delimiter", "Prefix", "StartAfter"):
            if name in out:
                out[name] = unquote_plus(out[name])
        for entry in contents:
            if "Key" in entry:
                entry["Key"] = unquote_plus(entry["Key"])
        for entry in prefixes:
            if "Prefix" in entry:
                entry["Prefix"] = unquote_plus(entry["Prefix"])
    return out


# -- errors --------------------------------------------------------------------------------------


def error(request: AwsRequest, status: int, headers: Mapping[str, str], body: bytes) -> AwsError:
    """The ``AwsError`` of a non-2xx answer: botocore's code, the service's message (shortened)."""
    operation = f"{request.service}:{request.operation}"
    code, message = "", ""
    if request.service in _JSON_SERVICES or request.service in REST_JSON_SERVICES:
        code, message = _json_error(body)
        if not code:
            code = headers.get("x-amzn-errortype", "").split(":", 1)[0]
        if not code and body.lstrip().startswith(b"<"):  # an XML error in front of a JSON API (moto's IAM checks)
            code, message, _ = _xml_error(body)
    elif body:
        code, message, _ = _xml_error(body)
    if not code:
        code = _STATUS_CODES.get(status, str(status)) if request.service == "s3" else str(status)
    throttled = code in THROTTLING_CODES or status == 429
    return AwsError(code, message[:300], status=status, operation=operation, throttled=throttled)


def bucket_region(failure: AwsError, headers: Mapping[str, str], body: bytes) -> str | None:
    """The region an S3 error says the bucket lives in, when it is a wrong-region error (as botocore redirects)."""
    wrong_region = (
        failure.status in (301, 302, 307)
        or failure.code in ("PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException")
        or (failure.status in (301, 400) and failure.operation == "s3:HeadObject")
    )
    if not wrong_region:
        return None
    return headers.get("x-amz-bucket-region") or (_xml_error(body)[2] if body else None)


def _json_error(body: bytes) -> tuple[str, str]:
    try:
        parsed = json.loads(body) if body else {}
    except ValueError:
        return "", ""
    if not isinstance(parsed, dict):
        return "", ""
    code = str(parsed.get("__type") or parsed.get("code") or "")
    if ":" in code:
        code = code.split(":", 1)[0]
    if "#" in code:
        code = code.rsplit("#", 1)[1]
    message = parsed.get("message", parsed.get("Message", ""))
    return code, str(message or "")


def _xml_error(body: bytes) -> tuple[str, str, str | None]:
    try:
        root = _fromstring(body)
    except ValueError:
        return "", "", None
    node = next((n for n in root.iter() if _local(n.tag) == "Error"), None)  # <Error>, or under <ErrorResponse>
    if node is None:
        return "", "", None
    fields = {_local(child.tag): child.text or "" for child in node}
    return fields.get("Code", ""), fields.get("Message", ""), fields.get("Region") or None
