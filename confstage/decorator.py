"""``@confstage.handler``: bind the stage of each invocation from ``context.invoked_function_arn``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, overload

from .stage import binding

__all__ = ["handler"]

F = TypeVar("F", bound=Callable[..., Any])

_CO_COROUTINE = 0x80  # inspect.CO_COROUTINE, without importing inspect at start-up


@overload
def handler(func: F, /) -> F: ...


@overload
def handler(*, config: Any = None) -> Callable[[F], F]: ...


def handler(func: F | None = None, /, *, config: Any = None) -> F | Callable[[F], F]:
    """Decorate a Lambda handler ``(event, context)``; usable bare or with arguments.

    ``config``: the ``Config`` whose alias map applies (default: the module's default client).
    Works for ``async def`` handlers too; the binding is a ContextVar, so threads and tasks
    never see each other's stage.
    """

    def decorate(fn: F) -> F:
        def stage_of(context: Any) -> str | None:
            from . import _default

            client = config if config is not None else _default()
            if getattr(context, "invoked_function_arn", None) is None:
                return None  # a local call without a Lambda context: CONFSTAGE_STAGE applies
            stage: str | None = client.stage_for(context)
            return stage

        if getattr(getattr(fn, "__code__", None), "co_flags", 0) & _CO_COROUTINE:

            @functools.wraps(fn)
            async def async_wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
                with binding(stage_of(context)):
                    return await fn(event, context, *args, **kwargs)

            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
            with binding(stage_of(context)):
                return fn(event, context, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    if func is not None:
        return decorate(func)
    return decorate
