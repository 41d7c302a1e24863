"""The container credential provider for the lite transport: botocore's ``ContainerProvider``, standard library only.

Lambda under SnapStart, ECS and other container runtimes give no key variables: a local endpoint serves the
role's temporary credentials instead. Where, and with what, as botocore reads it::

    AWS_CONTAINER_CREDENTIALS_RELATIVE_URI   http://169.254.170.2 + this path (wins over the full URI)
    AWS_CONTAINER_CREDENTIALS_FULL_URI       https to any host; http only to a loopback address (127.0.0.0/8,
                                             ::1), localhost, 169.254.170.2, 169.254.170.23 or fd00:ec2::23
    AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE   sent as ``Authorization``, the file read on every fetch (wins)
    AWS_CONTAINER_AUTHORIZATION_TOKEN        sent as ``Authorization``

The answer is JSON: ``AccessKeyId``, ``SecretAccessKey``, ``Token``, ``Expiration``. Credentials are kept and
fetched again before they expire, with botocore's windows: less than 15 minutes left, one thread refreshes while
the others keep signing with the current ones (a failure is logged and the current ones kept); less than 10
minutes left, every thread waits for new ones (a failure is raised). One fetch at a time. A fetch makes up to
3 attempts of at most 1 s each. No message carries the token or a credential.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from confstage import _log
from confstage.errors import ConfigurationError

from . import NetworkError
from .sigv4 import Credentials

__all__ = [
    "ADVISORY_REFRESH",
    "ALLOWED_HOSTS",
    "MANDATORY_REFRESH",
    "ContainerCredentials",
    "container_uri",
    "uri_problem",
]

RELATIVE_URI = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"
FULL_URI = "AWS_CONTAINER_CREDENTIALS_FULL_URI"
TOKEN = "AWS_CONTAINER_AUTHORIZATION_TOKEN"  # noqa: S105  # a variable name
TOKEN_FILE = "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"  # noqa: S105  # a variable name
ECS_HOST = "169.254.170.2"
ALLOWED_HOSTS = (ECS_HOST, "169.254.170.23", "fd00:ec2::23", "localhost")  # botocore.utils.ContainerMetadataFetcher
ADVISORY_REFRESH = 15 * 60  # botocore.credentials.RefreshableCredentials: seconds left when a refresh is tried
MANDATORY_REFRESH = 10 * 60  # ... and when it must succeed
TIMEOUT = 1.0
ATTEMPTS = 3
PAUSE = 0.1  # between attempts (botocore sleeps 1 s: too long for a function's cold start)
_WHAT = "container credentials"
_MAX_ANSWER = 64 * 1024


def container_uri(environ: Mapping[str, str]) -> str | None:
    """The credentials endpoint the environment names (the relative URI first, as botocore), or None."""
    relative = environ.get(RELATIVE_URI)
    if relative:
        return f"http://{ECS_HOST}{relative}"
    return environ.get(FULL_URI) or None


def _loopback(host: str) -> bool:
    """``ipaddress.ip_address(host).is_loopback`` without importing ipaddress: 127.0.0.0/8 or ::1."""
    for family, loopback in ((socket.AF_INET, None), (socket.AF_INET6, bytes(15) + b"\x01")):
        try:
            packed = socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return packed[0] == 127 if loopback is None else packed == loopback
    return False


class _Address(NamedTuple):
    scheme: str
    host: str  # as in the URL: an IPv6 address in brackets
    hostname: str  # without brackets, lower case
    port: int | None
    target: str  # path and query


_URL = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://(?P<netloc>[^/?#]*)(?P<path>[^?#]*)(?:\?(?P<query>[^#]*))?")
_NETLOC = re.compile(r"(?:.*@)?(?:\[(?P<v6>[^\]]*)\]|(?P<host>[^:\[\]]*))(?::(?P<port>[^:]*))?")


def _split(uri: str) -> _Address:
    """``urllib.parse.urlsplit``'s scheme, host and port for the URLs a credentials endpoint has, without its
    import (and ipaddress's): the host checked is the host connected to, whatever the parse."""
    url = _URL.fullmatch(uri.strip())
    netloc = _NETLOC.fullmatch(url["netloc"]) if url else None
    if url is None or netloc is None:
        raise ConfigurationError(f"{_WHAT}: the endpoint URI must be an http or https URL with a host")
    scheme = url["scheme"].lower()
    hostname = (netloc["v6"] if netloc["v6"] is not None else netloc["host"]).lower()
    port_text = netloc["port"]
    if port_text is not None and port_text != "" and (not port_text.isdigit() or int(port_text) > 65535):
        raise ConfigurationError(f"{_WHAT}: the endpoint URI's port is not a port number")
    if scheme not in ("http", "https") or not hostname:
        raise ConfigurationError(f"{_WHAT}: the endpoint URI must be an http or https URL with a host")
    target = (url["path"] or "/") + (f"?{url['query']}" if url["query"] else "")
    host = f"[{hostname}]" if netloc["v6"] is not None else hostname
    return _Address(scheme, host, hostname, int(port_text) if port_text else None, target)


def uri_problem(uri: str) -> str | None:
    """Why botocore would refuse to fetch credentials from ``uri``, or None: the host rule, never the token."""
    try:
        address = _split(uri)
    except ConfigurationError as exc:
        return str(exc)
    if address.scheme == "https" or _loopback(address.hostname) or address.hostname in ALLOWED_HOSTS:
        return None
    return (
        f"{_WHAT}: the endpoint's host {address.hostname!r} is not allowed over http (https to any host, or http "
        f"to a loopback address or one of {', '.join(ALLOWED_HOSTS)})"
    )


class _Held(NamedTuple):
    credentials: Credentials
    expires: float  # wall clock (time.time), seconds


_ISO8601 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d+))?(?:([Zz])|([+-])(\d{2}):?(\d{2}))?"
)


