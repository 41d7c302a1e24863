"""The botocore transport: boto3's clients behind ``Transport.call``, and the only module that sees botocore's errors.

Clients are made on first use, one per (service, region, endpoint), and kept for the life of the transport
(thread-safe once made; making them is not, hence the lock and one session). Their settings suit Lambda:
standard retries, ``CONFSTAGE_CONNECT_TIMEOUT`` (1 s), ``CONFSTAGE_READ_TIMEOUT`` (3 s), ``CONFSTAGE_MAX_ATTEMPTS``
(3). Writes wait longer (``ADMIN_READ_TIMEOUT``): botocore retries a request whose answer timed out, and a write
answered late has been applied, so a retried PutParameter makes two versions. ``add_client_hook`` lets tests and
benchmarks watch every client made from then on.

Failures come out as the interface's: ``ClientError`` → ``AwsError`` (code, AWS's message, status), anything else
of botocore's → ``NetworkError`` naming the exception's type (its message is left out where it could quote the
request: a parameter validation error does). A 2xx that botocore would misread is refused first: the JSON
protocol's parser turns a body that is not JSON into ``{}`` (an HTML page from a proxy reads as "no item"), so a
``before-parse`` hook checks the raw body (``_responses``); a body the parser chokes on is a ``NetworkError`` too,
raised without its cause (a ``UnicodeDecodeError`` holds the whole body).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from . import THROTTLING_CODES, AwsError, AwsRequest, NetworkError

__all__ = ["ADMIN_READ_TIMEOUT", "BotocoreTransport", "add_client_hook", "client_config"]

# Seconds the admin side (stores, the CLI) waits for an answer: long enough that a slow write is not sent twice.
ADMIN_READ_TIMEOUT = 30.0

_hooks: list[Callable[[Any], None]] = []

# The deadline of the call this thread is making: botocore retries inside one API call, so each attempt's
# ``before-send`` event (``_refuse_late``) checks it and no attempt starts after it.
_deadlines = threading.local()


class _DeadlinePassed(Exception):
    """Raised from ``before-send`` to stop botocore before an attempt that would start past the deadline."""


def _refuse_late(**_: Any) -> None:
    deadline = getattr(_deadlines, "value", None)
    if deadline is not None and time.monotonic() >= deadline:
        raise _DeadlinePassed


_hooks_lock = threading.Lock()

# botocore exceptions whose message names a setting, never a request: shown after the type.
_SAFE_MESSAGES = frozenset(
    {"NoRegionError", "NoCredentialsError", "PartialCredentialsError", "ProfileNotFound", "UnknownRegionError"}
)


def add_client_hook(hook: Callable[[Any], None]) -> Callable[[], None]:
    """Call ``hook(client)`` on every botocore client made from now on (tests, benchmarks); returns a remover."""
    with _hooks_lock:
        _hooks.append(hook)

    def remove() -> None:
        with _hooks_lock:
            if hook in _hooks:
                _hooks.remove(hook)

    return remove


def client_config(read_timeout: float | None = None) -> Any:
    """The botocore ``Config`` every client gets: standard retries, short timeouts (env-tunable; ``read_timeout``
    wins over ``CONFSTAGE_READ_TIMEOUT``)."""
    from botocore.config import Config

    from confstage.variables import env_float

    attempts = env_float("CONFSTAGE_MAX_ATTEMPTS", 3)
    return Config(
        connect_timeout=env_float("CONFSTAGE_CONNECT_TIMEOUT", 1.0),
        read_timeout=read_timeout if read_timeout is not None else env_float("CONFSTAGE_READ_TIMEOUT", 3.0),
        retries={"mode": "standard", "total_max_attempts": int(attempts)},
        user_agent_extra="confstage",
    )


class BotocoreTransport:
    """AWS calls through boto3 clients: profiles, SSO, every endpoint variant; what the admin CLI writes with.

    ``profile``, ``region`` and ``endpoint_url`` apply to every client it makes (None: what botocore reads from
    the environment and its config files); a request's own ``region`` or ``endpoint_url`` wins over them.
    ``read_timeout`` overrides ``CONFSTAGE_READ_TIMEOUT``; the admin side passes ``ADMIN_READ_TIMEOUT``.
    """

    name = "botocore"

    def __init__(
        self,
        *,
        profile: str | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        read_timeout: float | None = None,
    ) -> None:
        self.profile = profile
        self.region = region
        self.endpoint_url = endpoint_url
        self.read_timeout = read_timeout
        self._lock = threading.Lock()
        self._session: Any = None
        self._clients: dict[tuple[str, str | None, str | None], Any] = {}

    def __repr__(self) -> str:
        given = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_") and v is not None)
        return f"BotocoreTransport({given})"

    def call(self, request: AwsRequest) -> dict[str, Any]:
        """Make one call with the service's client; the parsed answer (an S3 ``Body`` reads through ``_Body``)."""
        from botocore import xform_name
        from botocore.exceptions import BotoCoreError, ClientError
        from botocore.parsers import ResponseParserError

        from ._responses import UnparseableResponseError

        what = f"{request.service}:{request.operation}"
        if request.deadline is not None and time.monotonic() >= request.deadline:
            raise NetworkError(f"{what}: the deadline passed before the call", operation=what)
        unreadable = ""
        _deadlines.value = request.deadline  # each attempt's before-send hook (``_refuse_late``) reads it
        try:
            made = self.client(request.service, region=request.region, endpoint_url=request.endpoint_url)
            response: dict[str, Any] = getattr(made, xform_name(request.operation))(**request.params)
        except _DeadlinePassed:
            raise NetworkError(f"{what}: the deadline passed before a retry", operation=what) from None
        except ClientError as exc:
            raise _aws_error(exc, what) from exc
        except UnparseableResponseError as exc:
            unreadable = exc.detail
        except BotoCoreError as exc:
            raise _network_error(exc, what) from exc
        except (ResponseParserError, ValueError, TypeError, AttributeError, LookupError) as exc:
            # botocore's parser on a body it cannot read (the before-parse hook refuses most such bodies first).
            unreadable = type(exc).__name__
        finally:
            _deadlines.value = None
        if unreadable:
            # Raised outside the ``except``: the parser's exception can hold the body (UnicodeDecodeError.object).
            raise NetworkError(
                f"UnparseableResponse: botocore could not parse the answer ({unreadable})", operation=what
            )
        body = response.get("Body")
        if body is not None:
            response["Body"] = _Body(body, what)
        payload = response.get(_BLOB_PAYLOADS.get(what, ""))
        if payload is not None and hasattr(payload, "read"):
            response[_BLOB_PAYLOADS[what]] = _Body(payload, what).read()  # a blob, as the lite transport gives it
        return response

    def client(self, service: str, *, region: str | None = None, endpoint_url: str | None = None) -> Any:
        """The transport's botocore client for a service (``AWS_ENDPOINT_URL*`` honoured as boto3 honours them)."""
        region = region or self.region
        endpoint_url = endpoint_url or self.endpoint_url
        if region is None and not os.environ.get("AWS_DEFAULT_REGION"):
            region = os.environ.get("AWS_REGION") or None  # Lambda sets both; botocore reads only the first
        cache_key = (service, region, endpoint_url)
        found = self._clients.get(cache_key)
        if found is not None:
            return found
        with self._lock:
            found = self._clients.get(cache_key)
            if found is None:
                if self._session is None:
                    import boto3.session

                    self._session = boto3.session.Session(profile_name=self.profile)
                found = self._session.client(
                    service, region_name=region, endpoint_url=endpoint_url, config=client_config(self.read_timeout)
                )
                _guard(found)
                with _hooks_lock:
                    hooks = list(_hooks)
                for hook in hooks:
                    hook(found)
                self._clients[cache_key] = found
            return found

    def identity(self, service: str) -> str:
        """Where this transport's client of ``service`` reaches: ``region=… endpoint=… principal=…``, no credential."""
        return client_identity(self.client(service))

    def reset(self) -> None:
        """Forget every client and the session (a new endpoint or credentials)."""
        with self._lock:
            self._clients.clear()
            self._session = None

    def close(self) -> None:
        """Close every client's idle connections and forget the clients (``aws.reset``; tests)."""
        with self._lock:
            clients = list(self._clients.values())
            self._clients.clear()
        for made in clients:
            closing = getattr(made, "close", None)
            if callable(closing):
                closing()


