"""``dynamodb://TABLE``: configuration items in a DynamoDB table, a whole stage in one Query.

Layouts (``?layout=``):

* ``stage-key`` (default): partition key ``stage`` (S), sort key ``key`` (S), attribute ``value`` (S).
  ``fetch`` loads the whole stage with one Query (following ``LastEvaluatedKey`` past 1 MB), so the
  N keys of a stage cost one round trip per MB.
* ``flat``: one hash key ``stage`` (S) whose values read ``{key}_{STAGE}`` (``db_url_PRD``), attribute
  ``value`` (S). One key is a GetItem; several are BatchGetItem, 100 keys a call, retrying
  ``UnprocessedKeys`` with bounded exponential backoff. Those ids are ambiguous when a stage contains
  ``_`` (key ``db`` of stage ``EU_PRD`` *is* key ``db_EU`` of stage ``PRD``), so this layout refuses
  such stages (``check_stage``: a ``ConfigurationError``), and a read ignores an item whose ``key``
  attribute names another key.

``?consistent=true`` makes every read strongly consistent.

Items written by confstage also carry ``version`` (N, incremented by every ``put``), ``secure``
(BOOL) and ``modified`` (S, ISO 8601 UTC); flat items also carry ``key`` (S), so listing a stage
is not fooled by keys and stages that contain underscores. Reads need only ``value``.

Secure values: a ``value`` that is a ``cs1:`` envelope (``confstage.crypto``) is decrypted on fetch
and reported as secret, so it never reaches the /tmp cache in plaintext. The envelope itself is
what identifies a secure value; the ``secure`` attribute is informational (listings, the console).

Versions: DynamoDB keeps only the current item, so ``history`` returns the current version alone
and ``rollback`` raises ``SourceError`` ("not supported") unless asked for the current version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any

from confstage import aws, crypto
from confstage.errors import ConfigurationError, SourceError
from confstage.names import validate_stage

from .base import Fetched, SourceURL, StoredValue, Version, WriteLog, refuse_writes, refused_error, utf8_size

__all__ = ["DynamoDBSource"]

LAYOUTS = ("stage-key", "flat")
_BATCH_GET = 100  # BatchGetItem limit
_BATCH_WRITE = 25  # BatchWriteItem limit
_MAX_SORT_KEY = 1024  # bytes of a sort key (the stage-key layout's key)
_MAX_HASH_KEY = 2048  # bytes of a partition key (the flat layout's {key}_{STAGE})
_MAX_ITEM = 400 * 1024  # bytes of an item, attribute names included
_ITEM_OVERHEAD = 64  # attribute names and the secure/modified/version attributes of a written item


class DynamoDBSource:
    """A DynamoDB table of configuration, read with the low-level client (the resource API is slow to import)."""

    persist = True

    def __init__(
        self,
        table: str,
        *,
        layout: str = "stage-key",
        consistent: bool = False,
        client: Any = None,
        kms_client: Any = None,
        url: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int = 8,
        base_delay: float = 0.05,
    ) -> None:
        if layout not in LAYOUTS:
            raise ConfigurationError(f"dynamodb layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.table = table
        self.layout = layout
        self.consistent = consistent
        self.url = url or f"dynamodb://{table}" + ("" if layout == "stage-key" else f"?layout={layout}")
        self.ttl: float | None = None
        self.whole_stage = layout == "stage-key"
        self._client = client
        self._given_client = client  # a client the caller made names the store itself (store_id)
        self._kms_client = kms_client
        self._sleep = sleep
        self._max_attempts = max_attempts
        self._base_delay = base_delay

    @classmethod
    def from_url(cls, url: SourceURL) -> DynamoDBSource:
        table = url.netloc
        if not table or url.path not in ("", "/"):
            raise url.error("expected dynamodb://TABLE (a table name, no path)")
        return cls(
            table,
            layout=url.take_choice("layout", LAYOUTS),
            consistent=url.take_bool("consistent", False),
            url=url.url,
        )

    def __repr__(self) -> str:
        return f"DynamoDBSource({self.url!r})"

    def store_id(self) -> str:
        """What names this store in the /tmp cache: the table and where the client reaches it."""
        return f"{self.url} {aws.store_identity('dynamodb', made=self._given_client)}"

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

    # -- reading -----------------------------------------------------------------------------

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        self.check_stage(stage)
        if self.layout == "stage-key":
            raw = {_string(item, "key"): _value(item, self, stage) for item in self._query(stage, "value")}
        elif len(keys) == 1:
            raw = self._get_item(stage, next(iter(keys)))
        else:
            raw = self._batch_get(stage, keys)
        return crypto.open_envelopes(raw, stage=stage, kms=self._kms, source=self.url)

    def _query(self, stage: str, *attributes: str) -> Iterator[dict[str, Any]]:
        """Every item of a stage (stage-key layout), one page per MB."""
        names = {"#s": "stage", "#k": "key", **{f"#a{i}": name for i, name in enumerate(attributes)}}
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {":s": {"S": stage}},
            "ProjectionExpression": ", ".join(["#k", *(f"#a{i}" for i in range(len(attributes)))]),
            "ConsistentRead": self.consistent,
        }
        while True:
            page = self._call("query", "Query", request)
            yield from page.get("Items", ())
            last = page.get("LastEvaluatedKey")
            if not last:
                return
            request["ExclusiveStartKey"] = last

    def _get_item(self, stage: str, key: str) -> dict[str, str]:
        response = self._call(
            "get_item",
            "GetItem",
            {
                "TableName": self.table,
                "Key": {"stage": {"S": _flat_id(key, stage)}},
                "ProjectionExpression": "#v, #k",
                "ExpressionAttributeNames": {"#v": "value", "#k": "key"},
                "ConsistentRead": self.consistent,
            },
        )
        item = response.get("Item")
        return {key: _value(item, self, stage, key)} if item and _names(item, key) else {}

    def _batch_get(self, stage: str, keys: Collection[str]) -> dict[str, str]:
        by_id = {_flat_id(key, stage): key for key in keys}
        found: dict[str, str] = {}
        for item in self._batch_items(by_id, consistent=self.consistent, projection=("stage", "value", "key")):
            key = by_id[_string(item, "stage")]
            if _names(item, key):
                found[key] = _value(item, self, stage, key)
        return found

    def _batch_items(
        self, ids: Collection[str], *, consistent: bool, projection: tuple[str, ...] = ()
    ) -> Iterator[dict[str, Any]]:
        """Items of the flat layout by hash key: BatchGetItem, 100 a call, retrying unprocessed keys."""
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
            pending: dict[str, Any] = {self.table: request}
            for attempt in range(self._max_attempts):
                if attempt:
                    self._backoff(attempt)
                response = self._call("batch_get_item", "BatchGetItem", {"RequestItems": pending})
                yield from response.get("Responses", {}).get(self.table, ())
                pending = response.get("UnprocessedKeys") or {}
                if not pending:
                    break
            else:
                left = len(pending.get(self.table, {}).get("Keys", ()))
                raise SourceError(
                    f"BatchGetItem on table {self.table} left {left} keys unprocessed "
                    f"after {self._max_attempts} attempts (throttled)",
                    source=self.url,
                    operation="dynamodb:BatchGetItem",
                )

    # -- writing (the admin CLI) -------------------------------------------------------------

    def init(self) -> None:
        """Create the table (on-demand capacity) with this layout's key schema; harmless when it exists."""
        if self.layout == "stage-key":
            schema = [{"AttributeName": "stage", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}]
        else:
            schema = [{"AttributeName": "stage", "KeyType": "HASH"}]
        definitions = [{"AttributeName": k["AttributeName"], "AttributeType": "S"} for k in schema]
        from botocore.exceptions import ClientError

        client = self._dynamodb()
        try:
            client.create_table(
                TableName=self.table,
                KeySchema=schema,
                AttributeDefinitions=definitions,
                BillingMode="PAY_PER_REQUEST",
            )
        except ClientError as exc:
            if aws.error_code(exc) != "ResourceInUseException":
                raise aws.source_error(
                    exc, source=self.url, operation="dynamodb:CreateTable", target=self._what()
                ) from exc
        description = self._call("describe_table", "DescribeTable", {"TableName": self.table})["Table"]
        existing = [(k["AttributeName"], k["KeyType"]) for k in description.get("KeySchema", ())]
        if existing != [(k["AttributeName"], k["KeyType"]) for k in schema]:
            raise ConfigurationError(
                f"table {self.table} exists with key schema {existing}, which does not fit layout {self.layout!r}"
            )
        if description.get("TableStatus") != "ACTIVE":
            client.get_waiter("table_exists").wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 60})

    def check_write(self, stage: str, values: Mapping[str, str]) -> dict[str, str]:
        """Keys the table cannot hold: the key rule, DynamoDB's key sizes, and its 400 KB item size."""
        self.check_stage(stage)  # the flat layout cannot hold a stage with '_' unambiguously
        return refuse_writes(stage, values, lambda key, value: self._limit(stage, key, value))

    def _limit(self, stage: str, key: str, value: str) -> str | None:
        if self.layout == "stage-key" and utf8_size(key) > _MAX_SORT_KEY:
            return f"the key is {utf8_size(key)} bytes as UTF-8; a DynamoDB sort key holds at most {_MAX_SORT_KEY}"
        if self.layout == "flat" and utf8_size(_flat_id(key, stage)) > _MAX_HASH_KEY:
            return (
                f"the item id {{key}}_{{STAGE}} would be {utf8_size(_flat_id(key, stage))} bytes as UTF-8; "
                f"a DynamoDB partition key holds at most {_MAX_HASH_KEY}"
            )
        size = _ITEM_OVERHEAD + utf8_size(stage) + 2 * utf8_size(key) + utf8_size(value)
        if size > _MAX_ITEM:
            return f"the item would be about {size} bytes; DynamoDB holds at most {_MAX_ITEM} bytes an item"
        return None

    def _refuse(self, stage: str, values: Mapping[str, str]) -> None:
        refused = self.check_write(stage, values)
        if refused:
            raise refused_error(refused, source=self.url)

    def put(
        self,
        stage: str,
        key: str,
        value: str,
        *,
        kms_key: str | None = None,
        expect_version: str | None = None,
    ) -> str | None:
        """Write one value, incrementing ``version``; ``expect_version`` ("0": must not exist) guards the write."""
        self._refuse(stage, {key: value})
        stored, secure = self._sealed(stage, key, value, kms_key)
        self._refuse(stage, {key: stored})
        names = {"#v": "value", "#n": "version", "#sec": "secure", "#m": "modified"}
        values: dict[str, Any] = {
            ":v": {"S": stored},
            ":sec": {"BOOL": secure},
            ":m": {"S": _now()},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
        }
        update = "SET #v = :v, #sec = :sec, #m = :m, #n = if_not_exists(#n, :zero) + :one"
        if self.layout == "flat":
            names["#k"] = "key"
            values[":k"] = {"S": key}
            update += ", #k = :k"
        request: dict[str, Any] = {
            "TableName": self.table,
            "Key": self._item_key(stage, key),
            "UpdateExpression": update,
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": values,
            "ReturnValues": "UPDATED_NEW",
        }
        if expect_version is not None:
            if expect_version in ("", "0"):
                request["ConditionExpression"] = "attribute_not_exists(#n)"
            else:
                request["ConditionExpression"] = "#n = :expected"
                values[":expected"] = {"N": _number(expect_version)}
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self._dynamodb().update_item(**request)
        except ClientError as exc:
            if aws.error_code(exc) == "ConditionalCheckFailedException":
                raise SourceError(
                    f"key {key!r} of stage {stage!r} in table {self.table} is no longer at version "
                    f"{expect_version} (changed by someone else); read it again and retry",
                    source=self.url,
                    operation="dynamodb:UpdateItem",
                ) from exc
            raise aws.source_error(exc, source=self.url, operation="dynamodb:UpdateItem", target=self._what()) from exc
        except BotoCoreError as exc:
            raise aws.source_error(exc, source=self.url, operation="dynamodb:UpdateItem", target=self._what()) from exc
        return str(response["Attributes"]["version"]["N"])

    def put_many(
        self,
        stage: str,
        values: Mapping[str, str],
        *,
        kms_key: str | None = None,
        secure: Collection[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Write many values with BatchWriteItem, 25 a call; versions are read first (last writer wins).

        Every key is checked and every secure value sealed before the first write; a failure after
        it is a ``PartialWriteError`` naming the items BatchWriteItem processed and those it did not.
        """
        self._refuse(stage, values)
        sealed = {
            key: self._sealed(stage, key, value, kms_key if secure is None or key in secure else None)
            for key, value in values.items()
        }
        self._refuse(stage, {key: stored for key, (stored, _) in sealed.items()})  # envelopes are larger
        current = {key: stored.version for key, stored in self._stored(stage, values.keys()).items()}
        modified = _now()
        requests = []
        for key, (stored, is_secure) in sealed.items():
            item: dict[str, Any] = {
                **self._item_key(stage, key),
                "value": {"S": stored},
                "secure": {"BOOL": is_secure},
                "modified": {"S": modified},
                "version": {"N": str(int(current.get(key) or 0) + 1)},
                "key": {"S": key},  # the flat layout needs it; the stage-key layout has it as its sort key
            }
            requests.append({"PutRequest": {"Item": item}})
        log = WriteLog(values, progress)
        try:
            for start in range(0, len(requests), _BATCH_WRITE):
                self._batch_write(requests[start : start + _BATCH_WRITE], log)
        except Exception as exc:
            raise log.failed(exc, source=self.url) from exc

    def _batch_write(self, requests: list[dict[str, Any]], log: WriteLog) -> None:
        """One BatchWriteItem of up to 25 puts, retrying unprocessed items with backoff; logs what it wrote."""
        pending: dict[str, Any] = {self.table: requests}
        for attempt in range(self._max_attempts):
            if attempt:
                self._backoff(attempt)
            response = self._call("batch_write_item", "BatchWriteItem", {"RequestItems": pending})
            sent = _put_keys(pending.get(self.table, ()))
            pending = response.get("UnprocessedItems") or {}
            left = _put_keys(pending.get(self.table, ()))
            log.done([key for key in sent if key not in left])
            if not pending:
                return
        raise SourceError(
            f"BatchWriteItem on table {self.table} left {len(pending.get(self.table, ()))} items "
            f"unprocessed after {self._max_attempts} attempts (throttled)",
            source=self.url,
            operation="dynamodb:BatchWriteItem",
        )

    def delete(self, stage: str, key: str) -> bool:
        response = self._call(
            "delete_item",
            "DeleteItem",
            {"TableName": self.table, "Key": self._item_key(stage, key), "ReturnValues": "ALL_OLD"},
        )
        return bool(response.get("Attributes"))

    def items(self, stage: str, *, decrypt: bool = False) -> dict[str, StoredValue]:
        """Every key of a stage (flat layout: a Scan of the table); secure values stay ciphertext unless ``decrypt``."""
        stored = self._stored(stage, None)
        if not decrypt:
            return stored
        kms = self._kms()
        return {
            key: item._replace(value=crypto.decrypt(item.value, stage=stage, key=key, client=kms, source=self.url))
            if item.secure
            else item
            for key, item in stored.items()
        }

    def history(self, stage: str, key: str) -> list[Version]:
        """The current version only: DynamoDB keeps no older ones."""
        response = self._call(
            "get_item",
            "GetItem",
            {"TableName": self.table, "Key": self._item_key(stage, key), "ConsistentRead": True},
        )
        item = response.get("Item")
        if not item:
            return []
        modified = item.get("modified", {}).get("S")
        return [
            Version(
                version=str(item.get("version", {}).get("N", "0")),
                modified=datetime.fromisoformat(modified) if modified else None,
                latest=True,
                secure=crypto.is_envelope(_value(item, self, stage, key)),
            )
        ]

    def rollback(self, stage: str, key: str, version: str) -> str | None:
        """Not supported: DynamoDB keeps no older versions (asking for the current one is a no-op)."""
        current = self.history(stage, key)
        if current and current[0].version == version:
            return version
        raise SourceError(
            f"rollback is not supported for dynamodb: table {self.table} keeps only the current version "
            f"of key {key!r}; use an s3:// source for versioned configuration",
            source=self.url,
            operation="rollback",
        )

    def _stored(self, stage: str, keys: Collection[str] | None) -> dict[str, StoredValue]:
        """Raw items of a stage (all of them, or ``keys``), values as stored."""
        self.check_stage(stage)
        out: dict[str, StoredValue] = {}
        if self.layout == "stage-key":
            for item in self._query(stage, "value", "version"):
                key = _string(item, "key")
                if keys is None or key in keys:
                    out[key] = self._stored_value(item, stage, key)
            return out
        if keys is not None:
            wanted = {_flat_id(key, stage): key for key in keys}
            for item in self._batch_items(wanted, consistent=True):
                key = wanted[_string(item, "stage")]
                out[key] = self._stored_value(item, stage, key)
            return out
        suffix = f"_{stage}"
        request = {"TableName": self.table}
        while True:
            page = self._call("scan", "Scan", request)
            for item in page.get("Items", ()):
                item_id = _string(item, "stage")
                if not item_id.endswith(suffix) or len(item_id) == len(suffix):
                    continue
                key = item_id[: -len(suffix)]
                if "key" in item and item["key"].get("S") != key:
                    continue  # a key of another stage whose name ends with this one (x_PRD of stage Y_PRD)
                out[key] = self._stored_value(item, stage, key)
            last = page.get("LastEvaluatedKey")
            if not last:
                return out
            request["ExclusiveStartKey"] = last

    def _stored_value(self, item: dict[str, Any], stage: str, key: str) -> StoredValue:
        value = _value(item, self, stage, key)
        version = item.get("version", {}).get("N")
        return StoredValue(value, secure=crypto.is_envelope(value), version=str(version) if version else None)

    def _sealed(self, stage: str, key: str, value: str, kms_key: str | None) -> tuple[str, bool]:
        """What to store: the envelope when ``kms_key`` is given (a ready envelope is stored as it is)."""
        if kms_key is not None:
            return crypto.encrypt(
                value, stage=stage, key=key, kms_key=kms_key, client=self._kms(), source=self.url
            ), True
        return value, crypto.is_envelope(value)

    def _item_key(self, stage: str, key: str) -> dict[str, Any]:
        """The primary key of one item; every single-item write and read of the admin side goes through it."""
        self.check_stage(stage)
        if self.layout == "stage-key":
            return {"stage": {"S": stage}, "key": {"S": key}}
        return {"stage": {"S": _flat_id(key, stage)}}

    # -- plumbing ----------------------------------------------------------------------------

    def _call(self, method: str, operation: str, request: dict[str, Any]) -> Any:
        """One DynamoDB call through ``aws.call`` (``method`` is boto3's spelling of ``operation``)."""
        return aws.call(self._dynamodb(), f"dynamodb:{operation}", request, source=self.url, target=self._what())

    def _backoff(self, attempt: int) -> None:
        self._sleep(min(self._base_delay * 2 ** (attempt - 1), 2.0))

    def _what(self) -> str:
        return f"table {self.table}"

    def _dynamodb(self) -> Any:
        if self._client is None:
            self._client = aws.client("dynamodb")
        return self._client

    def _kms(self) -> Any:
        if self._kms_client is None:
            self._kms_client = aws.client("kms")
        return self._kms_client


def _flat_id(key: str, stage: str) -> str:
    return f"{key}_{stage}"


def _put_keys(requests: Collection[Any]) -> list[str]:
    """The keys of the PutRequests of a BatchWriteItem (every item confstage writes carries ``key``)."""
    return [str(request["PutRequest"]["Item"]["key"]["S"]) for request in requests]


def _string(item: Mapping[str, Any], attribute: str) -> str:
    return str(item[attribute]["S"])


def _names(item: Mapping[str, Any], key: str) -> bool:
    """Whether a flat item is ``key``'s: its ``key`` attribute (written by confstage), when it has one, says so."""
    written = item.get("key")
    return not isinstance(written, dict) or written.get("S") == key


def _value(item: Mapping[str, Any], source: DynamoDBSource, stage: str, key: str | None = None) -> str:
    """The ``value`` attribute as a string (S, or N as written); anything else is a SourceError."""
    key = key if key is not None else _string(item, "key")
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


def _number(version: str) -> str:
    try:
        return str(int(version))
    except ValueError as exc:
        raise ConfigurationError(f"a DynamoDB version is a whole number, got {version!r}") from exc


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
