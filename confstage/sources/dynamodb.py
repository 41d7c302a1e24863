"""``dynamodb://TABLE``: configuration items in a DynamoDB table, a whole stage in one Query.

Layouts (``?layout=``):

* ``stage-key`` (default): partition key ``stage`` (S), sort key ``key`` (S), attribute ``value`` (S).
  ``fetch`` loads the whole stage with one Query (following ``LastEvaluatedKey`` past 1 MB), so the
  N keys of a stage cost one round trip per MB.
* ``flat``: one hash key ``stage`` (S) whose values read ``{key}_{STAGE}`` (``db_url_PRD``), attribute
  ``value`` (S). One key is a GetItem; several are BatchGetItem, 100 keys a call, asking again for
  ``UnprocessedKeys`` after a jittered, growing backoff. Those ids are ambiguous when a stage contains
  ``_`` (key ``db`` of stage ``EU_PRD`` *is* key ``db_EU`` of stage ``PRD``), so this layout refuses
  such stages (``check_stage``: a ``ConfigurationError``), and a read ignores an item whose ``key``
  attribute names another key.

``?consistent=true`` makes every read strongly consistent. Reads need only ``value``; what else an item
written by confstage carries is ``confstage.stores.dynamodb``'s.

Secure values: a ``value`` that is a ``cs1:`` envelope (``confstage.crypto``) is decrypted on fetch
and reported as secret, so it never reaches the /tmp cache in plaintext.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from confstage._backoff import Backoff
from confstage.aws import Caller, Retry
from confstage.errors import ConfigurationError, SourceError
from confstage.names import validate_stage

from .base import Fetched, SourceURL, open_envelopes

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["LAYOUTS", "DynamoDBSource", "flat_id", "string", "value_of"]

LAYOUTS = ("stage-key", "flat")
_BATCH_GET = 100  # BatchGetItem limit


class DynamoDBSource:
    """A DynamoDB table of configuration."""

    persist = True

    def __init__(
        self,
        table: str,
        *,
        layout: str = "stage-key",
        consistent: bool = False,
        transport: Transport | None = None,
        url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 8,
        base_delay: float = 0.05,
        random: Callable[[], float] | None = None,
    ) -> None:
        if layout not in LAYOUTS:
            raise ConfigurationError(f"dynamodb layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.table = table
        self.layout = layout
        self.consistent = consistent
        self.url = url or f"dynamodb://{table}" + ("" if layout == "stage-key" else f"?layout={layout}")
        self.ttl: float | None = None
        self.whole_stage = layout == "stage-key"
        self.aws = Caller(self.url, transport)
        # Unprocessed batch entries are asked for again after base_delay·2^(n-1) (at most 2 s), jittered.
        self.retry = Retry(max_attempts, Backoff(base_delay, 2.0, random), sleep)
        self.what = f"table {table}"

    @classmethod
    def from_url(cls, url: SourceURL, transport: Transport | None = None) -> DynamoDBSource:
        table = url.netloc
        if not table or url.path not in ("", "/"):
            raise url.error("expected dynamodb://TABLE (a table name, no path)")
        layout = url.take_choice("layout", LAYOUTS)
        consistent = url.take_bool("consistent", False)
        return cls(table, layout=layout, consistent=consistent, transport=transport, url=url.url)

    def __repr__(self) -> str:
        return f"DynamoDBSource({self.url!r})"

    def identity(self) -> str:
        """What names this store in the /tmp cache: the table and where the transport reaches it."""
        return f"{self.url} {self.aws.identity('dynamodb')}"

    def check_stage(self, stage: str) -> str:
        """Return ``stage`` when this layout holds it unambiguously, else raise ``ConfigurationError``.

        The flat layout's ids read ``{key}_{STAGE}``: with a ``_`` in the stage, key ``db`` of stage
        ``EU_PRD`` and key ``db_EU`` of stage ``PRD`` are one item. ``fetch`` calls this, and so must
        every write (it would overwrite the other stage's item).
        """
        validate_stage(stage)
        if self.layout == "flat" and "_" in stage:
            raise ConfigurationError(
                f"stage {stage!r} cannot be read or written in the flat layout of table {self.table}: flat item "
                "ids read {key}_{STAGE}, so with a '_' in the stage, key 'db' of stage 'EU_PRD' is key 'db_EU' of "
                "stage 'PRD'. The flat layout takes stage names without '_'; for this one use ?layout=stage-key "
                "(the default)"
            )
        return stage

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        self.check_stage(stage)
        if self.layout == "stage-key":
            raw = {string(item, "key"): value_of(item, self, stage) for item in self.query(stage, "value")}
        elif len(keys) == 1:
            raw = self._get_item(stage, next(iter(keys)))
        else:
            raw = self._batch_get(stage, keys)
        return open_envelopes(raw, stage=stage, kms=self.aws)

    def query(self, stage: str, *attributes: str) -> Iterator[dict[str, Any]]:
        """Every item of a stage (stage-key layout), one page per MB: its ``key`` and ``attributes``."""
        names = {"#s": "stage", "#k": "key", **{f"#a{i}": name for i, name in enumerate(attributes)}}
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":s": {"S": stage}},
            "ProjectionExpression": ", ".join(["#k", *(f"#a{i}" for i in range(len(attributes)))]),
            "ConsistentRead": self.consistent,
        }
        for page in self.aws.pages("dynamodb:Query", request, target=self.what):
            yield from page["Items"]

    def batch_items(
        self, ids: Collection[str], *, consistent: bool, projection: tuple[str, ...] = ()
    ) -> Iterator[dict[str, Any]]:
        """Items of the flat layout by hash key: BatchGetItem, 100 a call, asking again for unprocessed keys."""
        ordered = list(ids)
        for start in range(0, len(ordered), _BATCH_GET):
            request: dict[str, Any] = {
                "Keys": [{"stage": {"S": item_id}} for item_id in ordered[start : start + _BATCH_GET]],
                "ConsistentRead": consistent,
            }
            if projection:
                names = {f"#a{i}": name for i, name in enumerate(projection)}
                request["ProjectionExpression"] = ", ".join(names)
                request["ExpressionAttributeNames"] = names
            batch = {"RequestItems": {self.table: request}}
            for page in self.aws.pages("dynamodb:BatchGetItem", batch, target=self.what, retry=self.retry):
                yield from page["Responses"].get(self.table, ())

    def _get_item(self, stage: str, key: str) -> dict[str, str]:
        request = {
            "TableName": self.table,
            "Key": {"stage": {"S": flat_id(key, stage)}},
            "ProjectionExpression": "#v, #k",
            "ExpressionAttributeNames": {"#v": "value", "#k": "key"},
            "ConsistentRead": self.consistent,
        }
        item = self.aws.call("dynamodb:GetItem", request, target=self.what).get("Item")
        return {key: value_of(item, self, stage, key)} if item and _names(item, key) else {}

    def _batch_get(self, stage: str, keys: Collection[str]) -> dict[str, str]:
        by_id = {flat_id(key, stage): key for key in keys}
        found: dict[str, str] = {}
        for item in self.batch_items(by_id, consistent=self.consistent, projection=("stage", "value", "key")):
            key = by_id[string(item, "stage")]
            if _names(item, key):
                found[key] = value_of(item, self, stage, key)
        return found


def flat_id(key: str, stage: str) -> str:
    """The hash key of a key of a stage in the flat layout."""
    return f"{key}_{stage}"


def string(item: Mapping[str, Any], attribute: str) -> str:
    """A string attribute of an item."""
    return str(item[attribute]["S"])


def _names(item: Mapping[str, Any], key: str) -> bool:
    """Whether a flat item is ``key``'s: its ``key`` attribute (written by confstage), when it has one, says so."""
    written = item.get("key")
    return not isinstance(written, dict) or written.get("S") == key


def value_of(item: Mapping[str, Any], source: DynamoDBSource, stage: str, key: str | None = None) -> str:
    """The ``value`` attribute as a string (S, or N as written); anything else is a SourceError."""
    key = key if key is not None else string(item, "key")
    attribute = item.get("value")
    if isinstance(attribute, dict):
        if "S" in attribute:
            return str(attribute["S"])
        if "N" in attribute:
            return str(attribute["N"])
    kind = "missing" if attribute is None else f"of type {'/'.join(attribute) if isinstance(attribute, dict) else '?'}"
    raise SourceError(
        f"attribute 'value' of key {key!r} for stage {stage!r} in table {source.table} is {kind}; "
        "expected a string (S)",
        source=source.url,
        operation="decode",
    )
