"""The ``confstage`` logger, without importing :mod:`logging` on the cold path.

A DEBUG record can only be shown by a handler that the application configured, which means the
application imported :mod:`logging` first; so ``debug`` does nothing while :mod:`logging` is not
loaded. ``warning`` always logs (Python's last-resort handler prints warnings even unconfigured).
Messages never carry a value: callers pass key names, sources and timings only.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["debug", "warning"]

NAME = "confstage"


def debug(message: str, *args: Any) -> None:
    """Log at DEBUG if anyone could be listening."""
    logging = sys.modules.get("logging")
    if logging is None:
        return
    logger = logging.getLogger(NAME)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug(message, *args)


def warning(message: str, *args: Any) -> None:
    """Log at WARNING (imports logging when needed: warnings are rare)."""
    import logging

    logging.getLogger(NAME).warning(message, *args)