def client_identity(made: Any) -> str:
    """What a botocore client reaches: its region, endpoint and a digest of its access key id (the principal)."""
    from .identity import digest

    meta = getattr(made, "meta", None)
    region = getattr(meta, "region_name", None) or "none"
    endpoint = getattr(meta, "endpoint_url", None) or "none"
    signer = getattr(made, "_request_signer", None)  # botocore keeps the credentials there, and only there
    credentials = getattr(signer, "_credentials", None)
    if credentials is not None:
        principal = digest(str(credentials.access_key))
    elif signer is not None:
        principal = "anonymous"
    else:
        principal = f"client-{id(made):x}"  # a stand-in client: known to this process only
    return f"region={region} endpoint={endpoint} principal={principal}"


class _Body:
    """An S3 ``Body`` whose read failures are ``NetworkError``s, like every other failure of a call."""

    def __init__(self, stream: Any, operation: str) -> None:
        self._stream = stream
        self._operation = operation

    def read(self, amt: int | None = None) -> bytes:
        from botocore.exceptions import BotoCoreError

        try:
            data: bytes = self._stream.read(amt)
        except BotoCoreError as exc:
            raise _network_error(exc, self._operation) from exc
        return data

    def iter_chunks(self, chunk_size: int = 65536) -> Iterator[bytes]:
        """The body in chunks of at most ``chunk_size`` bytes."""
        while chunk := self.read(chunk_size):
            yield chunk

    def close(self) -> None:
        self._stream.close()