def _expiry(text: object) -> float:
    """An ISO 8601 ``Expiration`` (``2026-12-07T21:00:00Z``) as epoch seconds, UTC when it names no zone;
    ``ValueError`` otherwise. Computed, not parsed by datetime: one import less on the cold path."""
    found = _ISO8601.fullmatch(text.strip()) if isinstance(text, str) else None
    if found is None:
        raise ValueError("not an ISO 8601 date and time")
    year, month, day, hour, minute, second = (int(found[i]) for i in range(1, 7))
    if not (1 <= month <= 12 and 1 <= day <= _days_in(year, month) and hour <= 23 and minute <= 59 and second <= 59):
        raise ValueError("not a date and time")
    seconds: float = ((_days_from_epoch(year, month, day) * 24 + hour) * 60 + minute) * 60 + second
    if found[7]:
        seconds += int(found[7][:6].ljust(6, "0")) / 1_000_000
    if found[9]:
        offset = (int(found[10]) * 60 + int(found[11])) * 60
        seconds -= offset if found[9] == "+" else -offset
    return seconds


def _leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in(year: int, month: int) -> int:
    return 29 if month == 2 and _leap(year) else (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]


def _days_from_epoch(year: int, month: int, day: int) -> int:
    """Days from 1970-01-01 to the date (proleptic Gregorian; Howard Hinnant's days_from_civil)."""
    year -= month <= 2
    era = year // 400
    year_of_era = year - era * 400
    day_of_year = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    day_of_era = year_of_era * 365 + year_of_era // 4 - year_of_era // 100 + day_of_year
    return era * 146097 + day_of_era - 719468


