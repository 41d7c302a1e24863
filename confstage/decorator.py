"""``@confstage.handler``: each invocation gets its stage (from ``context.invoked_function_arn``) and its snapshot.

The wrapper does as little as possible per call, because it runs on every invocation: the stage of each
distinct ARN is worked out once and remembered by the client, the invocation is entered and left with
two ContextVar operations and two set operations, and warm-up and EMF cost nothing when unused.
With ``warmup=True`` it also answers warm-up pings itself: the stage's sources are loaded (so the next
real invocation is warm) and the handler is not called.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, overload

from . import _state
from ._state import CURRENT, RUNNING

if TYPE_CHECKING:
    from .client import Config

__all__ = ["WARMUP_EVENTS", "handler", "is_warmup"]

F = TypeVar("F", bound=Callable[..., Any])

_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect at start-up
_CO_GENERATORS = 0x20 | 0x200  # inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR

# (field, value) pairs that mark a warm-up ping: serverless-plugin-warmup's, and confstage's own.
WARMUP_EVENTS: tuple[tuple[str, str], ...] = (("source", "serverless-plugin-warmup"), ("confstage", "warmup"))


def is_warmup(event: Any) -> bool:
    """Whether ``event`` is a warm-up ping (one of ``WARMUP_EVENTS``: serverless-plugin-warmup's or confstage's)."""
    return isinstance(event, dict) and any(event.get(field) == value for field, value in WARMUP_EVENTS)


@overload
def handler(func: F, /) -> F: ...


@overload
def handler(
    *,
    config: Config | None = None,
    warmup: bool | Callable[[Any], bool] = False,
    warmup_keys: Iterable[str] | None = None,
) -> Callable[[F], F]: ...


def handler(
    func: F | None = None,
    /,
    *,
    config: Config | None = None,
    warmup: bool | Callable[[Any], bool] = False,
    warmup_keys: Iterable[str] | None = None,
) -> F | Callable[[F], F]:
    """Decorate a Lambda handler ``(event, context)``; usable bare or with arguments.

    ``config``: the ``Config`` this handler reads; inside it, ``confstage.get`` and the other module
    functions read that client (default: the module's default client).
    ``warmup``: answer warm-up pings (``is_warmup``, or your own predicate) by prefetching the
    invocation's stage, plus ``warmup_keys`` if given, and returning
    ``{"confstage": "warm", "stage": STAGE}`` without calling the handler.
    Works for ``async def`` handlers too; the invocation is a ContextVar, so threads and tasks
    started with a copy of the context share it, and worker threads started without one see the
    stage of the invocation running (``confstage.current_stage``): one entry per logical invocation,
    the innermost binding (a ``bind()`` or ``refresh_on`` inside, or this handler inside ``refresh_on``).
    A generator or async-generator function is refused with ``TypeError``: its body would run after the
    wrapper returned, outside the invocation.
    """
    from . import snapstart

    snapstart.install()  # applied at import time, i.e. before a SnapStart snapshot
    if config is not None:
        snapstart.watch(config)
    is_ping: Callable[[Any], bool] | None = (warmup if callable(warmup) else is_warmup) if warmup else None
    keys = tuple(warmup_keys) if warmup_keys is not None else None

    def warm(context: Any) -> dict[str, Any]:
        client = config if config is not None else _state.default()
        invocation = client.begin(getattr(context, "invoked_function_arn", None))
        token = _state.enter(invocation)
        try:
            stage = client.current_stage()
            client.prefetch(keys, stage=stage)
        finally:
            _state.leave(invocation, token)
        return {"confstage": "warm", "stage": stage}

    def nested(fn: F, event: Any, context: Any, client: Config, invocation: _state.Invocation) -> Any:
        token = _state.enter(invocation)
        try:
            return fn(event, context)
        finally:
            _state.leave(invocation, token)
            if client.emitter is not None:
                client.emitter.emit(invocation.stage)

    def decorate(fn: F) -> F:
        flags = getattr(getattr(fn, "__code__", None), "co_flags", 0)
        if flags & _CO_GENERATORS:
            # Its body would run after the wrapper returned, unbound: another stage's values in this invocation.
            raise TypeError(
                f"confstage.handler cannot wrap {getattr(fn, '__qualname__', fn)!r}: it is a generator function, "
                "whose body runs after the handler returns; return a value (a list, a dict) instead"
            )
        if flags & _CO_COROUTINE:

            @functools.wraps(fn)
            async def async_wrapper(event: Any, context: Any) -> Any:
                if is_ping is not None and is_ping(event):
                    return warm(context)
                client = config or _state.client or _state.default()
                invocation = client.begin(getattr(context, "invoked_function_arn", None))
                token = _state.enter(invocation)
                try:
                    return await fn(event, context)
                finally:
                    _state.leave(invocation, token)
                    if client.emitter is not None:
                        client.emitter.emit(invocation.stage)

            return async_wrapper  # type: ignore[return-value]

        if is_ping is not None:

            @functools.wraps(fn)
            def warming_wrapper(event: Any, context: Any) -> Any:
                if is_ping(event):
                    return warm(context)
                return wrapper(event, context)

        @functools.wraps(fn)
        def wrapper(event: Any, context: Any) -> Any:
            # _state.enter/leave, inlined: this runs on every invocation (Lambda passes exactly these two).
            client = config or _state.client or _state.default()
            try:
                arn = context.invoked_function_arn
            except AttributeError:
                arn = None  # a local call without a Lambda context: CONFSTAGE_STAGE applies
            invocation = client.begin(arn)
            if CURRENT.get() is not None:  # nested (inside refresh_on, bind or another handler): one entry
                return nested(fn, event, context, client, invocation)
            token = CURRENT.set(invocation)
            if invocation.stage is not None:
                RUNNING[id(token)] = invocation
            try:
                return fn(event, context)
            finally:
                RUNNING.pop(id(token), None)
                CURRENT.reset(token)
                if client.emitter is not None:
                    client.emitter.emit(invocation.stage)

        return warming_wrapper if is_ping is not None else wrapper  # type: ignore[return-value]

    if func is not None:
        return decorate(func)
    return decorate
