"""What the package root shares with the client, kept in a tiny module so ``import confstage`` stays cheap.

The stage ContextVar, the "no default" sentinel and the "never expires" marker.
"""

from __future__ import annotations

from contextvars import ContextVar

# The stage bound by @handler / bind(); a ContextVar, so threads and asyncio tasks never share it.
STAGE: ContextVar[str | None] = ContextVar("confstage_stage", default=None)


class Missing:
    """The type of ``MISSING``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<missing>"


MISSING = Missing()

# "Never expires": compared by identity in the warm path, so immutable values (env vars) skip the clock.
FOREVER = float("inf")
