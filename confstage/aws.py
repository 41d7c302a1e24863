"""The call layer: every AWS request confstage makes goes through ``call``, over a ``Transport``.

::

    Caller.call / Caller.pages            a source or store: which request, which fields
    └── call(operation, params, ...)      the request (AwsRequest), its deadline, the answer checked
        └── Transport.call(request)       botocore (transport/botocore.py) or, later, lite

``call`` builds the ``AwsRequest``, applies the deadline (given, or the fetch's in ``_context.DEADLINE``), sends it
over the transport (given, or ``runtime_transport()``, chosen once by ``choose_transport``), and turns every failure
into a ``SourceError`` naming the source, the operation (as IAM spells it, ``dynamodb:Query``) and what it read,
chained to the transport's error, with ``throttled`` set when AWS refused for rate. An error code the caller
expects (``answers``: no such object, a refused ciphertext) is returned as an ``ErrorAnswer`` instead. A 2xx
that lacks what the operation always sends (``PROMISES``: an empty or truncated body, a proxy's page) is a
``SourceError`` too, never "not found". ``pages`` follows an operation's page tokens (``PAGES``) and asks again,
with jittered backoff, for what a batch left unprocessed (``UNPROCESSED``).

``endpoint_identity`` names where a source reaches AWS (region, endpoint, principal) for the /tmp cache.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, NamedTuple

from . import _context
from ._backoff import Backoff
from .errors import SourceError
from .transport import THROTTLING_CODES, AwsError, AwsRequest, NetworkError, Transport
from .transport.identity import identity_from_environment

__all__ = [
    "IAM_PREFIXES",
    "MAX_PAGES",
    "PAGES",
    "PROMISES",
    "THROTTLING_CODES",
    "UNPROCESSED",
    "Caller",
    "ErrorAnswer",
    "Promise",
    "Retry",
    "call",
    "choose_transport",
    "endpoint_identity",
    "read_body",
    "reset",
    "runtime_transport",
    "use_runtime_transport",
]


class Promise(NamedTuple):
    """What every successful answer of an operation carries (botocore's parsed names and types)."""

    fields: tuple[tuple[str, type], ...]


# Each runtime read, and what AWS always sends back for it. A genuinely empty answer still has these fields
# (a Query with ``Items: []``, a path with ``Parameters: []``); an absent secret or object is an error code that
# the caller lists in ``answers``. GetItem promises no field: ``{}`` is how DynamoDB says there is no item (the
# botocore transport parses its body whole before botocore does).
PROMISES: dict[str, Promise] = {
    "dynamodb:Query": Promise((("Items", list),)),
    "dynamodb:BatchGetItem": Promise((("Responses", dict),)),
    "ssm:GetParametersByPath": Promise((("Parameters", list),)),
    "secretsmanager:GetSecretValue": Promise((("Name", str), ("VersionId", str))),
    # Sent even when empty (an answer with nothing but Errors, or only a NextToken, carries "SecretValues": []).
    "secretsmanager:BatchGetSecretValue": Promise((("SecretValues", list),)),
    "kms:Decrypt": Promise((("Plaintext", bytes),)),
    "kms:GenerateDataKey": Promise((("Plaintext", bytes), ("CiphertextBlob", bytes))),
    "s3:GetObject": Promise((("ETag", str),)),
    "s3:ListObjectsV2": Promise((("IsTruncated", bool),)),
    "appconfigdata:StartConfigurationSession": Promise((("InitialConfigurationToken", str),)),
    # An unchanged configuration is an empty Configuration, never an absent token.
    "appconfigdata:GetLatestConfiguration": Promise((("NextPollConfigurationToken", str),)),
}

# Services whose IAM prefix is not botocore's service name: errors name an operation as IAM spells it.
IAM_PREFIXES = {"appconfigdata": "appconfig"}

# Paginated operations: (request field, response field) of each token that asks for the next page.
PAGES: dict[str, tuple[tuple[str, str], ...]] = {
    "dynamodb:Query": (("ExclusiveStartKey", "LastEvaluatedKey"),),
    "dynamodb:Scan": (("ExclusiveStartKey", "LastEvaluatedKey"),),
    "ssm:GetParametersByPath": (("NextToken", "NextToken"),),
    "ssm:GetParameterHistory": (("NextToken", "NextToken"),),
    "secretsmanager:ListSecretVersionIds": (("NextToken", "NextToken"),),
    "secretsmanager:ListSecrets": (("NextToken", "NextToken"),),
    "secretsmanager:BatchGetSecretValue": (("NextToken", "NextToken"),),
    "s3:ListObjectsV2": (("ContinuationToken", "NextContinuationToken"),),
    "s3:ListObjectVersions": (("KeyMarker", "NextKeyMarker"), ("VersionIdMarker", "NextVersionIdMarker")),
}

# The most pages one walk asks for. The largest stage a runtime source reads is 10,000 SSM parameters (the
# standard tier's quota: 1,000 pages of 10); a Query page is up to 1 MB. A store that keeps answering "more"
# past this is broken or hostile, and the walk fails rather than paging for ever.
MAX_PAGES = 1000

# Batch operations: the response field holding what was left unprocessed (sent again as ``RequestItems``), and
# what its entries are called in errors.
UNPROCESSED: dict[str, tuple[str, str]] = {
    "dynamodb:BatchGetItem": ("UnprocessedKeys", "keys"),
    "dynamodb:BatchWriteItem": ("UnprocessedItems", "items"),
}


class ErrorAnswer(NamedTuple):
    """An AWS error that answers the question (no such object, a refused ciphertext), returned by ``call``."""

    code: str
    error: AwsError


class Retry(NamedTuple):
    """How ``pages`` asks again for what a batch left unprocessed: ``attempts`` calls in all, jittered backoff."""

    attempts: int = 8
    backoff: Backoff = Backoff(base=0.05, cap=2.0)
    sleep: Callable[[float], None] = time.sleep


_runtime: Transport | None = None  # the runtime's transport, once chosen (runtime_transport)
_lock: Any = None  # guards choosing it (a threading.Lock, made on first use: threading costs at import)


def runtime_transport() -> Transport:
    """The transport the runtime's AWS calls go through, chosen on first use (``choose_transport``)."""
    global _lock, _runtime
    found = _runtime
    if found is None:
        if _lock is None:
            import threading

            _lock = threading.Lock()
        with _lock:
            found = _runtime
            if found is None:
                found = _runtime = choose_transport()
    return found


def use_runtime_transport(transport: Transport | None) -> Transport | None:
    """Make ``transport`` the runtime's (None: choose one again on next use); tests swap in their own. Returns the
    one it replaces."""
    global _runtime
    previous, _runtime = _runtime, transport
    return previous


def choose_transport() -> Transport:
    """The transport the runtime's reads go through, made once per process (``runtime_transport``).

    ``CONFSTAGE_TRANSPORT`` (``transport.selection.choose``): ``lite`` inside Lambda when nothing needs
    botocore, else botocore; neither is imported until chosen.
    """
    from . import _log as log
    from .transport.selection import choose

    choice = choose()
    log.debug("transport: %s (%s)", choice.name, choice.reason)
    if choice.name == "lite":
        from .transport.lite.transport import LiteTransport

        return LiteTransport()
    from .transport.botocore import BotocoreTransport

    return BotocoreTransport()


def reset() -> None:
    """Forget the default transport and its clients, closing its idle connections (tests; a new endpoint or
    credentials)."""
    close = getattr(use_runtime_transport(None), "close", None)
    if callable(close):
        close()


def call(
    operation: str,
    params: Mapping[str, Any],
    *,
    source: str,
    target: str = "",
    answers: Collection[str] = (),
    transport: Transport | None = None,
    region: str | None = None,
    endpoint_url: str | None = None,
    deadline: float | None = None,
) -> Any:
    """Make one AWS call (``operation`` as IAM spells it, ``dynamodb:Query``) and return the parsed answer.

    Every failure is a ``SourceError`` naming ``source``, the operation and ``target``, chained to the transport's
    error (``throttled`` when AWS refused for rate); an AWS error whose code is in ``answers`` is returned as an
    ``ErrorAnswer`` instead. ``deadline`` (``time.monotonic``) defaults to the fetch's, when one is running.
    """
    service, _, name = operation.partition(":")
    if service in IAM_PREFIXES:  # botocore's service name in the request, IAM's in what errors say
        operation = f"{IAM_PREFIXES[service]}:{name}"
    if deadline is None:
        deadline = _context.DEADLINE.get()
    request = AwsRequest(service, name, params, region, endpoint_url, deadline)
    where = f" on {target}" if target else ""
    try:
        response = (transport or runtime_transport()).call(request)
    except AwsError as exc:
        if exc.code in answers:
            return ErrorAnswer(exc.code, exc)
        throttled = exc.throttled or exc.code in THROTTLING_CODES
        raise SourceError(
            f"{operation}{where} failed with {exc}", source=source, operation=operation, throttled=throttled
        ) from exc
    except NetworkError as exc:
        raise SourceError(f"{operation}{where} failed with {exc}", source=source, operation=operation) from exc
    promise = PROMISES.get(f"{service}:{name}")
    if promise is not None:
        lacking = [field for field, kind in promise.fields if not isinstance(_get(response, field), kind)]
        if lacking or not isinstance(response, Mapping):
            body = _get(response, "Body")
            if body is not None:
                body.close()  # a streamed body left unread would keep its connection open
            # Chained to a NetworkError, as a body that does not parse is: the region gave no usable answer, and
            # another region may (sources.failover).
            raise SourceError(
                f"{operation}{where} returned a response without {', '.join(lacking) or 'a body'}: "
                "not an answer from AWS (a proxy or a broken endpoint?)",
                source=source,
                operation=operation,
            ) from NetworkError(f"{operation}: not an answer from AWS", operation=operation)
    return response


def read_body(response: Mapping[str, Any], *, source: str, operation: str, target: str = "") -> bytes:
    """The whole streamed body of a response (S3 GetObject); a failure while reading is a ``SourceError``."""
    try:
        data: bytes = response["Body"].read()
    except NetworkError as exc:
        where = f" on {target}" if target else ""
        raise SourceError(f"{operation}{where} failed with {exc}", source=source, operation=operation) from exc
    return data


class Caller:
    """How one source or store calls AWS: its name in errors, and its transport (None: the runtime's)."""

    __slots__ = ("source", "transport")

    def __init__(self, source: str, transport: Transport | None = None) -> None:
        self.source = source
        self.transport = transport

    def __repr__(self) -> str:
        return f"Caller({self.source!r})"

    def call(
        self, operation: str, params: Mapping[str, Any], *, target: str = "", answers: Collection[str] = ()
    ) -> Any:
        """``aws.call`` for this source."""
        return call(operation, params, source=self.source, target=target, answers=answers, transport=self.transport)

    def pages(
        self,
        operation: str,
        params: Mapping[str, Any],
        *,
        target: str = "",
        answers: Collection[str] = (),
        retry: Retry | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Every page of a paginated operation (``PAGES``), or every round of a batch (``UNPROCESSED``).

        An error code in ``answers`` ends the walk (a parameter that does not exist has no history). A batch's
        unprocessed entries are sent again after ``retry``'s backoff; still left after its attempts, they are a
        ``SourceError`` (throttled). The walk ends with a ``SourceError``, too, on a page token the store already
        gave (a loop), past ``MAX_PAGES`` pages, and before asking for another page once the fetch's deadline
        (``_context.DEADLINE``) has passed: no fetch thread pages on after ``get`` has stopped waiting for it.
        """
        request = dict(params)
        tokens = PAGES.get(operation, ())
        left = UNPROCESSED.get(operation)
        retry = retry or Retry()
        attempt = 1
        seen: set[str] = set()  # every page token sent: a store that hands one back again would loop for ever
        where = f" on {target}" if target else ""
        for sent in range(1, MAX_PAGES + 1):
            if sent > 1:
                self._before_next_page(operation, where, sent)
            page = self.call(operation, request, target=target, answers=answers)
            if isinstance(page, ErrorAnswer):
                return
            yield page
            if left is not None:
                pending = page.get(left[0]) or {}
                if not pending:
                    return
                if attempt >= retry.attempts:
                    count = sum(
                        len(entry["Keys"]) if isinstance(entry, dict) else len(entry) for entry in pending.values()
                    )
                    raise SourceError(
                        f"{operation}{where} left {count} {left[1]} unprocessed after {attempt} attempts (throttled)",
                        source=self.source,
                        operation=operation,
                        throttled=True,
                    )
                retry.sleep(retry.backoff.delay(attempt))
                attempt += 1
                request = {**request, "RequestItems": pending}
                continue
            following = {ask: page.get(answer) for ask, answer in tokens}
            if not any(following.values()):
                return
            token = repr(sorted(following.items()))
            if token in seen:
                raise SourceError(
                    f"{operation}{where} answered a page token it had already given (page {sent}): a store that "
                    "pages in a loop",
                    source=self.source,
                    operation=operation,
                )
            seen.add(token)
            request = {
                name: value for name, value in {**request, **following}.items() if value or name not in following
            }
        raise SourceError(
            f"{operation}{where} still had more after {MAX_PAGES} pages (the cap): a store that pages without end?",
            source=self.source,
            operation=operation,
        )

    def _before_next_page(self, operation: str, where: str, page: int) -> None:
        """Refuse to ask for another page once the fetch's deadline has passed (``get`` has stopped waiting)."""
        deadline = _context.DEADLINE.get()
        if deadline is not None and time.monotonic() >= deadline:
            raise SourceError(
                f"{operation}{where}: the fetch deadline passed before page {page}",
                source=self.source,
                operation=operation,
            )

    def read_body(self, response: Mapping[str, Any], *, operation: str, target: str = "") -> bytes:
        """``aws.read_body`` for this source."""
        return read_body(response, source=self.source, operation=operation, target=target)

    def identity(self, service: str) -> str:
        """``endpoint_identity`` of this caller's transport."""
        return endpoint_identity(service, transport=self.transport)


def _get(response: Any, name: str) -> Any:
    return response.get(name) if isinstance(response, Mapping) else None


# -- which store a source reaches (the /tmp cache's key) ------------------------------------------


def endpoint_identity(
    service: str, *, transport: Transport | None = None, environ: Mapping[str, str] | None = None
) -> str:
    """Where ``service`` is reached: ``region=… endpoint=… principal=…``, never a credential.

    Region names are unique across partitions, so the region names the partition too. The account is not known
    without an STS call; the principal stands in for it, as a digest of the access key id (a different user, role
    session or account never shares a snapshot; the same one always does within a Lambda environment, whose
    credentials are fixed). The runtime's transport answers from the environment when it decides alone, as it does
    in Lambda (credentials and region set, no shared config file that could name another endpoint), importing
    nothing; otherwise the transport says (``identity(service)``: botocore's client knows).
    """
    env = os.environ if environ is None else environ
    if transport is None:
        found = identity_from_environment(service, env)
        if found is not None:
            return found
        transport = runtime_transport()
    identify = getattr(transport, "identity", None)
    if callable(identify):
        return str(identify(service))
    return f"transport={transport.name}-{id(transport):x}"  # known to this process only
