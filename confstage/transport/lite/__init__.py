"""The lite transport: the runtime's AWS reads with the standard library and SigV4, no boto3 on Lambda's cold path.

The package holds what only lite uses: ``transport`` (``LiteTransport``, its retries and credentials),
``http`` (HTTP/1.1 on a socket, every operation within the call's deadline), ``connections`` (keep-alive pools
and the S3 ``Body``), ``answers`` (an answer to botocore's output shape or an error) and ``container`` (the
container credential provider). What the transport selection and other transports share stays one level up
(``sigv4``, ``protocols``, ``endpoints``). The names below load ``transport`` on first use, so that importing a
sibling module (``confstage.transport.lite.container`` from the selection rule) does not load the transport.
"""

from __future__ import annotations

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs more than this module
if TYPE_CHECKING:
    from .transport import LiteTransport, Settings, StreamingBody

__all__ = ["LiteTransport", "Settings", "StreamingBody"]


def __getattr__(name: str) -> object:
    if name in __all__:
        from . import transport

        return getattr(transport, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
