"""Helpers for testing code that uses confstage, and its pytest plugin.

* ``MemorySource``: values held in a dict, for ``Config(sources=[MemorySource(...)])``;
* ``MockTransport(handler)``: AWS answered by a function, for ``Config(..., transport=...)`` or a source;
* ``lambda_context(alias="PRD", ...)``: a fake Lambda context with a realistic invoked ARN;
* ``override(values, stage=...)``: a context manager that makes ``confstage.get`` return those values;
* ``override_settings(instance, ...)``: makes ``confstage.settings(type(instance))`` return ``instance``;
* ``AppConfigServer``: an AppConfigData emulator on 127.0.0.1 (``confstage._appconfig_server``, loaded on use);
* pytest fixtures (this module is registered under the ``pytest11`` entry point, so they are
  available in every test of a project that installs confstage): ``confstage_values``,
  ``confstage_settings`` and ``lambda_context``.

::

    def test_handler(confstage_values, lambda_context):
        confstage_values({"db_url": "sqlite://"}, stage="PRD")
        assert lambda_handler({}, lambda_context(alias="PRD"))["db"] == "sqlite://"

pytest imports this module at start-up in every run, so it stays cheap: the client is imported
on first use, and ``import confstage`` never imports this module.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from .sources.base import Fetched, SourceURL

if TYPE_CHECKING:
    from ._appconfig_server import AppConfigServer
    from .client import Config
    from .transport import AwsRequest

__all__ = [
    "AppConfigServer",
    "ConfstageValues",
    "LambdaContext",
    "MemorySource",
    "MockTransport",
    "lambda_context",
    "override",
    "override_settings",
]


class MemorySource:
    """Values held in a dict ``{stage: {key: value}}``; a whole stage per fetch, like DynamoDB stage-key."""

    whole_stage = True
    persist = False
    inline = True  # no I/O: fetched in the caller's thread

    def __init__(
        self,
        values: Mapping[str, Mapping[str, str]] | None = None,
        *,
        secret: Collection[str] = (),
        url: str = "memory://",
    ) -> None:
        self.url = url
        self.ttl: float | None = None
        self.values: dict[str, dict[str, str]] = {s: dict(v) for s, v in (values or {}).items()}
        self.secret = frozenset(secret)
        self.fetches = 0

    @classmethod
    def from_url(cls, url: SourceURL, transport: Any = None) -> MemorySource:
        """An empty ``memory://`` source (it makes no AWS call: ``transport`` is not used)."""
        return cls(url=url.url)

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        """Every value of ``stage`` (``keys`` are not looked at: a whole stage per fetch); counted in ``fetches``."""
        self.fetches += 1
        values = self.values.get(stage, {})
        return Fetched(values, secret=self.secret & values.keys())

    def __repr__(self) -> str:
        return f"MemorySource({self.url!r}, stages={sorted(self.values)!r})"


class MockTransport:
    """A transport whose every AWS call is answered by ``handler(request)`` (httpx's ``MockTransport``, for AWS).

    The handler gets a ``confstage.transport.AwsRequest`` and returns botocore's output shape, or raises
    ``AwsError`` (the service said no) or ``NetworkError`` (no usable answer). ``requests`` lists every request.
    """

    name = "mock"

    def __init__(self, handler: Callable[[AwsRequest], dict[str, Any]]) -> None:
        self.handler = handler
        self.requests: list[AwsRequest] = []

    def __repr__(self) -> str:
        return f"MockTransport({len(self.requests)} requests)"

    def call(self, request: AwsRequest) -> dict[str, Any]:
        """Note ``request`` in ``requests``, then return what ``handler(request)`` returns (or raise what it raises)."""
        self.requests.append(request)
        return self.handler(request)


# -- a fake Lambda context ---------------------------------------------------------------------


