"""Lambda SnapStart: values cached before the snapshot are treated as stale after a restore.

A snapshot freezes the memory cache; an environment restored from it hours later would serve
those values as fresh. The runtime's ``snapshot_restore_py.register_after_restore`` (present in
the managed Python runtimes) takes a hook that marks every cached value stale: the next ``get``
refetches, and a value is still served if that refresh fails within ``max_stale``.

``install()`` runs when ``@confstage.handler`` is applied and when the default client is built
(both happen during init, before the snapshot). Outside Lambda it does nothing and imports nothing.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from . import _context

if TYPE_CHECKING:
    from .client import Config

__all__ = ["after_restore", "install", "reset", "watch"]

_lock = threading.Lock()
_installed = False


def install(
    register: Callable[[Callable[[], None]], Any] | None = None, *, environ: Mapping[str, str] | None = None
) -> bool:
    """Register the after-restore hook once; True when registered (now or before).

    ``register`` defaults to the runtime's ``register_after_restore``, looked up only inside
    Lambda (``AWS_LAMBDA_FUNCTION_NAME`` set); tests pass their own.
    """
    global _installed
    if _installed:
        return True
    if register is None:
        if not (os.environ if environ is None else environ).get("AWS_LAMBDA_FUNCTION_NAME"):
            return False
        import importlib

        try:
            # Imported by name: mypy --strict then passes whether the module is absent, typed or not
            # (a ``type: ignore[import-not-found]`` is an unused ignore where the module is installed).
            runtime = importlib.import_module("snapshot_restore_py")
        except ImportError:  # a runtime without SnapStart support
            return False
        register = runtime.register_after_restore
    with _lock:
        if not _installed:
            register(after_restore)
            _installed = True
    return True


def watch(config: Config) -> None:
    """Expire ``config`` too on restore (the default client always is)."""
    live = [ref for ref in _context.WATCHED if ref() is not None]
    _context.WATCHED[:] = [*live, weakref.ref(config)]


def after_restore() -> None:
    """The hook: every cached value of the default client and of watched clients becomes stale."""
    clients = {client for ref in _context.WATCHED if (client := ref()) is not None}
    default = _context.get_client()
    if default is not None:
        clients.add(default)
    for client in clients:
        client.expire()


def reset() -> None:
    """Forget the registration (tests)."""
    global _installed
    with _lock:
        _installed = False
        _context.WATCHED.clear()
