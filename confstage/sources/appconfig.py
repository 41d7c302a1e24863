"""``appconfig://APPLICATION/PROFILE[?environment=TEMPLATE][&via=auto|api|agent]``: an AWS AppConfig profile.

The stage names the AppConfig environment through ``TEMPLATE`` (default ``{stage}``; as in ``env://``,
``{stage}`` is the stage in lower case and ``{STAGE}`` the stage as it is: ``PRD`` reads the environment
``prd`` by default, ``?environment={STAGE}`` reads ``PRD``). The deployed configuration is a JSON object, and
each top-level key is a key; a value that is not a string is served as its JSON text (``5``, ``true``,
``{"a": 1}``), so ``get_int``, ``get_bool``, ``get_json`` and ``settings`` read it. A key that breaks the key
rule is left out. A document that is not JSON, or not a JSON object, is a ``SourceError`` naming the
application, environment, profile and version label, never the content; it fails every fetch (each with a new
session) until a good one is deployed, and the document held before is never passed off as current.

Two ways in (``?via=``):

* ``api``: AppConfigData, over the runtime's transport (botocore or lite; rest-json, signed as
  ``appconfig``, endpoint ``appconfigdata.{region}…`` or ``AWS_ENDPOINT_URL_APPCONFIGDATA``/
  ``AWS_ENDPOINT_URL``). One session per stage per process (StartConfigurationSession), the token
  chained through every GetLatestConfiguration, and never a poll before the interval the last answer
  gave (``NextPollIntervalInSeconds``): a fetch before then, whatever the TTL or ``force=True``, serves the
  held document with no request. An empty answer means "unchanged": the held document and its version
  label stay. A refused token (``BadRequestException``: expired, already used, an early poll) starts
  one new session; a second refusal is the fetch's error. ``?poll_interval=SECONDS`` (15 to 86400) asks the
  service for a longer minimum interval.
* ``agent``: the AppConfig Lambda extension's local endpoint, ``http://localhost:2772/applications/A/
  environments/E/configurations/P`` (``AWS_APPCONFIG_EXTENSION_HTTP_PORT`` changes the port), unsigned;
  the extension keeps its own session and cache. Its 404 says the configuration does not exist (or is
  not deployed there); any other status, or no answer, says the extension failed. Both are
  ``SourceError``s and say which.
* ``auto`` (default): the extension when it is present, else the API. Present means
  ``AWS_APPCONFIG_EXTENSION_HTTP_PORT`` is set, or ``/opt/extensions`` (where Lambda layers put
  extensions) holds an entry whose name contains ``appconfig`` (case-insensitive). The choice and its
  reason are logged at debug when the source is built.

Unknown application, environment or profile: a ``SourceError`` naming the three (a stage with no
AppConfig environment is a mistake of the deployment, not an absent key). Caching, single flight,
stale-on-error, jitter, /tmp files and EMF are the cache layer's, as for every whole-stage source;
the snapshot holds the values (never a token). Values are not secrets: keep secrets in Secrets Manager.
Nothing writes here: AppConfig deployments belong to the deployment pipeline (``stores.appconfig``
refuses writes).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import TYPE_CHECKING, Any

from confstage import _log as log
from confstage._context import DEADLINE
from confstage.aws import Caller, ErrorAnswer
from confstage.errors import ConfigurationError, SourceError
from confstage.names import key_refusal

from .base import Fetched, SourceURL, load_json_object

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = [
    "AGENT",
    "AGENT_PORT",
    "LATEST",
    "START",
    "VIAS",
    "AppConfigSource",
    "agent_port",
    "extension_present",
]

VIAS = ("auto", "api", "agent")
START = "appconfigdata:StartConfigurationSession"
LATEST = "appconfigdata:GetLatestConfiguration"
AGENT = "appconfig:agent"  # how errors name a read through the extension (no AWS operation)
AGENT_PORT = 2772
EXTENSIONS_DIR = "/opt/extensions"
DEFAULT_TEMPLATE = "{stage}"
_MIN_POLL, _MAX_POLL = 15, 86400  # RequiredMinimumPollIntervalInSeconds' bounds
_FALLBACK_POLL = 60.0  # seconds, when an answer carries no interval (the service's default)
_MAX_IDENTIFIER = 128


def extension_present(environ: Mapping[str, str] | None = None, extensions_dir: str = EXTENSIONS_DIR) -> str | None:
    """Why the AppConfig extension is taken to be present (a phrase), or None when it is not."""
    env = os.environ if environ is None else environ
    if env.get("AWS_APPCONFIG_EXTENSION_HTTP_PORT"):
        return "AWS_APPCONFIG_EXTENSION_HTTP_PORT is set"
    try:
        names = os.listdir(extensions_dir)
    except OSError:
        return None
    found = sorted(name for name in names if "appconfig" in name.lower())
    return f"{extensions_dir}/{found[0]} exists" if found else None


def agent_port(environ: Mapping[str, str] | None = None) -> int:
    """The extension's port: ``AWS_APPCONFIG_EXTENSION_HTTP_PORT``, else 2772."""
    env = os.environ if environ is None else environ
    raw = env.get("AWS_APPCONFIG_EXTENSION_HTTP_PORT", "").strip()
    if not raw:
        return AGENT_PORT
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise ConfigurationError(f"AWS_APPCONFIG_EXTENSION_HTTP_PORT must be a port number, got {raw!r}")
    return int(raw)