class ContainerCredentials:
    """The role's credentials from the container endpoint the environment names: thread-safe, refreshed early.

    ``ConfigurationError`` at once when the environment names no endpoint or one botocore would refuse.
    ``now`` (wall clock: ``Expiration`` is a date), ``clock`` (monotonic: timeouts), ``sleep``, ``timeout`` and
    ``attempts`` are injectable for tests; ``ssl_context`` makes the TLS context for an https endpoint.
    """

    def __init__(
        self,
        environ: Mapping[str, str],
        *,
        now: Callable[[], float] = time.time,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        timeout: float = TIMEOUT,
        attempts: int = ATTEMPTS,
        ssl_context: Callable[[], Any] | None = None,
    ) -> None:
        uri = container_uri(environ)
        if uri is None:
            raise ConfigurationError(f"{_WHAT}: neither {RELATIVE_URI} nor {FULL_URI} is set")
        problem = uri_problem(uri)
        if problem is not None:
            raise ConfigurationError(problem)
        self.uri = uri
        self._address = _split(uri)
        self._environ = environ
        self._now, self._clock, self._sleep = now, clock, sleep
        self._timeout, self._attempts = timeout, max(1, attempts)
        self._ssl_context = ssl_context
        self._lock = threading.Lock()
        self._held: _Held | None = None
        self._failed: tuple[int, Exception] | None = None  # the last fetch that failed, by its number
        self._fetches = 0  # fetches ended, success or failure
        self.fetch_count = 0  # HTTP requests made (tests, stats)

    def __repr__(self) -> str:
        return f"ContainerCredentials({self._address.scheme}://{self._address.host}, <masked>)"

    # -- credentials, refreshed before they expire ---------------------------------------------------

    def get(self, deadline: float | None = None) -> Credentials:
        """Credentials with more than 10 minutes left (more than 15 when a refresh succeeded); ``deadline``
        (monotonic) bounds the wait and the fetch. ``NetworkError`` or ``ConfigurationError`` when none can be had."""
        held = self._held
        if held is not None and self._left(held) >= ADVISORY_REFRESH:
            return held.credentials
        if self._lock.acquire(blocking=False):
            try:
                return self._refresh(deadline, self._fetches)
            finally:
                self._lock.release()
        if held is not None and self._left(held) >= MANDATORY_REFRESH:
            return held.credentials  # another thread is refreshing; these are good for a while yet
        seen = self._fetches
        wait = -1.0 if deadline is None else max(0.0, deadline - self._clock())
        if not self._lock.acquire(timeout=wait):
            raise NetworkError(f"{_WHAT}: the deadline passed waiting for another thread's fetch", operation=_WHAT)
        try:
            return self._refresh(deadline, seen)
        finally:
            self._lock.release()

    def peek(self) -> Credentials | None:
        """The credentials held, whatever their age, without fetching (None before the first fetch)."""
        held = self._held
        return None if held is None else held.credentials

    def _left(self, held: _Held) -> float:
        return held.expires - self._now()

    def _refresh(self, deadline: float | None, seen: int) -> Credentials:
        """With the lock held: the credentials another thread just fetched, or new ones."""
        held = self._held
        if held is not None and self._left(held) >= ADVISORY_REFRESH:
            return held.credentials
        mandatory = held is None or self._left(held) < MANDATORY_REFRESH
        failed = self._failed
        if mandatory and failed is not None and failed[0] > seen:
            raise _again(failed[1])  # it failed while this thread waited: the same answer, not another wait
        try:
            fresh = self._fetch(deadline)
        except (NetworkError, ConfigurationError) as exc:
            self._fetches += 1
            self._failed = (self._fetches, exc)
            if mandatory:
                raise
            assert held is not None
            _log.warning(
                "%s: refresh failed, the current ones stay in use (%.0f s left): %s", _WHAT, self._left(held), exc
            )
            return held.credentials
        self._fetches += 1
        self._failed = None
        if self._left(fresh) <= 0:
            raise NetworkError(f"{_WHAT}: the endpoint served credentials that have already expired", operation=_WHAT)
        self._held = fresh
        _log.debug("%s: fetched, %.0f s to their expiry", _WHAT, self._left(fresh))
        return fresh.credentials

    # -- one fetch -----------------------------------------------------------------------------------

    def _headers(self) -> dict[str, str]:
        token = None
        path = self._environ.get(TOKEN_FILE)
        if path:
            try:
                with open(path, encoding="utf-8") as file:
                    token = file.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigurationError(
                    f"{_WHAT}: {TOKEN_FILE} {path!r} cannot be read ({type(exc).__name__})"
                ) from None
            where = TOKEN_FILE
        else:
            token = self._environ.get(TOKEN)
            where = TOKEN
        port = f":{self._address.port}" if self._address.port else ""
        headers = {"Host": self._address.host + port, "Accept": "application/json", "User-Agent": "confstage-lite"}
        if token is not None:
            if "\r" in token or "\n" in token:
                raise ConfigurationError(f"{_WHAT}: the token in {where} holds a CR or LF, not a legal header value")
            headers["Authorization"] = token
        return headers

    def _fetch(self, deadline: float | None) -> _Held:
        """Up to ``attempts`` GETs of the endpoint, each within ``timeout`` (and ``deadline``)."""
        headers = self._headers()
        failure: NetworkError | None = None
        for attempt in range(1, self._attempts + 1):
            if attempt > 1:
                if deadline is not None and self._clock() + PAUSE >= deadline:
                    break
                self._sleep(PAUSE)
            try:
                return self._attempt(headers, deadline)
            except NetworkError as exc:
                failure = exc
                _log.debug("%s: attempt %d failed: %s", _WHAT, attempt, exc)
                if deadline is not None and self._clock() >= deadline:
                    break
        if failure is None:
            failure = NetworkError(f"{_WHAT}: the deadline passed before the first attempt", operation=_WHAT)
        raise failure

    def _attempt(self, headers: dict[str, str], deadline: float | None) -> _Held:
        from . import _http

        address = self._address
        limits = _http.Limits(self._clock)
        limits.read_timeout = self._timeout
        limits.deadline = (
            self._clock() + self._timeout if deadline is None else min(deadline, self._clock() + self._timeout)
        )
        context = self._ssl_context() if address.scheme == "https" and self._ssl_context else None
        if address.scheme == "https" and context is None:
            import ssl

            context = ssl.create_default_context()
        conn = _http.Connection(address.scheme, address.hostname, address.port, limits, context)
        self.fetch_count += 1
        where = f"{address.scheme}://{address.host}" + (f":{address.port}" if address.port else "")
        try:
            response = conn.request("GET", address.target, {**headers, "Connection": "close"}, b"", self._timeout)
            body = b""
            while not response.done and len(body) <= _MAX_ANSWER:
                body += response.read(_MAX_ANSWER + 1 - len(body))
        except (OSError, _http.ProtocolError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else type(exc).__name__
            raise NetworkError(
                f"{_WHAT}: {where} failed ({reason}, {self._timeout:g} s per attempt)", operation=_WHAT
            ) from None
        finally:
            conn.close()
        if len(body) > _MAX_ANSWER:
            raise NetworkError(f"{_WHAT}: {where} answered with more than {_MAX_ANSWER} bytes", operation=_WHAT)
        if response.status != 200:
            raise NetworkError(f"{_WHAT}: {where} answered HTTP {response.status}", operation=_WHAT)
        return _parse(body, where)


def _parse(body: bytes, where: str) -> _Held:
    """The answer's credentials and expiry; ``NetworkError`` naming what is wrong, never a field's value."""
    try:
        answer = json.loads(body)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise NetworkError(f"{_WHAT}: {where} answered with something other than a JSON object", operation=_WHAT)
    fields = ("AccessKeyId", "SecretAccessKey", "Token", "Expiration")
    missing = [name for name in fields if not isinstance(answer.get(name), str) or not answer[name]]
    if missing:
        raise NetworkError(f"{_WHAT}: {where} answered without {', '.join(missing)}", operation=_WHAT)
    try:
        expires = _expiry(answer["Expiration"])
    except ValueError:
        raise NetworkError(
            f"{_WHAT}: {where} answered with an Expiration that is not an ISO 8601 date", operation=_WHAT
        ) from None
    return _Held(Credentials(answer["AccessKeyId"], answer["SecretAccessKey"], answer["Token"]), expires)


def _again(exc: Exception) -> Exception:
    """A fresh exception like ``exc`` for another thread (one object raised in two threads mixes tracebacks)."""
    if isinstance(exc, NetworkError):
        return NetworkError(str(exc), operation=exc.operation)
    return ConfigurationError(str(exc))
