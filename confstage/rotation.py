"""``@refresh_on(AuthError)``: survive a secret rotation without a redeploy.

When the wrapped call raises one of the given exceptions (the database refused the password that was
just rotated), the keys the call read are fetched again and the call is retried once with the new
values. The refresh is shared and rate-limited: every call that failed for the same reason (a storm
after a rotation) waits on one fetch, and a refresh_on refresh within the last ``MIN_INTERVAL``
seconds is reused instead of fetching again (ordinary fetches do not count). A refresh that fails
raises the original error, with the refresh's failure chained as its cause.

Which keys the call read is recorded while it runs: its invocation's ``reads`` is a set for the
duration of the call, which every read through the invocation fills (outside a handler, or inside a
shared one, the call runs as an invocation of its own of the stage in force). Only wrapped calls pay
for the recording: a recording invocation takes the reads' slow path, which notes the keys.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import _context
from ._context import CURRENT
from .client import default as _default_client

if TYPE_CHECKING:
    from .client import Config

__all__ = ["MIN_INTERVAL", "refresh_on"]

F = TypeVar("F", bound=Callable[..., Any])
MIN_INTERVAL = 5.0  # seconds: a refresh_on refresh this recent is new enough for the next failure
_CO_COROUTINE = 0x80
# When each client last refreshed each stage for refresh_on (the rate limit); weak: clients come and go.
_last: weakref.WeakKeyDictionary[Config, dict[str | None, float]] = weakref.WeakKeyDictionary()


def refresh_on(
    *exceptions: type[BaseException], keys: Iterable[str] | None = None, config: Config | None = None
) -> Callable[[F], F]:
    """Decorator: on one of ``exceptions``, refresh ``keys`` (default: every key the call read) and retry once."""
    if not exceptions or not all(isinstance(e, type) and issubclass(e, BaseException) for e in exceptions):
        raise TypeError("refresh_on() takes one or more exception classes, e.g. refresh_on(psycopg.OperationalError)")
    fixed = tuple(keys) if keys is not None else None
    if isinstance(keys, str):
        raise TypeError("refresh_on(keys=...) takes an iterable of keys, not one string")

    def decorate(fn: F) -> F:
        if getattr(getattr(fn, "__code__", None), "co_flags", 0) & _CO_COROUTINE:

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                with _Call(config, fixed) as call:
                    try:
                        return await fn(*args, **kwargs)
                    except exceptions as exc:
                        call.refresh(exc)
                    return await fn(*args, **kwargs)  # once more, reading the refreshed values

            return cast(F, async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _Call(config, fixed) as call:
                try:
                    return fn(*args, **kwargs)
                except exceptions as exc:
                    call.refresh(exc)
                return fn(*args, **kwargs)  # once more, reading the refreshed values

        return cast(F, wrapper)

    return decorate


class _Call:
    """One wrapped call: its invocation (opened if there is none), the recording, and the refresh."""

    def __init__(self, config: Config | None, keys: tuple[str, ...] | None) -> None:
        invocation = CURRENT.get()
        if invocation is None:
            invocation = _context.sole_invocation()
        client = config or (invocation.client if invocation is not None else None) or _default_client()
        self.client = client
        self.keys = keys
        self.started = client.clock()  # the client's clock, so that a test's fake clock applies
        self.token: Any = None
        if invocation is None or invocation.client is not client:
            invocation = client.begin(None)
        stage: str = invocation.stage or client.current_stage()
        if invocation.shared or invocation is not CURRENT.get() or invocation.stage is None:
            # The recording is the invocation's: on one of this call's own, never a shared one.
            invocation = _context.Invocation(
                client, stage, invocation.started, invocation.values, dict(invocation.pins), invocation.built
            )
            self.token = _context.enter(invocation)
        self.invocation = invocation
        self.outer = invocation.reads  # an enclosing refresh_on call's recording, or None
        self.read: set[str] = set()
        self.recording = False

    def __enter__(self) -> _Call:
        self.invocation.reads = self.read
        self.recording = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()
        if self.token is not None:
            _context.leave(self.invocation, self.token)
            self.token = None

    def _stop(self) -> None:
        """Stop recording: the enclosing call's recording (if any) is back, with what this call read added."""
        if self.recording:
            self.recording = False
            self.invocation.reads = self.outer
            if self.outer is not None:
                self.outer.update(self.read)  # a refresh_on call inside another: the outer one read these too

    def refresh(self, error: BaseException) -> None:
        """Fetch the keys again (shared with other failures, rate-limited); on failure re-raise ``error``."""
        keys = self.keys if self.keys is not None else sorted(self.read)
        self._stop()  # the retry is not recorded
        if not keys:
            raise error
        client = self.client
        now = client.clock()
        stage = self.invocation.stage
        done = _last.setdefault(client, {})
        newer_than = self.started
        last = done.get(stage)
        if last is not None and now - last < MIN_INTERVAL:
            newer_than = min(newer_than, last - 1e-6)  # a recent refresh (or one in flight) is shared, not repeated
        else:
            done[stage] = now
        try:
            client.refresh(keys, stage=self.invocation.stage, newer_than=newer_than)
        except Exception as refresh_error:
            raise error from refresh_error
