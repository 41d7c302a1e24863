"""The lite transport: the runtime's AWS reads with the standard library and SigV4, no boto3 on Lambda's cold path.

::

    LiteTransport.call(request)
    ├── protocols.prepare      botocore's input shape → method, address, query, headers, body
    ├── sigv4.sign             the key variables, read on every call; else the container endpoint's
    │                          credentials (container.py), kept and refreshed before they expire
    ├── connections.Pool       keep-alive connections per endpoint, each used by one thread at a time
    │   └── _http.Connection   HTTP/1.1 on a socket; every socket operation within min(timeout, time left)
    ├── retries                botocore's standard mode: attempts, jittered backoff, a retry quota
    └── answers.parse/error    the answer → output shape, AwsError or NetworkError

Settings are confstage's: ``CONFSTAGE_CONNECT_TIMEOUT`` (1 s), ``CONFSTAGE_READ_TIMEOUT`` (3 s),
``CONFSTAGE_MAX_ATTEMPTS`` (3). ``request.deadline`` (``time.monotonic``) bounds the whole call, retries and
backoff included, and an S3 ``Body`` read after ``call`` returned: a peer that trickles bytes cannot hold a
read past it, and no thread is left behind. Only name resolution (``getaddrinfo``) is not bounded by it.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from confstage._backoff import urandom_fraction
from confstage.errors import ConfigurationError
from confstage.transport import AwsError, AwsRequest, NetworkError, protocols, sigv4
from confstage.transport.selection import environment_credentials, environment_region, lite_blocker
from confstage.transport.sigv4 import Credentials

from . import answers
from . import http as _http
from .connections import Pool, StreamingBody, TransientNetworkError, network_error

if TYPE_CHECKING:
    from .container import ContainerCredentials

__all__ = ["LiteTransport", "Settings", "StreamingBody"]

USER_AGENT = "confstage-lite"
_MAX_BACKOFF = 20.0
_THROTTLING_BASE = 1.0  # botocore.retries.standard.ExponentialBackoff: seconds, throttling errors
_TRANSIENT_BASE = {"dynamodb": 0.025}  # other errors: 50 ms, DynamoDB 25 ms
_RETRY_COST, _THROTTLING_RETRY_COST, _QUOTA = 14, 5, 500  # botocore.retries.standard.RetryQuotaChecker
_TRANSIENT_STATUS = frozenset({500, 502, 503, 504})


class Settings:
    """Timeouts and attempts, from ``CONFSTAGE_*`` variables when not given."""

    __slots__ = ("connect_timeout", "max_attempts", "read_timeout")

    def __init__(self, connect_timeout: float, read_timeout: float, max_attempts: int) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max_attempts

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """``CONFSTAGE_CONNECT_TIMEOUT``, ``_READ_TIMEOUT``, ``_MAX_ATTEMPTS``, read as ``confstage.aws`` reads them."""
        from confstage.variables import env_float

        attempts = env_float("CONFSTAGE_MAX_ATTEMPTS", 3, environ)
        return cls(
            env_float("CONFSTAGE_CONNECT_TIMEOUT", 1.0, environ),
            env_float("CONFSTAGE_READ_TIMEOUT", 3.0, environ),
            int(attempts),
        )

    def __repr__(self) -> str:
        return (
            f"Settings(connect_timeout={self.connect_timeout}, read_timeout={self.read_timeout}, "
            f"max_attempts={self.max_attempts})"
        )


# -- connections ---------------------------------------------------------------------------------


# -- failures ------------------------------------------------------------------------------------


class _Retry(Exception):
    """Internal: an attempt failed in a way the standard retry mode retries."""

    def __init__(self, failure: AwsError | NetworkError, *, throttled: bool = False, retry_after: float | None = None):
        super().__init__(failure.code if isinstance(failure, AwsError) else "network")
        self.failure = failure
        self.throttled = throttled
        self.retry_after = retry_after


def _failed(failure: NetworkError) -> Exception:
    """What an attempt raises for a network failure: a retry when it is transient, else the failure itself."""
    return _Retry(failure) if isinstance(failure, TransientNetworkError) else failure


def _stale(exc: BaseException) -> bool:
    """An idle keep-alive connection the server had closed: the request never reached it."""
    return isinstance(exc, (_http.Disconnected, ConnectionResetError, BrokenPipeError))


def _retry_after(headers: Mapping[str, str]) -> float | None:
    raw = headers.get("x-amz-retry-after")
    if raw is None:
        return None
    try:
        value = int(raw) / 1000.0
    except ValueError:
        return None
    return value if value >= 0 else None


def _crc32_ok(headers: Mapping[str, str], body: bytes) -> bool:
    import binascii

    expected = headers.get("x-amz-crc32")
    return expected is None or not expected.isdigit() or int(expected) == binascii.crc32(body)


class _RetryQuota:
    """botocore's retry quota: retries spend capacity, successes give some back, none left means no retry."""

    def __init__(self, capacity: int = _QUOTA) -> None:
        self._lock = threading.Lock()
        self._max = self.available = capacity

    def acquire(self, amount: int) -> bool:
        with self._lock:
            if amount > self.available:
                return False
            self.available -= amount
            return True

    def release(self, amount: int) -> None:
        with self._lock:
            self.available = min(self._max, self.available + amount)


