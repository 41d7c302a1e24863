"""``@confstage.handler``: bind the stage of each invocation from ``context.invoked_function_arn``.

With ``warmup=True`` it also answers warm-up pings itself: the stage's sources are loaded (so
the next real invocation is warm) and the handler is not called.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import Any, TypeVar, overload

from .stage import binding

__all__ = ["WARMUP_EVENTS", "handler", "is_warmup"]

F = TypeVar("F", bound=Callable[..., Any])

_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect at start-up

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
    config: Any = None,
    warmup: bool | Callable[[Any], bool] = False,
    warmup_keys: Iterable[str] | None = None,
) -> Callable[[F], F]: ...


def handler(
    func: F | None = None,
    /,
    *,
    config: Any = None,
    warmup: bool | Callable[[Any], bool] = False,
    warmup_keys: Iterable[str] | None = None,
) -> F | Callable[[F], F]:
    """Decorate a Lambda handler ``(event, context)``; usable bare or with arguments.

    ``config``: the ``Config`` whose alias map applies (default: the module's default client).
    ``warmup``: answer warm-up pings (``is_warmup``, or your own predicate) by prefetching the
    invocation's stage, plus ``warmup_keys`` if given, and returning
    ``{"confstage": "warm", "stage": STAGE}`` without calling the handler.
    Works for ``async def`` handlers too; the binding is a ContextVar, so threads and tasks
    never see each other's stage.
    """
    from . import snapstart

    snapstart.install()  # applied at import time, i.e. before a SnapStart snapshot
    if config is not None:
        snapstart.watch(config)
    is_ping: Callable[[Any], bool] | None = (warmup if callable(warmup) else is_warmup) if warmup else None
    keys = tuple(warmup_keys) if warmup_keys is not None else None

    def client() -> Any:
        from . import _default

        return config if config is not None else _default()

    def stage_of(context: Any) -> str | None:
        if getattr(context, "invoked_function_arn", None) is None:
            return None  # a local call without a Lambda context: CONFSTAGE_STAGE applies
        stage: str | None = client().stage_for(context)
        return stage

    emitter: Any = None

    def emit(stage: str | None) -> None:
        # CONFSTAGE_METRICS=emf: one CloudWatch EMF line per invocation with that invocation's counters.
        nonlocal emitter
        from . import emf

        if not emf.enabled():
            return
        if emitter is None:
            emitter = emf.Emitter(client().stats)
        emitter.emit(stage)

    def warm(context: Any) -> dict[str, Any]:
        cfg = client()
        with binding(stage_of(context)):
            stage = cfg.current_stage()
            cfg.prefetch(keys, stage=stage)
        return {"confstage": "warm", "stage": stage}

    def decorate(fn: F) -> F:
        if getattr(getattr(fn, "__code__", None), "co_flags", 0) & _CO_COROUTINE:

            @functools.wraps(fn)
            async def async_wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
                if is_ping is not None and is_ping(event):
                    return warm(context)
                stage = stage_of(context)
                try:
                    with binding(stage):
                        return await fn(event, context, *args, **kwargs)
                finally:
                    emit(stage)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            if is_ping is not None and is_ping(event):
                return warm(context)
            stage = stage_of(context)
            try:
                with binding(stage):
                    return fn(event, context, *args, **kwargs)
            finally:
                emit(stage)

        return wrapper  # type: ignore[return-value]

    if func is not None:
        return decorate(func)
    return decorate
