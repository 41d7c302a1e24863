"""The package's global state, in one place: the default client, the invocation in force, the running ones.

``import confstage`` imports this module and nothing else, so it stays tiny (``contextvars`` only).
No other module keeps module-level state about clients or invocations, and none reaches into
another module's private names for it: they call ``default()``, ``configure()``, ``reset()``,
read ``CURRENT`` and ``running()``.
"""

from __future__ import annotations

from contextvars import ContextVar

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs more than this whole module
if TYPE_CHECKING:
    from typing import Any

    from .client import Config
    from .sources.base import Source

__all__ = [
    "CURRENT",
    "EMPTY",
    "FOREVER",
    "MISSING",
    "RUNNING",
    "SETTINGS_OVERRIDES",
    "Invocation",
    "Missing",
    "configure",
    "default",
    "enter",
    "get_client",
    "leave",
    "reset",
    "running",
    "sole_invocation",
    "use",
]


class Missing:
    """The type of ``MISSING``: no default given, or (in a snapshot) no source holds the key."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING = Missing()

# "Never expires": compared by identity on the warm path, so immutable values (env vars) skip the clock.
FOREVER = float("inf")

# The values of an invocation that has read nothing yet; the first read replaces it. Read-only, so that
# nothing can write into it by mistake (it is shared by every such invocation).
EMPTY: Any = type(type.__dict__)({})  # types.MappingProxyType, without importing types on the cold path


class Invocation:
    """One invocation (a ``@handler`` call or a ``bind()`` block): its client, its stage and its snapshot.

    ``values`` maps each key read so far to its value (``MISSING`` when no source has it). It may be
    shared with the client's view of the stage and with other invocations that started while that
    view was fresh: keys are added to it, never changed, so a value once read stays the same for the
    whole invocation. ``pins`` holds the stage loads those values came from (by source position), so a
    later read of another key of a whole-stage source comes from the same fetch.
    """

    __slots__ = ("client", "pins", "stage", "started", "values")

    def __init__(
        self, client: Config, stage: str | None, started: float, values: dict[str, Any], pins: dict[int, Any]
    ) -> None:
        self.client = client
        self.stage = stage
        self.started = started
        self.values = values
        self.pins = pins

    def __repr__(self) -> str:
        return f"Invocation(stage={self.stage!r}, keys={len(self.values)})"


# The invocation of this thread or asyncio task (a ContextVar: threads and tasks never share it).
CURRENT: ContextVar[Invocation | None] = ContextVar("confstage_invocation", default=None)

# Invocations in progress in this process, for threads started without a copy of their context
# (ThreadPoolExecutor, run_in_executor): set.add/discard are atomic, so no lock on the hot path.
# Only enter() and leave() change it; everyone else reads it.
RUNNING: set[Invocation] = set()

_client: Config | None = None
_lock: Any = None

# Settings objects a test put in place (confstage.testing.override_settings): class -> instance.
SETTINGS_OVERRIDES: dict[type, Any] = {}


def running() -> tuple[Invocation, ...]:
    """The invocations in progress in this process (those with a stage)."""
    return tuple(RUNNING)


def sole_invocation() -> Invocation | None:
    """The one invocation in progress, when there is exactly one (what a worker thread belongs to)."""
    invocations = tuple(RUNNING)
    return invocations[0] if len(invocations) == 1 else None


def enter(invocation: Invocation) -> Any:
    """Make ``invocation`` current in this context and known to worker threads; returns a token for ``leave``."""
    if invocation.stage is not None:
        RUNNING.add(invocation)
    return CURRENT.set(invocation)


def leave(invocation: Invocation, token: Any) -> None:
    """Undo ``enter``."""
    RUNNING.discard(invocation)
    CURRENT.reset(token)


def get_client() -> Config | None:
    """The default client if one was built (None otherwise); never builds one."""
    return _client


def default() -> Config:
    """The default client, built from the ``CONFSTAGE_*`` variables on first use."""
    global _client, _lock
    client = _client
    if client is None:
        import threading

        from .client import Config

        if _lock is None:
            _lock = threading.Lock()
        with _lock:
            client = _client
            if client is None:
                client = _client = Config()
                from .snapstart import install

                install()  # SnapStart: cached values go stale after a restore (a no-op outside Lambda)
    return client


def configure(sources: str | list[str | Source] | tuple[str | Source, ...] | None = None, **kwargs: Any) -> Config:
    """Replace the default client with ``Config(sources, **kwargs)`` and return it."""
    global _client
    from .client import Config

    _client = Config(sources, **kwargs)
    return _client


def use(client: Config | None) -> None:
    """Make ``client`` the default client (None: build one from the environment on next use)."""
    global _client
    _client = client


def reset() -> None:
    """Drop the default client; the next call builds a new one from the environment."""
    use(None)