class _Session:
    """One AppConfigData session of a stage: the next token, when a poll is allowed, what was last received."""

    __slots__ = ("document", "lock", "poll_at", "token", "version")

    def __init__(self) -> None:
        self.token: str | None = None
        self.poll_at = -float("inf")  # monotonic time before which no GetLatestConfiguration is sent
        self.document: dict[str, str] | None = None
        self.version: str | None = None  # the version label of ``document``
        self.lock = threading.Lock()  # tokens are single-use: one poll of a session at a time


class AppConfigSource:
    """A configuration profile of an AppConfig application; the stage names the environment."""

    whole_stage = True
    persist = True  # values are configuration, not secrets: a /tmp file may hold them

    def __init__(
        self,
        application: str,
        profile: str,
        *,
        environment: str = DEFAULT_TEMPLATE,
        via: str = "auto",
        poll_interval: int | None = None,
        transport: Transport | None = None,
        url: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        environ: Mapping[str, str] | None = None,
        extensions_dir: str = EXTENSIONS_DIR,
    ) -> None:
        for what, name in (("application", application), ("profile", profile)):
            if not 1 <= len(name) <= _MAX_IDENTIFIER:
                raise ConfigurationError(f"appconfig {what} must be 1 to {_MAX_IDENTIFIER} characters, got {name!r}")
        if via not in VIAS:
            raise ConfigurationError(f"appconfig via must be one of {', '.join(VIAS)}, got {via!r}")
        if not environment:
            raise ConfigurationError("appconfig environment template must not be empty")
        if poll_interval is not None and not _MIN_POLL <= poll_interval <= _MAX_POLL:
            raise ConfigurationError(
                f"appconfig poll_interval must be {_MIN_POLL} to {_MAX_POLL} seconds, got {poll_interval}"
            )
        self.application = application
        self.profile = profile
        self.environment = environment
        self.poll_interval = poll_interval
        self.url = url or f"appconfig://{application}/{profile}"
        self.ttl: float | None = None
        self.aws = Caller(self.url, transport)
        self._clock = clock
        self._environ = os.environ if environ is None else environ
        self._sessions: dict[str, _Session] = {}
        self._sessions_lock = threading.Lock()
        self.via = via
        if via == "auto":
            reason = extension_present(self._environ, extensions_dir)
            self.via = "agent" if reason else "api"
            log.debug(
                "appconfig: %s reads through %s (%s)",
                self.url,
                "the AppConfig extension" if reason else "AppConfigData",
                reason or f"no AWS_APPCONFIG_EXTENSION_HTTP_PORT and no appconfig entry in {extensions_dir}",
            )
        self.agent_port = agent_port(self._environ) if self.via == "agent" else AGENT_PORT

    @classmethod
    def from_url(cls, url: SourceURL, transport: Transport | None = None) -> AppConfigSource:
        profile = url.path.strip("/")
        if not url.netloc or not profile or "/" in profile:
            raise url.error("expected appconfig://APPLICATION/PROFILE")
        environment = url.take("environment", DEFAULT_TEMPLATE) or ""
        if not environment:
            raise url.error("parameter 'environment' must not be empty")
        via = url.take_choice("via", VIAS)
        poll = url.take_float("poll_interval")
        if poll is not None and (poll != int(poll) or not _MIN_POLL <= poll <= _MAX_POLL):
            raise url.error(
                f"parameter 'poll_interval' must be a whole number of seconds from {_MIN_POLL} to {_MAX_POLL}"
            )
        return cls(
            url.netloc,
            profile,
            environment=environment,
            via=via,
            poll_interval=None if poll is None else int(poll),
            transport=transport,
            url=url.url,
        )

    def __repr__(self) -> str:
        return f"AppConfigSource({self.url!r}, via={self.via!r})"

    def environment_of(self, stage: str) -> str:
        """The AppConfig environment a stage reads: the template with ``{STAGE}`` and ``{stage}`` (lower case)."""
        name = self.environment.replace("{STAGE}", stage).replace("{stage}", stage.lower())
        if not 1 <= len(name) <= _MAX_IDENTIFIER:
            raise ConfigurationError(f"{self.url}: environment {name!r} must be 1 to {_MAX_IDENTIFIER} characters")
        return name

    def where(self, environment: str) -> str:
        """A configuration as errors name it: ``APPLICATION/ENVIRONMENT/PROFILE``."""
        return f"{self.application}/{environment}/{self.profile}"

    def identity(self) -> str:
        """What names this store in the /tmp cache: the URL and where it is read (the extension, or AWS)."""
        if self.via == "agent":
            return f"{self.url} agent=localhost:{self.agent_port}"
        return f"{self.url} {self.aws.identity('appconfigdata')}"

    def version(self, stage: str) -> str | None:
        """The version label of what this process last received for ``stage`` through the API (None: nothing)."""
        session = self._sessions.get(stage)
        return session.version if session is not None else None

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        environment = self.environment_of(stage)
        if self.via == "agent":
            return Fetched(self._from_agent(environment))
        values = self._from_api(stage, environment)
        return Fetched(values, version=self.version(stage))  # the label goes to /tmp with the values, a token never

    # -- AppConfigData -----------------------------------------------------------------------

    def _session(self, stage: str) -> _Session:
        session = self._sessions.get(stage)
        if session is None:
            with self._sessions_lock:
                session = self._sessions.setdefault(stage, _Session())
        return session

    def _from_api(self, stage: str, environment: str) -> dict[str, str]:
        session = self._session(stage)
        with session.lock:
            now = self._clock()
            if session.document is not None and now < session.poll_at:
                log.debug(
                    "appconfig: %s poll interval not over (%.0f s left): the held document",
                    self.where(environment),
                    session.poll_at - now,
                )
                return session.document
            if session.token is None:
                session.token = self._start(environment)
            answer = self.aws.call(
                LATEST,
                {"ConfigurationToken": session.token},
                target=self.where(environment),
                answers=("BadRequestException",),
            )
            if isinstance(answer, ErrorAnswer):  # expired, used, or polled early: one new session
                log.debug("appconfig: %s token refused (%s): a new session", self.where(environment), answer.code)
                session.token = None
                session.token = self._start(environment)
                answer = self.aws.call(LATEST, {"ConfigurationToken": session.token}, target=self.where(environment))
            session.token = str(answer["NextPollConfigurationToken"])
            interval = answer.get("NextPollIntervalInSeconds")
            wait = float(interval) if isinstance(interval, int) and interval > 0 else _FALLBACK_POLL
            # From when the answer came, never from when the request left: the service counts from its receipt,
            # so a poll timed from the earlier instant could arrive early by the request's latency.
            session.poll_at = self._clock() + wait
            body = answer.get("Configuration") or b""
            if not body and session.document is not None:
                return session.document  # unchanged since this session's last answer
            label = answer.get("VersionLabel")
            version = str(label) if label is not None else None
            try:
                kind = answer.get("ContentType")
                parsed = (
                    self._parse(body, environment, version, "appconfig:GetLatestConfiguration", kind) if body else {}
                )
            except SourceError:
                # The session has now "sent" this document: its next answer would be empty, and the document
                # held before would pass for current. Forget both, so that every fetch reports it until fixed.
                session.token, session.document, session.version = None, None, None
                raise
            session.document, session.version = parsed, version
            return parsed

    def _start(self, environment: str) -> str:
        """A new session's initial token; unknown identifiers are named in the error."""
        request: dict[str, Any] = {
            "ApplicationIdentifier": self.application,
            "EnvironmentIdentifier": environment,
            "ConfigurationProfileIdentifier": self.profile,
        }
        if self.poll_interval is not None:
            request["RequiredMinimumPollIntervalInSeconds"] = self.poll_interval
        where = self.where(environment)
        answer = self.aws.call(START, request, target=where, answers=("ResourceNotFoundException",))
        if isinstance(answer, ErrorAnswer):
            operation = "appconfig:StartConfigurationSession"  # as IAM spells it, like the call layer's errors
            raise SourceError(
                f"{operation} on {where} failed: no application {self.application!r}, environment {environment!r} "
                f"or configuration profile {self.profile!r} ({answer.error})",
                source=self.url,
                operation=operation,
            ) from answer.error
        return str(answer["InitialConfigurationToken"])

    # -- the extension -----------------------------------------------------------------------

    def _from_agent(self, environment: str) -> dict[str, str]:
        import http.client

        from confstage.transport.sigv4 import percent_encode
        from confstage.variables import env_float

        where = self.where(environment)
        path = "/applications/{}/environments/{}/configurations/{}".format(
            *(percent_encode(part) for part in (self.application, environment, self.profile))
        )
        timeout = env_float("CONFSTAGE_READ_TIMEOUT", 3.0, self._environ)
        deadline = DEADLINE.get()
        if deadline is not None:
            timeout = max(0.001, min(timeout, deadline - time.monotonic()))
        host = f"localhost:{self.agent_port}"
        connection = http.client.HTTPConnection("localhost", self.agent_port, timeout=timeout)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            status = response.status
            body = response.read()
            version = response.getheader("Configuration-Version")
            kind = response.getheader("Content-Type")
        except (OSError, http.client.HTTPException) as exc:
            raise SourceError(
                f"the AppConfig extension on {host} did not answer for {where} ({type(exc).__name__})",
                source=self.url,
                operation=AGENT,
            ) from exc
        finally:
            connection.close()
        if status == 404:
            raise SourceError(
                f"the AppConfig extension on {host} has no configuration {where} (HTTP 404: no such application, "
                "environment or profile, or nothing deployed there)",
                source=self.url,
                operation=AGENT,
            )
        if status != 200:
            raise SourceError(
                f"the AppConfig extension on {host} failed for {where} with HTTP {status}",
                source=self.url,
                operation=AGENT,
                throttled=status == 429,
            )
        return self._parse(body, environment, version, AGENT, kind) if body else {}

    # -- the document ------------------------------------------------------------------------

    def _parse(
        self, body: bytes, environment: str, version: str | None, operation: str, content_type: str | None = None
    ) -> dict[str, str]:
        """The keys of a configuration document; errors name the configuration and version, never content.

        Raised without cause or context: a ``JSONDecodeError`` keeps the whole text in its ``doc``.
        """
        what = f"configuration {self.where(environment)}" + (f" (version {version})" if version else "")
        sent = f"; it was sent as {content_type[:60]}" if content_type and "json" not in content_type else ""
        document = load_json_object(body, what=what, source=self.url, operation=operation, hint=sent)
        values: dict[str, str] = {}
        for key, value in document.items():
            if key_refusal(key):
                continue
            values[key] = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
        return values
