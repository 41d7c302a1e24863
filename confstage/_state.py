"""The package's global state, in one place: the default client, the invocation in force, the running ones,
the transport AWS calls go through, and the deadline of the fetch in progress.

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
    from .transport import Transport

__all__ = [
    "CURRENT",
    "DEADLINE",
    "EMPTY",
    "FOREVER",
    "MISSING",
    "NESTED",
    "RUNNING",
    "SETTINGS_OVERRIDES",
    "WATCHED",
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
    "transport",
    "use",
    "use_transport",
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

    A *shared* invocation (``shared`` True: the client's fresh view of a stage, ``chain.View``) serves
    every invocation that starts while it is fresh, at no cost; whatever would change an invocation's
    ``values`` or ``pins`` (a forced refresh, ``refresh_on``'s recording) first takes a private one
    (``own``).
    """

    __slots__ = ("client", "pins", "stage", "started", "values")
    shared = False

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
# (ThreadPoolExecutor, run_in_executor), keyed by id() of the token of the ContextVar.set that entered each
# (one shared invocation may be entered by several at once): dict set/pop are atomic, so no lock on the
# hot path. Only enter() and leave() (and @handler, inlined) change it; everyone else reads it.
RUNNING: dict[Any, Invocation] = {}

# The ``time.monotonic()`` by which the fetch running in this thread must be done (set by the cache layer
# around ``Source.fetch``; the call layer gives it to every request of that fetch). None: no deadline.
DEADLINE: ContextVar[float | None] = ContextVar("confstage_deadline", default=None)

client: Config | None = None  # the default client, once built (read it; change it with use())
_transport: Transport | None = None
_lock: Any = None

# Explicit clients (``@handler(config=...)``) expired after a SnapStart restore besides the default one, as
# weak references (``snapstart.watch``).
WATCHED: list[Any] = []

# Settings objects a test put in place (confstage.testing.override_settings): class -> instance.
SETTINGS_OVERRIDES: dict[type, Any] = {}


def running() -> tuple[Invocation, ...]:
    """The invocations in progress in this process (those with a stage)."""
    return tuple(RUNNING.values())


def sole_invocation() -> Invocation | None:
    """The one invocation in progress, when there is exactly one (what a worker thread belongs to)."""
    invocations = tuple(RUNNING.values())
    if not invocations:
        return None
    first = invocations[0]
    return first if all(found is first for found in invocations) else None


# Nested entries (``bind()`` or ``refresh_on`` inside a handler, a handler inside ``refresh_on``): id() of the
# nested token -> (the registry key it took over, the invocation that held it). One logical invocation
# counts once in ``RUNNING``, and a worker thread sees its innermost binding.
NESTED: dict[int, tuple[Any, Invocation]] = {}


def enter(invocation: Invocation) -> Any:
    """Make ``invocation`` current in this context and known to worker threads; returns a token for ``leave``."""
    outer = CURRENT.get()
    token = CURRENT.set(invocation)
    if invocation.stage is not None:
        key = _key_of(outer) if outer is not None else None
        if key is None:
            RUNNING[id(token)] = invocation
        else:  # nested: the innermost binding stands for this logical invocation until it is left
            NESTED[id(token)] = (key, RUNNING[key])
            RUNNING[key] = invocation
    return token


def leave(invocation: Invocation, token: Any) -> None:
    """Undo ``enter``."""
    nested = NESTED.pop(id(token), None) if NESTED else None
    if nested is None:
        RUNNING.pop(id(token), None)
    else:
        key, outer = nested
        if key in RUNNING:  # still running (not left meanwhile by another context sharing it)
            RUNNING[key] = outer
    CURRENT.reset(token)


def _key_of(invocation: Invocation) -> Any:
    """The registry key under which ``invocation`` runs (None: not registered); nested entries only."""
    for key, found in list(RUNNING.items()):
        if found is invocation:
            return key
    return None


def own(invocation: Invocation) -> Invocation:
    """A private invocation for this context in place of a shared one (made current), so it can change."""
    if not invocation.shared:
        return invocation
    private = Invocation(
        invocation.client, invocation.stage, invocation.started, invocation.values, dict(invocation.pins)
    )
    CURRENT.set(private)  # undone with the enclosing invocation's own reset (handler, bind, refresh_on)
    key = _key_of(invocation)
    if key is not None:
        RUNNING[key] = private  # worker threads of this invocation see the private copy from now on
    return private


def get_client() -> Config | None:
    """The default client if one was built (None otherwise); never builds one."""
    return client


def _locked() -> Any:
    """The lock that guards making the default client and transport (made on first use: threading costs)."""
    global _lock
    if _lock is None:
        import threading

        _lock = threading.RLock()  # an RLock: building the default client may choose the transport
    return _lock


def default() -> Config:
    """The default client, built from the ``CONFSTAGE_*`` variables on first use."""
    global client
    made = client
    if made is None:
        from .client import Config

        with _locked():
            made = client
            if made is None:
                made = client = Config()
                from .snapstart import install

                install()  # SnapStart: cached values go stale after a restore (a no-op outside Lambda)
    return made


def configure(sources: str | list[str | Source] | tuple[str | Source, ...] | None = None, **kwargs: Any) -> Config:
    """Replace the default client with ``Config(sources, **kwargs)`` and return it."""
    from .client import Config

    made = Config(sources, **kwargs)
    use(made)
    return made


def use(made: Config | None) -> None:
    """Make ``made`` the default client (None: build one from the environment on next use)."""
    global client
    client = made


def reset() -> None:
    """Drop the default client; the next call builds a new one from the environment."""
    use(None)


def transport() -> Transport:
    """The transport the runtime's AWS calls go through, chosen on first use (``aws.choose_transport``)."""
    global _transport
    found = _transport
    if found is None:
        with _locked():
            found = _transport
            if found is None:
                from .aws import choose_transport

                found = _transport = choose_transport()
    return found


def use_transport(transport: Transport | None) -> Transport | None:
    """Make ``transport`` the runtime's (None: choose one again on next use); tests swap in their own. Returns the
    one it replaces."""
    global _transport
    with _locked():
        previous, _transport = _transport, transport
    return previous
