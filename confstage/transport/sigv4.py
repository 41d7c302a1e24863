"""AWS Signature Version 4 with ``hmac`` and ``hashlib``: canonical request, string to sign, signature.

::

    canonical request   METHOD \\n URI \\n QUERY \\n HEADERS \\n\\n SIGNED-HEADERS \\n PAYLOAD-HASH
    string to sign      AWS4-HMAC-SHA256 \\n AMZ-DATE \\n SCOPE \\n sha256(canonical request)
    signature           hmac(signing key, string to sign), signing key = hmac chain over date/region/service

Byte for byte what botocore's ``SigV4Auth`` and ``S3SigV4Auth`` produce (tests/test_sigv4.py signs the same
requests with both): every header given is signed except botocore's hop-by-hop list, values are trimmed and
their inner whitespace runs collapsed, the query is sorted by encoded key then value. S3 differs in two
ways: its path is signed as sent (no dot-segment removal, no second round of percent-encoding) and the
payload hash travels in ``x-amz-content-sha256``. Derived signing keys are cached per (secret, date,
region, service): they change once a day.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Iterable, Mapping

__all__ = [
    "EMPTY_SHA256",
    "Credentials",
    "Signed",
    "amz_date",
    "canonical_query",
    "percent_encode",
    "quote_query",
    "sign",
    "signing_key",
]

ALGORITHM = "AWS4-HMAC-SHA256"
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
# botocore.auth.SIGNED_HEADERS_BLACKLIST: hop-by-hop and tracing headers a proxy may change.
UNSIGNED_HEADERS = frozenset(
    {
        "baggage",
        "connection",
        "expect",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "traceparent",
        "tracestate",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "user-agent",
        "x-amzn-trace-id",
    }
)


class Credentials:
    """An access key, its secret and an optional session token; the repr shows none of them."""

    __slots__ = ("access_key", "secret_key", "token")

    def __init__(self, access_key: str, secret_key: str, token: str | None = None) -> None:
        self.access_key = access_key
        self.secret_key = secret_key
        self.token = token or None

    def __repr__(self) -> str:
        return f"Credentials(<masked>{', with session token' if self.token else ''})"


class Signed:
    """What signing produced: the headers to send and, for tests and debugging, the intermediate texts."""

    __slots__ = ("canonical_request", "headers", "signature", "string_to_sign")

    def __init__(self, headers: dict[str, str], canonical_request: str, string_to_sign: str, signature: str) -> None:
        self.headers = headers
        self.canonical_request = canonical_request
        self.string_to_sign = string_to_sign
        self.signature = signature

    def __repr__(self) -> str:
        return f"Signed(signed_headers={self.headers['Authorization'].split('SignedHeaders=')[1].split(',')[0]!r})"


def amz_date(epoch: float | None = None) -> str:
    """``YYYYMMDDTHHMMSSZ`` for ``epoch`` (default: now), the ``X-Amz-Date`` format."""
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if epoch is None else epoch))


_ALWAYS_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_ESCAPES = tuple(f"%{byte:02X}" for byte in range(256))


def percent_encode(text: str, safe: str = "") -> str:
    """``urllib.parse.quote(text, safe)`` without importing it: UTF-8, letters, digits, ``_.-~`` and ``safe`` kept."""
    keep = _ALWAYS_SAFE.union(safe.encode("ascii")) if safe else _ALWAYS_SAFE
    return "".join(chr(byte) if byte in keep else _ESCAPES[byte] for byte in text.encode("utf-8"))


def quote_query(text: str) -> str:
    """Percent-encode a query key or value as SigV4 wants it (and as botocore sends it): only ``-_.~`` kept."""
    return percent_encode(text)


def canonical_query(pairs: Iterable[tuple[str, str]]) -> str:
    """The canonical query string of decoded ``(key, value)`` pairs: encoded, sorted by key then value."""
    return "&".join(f"{k}={v}" for k, v in sorted((quote_query(k), quote_query(v)) for k, v in pairs))


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 5.2.4 with empty segments dropped too, as botocore.utils.remove_dot_segments does.
    if not path:
        return "/"
    out: list[str] = []
    for segment in path.split("/"):
        if segment and segment != ".":
            if segment == "..":
                if out:
                    out.pop()
            else:
                out.append(segment)
    first = "/" if path[0] == "/" else ""
    last = "/" if path[-1] == "/" and out else ""
    return first + "/".join(out) + last


def canonical_uri(path: str, *, s3: bool) -> str:
    """The path as signed: S3's exactly as sent; other services' normalised and encoded a second time."""
    if s3:
        return path
    return percent_encode(_remove_dot_segments(path), safe="/~")


_key_lock = threading.Lock()
_keys: dict[tuple[str, str, str, str], bytes] = {}
_MAX_KEYS = 32


def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """``HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), service), "aws4_request")``, cached."""
    cache_key = (secret, date, region, service)
    found = _keys.get(cache_key)
    if found is not None:
        return found
    key = ("AWS4" + secret).encode("utf-8")
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    with _key_lock:
        if len(_keys) >= _MAX_KEYS:  # a new day, rotated credentials: start over rather than grow
            _keys.clear()
        _keys[cache_key] = key
    return key


def _trim(value: str) -> str:
    return " ".join(value.split())


def sign(
    method: str,
    path: str,
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    *,
    payload_hash: str,
    service: str,
    region: str,
    credentials: Credentials,
    timestamp: str | None = None,
    s3: bool = False,
) -> Signed:
    """Sign one request: ``headers`` must hold ``Host``; the result's headers add the date, token and signature.

    ``path`` is the percent-encoded path as it goes on the wire, ``query`` the decoded pairs (sent encoded
    with ``quote_query``), ``payload_hash`` the hex SHA-256 of the body. ``s3`` selects S3's rules.
    """
    stamp = timestamp or amz_date()
    out = {name: value for name, value in headers.items() if name.lower() not in ("authorization", "x-amz-date")}
    out["X-Amz-Date"] = stamp
    if credentials.token:
        out["X-Amz-Security-Token"] = credentials.token
    if s3:
        out = {name: value for name, value in out.items() if name.lower() != "x-amz-content-sha256"}
        out["X-Amz-Content-SHA256"] = payload_hash
    grouped: dict[str, list[str]] = {}
    for name, value in out.items():
        lname = name.lower()
        if lname not in UNSIGNED_HEADERS:
            grouped.setdefault(lname, []).append(_trim(value))
    names = sorted(grouped)
    signed_headers = ";".join(names)
    canonical_headers = "".join(f"{name}:{','.join(grouped[name])}\n" for name in names)
    canonical_request = "\n".join(
        (
            method.upper(),
            canonical_uri(path, s3=s3),
            canonical_query(query),
            canonical_headers,
            signed_headers,
            payload_hash,
        )
    )
    date = stamp[:8]
    scope = f"{date}/{region}/{service}/aws4_request"
    string_to_sign = "\n".join((ALGORITHM, stamp, scope, hashlib.sha256(canonical_request.encode("utf-8")).hexdigest()))
    key = signing_key(credentials.secret_key, date, region, service)
    signature = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()
    out["Authorization"] = (
        f"{ALGORITHM} Credential={credentials.access_key}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    return Signed(out, canonical_request, string_to_sign, signature)
