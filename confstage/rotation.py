"""``@refresh_on(AuthError)``: survive a secret rotation without a redeploy.

When the wrapped call raises one of the given exceptions (the database refused the password that was
just rotated), the keys the call read are fetched again and the call is retried once with the new
values. The refresh is shared and rate-limited: every call that failed for the same reason (a storm
after a rotation) waits on one fetch, and a refresh_on refresh within the last ``MIN_INTERVAL``
seconds is reused instead of fetching again (ordinary fetches do not count). A refresh that fails
raises the original error, with the refresh's failure chained as its cause.

Which keys the call read is recorded while it runs: its invocation's snapshot is swapped for a
recording copy for the duration of the call (outside a handler, the call runs as an invocation of
the stage in force). Only wrapped calls pay for the recording.
"""

from __future__ import annotations

import functools
import weakref
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

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


class _Recording(dict):  # type: ignore[type-arg]
    """An invocation's snapshot that notes every key read through it (``get`` reads with ``[]``)."""

    __slots__ = ("read",)

    def __init__(self, values: dict[Any, Any]) -> None:
        super().__init__(values)
        self.read: set[str] = set()

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            self.read.add(key)
        return dict.__getitem__(self, key)

    def note(self, keys: Iterable[str]) -> None:
        """Record keys read without ``[]`` (the fields of a settings object kept in the snapshot)."""
        self.read.update(keys)


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

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with _Call(config, fixed) as call:
                try:
                    return fn(*args, **kwargs)
                except exceptions as exc:
                    call.refresh(exc)
                return fn(*args, **kwargs)  # once more, reading the refreshed values

        return wrapper  # type: ignore[return-value]

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
            # The recording swaps the snapshot: on an invocation of this call's own, never a shared one.
            invocation = _context.Invocation(
                client, stage, invocation.started, invocation.values, dict(invocation.pins)
            )
            self.token = _context.enter(invocation)
        self.invocation = invocation
        self.saved = invocation.values
        self.recording = _Recording(invocation.values)

    def __enter__(self) -> _Call:
        self.invocation.values = self.recording
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._restore()
        if self.token is not None:
            _context.leave(self.invocation, self.token)
            self.token = None

    def _restore(self) -> None:
        """Put the snapshot back, with what the call added (unless a refresh replaced it meanwhile)."""
        invocation = self.invocation
        if invocation.values is self.recording:
            if self.saved is _context.EMPTY:
                self.saved = dict(self.recording)  # nothing was shared: the call's reads become the snapshot
            else:
                for key, value in self.recording.items():
                    self.saved.setdefault(key, value)
            invocation.values = self.saved
        outer = self.saved.note if isinstance(self.saved, _Recording) else None
        if outer is not None:
            outer(self.recording.read)  # a refresh_on call inside another: the outer one read these too

    def refresh(self, error: BaseException) -> None:
        """Fetch the keys again (shared with other failures, rate-limited); on failure re-raise ``error``."""
        keys = self.keys if self.keys is not None else sorted(self.recording.read)
        self._restore()
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
        self.saved = self.invocation.values  # the refreshed snapshot; the retry is not recorded
