"""Stores: the admin side of each AWS source (create, write, list, version, roll back), for the CLI alone.

::

    Store (base.py)                 the base class: what the CLI calls, validation and partial writes once
    ├── DynamoDBStore (dynamodb.py) the table, items with versions; BatchWriteItem
    ├── S3Store (s3.py)             the versioned bucket; objects or the stage document, rewritten conditionally
    ├── SSMStore (ssm.py)           String and SecureString parameters and their history
    ├── SecretsManagerStore (...)   the stage's secret, rewritten as a new version (layout=document)
    ├── SecretsStore (...)          a secret per key, each write a new version (layout=secrets)
    └── AppConfigStore (...)        reads only: a deployment belongs to the deployment pipeline

Each store wraps the runtime source of its URL (``store.reader``: where keys live, how values decode) and
writes through the call layer over a botocore transport. A Lambda never imports this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from confstage.sources import SourceURL, build_source

from .base import PartialWriteError, Store, StoredValue, Version

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["STORES", "PartialWriteError", "Store", "StoredValue", "Version", "build_store"]

# scheme -> "module:name"; the class (or factory) takes the scheme's source (and a transport).
STORES: dict[str, str] = {
    "dynamodb": "confstage.stores.dynamodb:DynamoDBStore",
    "file": "confstage.stores.file:FileStore",
    "s3": "confstage.stores.s3:S3Store",
    "ssm": "confstage.stores.ssm:SSMStore",
    "secretsmanager": "confstage.stores.secretsmanager:open_store",
    "appconfig": "confstage.stores.appconfig:AppConfigStore",
}


def build_store(url: str, *, transport: Transport | None = None) -> Store | None:
    """The store of a source URL, or None when its scheme has none (``env://``, ``kms-env://``)."""
    target = STORES.get(SourceURL(url).scheme)
    if target is None:
        return None
    from .base import admin_transport

    transport = admin_transport(transport)
    module_name, _, class_name = target.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    # The home region's source: writes never fail over (``?fallback_regions=`` is for the runtime's reads).
    store: Store = cls(build_source(url, transport=transport, fallback_regions=()), transport)
    return store
