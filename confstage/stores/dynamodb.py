"""The admin side of ``dynamodb://``: the table created, items written, listed and (not) rolled back.

Items written by confstage carry ``version`` (N, incremented by every ``put``), ``secure`` (BOOL),
``modified`` (S, ISO 8601 UTC) and ``by`` (S, the writer's ARN from STS GetCallerIdentity, asked once per store)
beside ``value``; flat items also carry ``key`` (S), so listing a stage is
not fooled by keys and stages that contain underscores. The envelope itself is what identifies a secure
value; the ``secure`` attribute is informational (listings, the console).

Versions: DynamoDB keeps only the current item, so ``history`` returns the current version alone and
``rollback`` raises ``SourceError`` ("not supported") unless asked for the current version.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from confstage import crypto
from confstage.aws import ErrorAnswer
from confstage.errors import ConfigurationError, SourceError
from confstage.sources.dynamodb import DynamoDBSource, flat_id, string, value_of

from .base import NOT_RECORDED, Store, StoredValue, Version, WriteLog, utf8_size

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["DynamoDBStore"]

_BATCH_WRITE = 25  # BatchWriteItem limit
_MAX_SORT_KEY = 1024  # bytes of a sort key (the stage-key layout's key)
_MAX_HASH_KEY = 2048  # bytes of a partition key (the flat layout's {key}_{STAGE})
_MAX_ITEM = 400 * 1024  # bytes of an item, attribute names included
# Attribute names and the secure/modified/version attributes of a written item, and its ``by``: an ARN of at most
# 640 bytes (a user's: a 512-character path and a 64-character name; a role session's: 64 and 64).
_ITEM_OVERHEAD = 64 + 640
_ACTIVE_WAIT = 60  # seconds init waits for a new table to become ACTIVE


class DynamoDBStore(Store):
    """Writes what a ``DynamoDBSource`` reads; an envelope is bound to its stage, so copying one needs a KMS key."""

    def __init__(
        self, reader: DynamoDBSource, transport: Transport | None = None, *, sleep: Callable[[float], None] = time.sleep
    ) -> None:
        super().__init__(reader, transport)
        self.reader: DynamoDBSource = reader
        self.table = reader.table
        self._sleep = sleep

    def init(self) -> None:
        """Create the table (on-demand capacity) with this layout's key schema; harmless when it exists."""
        if self.reader.layout == "stage-key":
            schema = [{"AttributeName": "stage", "KeyType": "HASH"}, {"AttributeName": "key", "KeyType": "RANGE"}]
        else:
            schema = [{"AttributeName": "stage", "KeyType": "HASH"}]
        request = {
            "TableName": self.table,
            "KeySchema": schema,
            "AttributeDefinitions": [{"AttributeName": k["AttributeName"], "AttributeType": "S"} for k in schema],
            "BillingMode": "PAY_PER_REQUEST",
        }
        self._call("CreateTable", request, answers=("ResourceInUseException",))
        for _ in range(_ACTIVE_WAIT):
            description = self._call("DescribeTable", {"TableName": self.table})["Table"]
            existing = [(k["AttributeName"], k["KeyType"]) for k in description.get("KeySchema", ())]
            if existing != [(k["AttributeName"], k["KeyType"]) for k in schema]:
                raise ConfigurationError(
                    f"table {self.table} exists with key schema {existing}, "
                    f"which does not fit layout {self.reader.layout!r}"
                )
            if description.get("TableStatus") == "ACTIVE":
                return
            self._sleep(1.0)
        raise SourceError(
            f"table {self.table} did not become ACTIVE within {_ACTIVE_WAIT} s",
            source=self.url,
            operation="dynamodb:DescribeTable",
        )

    def check_write(self, stage: str, values: Mapping[str, str]) -> dict[str, str]:
        """Keys the table cannot hold: the key rule, DynamoDB's key sizes, and its 400 KB item size."""
        self.reader.check_stage(stage)  # the flat layout cannot hold a stage with '_' unambiguously
        return super().check_write(stage, values)

    def _put(self, stage: str, key: str, value: str, kms_key: str | None, expect_version: str | None) -> str | None:
        """One UpdateItem incrementing ``version``; ``expect_version`` becomes its condition."""
        stored, secure = self._encrypted(stage, key, value, kms_key)
        self.refuse(stage, {key: stored})
        names = {"#v": "value", "#n": "version", "#sec": "secure", "#m": "modified"}
        values: dict[str, Any] = {
            ":v": {"S": stored},
            ":sec": {"BOOL": secure},
            ":m": {"S": _now()},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
        }
        update = "SET #v = :v, #sec = :sec, #m = :m, #n = if_not_exists(#n, :zero) + :one"
        writer = self.writer()
        if writer is not None:
            names["#by"] = "by"
            values[":by"] = {"S": writer}
            update += ", #by = :by"
        else:
            names["#by"] = "by"
            update += " REMOVE #by"  # a writer recorded earlier did not write this version
        if self.reader.layout == "flat":
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
        response = self._call("UpdateItem", request, answers=("ConditionalCheckFailedException",))
        if isinstance(response, ErrorAnswer):
            raise SourceError(
                f"key {key!r} of stage {stage!r} in table {self.table} is no longer at version "
                f"{expect_version} (changed by someone else); read it again and retry",
                source=self.url,
                operation="dynamodb:UpdateItem",
            ) from response.error
        return str(response["Attributes"]["version"]["N"])

    def _prepare(
        self, stage: str, values: Mapping[str, str], kms_key: str | None, encrypted: frozenset[str]
    ) -> list[dict[str, Any]]:
        """The PutRequests of every value: encrypted, checked again (envelopes are larger), versions read first."""
        stored = {
            key: self._encrypted(stage, key, value, kms_key if key in encrypted else None)
            for key, value in values.items()
        }
        self.refuse(stage, {key: value for key, (value, _) in stored.items()})
        current = {key: item.version for key, item in self._stored(stage, values.keys()).items()}
        modified = _now()
        writer = self.writer()
        requests = []
        for key, (value, is_secure) in stored.items():
            item: dict[str, Any] = {
                **self._item_key(stage, key),
                "value": {"S": value},
                "secure": {"BOOL": is_secure},
                "modified": {"S": modified},
                "version": {"N": str(int(current.get(key) or 0) + 1)},
                "key": {"S": key},  # the flat layout needs it; the stage-key layout has it as its sort key
            }
            if writer is not None:
                item["by"] = {"S": writer}
            requests.append({"PutRequest": {"Item": item}})
        return requests

    def _put_many(self, stage: str, prepared: list[dict[str, Any]], log: WriteLog) -> None:
        """BatchWriteItem, 25 a call (last writer wins)."""
        for start in range(0, len(prepared), _BATCH_WRITE):
            self._batch_write(prepared[start : start + _BATCH_WRITE], log)

    def _batch_write(self, requests: list[dict[str, Any]], log: WriteLog) -> None:
        """One BatchWriteItem of up to 25 puts, asking again for unprocessed items; logs what it wrote."""
        sent = _put_keys(requests)
        batch = {"RequestItems": {self.table: requests}}
        for page in self.aws.pages("dynamodb:BatchWriteItem", batch, target=self.reader.what, retry=self.reader.retry):
            left = _put_keys((page.get("UnprocessedItems") or {}).get(self.table, ()))
            log.done([key for key in sent if key not in left])
            sent = left

    def delete(self, stage: str, key: str) -> bool:
        request = {"TableName": self.table, "Key": self._item_key(stage, key), "ReturnValues": "ALL_OLD"}
        return bool(self._call("DeleteItem", request).get("Attributes"))

    def items(self, stage: str, *, decrypt: bool = False) -> dict[str, StoredValue]:
        """Every key of a stage (flat layout: a Scan of the table); secure values stay ciphertext unless ``decrypt``."""
        stored = self._stored(stage, None)
        if not decrypt:
            return stored
        return {
            key: item._replace(value=crypto.decrypt(item.value, stage=stage, key=key, kms=self.aws))
            if item.secure
            else item
            for key, item in stored.items()
        }

    def history(self, stage: str, key: str) -> list[Version]:
        """The current version only: DynamoDB keeps no older ones."""
        request = {"TableName": self.table, "Key": self._item_key(stage, key), "ConsistentRead": True}
        item = self._call("GetItem", request).get("Item")
        if not item:
            return []
        modified = item.get("modified", {}).get("S")
        by = item.get("by", {}).get("S")
        return [
            Version(
                version=str(item.get("version", {}).get("N", "0")),
                modified=datetime.fromisoformat(modified) if modified else None,
                latest=True,
                secure=crypto.is_envelope(value_of(item, self.reader, stage, key)),
                by=by or None,
                by_unknown=None if by else NOT_RECORDED,
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

    # -- helpers -----------------------------------------------------------------------------

    def limit(self, stage: str, key: str, value: str) -> str | None:
        """DynamoDB's key sizes, and its 400 KB item size."""
        if self.reader.layout == "stage-key" and utf8_size(key) > _MAX_SORT_KEY:
            return f"the key is {utf8_size(key)} bytes as UTF-8; a DynamoDB sort key holds at most {_MAX_SORT_KEY}"
        if self.reader.layout == "flat" and utf8_size(flat_id(key, stage)) > _MAX_HASH_KEY:
            return (
                f"the item id {{key}}_{{STAGE}} would be {utf8_size(flat_id(key, stage))} bytes as UTF-8; "
                f"a DynamoDB partition key holds at most {_MAX_HASH_KEY}"
            )
        size = _ITEM_OVERHEAD + utf8_size(stage) + 2 * utf8_size(key) + utf8_size(value)
        if size > _MAX_ITEM:
            return f"the item would be about {size} bytes; DynamoDB holds at most {_MAX_ITEM} bytes an item"
        return None

    def _stored(self, stage: str, keys: Collection[str] | None) -> dict[str, StoredValue]:
        """Raw items of a stage (all of them, or ``keys``), values as stored."""
        self.reader.check_stage(stage)
        out: dict[str, StoredValue] = {}
        if self.reader.layout == "stage-key":
            for item in self.reader.query(stage, "value", "version"):
                key = string(item, "key")
                if keys is None or key in keys:
                    out[key] = self._stored_value(item, stage, key)
            return out
        if keys is not None:
            wanted = {flat_id(key, stage): key for key in keys}
            for item in self.reader.batch_items(wanted, consistent=True):
                key = wanted[string(item, "stage")]
                out[key] = self._stored_value(item, stage, key)
            return out
        suffix = f"_{stage}"
        for page in self.aws.pages("dynamodb:Scan", {"TableName": self.table}, target=self.reader.what):
            for item in page.get("Items", ()):
                item_id = string(item, "stage")
                if not item_id.endswith(suffix) or len(item_id) == len(suffix):
                    continue
                key = item_id[: -len(suffix)]
                if "key" in item and item["key"].get("S") != key:
                    continue  # a key of another stage whose name ends with this one (x_PRD of stage Y_PRD)
                out[key] = self._stored_value(item, stage, key)
        return out

    def _stored_value(self, item: dict[str, Any], stage: str, key: str) -> StoredValue:
        value = value_of(item, self.reader, stage, key)
        version = item.get("version", {}).get("N")
        return StoredValue(value, secure=crypto.is_envelope(value), version=str(version) if version else None)

    def _encrypted(self, stage: str, key: str, value: str, kms_key: str | None) -> tuple[str, bool]:
        """What to store: the envelope when ``kms_key`` is given (a ready envelope is stored as it is)."""
        if kms_key is not None:
            return crypto.encrypt(value, stage=stage, key=key, kms_key=kms_key, kms=self.aws), True
        return value, crypto.is_envelope(value)

    def _item_key(self, stage: str, key: str) -> dict[str, Any]:
        """The primary key of one item; every single-item write and read of the admin side goes through it."""
        self.reader.check_stage(stage)
        if self.reader.layout == "stage-key":
            return {"stage": {"S": stage}, "key": {"S": key}}
        return {"stage": {"S": flat_id(key, stage)}}

    def _call(self, operation: str, request: Mapping[str, Any], *, answers: Collection[str] = ()) -> Any:
        return self.aws.call(f"dynamodb:{operation}", request, target=self.reader.what, answers=answers)


def _put_keys(requests: Collection[Any]) -> list[str]:
    """The keys of the PutRequests of a BatchWriteItem (every item confstage writes carries ``key``)."""
    return [str(request["PutRequest"]["Item"]["key"]["S"]) for request in requests]


def _number(version: str) -> str:
    try:
        return str(int(version))
    except ValueError as exc:
        raise ConfigurationError(f"a DynamoDB version is a whole number, got {version!r}") from exc


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