def _aws_error(exc: Any, operation: str) -> AwsError:

    response = exc.response if isinstance(getattr(exc, "response", None), dict) else {}
    error = response.get("Error", {})
    code = str(error.get("Code", "")) or type(exc).__name__
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    message = str(error.get("Message", ""))[:300]
    throttled = code in THROTTLING_CODES or status == 429
    return AwsError(code, message, status=status, operation=operation, throttled=throttled)


def _network_error(exc: BaseException, operation: str) -> NetworkError:
    name = type(exc).__name__
    shown = f"{name}: {exc}" if name in _SAFE_MESSAGES else name
    return NetworkError(shown, operation=operation)


# Blob payloads botocore hands over as a stream although they are small and read whole (rest-json): read
# here, so every transport answers ``bytes``.
_BLOB_PAYLOADS = {"appconfigdata:GetLatestConfiguration": "Configuration"}

_guarded: Any = None  # weakref.WeakSet of the clients the body check is registered on


def _guard(made: Any) -> None:
    """Register the raw-body check on every operation of a JSON-protocol client, once."""
    global _guarded
    import weakref

    from ._responses import check_json_body

    if _guarded is None:
        _guarded = weakref.WeakSet()
    if made in _guarded:
        return
    made.meta.events.register_first("before-send", _refuse_late, unique_id="confstage-deadline")
    model = made.meta.service_model
    if getattr(model, "resolved_protocol", model.protocol) == "json":
        service_id = model.service_id.hyphenize()
        made.meta.events.register_first(
            f"before-parse.{service_id}", check_json_body(), unique_id=f"confstage-body-{service_id}"
        )
    _guarded.add(made)
