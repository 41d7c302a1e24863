"""Sources and the registry that builds one from its URL.

Each scheme names a module that is imported only when a URL of that scheme is used, so
``import confstage`` never pays for boto3.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from confstage.errors import ConfigurationError
from confstage.variables import fallback_regions as configured_fallbacks

from .base import Fetched, Source, SourceURL

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = [
    "REGIONAL_SCHEMES",
    "SCHEMES",
    "Fetched",
    "Source",
    "SourceURL",
    "build_source",
    "build_sources",
    "split_urls",
]

# scheme -> "module:Class"; the class has ``from_url(SourceURL, transport=None) -> Source``.
SCHEMES: dict[str, str] = {
    "env": "confstage.sources.env:EnvSource",
    "file": "confstage.sources.file:FileSource",
    "kms-env": "confstage.sources.kms_env:KmsEnvSource",
    "s3": "confstage.sources.s3:S3Source",
    "dynamodb": "confstage.sources.dynamodb:DynamoDBSource",
    "ssm": "confstage.sources.ssm:SSMSource",
    "secretsmanager": "confstage.sources.secretsmanager:SecretsManagerSource",
    "appconfig": "confstage.sources.appconfig:AppConfigSource",
    "memory": "confstage.testing:MemorySource",
}


# Schemes whose sources read AWS in a region, and so accept ``?fallback_regions=`` (``confstage.failover``).
REGIONAL_SCHEMES = frozenset({"dynamodb", "s3", "ssm", "secretsmanager", "kms-env", "appconfig"})


def split_urls(spec: str) -> list[str]:
    """Split ``CONFSTAGE_SOURCES``: URLs separated by whitespace or commas (commas inside ``?…`` kept)."""
    urls: list[str] = []
    for word in spec.split():
        # A comma starts a new URL only when what follows looks like one (``keys=a,b`` stays whole).
        current = ""
        for piece in word.split(","):
            if current and "://" in piece:
                urls.append(current)
                current = piece
            else:
                current = f"{current},{piece}" if current else piece
        if current:
            urls.append(current)
    return [u for u in (u.strip(",") for u in urls) if u]


def build_source(
    url: str | Source, *, transport: Transport | None = None, fallback_regions: Sequence[str] | None = None
) -> Source:
    """Build a source from its URL (a ready source object is returned as it is).

    ``transport``: what its AWS calls go through (None: the runtime's, ``_state.transport()``).
    ``fallback_regions``: where an AWS source reads when its home region fails (``confstage.failover``); None:
    the URL's ``?fallback_regions=``, else ``CONFSTAGE_FALLBACK_REGIONS``.
    """
    if not isinstance(url, str):
        if isinstance(url, Source):
            return url
        raise ConfigurationError(f"expected a source URL or a Source, got {type(url).__name__}")
    parsed = SourceURL(url)
    target = SCHEMES.get(parsed.scheme)
    if target is None:
        raise parsed.error(f"unknown scheme {parsed.scheme!r}; known: {', '.join(sorted(SCHEMES))}")
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    ttl = parsed.take_float("ttl")  # every source accepts ?ttl=SECONDS
    regional = parsed.scheme in REGIONAL_SCHEMES
    in_url = parsed.take_list("fallback_regions") if regional else None  # every AWS source accepts it
    regions = fallback_regions if fallback_regions is not None else in_url
    source: Source = cls.from_url(parsed, transport)
    parsed.done()
    if ttl is not None:
        source.ttl = ttl
    if regional and (regions or "{region}" in parsed.netloc or (regions is None and configured_fallbacks())):
        from confstage.failover import failover

        source = failover(source, url=parsed.url, regions=regions, transport=transport)
    return source


def build_sources(urls: str | Iterable[str | Source], *, transport: Transport | None = None) -> list[Source]:
    """Build the chain from a ``CONFSTAGE_SOURCES`` string or a list of URLs/sources."""
    items = split_urls(urls) if isinstance(urls, str) else list(urls)
    if not items:
        raise ConfigurationError("no sources configured; set CONFSTAGE_SOURCES, e.g. env://")
    return [build_source(item, transport=transport) for item in items]
