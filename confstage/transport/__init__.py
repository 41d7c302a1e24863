"""How the runtime reads AWS: one small interface, two implementations.

::

    Transport.call(request) -> response       one AWS API call, retries and deadline included
    ├── botocore  (transport/botocore.py)     boto3's clients: profiles, SSO, every endpoint variant
    └── lite      (transport/lite.py)         the standard library: http.client + SigV4, for Lambda's cold path

A request names the service and operation in botocore's spelling (``"dynamodb"``, ``"Query"``) with
botocore's input shape; the response has botocore's output shape for the fields confstage reads (blobs
as ``bytes``, S3 ``Body`` as a readable stream). Failures are ``AwsError`` (the service answered with an
error) or ``NetworkError`` (no usable answer: connection, timeout, deadline, unparseable body); the call
layer above turns both into ``SourceError``. Nothing outside the transports imports botocore's exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

__all__ = ["THROTTLING_CODES", "AwsError", "AwsRequest", "NetworkError", "Transport", "TransportError"]

# botocore.retries.standard's throttling codes (ThrottledRetryableChecker): an error with one of them is
# ``throttled``, whichever transport saw it.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)


class AwsRequest(NamedTuple):
    """One AWS API call, transport-neutral."""

    service: str  # botocore's service name: dynamodb, s3, ssm, secretsmanager, kms, sts
    operation: str  # botocore's operation name: Query, GetObject, GetParametersByPath, Decrypt, ...
    params: Mapping[str, Any]  # botocore's input shape
    region: str | None = None  # None: AWS_REGION / AWS_DEFAULT_REGION
    endpoint_url: str | None = None  # None: AWS_ENDPOINT_URL_<SERVICE>, AWS_ENDPOINT_URL, else the partition's
    deadline: float | None = None  # time.monotonic() by which every attempt must have ended (None: no deadline)


class TransportError(Exception):
    """Base of what a transport raises; never carries a request or response body."""

    def __init__(self, message: str, *, operation: str = "") -> None:
        super().__init__(message)
        self.operation = operation


class AwsError(TransportError):
    """The service answered with an error: its code (``ThrottlingException``, ``NoSuchKey``, ``NotModified``)."""

    def __init__(
        self, code: str, message: str = "", *, status: int = 0, operation: str = "", throttled: bool = False
    ) -> None:
        super().__init__(f"{code}: {message}" if message else code, operation=operation)
        self.code = code
        self.status = status
        self.throttled = throttled


class NetworkError(TransportError):
    """No usable answer: the connection failed, a timeout or the deadline passed, or the body did not parse."""


class Transport(Protocol):
    """Makes AWS API calls; thread-safe, kept for the life of the process."""

    name: str

    def call(self, request: AwsRequest) -> dict[str, Any]:
        """Send ``request`` (retrying as configured, within its deadline); the parsed response."""
        ...
