"""boto3 clients and the calls the runtime makes with them.

boto3 is imported here and only here, the first time a source needs a client. Clients are
thread-safe once made; making them is not, hence the lock and the one shared session.
Timeouts suit Lambda: a dead endpoint gives up in seconds, not minutes.

``call`` is the one way a source reads AWS: it makes the request, turns every failure into a
``SourceError`` naming the source and the operation, and checks the answer against what the
operation promises (``PROMISES``), so a 200 that is not a real answer (an HTML page from a proxy,
an empty or truncated body) is an error, never "not found". ``store_identity`` names the store a
client reaches (region, endpoint, principal) for the /tmp cache, from the environment when it can.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Collection, Mapping
from typing import Any, NamedTuple

__all__ = [
    "PROMISES",
    "ErrorAnswer",
    "Promise",
    "add_client_hook",
    "call",
    "client",
    "client_config",
    "error_code",
    "read_body",
    "reset",
    "source_error",
    "store_identity",
]

_lock = threading.Lock()
_session: Any = None
_clients: dict[tuple[str, str | None, str | None], Any] = {}
_hooks: list[Callable[[Any], None]] = []


def client_config() -> Any:
    """The botocore ``Config`` every client gets: standard retries, short timeouts (env-tunable)."""
    from botocore.config import Config

    from .variables import env_float

    attempts = env_float("CONFSTAGE_MAX_ATTEMPTS", 3, what="a number of attempts")
    return Config(
        connect_timeout=env_float("CONFSTAGE_CONNECT_TIMEOUT", 1.0),
        read_timeout=env_float("CONFSTAGE_READ_TIMEOUT", 3.0),
        retries={"mode": "standard", "total_max_attempts": max(1, int(attempts))},
        user_agent_extra="confstage",
    )


def client(service: str, *, region: str | None = None, endpoint_url: str | None = None) -> Any:
    """The process-wide client for a service (``AWS_ENDPOINT_URL*`` honoured as boto3 honours them)."""
    if region is None and not os.environ.get("AWS_DEFAULT_REGION"):
        region = os.environ.get("AWS_REGION") or None  # Lambda sets both; botocore reads only the first
    cache_key = (service, region, endpoint_url)
    found = _clients.get(cache_key)
    if found is not None:
        return found
    with _lock:
        found = _clients.get(cache_key)
        if found is None:
            global _session
            if _session is None:
                import boto3.session

                _session = boto3.session.Session()
            found = _session.client(service, region_name=region, endpoint_url=endpoint_url, config=client_config())
            _guard(found)
            for hook in _hooks:
                hook(found)
            _clients[cache_key] = found
        return found


def add_client_hook(hook: Callable[[Any], None]) -> Callable[[], None]:
    """Call ``hook(client)`` on every client made from now on (tests, benchmarks); returns a remover."""
    with _lock:
        _hooks.append(hook)

    def remove() -> None:
        with _lock:
            if hook in _hooks:
                _hooks.remove(hook)

    return remove


def reset() -> None:
    """Forget every client and the session (tests; a new endpoint or credentials)."""
    global _session
    with _lock:
        _clients.clear()
        _session = None


def error_code(exc: BaseException) -> str:
    """The AWS error code of a botocore ``ClientError`` ('' for anything else)."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def source_error(exc: BaseException, *, source: str, operation: str, target: str = "") -> Any:
    """A ``SourceError`` for a failed AWS call: names the source, the operation and what it read.

    The detail is AWS's error message, or the ``detail`` of an error of ours (never a value);
    other botocore messages are left out (a parameter validation error quotes the parameters).
    """
    from .errors import SourceError

    code = error_code(exc) or type(exc).__name__
    message = ""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        message = str(response.get("Error", {}).get("Message", ""))[:300]
    elif isinstance(getattr(exc, "detail", None), str):
        message = exc.detail  # type: ignore[attr-defined]  # checked just above
    where = f" on {target}" if target else ""
    detail = f": {message}" if message else ""
    return SourceError(f"{operation}{where} failed with {code}{detail}", source=source, operation=operation)


# -- the calls the runtime makes ----------------------------------------------------------------


