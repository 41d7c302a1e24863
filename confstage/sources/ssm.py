"""``ssm:///PATH``: SSM Parameter Store, parameter ``/PATH/{STAGE}/{key}``.

A stage is loaded whole with GetParametersByPath (``WithDecryption``, ``MaxResults=10``, the
service maximum), following ``NextToken``: N parameters cost ⌈N/10⌉ requests (one more, answered
empty, when N is a multiple of 10 and the service returns a token after a full last page). The walk is
recursive, and a nested parameter's key is its name below the stage path, so
``/app/PRD/db/url`` is the key ``db/url`` (``?recursive=false`` loads direct children only).
SecureString values are reported as secrets, so they never reach the /tmp cache in plaintext.

``ssm://app/config`` (host form) names the same path as ``ssm:///app/config``. Writing is
``confstage.stores.ssm``'s.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING, Any

from confstage.aws import Caller

from .base import Fetched, SourceURL

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["SSMSource"]

_PAGE = 10  # GetParametersByPath's MaxResults ceiling


class SSMSource:
    """Parameters below ``/PATH/{STAGE}``; a whole stage per fetch."""

    whole_stage = True
    persist = True  # String values may go to /tmp; SecureString values are secrets (sealed there, or withheld)

    def __init__(
        self, path: str, *, recursive: bool = True, transport: Transport | None = None, url: str | None = None
    ) -> None:
        self.path = "/" + path.strip("/") if path.strip("/") else ""
        self.recursive = recursive
        self.url = url or f"ssm://{self.path or '/'}"
        self.ttl: float | None = None
        self.aws = Caller(self.url, transport)

    @classmethod
    def from_url(cls, url: SourceURL, transport: Transport | None = None) -> SSMSource:
        path = f"{url.netloc}/{url.path.strip('/')}" if url.netloc else url.path
        if "//" in path.strip("/"):
            raise url.error("the parameter path must not contain empty segments")
        return cls(path, recursive=url.take_bool("recursive", True), transport=transport, url=url.url)

    def stage_path(self, stage: str) -> str:
        """The hierarchy a stage lives under: ``/PATH/{STAGE}``."""
        return f"{self.path}/{stage}"

    def name(self, stage: str, key: str) -> str:
        """The full parameter name of a key."""
        return f"{self.stage_path(stage)}/{key.strip('/')}"

    def identity(self) -> str:
        """What names this store in the /tmp cache: the path and where the transport reaches it."""
        return f"{self.url} {self.aws.identity('ssm')}"

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        values: dict[str, str] = {}
        secret: list[str] = []
        for key, parameter in self.walk(stage, decrypt=True):
            values[key] = parameter["Value"]
            if parameter.get("Type") == "SecureString":
                secret.append(key)
        return Fetched(values, secret=secret)

    def walk(self, stage: str, *, decrypt: bool) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every parameter of a stage as (key, parameter), one GetParametersByPath page at a time."""
        path = self.stage_path(stage)
        prefix = path + "/"
        request: dict[str, Any] = {
            "Path": path,
            "Recursive": self.recursive,
            "WithDecryption": decrypt,
            "MaxResults": _PAGE,
        }
        for page in self.aws.pages("ssm:GetParametersByPath", request, target=path):
            for parameter in page["Parameters"]:
                name: str = parameter["Name"]
                if name.startswith(prefix):
                    yield name[len(prefix) :], parameter

    def __repr__(self) -> str:
        return f"SSMSource({self.url!r})"