# -- the transport -------------------------------------------------------------------------------


class LiteTransport:
    """AWS API calls over HTTP/1.1 with SigV4: thread-safe, kept for the life of the process.

    Credentials come from the key variables, else from the container credentials endpoint they name, and the
    region from the environment (``ConfigurationError`` when absent, or when FIPS, dual-stack or a proxy is
    asked for). ``clock`` (monotonic: deadlines), ``sleep``, ``jitter`` and ``wall``
    (wall clock: how long a connection sat idle) are injectable for tests.
    """

    name = "lite"

    def __init__(
        self,
        *,
        settings: Settings | None = None,
        environ: Mapping[str, str] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._environ = os.environ if environ is None else environ
        problem = lite_blocker(self._environ)
        if problem is not None:
            raise ConfigurationError(f"the lite transport cannot be used: {problem}")
        self.settings = settings or Settings.from_environ(self._environ)
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter or urandom_fraction  # not the random module: milliseconds of import on a cold start
        self._quota = _RetryQuota()
        self._bucket_regions: dict[str, str] = {}
        self._ssl: Any = None
        self._ssl_lock = threading.Lock()
        self._pool = Pool(clock, self._ssl_context, wall)
        self._wall = wall
        self._container: ContainerCredentials | None = None
        self._container_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LiteTransport({self.settings!r})"

    def close(self) -> None:
        """Close the idle connections (tests; connections in use close when their answer is read)."""
        self._pool.close()

    def identity(self, service: str) -> str:
        """Where this transport reaches ``service`` (``aws.endpoint_identity``): region, endpoint and a digest of the
        access key id it signs with. With container credentials that is the fetched key id (fetching them if
        need be), not the endpoint's URI: one URI can serve different roles (every SnapStart function's is
        alike), and a snapshot must never be shared across principals. New credentials name a new principal,
        which costs a /tmp cache miss, never a wrong share."""
        from confstage.transport.identity import environment_identity

        env: Mapping[str, str] = self._environ
        if environment_credentials(env) is None and environment_region(env) is not None:
            signing = self._credentials(None, f"{service}: naming the store")
            env = {**env, "AWS_ACCESS_KEY_ID": signing.access_key, "AWS_SECRET_ACCESS_KEY": "-"}  # names, not signs
        found = environment_identity(service, env)
        if found is None:
            raise ConfigurationError(f"{service}: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or the region is unset")
        return found

    def _credentials(self, deadline: float | None, what: str) -> Credentials:
        """The key variables (read on every call), else the container endpoint's credentials (botocore's order)."""
        found = environment_credentials(self._environ)
        if found is not None:
            return found
        with self._container_lock:
            if self._container is None:
                from .container import ContainerCredentials, container_uri

                if container_uri(self._environ) is None:
                    raise ConfigurationError(
                        f"{what}: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are no longer set, "
                        "nor a container credentials endpoint"
                    )
                self._container = ContainerCredentials(
                    self._environ, now=self._wall, clock=self._clock, sleep=self._sleep, ssl_context=self._ssl_context
                )
            container = self._container
        try:
            return container.get(deadline)
        except NetworkError as exc:
            raise NetworkError(f"{what}: {exc}", operation=what) from exc
        except ConfigurationError as exc:
            raise ConfigurationError(f"{what}: {exc}") from exc

    # -- one call ----------------------------------------------------------------------------

    def call(self, request: AwsRequest) -> dict[str, Any]:
        """Send ``request`` (retrying as botocore's standard mode does, within its deadline); the parsed answer."""
        what = f"{request.service}:{request.operation}"
        region = request.region or environment_region(self._environ)
        if region is None:
            raise ConfigurationError(f"{what}: no region (set AWS_REGION)")
        attempts = self.settings.max_attempts
        spent = 0
        for attempt in range(1, attempts + 1):
            failure: AwsError | NetworkError
            try:
                result = self._attempt(request, region, attempt)
            except _Retry as retry:
                failure, throttled, retry_after = retry.failure, retry.throttled, retry.retry_after
            else:
                self._quota.release(spent or 1)
                return result
            if attempt == attempts:
                break
            cost = _THROTTLING_RETRY_COST if throttled else _RETRY_COST
            if not self._quota.acquire(cost):
                break
            spent = cost
            delay = self._backoff(request.service, attempt, throttled, retry_after)
            if request.deadline is not None and self._clock() + delay >= request.deadline:
                break  # the next attempt could not finish in time: the failure in hand is the answer
            self._sleep(delay)
        raise failure

    def _backoff(self, service: str, attempt: int, throttled: bool, retry_after: float | None) -> float:
        """``rand * min(base * 2 ** (attempt - 1), 20)``, raised to ``x-amz-retry-after`` (at most 5 s more)."""
        base = _THROTTLING_BASE if throttled else _TRANSIENT_BASE.get(service, 0.05)
        delay = self._jitter() * min(base * 2.0 ** (attempt - 1), _MAX_BACKOFF)
        if retry_after is not None:
            delay = max(delay, min(retry_after, delay + 5.0))
        return delay

    def _attempt(self, request: AwsRequest, region: str, attempt: int, *, redirected: bool = False) -> dict[str, Any]:
        what = f"{request.service}:{request.operation}"
        if request.deadline is not None and self._clock() >= request.deadline:
            raise NetworkError(f"{what}: the deadline passed before attempt {attempt}", operation=what)
        bucket = request.params.get("Bucket") if request.service == "s3" else None
        if isinstance(bucket, str) and bucket in self._bucket_regions:
            region = self._bucket_regions[bucket]
        prepared = protocols.prepare(request, region, environ=self._environ)
        status, headers, body, response = self._exchange(request, prepared, what)
        if response is not None:  # a 2xx S3 GetObject: the body stays on the connection
            out = answers.s3_object_fields(headers)
            out["Body"] = response
            return self._with_metadata(out, status, headers, attempt)
        if 200 <= status < 300:
            if request.service == "dynamodb" and not _crc32_ok(headers, body):
                raise _Retry(TransientNetworkError(f"{what}: the answer failed its CRC32 check", operation=what))
            return self._with_metadata(answers.parse(request, status, headers, body), status, headers, attempt)
        failure = answers.error(request, status, headers, body)
        if request.service == "s3" and isinstance(bucket, str) and not redirected:
            moved = answers.bucket_region(failure, headers, body)
            if moved and moved != prepared.address.signing_region:
                self._bucket_regions[bucket] = moved  # botocore's redirect: re-sign for the bucket's region, once
                return self._attempt(request, moved, attempt, redirected=True)
        transient = status in _TRANSIENT_STATUS or failure.code in protocols.TRANSIENT_CODES
        if failure.throttled or transient:
            raise _Retry(failure, throttled=failure.throttled, retry_after=_retry_after(headers))
        raise failure

    @staticmethod
    def _with_metadata(out: dict[str, Any], status: int, headers: dict[str, str], attempt: int) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "RequestId": headers.get("x-amzn-requestid") or headers.get("x-amz-request-id", ""),
            "HTTPStatusCode": status,
            "HTTPHeaders": headers,
            "RetryAttempts": attempt - 1,
        }
        if "x-amz-id-2" in headers:
            metadata["HostId"] = headers["x-amz-id-2"]
        out["ResponseMetadata"] = metadata
        return out

    def _exchange(
        self, request: AwsRequest, prepared: protocols.Prepared, what: str
    ) -> tuple[int, dict[str, str], bytes, StreamingBody | None]:
        """Sign, send and read one HTTP exchange: status, headers, body (or the stream of a 2xx GetObject)."""
        credentials = self._credentials(request.deadline, what)
        address = prepared.address
        payload_hash = hashlib.sha256(prepared.body).hexdigest() if prepared.body else sigv4.EMPTY_SHA256
        signed = sigv4.sign(
            prepared.method,
            address.path,
            prepared.query,
            {"Host": address.host, **prepared.headers},
            payload_hash=payload_hash,
            service=prepared.signing_name,
            region=address.signing_region,
            credentials=credentials,
            s3=prepared.s3,
        )
        headers = {**signed.headers, "User-Agent": USER_AGENT, "Accept-Encoding": "identity"}
        target = address.path
        if prepared.query:
            target += "?" + "&".join(f"{sigv4.quote_query(k)}={sigv4.quote_query(v)}" for k, v in prepared.query)
        conn, reused = self._pool.take(address.scheme, address.host)
        while True:
            limits = conn.limits
            limits.deadline, limits.read_timeout = request.deadline, self.settings.read_timeout
            try:
                response = conn.request(prepared.method, target, headers, prepared.body, self.settings.connect_timeout)
            except (OSError, _http.ProtocolError) as exc:
                conn.close()
                if reused and _stale(exc):
                    conn, reused = self._pool.new(address.scheme, address.host), False
                    continue  # the server closed it while idle: a new connection, not a new attempt
                raise _failed(network_error(exc, limits, what, f"calling {address.host}")) from exc
            break
        if prepared.stream and 200 <= response.status < 300:

            def release() -> None:
                self._pool.give(address.scheme, address.host, conn)

            return response.status, response.headers, b"", StreamingBody(response, conn, release, what)
        try:
            body = response.read()
        except (OSError, _http.ProtocolError) as exc:
            conn.close()
            raise _failed(network_error(exc, limits, what, "reading the answer")) from exc
        self._pool.give(address.scheme, address.host, conn)
        return response.status, response.headers, body, None

    def _ssl_context(self) -> Any:
        """One TLS context for every connection: the system's CAs, or ``AWS_CA_BUNDLE``/``REQUESTS_CA_BUNDLE``
        (``trust.client_context``: the system's hashed CA directory, read a CA per handshake, where it has one)."""
        with self._ssl_lock:
            if self._ssl is None:
                from .trust import client_context

                self._ssl = client_context(self._environ)
            return self._ssl
