"""``env://``: plain environment variables, ``{STAGE}_{key}`` then ``{key}``."""

from __future__ import annotations

import math
import os
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from .base import Fetched, SourceURL

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["EnvSource", "env_names"]

DEFAULT_TEMPLATE = "{STAGE}_{key}"


def env_names(template: str, fallback: bool, stage: str, key: str) -> tuple[str, ...]:
    """The variable names tried for a key, in order."""
    first = template.replace("{STAGE}", stage).replace("{stage}", stage.lower()).replace("{key}", key)
    return (first, key) if fallback and first != key else (first,)


class EnvSource:
    """Environment variables: immutable for a published Lambda version, so cached for the whole process."""

    whole_stage = False
    persist = False
    inline = True  # dict lookups: fetched in the caller's thread, no flight thread

    def __init__(
        self,
        *,
        template: str = DEFAULT_TEMPLATE,
        fallback: bool = True,
        environ: Mapping[str, str] | None = None,
        url: str = "env://",
    ) -> None:
        self.url = url
        self.template = template
        self.fallback = fallback
        self.ttl: float | None = math.inf
        self._environ = os.environ if environ is None else environ

    @classmethod
    def from_url(cls, url: SourceURL, transport: Transport | None = None) -> EnvSource:
        """An ``env://`` source (it makes no AWS call: ``transport`` is not used)."""
        if url.netloc or url.path not in ("", "/"):
            raise url.error("env:// takes no host or path; use ?template=")
        template = url.take("template", DEFAULT_TEMPLATE) or ""
        if "{key}" not in template:
            raise url.error("template must contain {key}")
        return cls(template=template, fallback=url.take_bool("fallback", True), url=url.url)

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        found: dict[str, str] = {}
        for key in keys:
            for name in env_names(self.template, self.fallback, stage, key):
                value = self._environ.get(name)
                if value is not None:
                    found[key] = value
                    break
        return Fetched(found)

    def __repr__(self) -> str:
        return f"EnvSource({self.url!r})"