class Promise(NamedTuple):
    """What every successful answer of an operation carries (botocore's parsed names and types).

    ``json``: the service speaks JSON, so the raw body of a 2xx must be a JSON object (checked before
    botocore parses it); ``whole``: parse it fully, for small answers whose emptiness means "not found".
    """

    fields: tuple[tuple[str, type], ...]
    json: bool = False
    whole: bool = False


# Each runtime read, and what AWS always sends back for it. A genuinely empty answer still has
# these fields (a Query with ``Items: []``, a path with ``Parameters: []``); an absent secret or
# object is an error code that the caller lists in ``answers``. GetItem alone promises no field:
# ``{}`` is how DynamoDB says there is no item, so its body is checked whole instead.
PROMISES: dict[str, Promise] = {
    "dynamodb:Query": Promise((("Items", list),), json=True),
    "dynamodb:GetItem": Promise((), json=True, whole=True),
    "dynamodb:BatchGetItem": Promise((("Responses", dict),), json=True),
    "ssm:GetParametersByPath": Promise((("Parameters", list),), json=True),
    "secretsmanager:GetSecretValue": Promise((("Name", str), ("VersionId", str)), json=True),
    "kms:Decrypt": Promise((("Plaintext", bytes),), json=True),
    "kms:GenerateDataKey": Promise((("Plaintext", bytes), ("CiphertextBlob", bytes)), json=True),
    "s3:GetObject": Promise((("ETag", str),)),
    "s3:ListObjectsV2": Promise((("IsTruncated", bool),)),
}


class ErrorAnswer(NamedTuple):
    """An AWS error that answers the question (no such object, a refused ciphertext), returned by ``call``."""

    code: str
    error: BaseException


_guarded: weakref.WeakSet[Any] = weakref.WeakSet()


def call(
    made: Any,
    operation: str,
    request: Mapping[str, Any],
    *,
    source: str,
    target: str = "",
    answers: Collection[str] = (),
) -> Any:
    """Make one AWS call (``operation`` as IAM spells it, ``dynamodb:Query``) and return the parsed answer.

    Every failure is a ``SourceError`` naming ``source``, the operation and ``target``, chained to its
    cause: an AWS error, a timeout, and a 2xx that is not a real answer (a body that does not parse,
    or that lacks what ``PROMISES`` says the operation always sends). An AWS error whose code is in
    ``answers`` is returned as an ``ErrorAnswer`` instead, for the caller to read.
    """
    from botocore import xform_name
    from botocore.exceptions import BotoCoreError, ClientError
    from botocore.parsers import ResponseParserError

    from .errors import SourceError

    _guard(made)
    where = f" on {target}" if target else ""
    unreadable = ""
    try:
        response = getattr(made, xform_name(operation.partition(":")[2]))(**request)
    except ClientError as exc:
        code = error_code(exc)
        if code in answers:
            return ErrorAnswer(code, exc)
        raise source_error(exc, source=source, operation=operation, target=target) from exc
    except BotoCoreError as exc:
        raise source_error(exc, source=source, operation=operation, target=target) from exc
    except (ResponseParserError, ValueError, TypeError, AttributeError, LookupError) as exc:
        # botocore's parser on a body it cannot read (a check in _responses runs first where it can).
        unreadable = type(exc).__name__
    if unreadable:
        # Raised outside the ``except``: the parser's exception can hold the body (UnicodeDecodeError.object).
        raise SourceError(
            f"{operation}{where} returned a response botocore could not parse ({unreadable})",
            source=source,
            operation=operation,
        )
    promise = PROMISES.get(operation)
    if promise is not None:
        lacking = [name for name, kind in promise.fields if not isinstance(_get(response, name), kind)]
        if lacking or not isinstance(response, Mapping):
            stream = _get(response, "Body")
            if stream is not None:
                stream.close()  # a streamed body left unread would keep its connection open
            raise SourceError(
                f"{operation}{where} returned a response without {', '.join(lacking) or 'a body'}: "
                "not an answer from AWS (a proxy or a broken endpoint?)",
                source=source,
                operation=operation,
            )
    return response


def read_body(response: Mapping[str, Any], *, source: str, operation: str, target: str = "") -> bytes:
    """The whole streamed body of a response (S3 GetObject); a failure while reading is a ``SourceError``."""
    from botocore.exceptions import BotoCoreError

    try:
        data: bytes = response["Body"].read()
    except BotoCoreError as exc:
        raise source_error(exc, source=source, operation=operation, target=target) from exc
    return data


