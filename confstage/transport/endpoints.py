"""Where a request goes: region → partition → host, the ``AWS_ENDPOINT_URL*`` overrides, S3 addressing.

The partitions are botocore's ``data/partitions.json`` (botocore 1.44): a region belongs to the first
partition that lists it or whose regex matches it, else to ``aws``. Hosts are the standard
``{service}.{region}.{dnsSuffix}``, as every service's endpoint rule set gives them without FIPS,
dual-stack or account-based endpoints (``transport.selection`` sends those cases to botocore). S3 keeps its
legacy global host in us-east-1 (``s3.amazonaws.com``) unless ``AWS_S3_US_EAST_1_REGIONAL_ENDPOINT=regional``,
and STS its global host under ``AWS_STS_REGIONAL_ENDPOINTS=legacy``. tests/test_endpoints.py checks all of
it against botocore's own resolution.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import NamedTuple

from .sigv4 import percent_encode

__all__ = [
    "PARTITIONS",
    "Address",
    "Partition",
    "configured_endpoint",
    "partition",
    "resolve",
    "s3_address",
    "split_host",
    "virtual_hostable",
]


class Partition(NamedTuple):
    """One AWS partition: its name, the regions it lists, the regex of the others, its DNS suffix."""

    name: str
    regions: frozenset[str]
    region_regex: str
    dns_suffix: str


PARTITIONS: tuple[Partition, ...] = (
    Partition(
        "aws",
        frozenset(
            [
                "af-south-1",
                "ap-east-1",
                "ap-east-2",
                "ap-northeast-1",
                "ap-northeast-2",
                "ap-northeast-3",
                "ap-south-1",
                "ap-south-2",
                "ap-southeast-1",
                "ap-southeast-2",
                "ap-southeast-3",
                "ap-southeast-4",
                "ap-southeast-5",
                "ap-southeast-6",
                "ap-southeast-7",
                "aws-global",
                "ca-central-1",
                "ca-west-1",
                "eu-central-1",
                "eu-central-2",
                "eu-north-1",
                "eu-south-1",
                "eu-south-2",
                "eu-west-1",
                "eu-west-2",
                "eu-west-3",
                "il-central-1",
                "me-central-1",
                "me-south-1",
                "me-west-1",
                "mx-central-1",
                "sa-east-1",
                "sa-west-1",
                "us-east-1",
                "us-east-2",
                "us-west-1",
                "us-west-2",
            ]
        ),
        r"^(us|eu|ap|sa|ca|me|af|il|mx)\-\w+\-\d+$",
        "amazonaws.com",
    ),
    Partition(
        "aws-cn", frozenset({"aws-cn-global", "cn-north-1", "cn-northwest-1"}), r"^cn\-\w+\-\d+$", "amazonaws.com.cn"
    ),
    Partition("aws-eusc", frozenset({"eusc-de-east-1"}), r"^eusc\-(de)\-\w+\-\d+$", "amazonaws.eu"),
    Partition(
        "aws-iso", frozenset({"aws-iso-global", "us-iso-east-1", "us-iso-west-1"}), r"^us\-iso\-\w+\-\d+$", "c2s.ic.gov"
    ),
    Partition(
        "aws-iso-b",
        frozenset({"aws-iso-b-global", "us-isob-east-1", "us-isob-west-1"}),
        r"^us\-isob\-\w+\-\d+$",
        "sc2s.sgov.gov",
    ),
    Partition(
        "aws-iso-e", frozenset({"aws-iso-e-global", "eu-isoe-west-1"}), r"^eu\-isoe\-\w+\-\d+$", "cloud.adc-e.uk"
    ),
    Partition(
        "aws-iso-f",
        frozenset({"aws-iso-f-global", "us-isof-east-1", "us-isof-south-1"}),
        r"^us\-isof\-\w+\-\d+$",
        "csp.hci.ic.gov",
    ),
    Partition(
        "aws-us-gov",
        frozenset({"aws-us-gov-global", "us-gov-east-1", "us-gov-west-1"}),
        r"^us\-gov\-\w+\-\d+$",
        "amazonaws.com",
    ),
)

# botocore.utils.CLIENT_NAME_TO_HYPHENIZED_SERVICE_ID_OVERRIDES, for the services a transport may call.
_SERVICE_ENV = {"secretsmanager": "SECRETS_MANAGER"}
# botocore.args.LEGACY_GLOBAL_STS_REGIONS: where AWS_STS_REGIONAL_ENDPOINTS=legacy means sts.amazonaws.com.
_LEGACY_GLOBAL_STS = frozenset(
    [
        "ap-northeast-1",
        "ap-south-1",
        "ap-southeast-1",
        "ap-southeast-2",
        "aws-global",
        "ca-central-1",
        "eu-central-1",
        "eu-north-1",
        "eu-west-1",
        "eu-west-2",
        "eu-west-3",
        "sa-east-1",
        "us-east-1",
        "us-east-2",
        "us-west-1",
        "us-west-2",
    ]
)
_HOST_LABEL = re.compile(r"^(?!-)[a-zA-Z\d-]{1,63}(?<!-)$")
_IPV4 = re.compile(r"^(\d{1,3}\.){3}\d{1,3}$")


class Address(NamedTuple):
    """Where one request goes: scheme, host (with a non-default port), the encoded path, the signing region."""

    scheme: str
    host: str
    path: str
    signing_region: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}"


def partition(region: str) -> Partition:
    """The first partition that lists ``region`` or whose regex matches it, else ``aws`` (botocore's rule)."""
    for candidate in PARTITIONS:
        if region in candidate.regions or re.match(candidate.region_regex, region):
            return candidate
    return PARTITIONS[0]


def configured_endpoint(service: str, environ: Mapping[str, str] | None = None) -> str | None:
    """``AWS_ENDPOINT_URL_<SERVICE>``, else ``AWS_ENDPOINT_URL`` (empty ones skipped), unless ignored.

    ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`` turns both off, as in botocore.
    """
    env = os.environ if environ is None else environ
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() == "true":
        return None
    name = _SERVICE_ENV.get(service, service.upper().replace("-", "_"))
    return env.get(f"AWS_ENDPOINT_URL_{name}") or env.get("AWS_ENDPOINT_URL") or None


def split_host(authority: str) -> tuple[str, int | None]:
    """``host[:port]`` (``[v6]:port`` too) → (host without brackets, lower case; port or None)."""
    authority = authority.rpartition("@")[2]
    if authority.startswith("["):
        host, _, rest = authority[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, _, port = authority.partition(":")
    if port and not port.isdigit():
        raise ValueError(f"not a port: {port!r}")
    return host.lower(), int(port) if port else None


def _split(endpoint_url: str) -> tuple[str, str, str]:
    """Scheme, ``host[:port]`` (default port dropped, lower case) and base path of an endpoint URL."""
    scheme, sep, rest = endpoint_url.partition("://")
    scheme = scheme.lower()
    authority, slash, path = rest.partition("/")
    path = (slash + path).partition("?")[0].partition("#")[0]
    authority = authority.partition("?")[0].partition("#")[0]
    hostname, port = split_host(authority) if sep else ("", None)
    if scheme not in ("http", "https") or not hostname:
        raise ValueError(f"not an http(s) endpoint URL: {endpoint_url!r}")
    host = f"[{hostname}]" if ":" in hostname else hostname
    if port is not None and port != (443 if scheme == "https" else 80):
        host = f"{host}:{port}"
    return scheme, host, path.rstrip("/")


def resolve(
    service: str, region: str, *, endpoint_url: str | None = None, environ: Mapping[str, str] | None = None
) -> Address:
    """The address of a JSON or query API (DynamoDB, SSM, Secrets Manager, KMS, STS) in ``region``."""
    env = os.environ if environ is None else environ
    endpoint_url = endpoint_url or configured_endpoint(service, env)
    if endpoint_url:
        scheme, host, base = _split(endpoint_url)
        return Address(scheme, host, base or "/", region)
    suffix = partition(region).dns_suffix
    legacy_sts = service == "sts" and env.get("AWS_STS_REGIONAL_ENDPOINTS", "").lower() == "legacy"
    if legacy_sts and region in _LEGACY_GLOBAL_STS:
        return Address("https", "sts.amazonaws.com", "/", "us-east-1")
    return Address("https", f"{service}.{region}.{suffix}", "/", region)


def virtual_hostable(bucket: str) -> bool:
    """Whether a bucket can be addressed as ``{bucket}.s3…`` over HTTPS: botocore's rule (no dots, no IPs)."""
    return (
        len(bucket) >= 3
        and bucket.lower() == bucket
        and _IPV4.match(bucket) is None
        and _HOST_LABEL.match(bucket) is not None
    )


def s3_address(
    bucket: str,
    key: str | None,
    region: str,
    *,
    endpoint_url: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Address:
    """The address of an object (``key``) or of the bucket itself (``key=None``).

    Virtual-hosted (``{bucket}.s3.{region}…``) on AWS where the name allows, path-style otherwise and on
    every custom endpoint (botocore's default addressing). The key is encoded as botocore encodes a
    greedy label: everything but unreserved characters and ``/``.
    """
    env = os.environ if environ is None else environ
    endpoint_url = endpoint_url or configured_endpoint("s3", env)
    tail = "" if key is None else "/" + percent_encode(key, safe="/~")
    quoted_bucket = percent_encode(bucket)
    if endpoint_url:
        scheme, host, base = _split(endpoint_url)
        return Address(scheme, host, f"{base}/{quoted_bucket}{tail}", region)
    if region == "us-east-1" and env.get("AWS_S3_US_EAST_1_REGIONAL_ENDPOINT", "").lower() != "regional":
        regional = "s3.amazonaws.com"
    else:
        regional = f"s3.{region}.{partition(region).dns_suffix}"
    if virtual_hostable(bucket):
        return Address("https", f"{bucket}.{regional}", tail or "/", region)
    return Address("https", regional, f"/{quoted_bucket}{tail}", region)