class LambdaContext:
    """The attributes and method of the Lambda Python runtime's context object, with fixed values."""

    def __init__(
        self,
        *,
        function_name: str,
        function_version: str,
        invoked_function_arn: str,
        memory_limit_in_mb: int,
        aws_request_id: str,
        timeout: float,
        clock: Any = time.monotonic,
    ) -> None:
        self.function_name = function_name
        self.function_version = function_version
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = memory_limit_in_mb
        self.aws_request_id = aws_request_id
        self.log_group_name = f"/aws/lambda/{function_name}"
        day = datetime.now(timezone.utc).strftime("%Y/%m/%d")
        self.log_stream_name = f"{day}/[{function_version}]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        self._clock = clock
        self._deadline = clock() + timeout

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the (fake) timeout, counted from when the context was made."""
        return max(0, int((self._deadline - self._clock()) * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext({self.invoked_function_arn!r})"


def lambda_context(
    alias: str | None = "PRD",
    *,
    function: str = "fn",
    region: str = "us-east-1",
    account: str = "123456789012",
    version: str | None = None,
    partition: str = "aws",
    memory_limit_in_mb: int = 128,
    timeout: float = 3.0,
    aws_request_id: str | None = None,
) -> LambdaContext:
    """A fake context invoked through ``alias``, e.g. ``arn:aws:lambda:us-east-1:123456789012:function:fn:PRD``.

    ``alias=None`` invokes ``version`` (a number) or, without one, the unqualified ARN, as an
    invocation of ``$LATEST`` does; pass ``alias="$LATEST"`` for that qualifier explicitly.
    ``function_version`` is ``version``, else ``"1"`` behind an alias, else ``"$LATEST"``.
    """
    arn = f"arn:{partition}:lambda:{region}:{account}:function:{function}"
    qualifier = alias if alias is not None else version
    if qualifier:
        arn = f"{arn}:{qualifier}"
    if version is None:
        version = "1" if alias not in (None, "$LATEST") else "$LATEST"
    return LambdaContext(
        function_name=function,
        function_version=version,
        invoked_function_arn=arn,
        memory_limit_in_mb=memory_limit_in_mb,
        aws_request_id=aws_request_id or str(uuid.uuid4()),
        timeout=timeout,
    )


# -- replacing the default client for a test --------------------------------------------------


class ConfstageValues:
    """Makes given values what ``confstage.get`` returns, until ``close()`` restores the previous client.

    Each call adds values for one stage (calls for several stages accumulate) and makes that stage
    the default; the fixture ``confstage_values`` is one of these, closed after the test.
    """

    def __init__(self) -> None:
        from . import _state

        self._saved = _state.get_client()
        self.source = MemorySource(url="memory://confstage-values")

    def __call__(
        self,
        values: Mapping[str, str] | None = None,
        /,
        *,
        stage: str = "PRD",
        secret: Collection[str] = (),
        aliases: str | Mapping[str, str] | None = None,
        **more: str,
    ) -> Config:
        """Serve ``values`` (and keyword ``more``) for ``stage``; returns the client now in use."""
        import confstage

        self.source.values.setdefault(stage, {}).update(values or {}, **more)
        self.source.secret |= frozenset(secret)
        # A fresh client: nothing cached from earlier calls, no /tmp cache.
        return confstage.configure(sources=[self.source], stage=stage, aliases=aliases, cache_dir="")

    def close(self) -> None:
        """Put back the default client that was in place before."""
        from . import _state

        _state.use(self._saved)


@contextmanager
def override(
    values: Mapping[str, str] | None = None,
    /,
    *,
    stage: str = "PRD",
    secret: Collection[str] = (),
    aliases: str | Mapping[str, str] | None = None,
    **more: str,
) -> Iterator[ConfstageValues]:
    """``with override({"db_url": "sqlite://"}, stage="PRD"):`` — the fixture, for unittest and scripts.

    The arguments as ``ConfstageValues``: ``secret`` names the secret keys, ``aliases`` maps aliases to stages,
    and keyword ``more`` are values too.
    """
    kit = ConfstageValues()
    try:
        kit(values, stage=stage, secret=secret, aliases=aliases, **more)
        yield kit
    finally:
        kit.close()


@contextmanager
def override_settings(*instances: Any) -> Iterator[None]:
    """``with override_settings(AppSettings(port=1)):`` — ``confstage.settings(AppSettings)`` returns that object."""
    from . import _state

    saved = dict(_state.SETTINGS_OVERRIDES)
    try:
        for instance in instances:
            _state.SETTINGS_OVERRIDES[type(instance)] = instance
        yield
    finally:
        _state.SETTINGS_OVERRIDES.clear()
        _state.SETTINGS_OVERRIDES.update(saved)


# -- the pytest plugin ------------------------------------------------------------------------

try:
    import pytest
except ImportError:  # pragma: no cover - the helpers above work without pytest
    pass
else:

    @pytest.fixture(name="confstage_values")
    def fixture_confstage_values() -> Iterator[ConfstageValues]:
        """``confstage_values({"k": "v"}, stage="PRD")``: what ``confstage.get`` returns in this test."""
        kit = ConfstageValues()
        try:
            yield kit
        finally:
            kit.close()

    @pytest.fixture(name="confstage_settings")
    def fixture_confstage_settings() -> Iterator[Callable[..., None]]:
        """``confstage_settings(AppSettings(port=1))``: what ``confstage.settings(AppSettings)`` returns here."""
        from . import _state

        saved = dict(_state.SETTINGS_OVERRIDES)

        def put(*instances: Any) -> None:
            for instance in instances:
                _state.SETTINGS_OVERRIDES[type(instance)] = instance

        try:
            yield put
        finally:
            _state.SETTINGS_OVERRIDES.clear()
            _state.SETTINGS_OVERRIDES.update(saved)

    @pytest.fixture(name="lambda_context")
    def fixture_lambda_context() -> Callable[..., LambdaContext]:
        """``lambda_context(alias="PRD", function="fn", ...)``: a fake Lambda context."""
        return lambda_context


def __getattr__(name: str) -> Any:
    """``AppConfigServer``, imported on first use (pytest loads this module in every run)."""
    if name == "AppConfigServer":
        from ._appconfig_server import AppConfigServer

        return AppConfigServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