def _get(response: Any, name: str) -> Any:
    return response.get(name) if isinstance(response, Mapping) else None


def _guard(made: Any) -> None:
    """Register the raw-body checks of ``PROMISES`` on a client, once (a stand-in client gets none)."""
    try:
        if made in _guarded:
            return
    except TypeError:  # a stand-in that cannot be weakly referenced: nothing to register on it anyway
        return
    meta = getattr(made, "meta", None)
    events = getattr(meta, "events", None)
    model = getattr(meta, "service_model", None)
    if events is not None and model is not None:
        from ._responses import check_json_body

        prefix, service_id = model.endpoint_prefix, model.service_id.hyphenize()
        for operation, promise in PROMISES.items():
            service, _, name = operation.partition(":")
            if service == prefix and promise.json:
                events.register_first(
                    f"before-parse.{service_id}.{name}",
                    check_json_body(operation, whole=promise.whole),
                    unique_id=f"confstage-body-{operation}",
                )
    _guarded.add(made)


# -- which store a client reaches (the /tmp cache's key) ------------------------------------------

_ENDPOINT_NAMES = {"dynamodb": "DYNAMODB", "s3": "S3", "ssm": "SSM", "secretsmanager": "SECRETS_MANAGER", "kms": "KMS"}


def store_identity(service: str, *, made: Any = None, environ: Mapping[str, str] | None = None) -> str:
    """Where a client of ``service`` reaches: ``region=… endpoint=… principal=…``, never a credential.

    Region names are unique across partitions, so the region names the partition too. The account is
    not known without an STS call; the principal stands in for it, as a digest of the access key id
    (a different user, role session or account never shares a snapshot; the same one always does
    within a Lambda environment, whose credentials are fixed). ``made``: a client the caller was given.
    Without one, the environment answers when it decides alone, as it does in Lambda (credentials and
    region set, no shared config file that could name another endpoint), importing nothing; otherwise
    the client ``client(service)`` makes answers (boto3 is imported).
    """
    env = os.environ if environ is None else environ
    if made is None:
        found = _identity_from_environment(service, env)
        if found is not None:
            return found
        made = client(service)
    meta = getattr(made, "meta", None)
    region = getattr(meta, "region_name", None) or "none"
    endpoint = getattr(meta, "endpoint_url", None) or "none"
    signer = getattr(made, "_request_signer", None)  # botocore keeps the credentials there, and only there
    credentials = getattr(signer, "_credentials", None)
    if credentials is not None:
        principal = _digest(str(credentials.access_key))
    elif signer is not None:
        principal = "anonymous"
    else:
        principal = f"client-{id(made):x}"  # a stand-in client: known to this process only
    return f"region={region} endpoint={endpoint} principal={principal}"


def _identity_from_environment(service: str, env: Mapping[str, str]) -> str | None:
    key_id = env.get("AWS_ACCESS_KEY_ID")
    region = env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION")
    if not key_id or not env.get("AWS_SECRET_ACCESS_KEY") or not region:
        return None
    config_file = env.get("AWS_CONFIG_FILE") or os.path.join(env.get("HOME") or "~", ".aws", "config")
    if os.path.exists(os.path.expanduser(config_file)):
        return None  # a profile could set the region or this service's endpoint: ask botocore
    endpoint = "default"
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").lower() != "true":
        specific = f"AWS_ENDPOINT_URL_{_ENDPOINT_NAMES.get(service, service.upper())}"
        endpoint = env.get(specific) or env.get("AWS_ENDPOINT_URL") or endpoint
    return f"region={region} endpoint={endpoint} principal={_digest(key_id)}"


def _digest(key_id: str) -> str:
    """A short digest of an access key id: tells principals apart and never shows the id."""
    try:
        from _blake2 import blake2b  # what hashlib re-exports, without hashlib's 5 ms of OpenSSL import
    except ImportError:  # pragma: no cover - every CPython build has _blake2
        from hashlib import blake2b
    return blake2b(key_id.encode("utf-8"), digest_size=8, person=b"confstage-akid").hexdigest()
