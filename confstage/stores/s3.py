"""The admin side of ``s3://``: the bucket created, values written, listed, versioned and rolled back.

``init`` creates the bucket with versioning on and public access blocked. Versions are S3 version ids.
Objects written by ``put`` carry the metadata ``confstage-secure: true|false``, for people browsing the
bucket (reads rely on the envelope alone), and ``confstage-by``: the writer's ARN (STS GetCallerIdentity, asked
once per store), which ``history`` shows per version; a rollback's copy names who rolled back. In the document
layout ``put`` and ``delete`` rewrite the document conditionally (``If-Match`` on its ETag, ``If-None-Match: *``
when it is new), re-reading and retrying when someone else wrote in between, so no update is lost; ``history``
lists the document versions that hold the key, and ``rollback`` writes that version's value back.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from confstage import crypto
from confstage.aws import ErrorAnswer
from confstage.errors import SourceError
from confstage.sources.s3 import DOCUMENT, NOT_FOUND, S3Source

from .base import NOT_RECORDED, Store, StoredValue, Version, WriteLog, utf8_size

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["S3Store"]

_SECURE_META = "confstage-secure"
_BY_META = "confstage-by"
_REWRITE_ATTEMPTS = 5
_MAX_OBJECT_KEY = 1024  # bytes of an S3 object key
_CONFLICT = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})


class S3Store(Store):
    """Writes what an ``S3Source`` reads; an envelope is bound to its stage, so copying one needs a KMS key."""

    def __init__(self, reader: S3Source, transport: Transport | None = None) -> None:
        super().__init__(reader, transport)
        self.reader: S3Source = reader
        self.bucket = reader.bucket

    def init(self) -> None:
        """Create the bucket with versioning enabled and public access blocked; harmless when it exists."""
        request: dict[str, Any] = {"Bucket": self.bucket}
        region = self._region()
        if region and region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": region}
        self.aws.call("s3:CreateBucket", request, target=self._where(""), answers=("BucketAlreadyOwnedByYou",))
        self._call("PutBucketVersioning", "", VersioningConfiguration={"Status": "Enabled"})
        self._call(
            "PutPublicAccessBlock",
            "",
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )

    def limit(self, stage: str, key: str, value: str) -> str | None:
        """S3's 1024-byte object keys (objects layout; in the document layout keys are names inside one object)."""
        if self.reader.layout == "document":
            return None
        size = utf8_size(self.reader.object_key(stage, key))
        if size > _MAX_OBJECT_KEY:
            return f"its object key would be {size} bytes as UTF-8; S3 object keys hold at most {_MAX_OBJECT_KEY}"
        return None

    def _put(self, stage: str, key: str, value: str, kms_key: str | None, expect_version: str | None) -> str | None:
        """One object (or the document rewritten); ``expect_version`` is an S3 version id."""
        stored = self._encrypted(stage, key, value, kms_key)
        if self.reader.layout == "document":
            return self._rewrite(stage, lambda document: document.update({key: stored}), expect_version)
        object_key = self.reader.object_key(stage, key)
        condition: dict[str, str] = {}
        if expect_version is not None:
            head = self._head(object_key)
            current = head.get("VersionId", "null") if head is not None else "0"
            if current != (expect_version or "0"):
                raise self._conflict(stage, key, expect_version)
            condition = {"IfMatch": head["ETag"]} if head is not None else {"IfNoneMatch": "*"}
        response = self._put_object(object_key, stored, **condition)
        if response is None:
            raise self._conflict(stage, key, expect_version)
        return _version_of(response)

    def _prepare(
        self, stage: str, values: Mapping[str, str], kms_key: str | None, encrypted: frozenset[str]
    ) -> dict[str, str]:
        return {
            key: self._encrypted(stage, key, value, kms_key if key in encrypted else None)
            for key, value in values.items()
        }

    def _put_many(self, stage: str, prepared: dict[str, str], log: WriteLog) -> None:
        """Concurrent PUTs (objects), or one rewrite of the document; after a PUT fails no new one starts."""
        if self.reader.layout == "document":
            if prepared:
                self._rewrite(stage, lambda document: document.update(prepared), None)
            log.done(list(prepared))
        else:
            self._put_objects(stage, prepared, log)

    def _put_objects(self, stage: str, bodies: Mapping[str, str], log: WriteLog) -> None:
        """PUT one object per key, ``workers`` at a time; after the first failure the rest are not sent."""
        from concurrent.futures import ThreadPoolExecutor, as_completed

        first: BaseException | None = None
        with ThreadPoolExecutor(max_workers=max(1, min(self.reader.workers, len(bodies)))) as pool:
            futures = {
                pool.submit(self._put_object, self.reader.object_key(stage, key), body): key
                for key, body in bodies.items()
            }
            for future in as_completed(futures):
                if future.cancelled():
                    continue
                error = future.exception()
                if error is None:
                    log.done([futures[future]])
                elif first is None:
                    first = error
                    for pending in futures:
                        pending.cancel()  # those not yet running are never sent
        if first is not None:
            raise first

    def delete(self, stage: str, key: str) -> bool:
        """Remove a key (a delete marker in a versioned bucket; older versions stay for rollback)."""
        if self.reader.layout == "document":
            existed = False

            def remove(document: dict[str, str]) -> bool:
                nonlocal existed
                existed = document.pop(key, None) is not None
                return existed

            self._rewrite(stage, remove, None)
            return existed
        object_key = self.reader.object_key(stage, key)
        if self._head(object_key) is None:
            return False
        self._call("DeleteObject", object_key, Key=object_key)
        return True

    def items(self, stage: str, *, decrypt: bool = False) -> dict[str, StoredValue]:
        """Every key of a stage; secure values stay ciphertext unless ``decrypt``."""
        raw: dict[str, tuple[str | None, str | None]]
        if self.reader.layout == "document":
            document, _, version = self._document_for_write(stage)
            raw = {key: (value, version) for key, value in document.items()}
        else:
            folder = "/".join(part for part in (self.reader.prefix, stage) if part) + "/"
            names = [name[len(folder) :] for name in self._list(folder)]
            read = self.reader.map(lambda name: (name, self._get(self.reader.object_key(stage, name))), names)
            raw = dict(read)
        out: dict[str, StoredValue] = {}
        for key, (value, version) in sorted(raw.items()):
            if value is None:
                continue  # deleted between the listing and the read
            secure = crypto.is_envelope(value)
            if secure and decrypt:
                value = crypto.decrypt(value, stage=stage, key=key, kms=self.aws)
            out[key] = StoredValue(value, secure=secure, version=version)
        return out

    def history(self, stage: str, key: str) -> list[Version]:
        """Versions of a key, newest first (document layout: the document versions holding the key)."""
        object_key = self.reader.object_key(stage, key)
        versions = [v for v in self._versions(object_key) if v["Key"] == object_key]

        def describe(entry: dict[str, Any]) -> Version | None:
            version_id = str(entry["VersionId"])
            extra = {"VersionId": version_id}
            if self.reader.layout != "document":
                extra["Range"] = "bytes=0-3"  # enough to tell an envelope; the metadata comes with any GET
            response = self._get_response(object_key, **extra)
            if response is None:
                return None
            data = self._body(response, object_key)
            if self.reader.layout == "document":
                body = self.reader.decode(data, object_key)
                value = self.reader.parse_document(body, object_key).get(key)
                if value is None:
                    return None
                secure = crypto.is_envelope(value)
            else:
                secure = data.decode("utf-8", "replace") == crypto.PREFIX
            by = (response.get("Metadata") or {}).get(_BY_META) or None
            modified, latest = entry.get("LastModified"), bool(entry.get("IsLatest"))
            return Version(version_id, modified, latest, secure, by, None if by else NOT_RECORDED)

        return [v for v in self.reader.map(describe, versions) if v is not None]  # S3 lists newest first

    def rollback(self, stage: str, key: str, version: str) -> str | None:
        """Make an old version current again (a copy of it becomes the newest version); return the new version."""
        object_key = self.reader.object_key(stage, key)
        if self.reader.layout == "document":
            old = self._document_value(object_key, version, key)
            if old is None:
                raise SourceError(
                    f"version {version} of {self._where(object_key)} holds no key {key!r}",
                    source=self.url,
                    operation="rollback",
                )
            return self._rewrite(stage, lambda document: document.update({key: old}), None)
        head = self._call("HeadObject", object_key, Key=object_key, VersionId=version)
        old_meta = head.get("Metadata") or {}
        response = self._call(
            "CopyObject",
            object_key,
            Key=object_key,
            CopySource={"Bucket": self.bucket, "Key": object_key, "VersionId": version},
            # REPLACE, so the restored version names who restored it; the rest of its metadata is kept.
            MetadataDirective="REPLACE",
            Metadata=self._metadata(str(old_meta.get(_SECURE_META, "false"))),
            ContentType=str(head.get("ContentType") or "text/plain; charset=utf-8"),
        )
        return _version_of(response)

    # -- helpers -----------------------------------------------------------------------------

    def _encrypted(self, stage: str, key: str, value: str, kms_key: str | None) -> str:
        if kms_key is None:
            return value
        return crypto.encrypt(value, stage=stage, key=key, kms_key=kms_key, kms=self.aws)

    def _metadata(self, secure: str) -> dict[str, str]:
        """The metadata of an object confstage writes: whether it is secure, and who wrote it (when known)."""
        writer = self.writer()
        return {_SECURE_META: secure, **({_BY_META: writer} if writer else {})}

    def _put_object(self, object_key: str, body: str, **condition: str) -> dict[str, Any] | None:
        """PUT one object; None when its condition (``If-Match``/``If-None-Match``) failed."""
        secure = "true" if crypto.is_envelope(body) else "false"
        content_type = "application/json" if self.reader.layout == "document" else "text/plain; charset=utf-8"
        request = {
            "Bucket": self.bucket,
            "Key": object_key,
            "Body": body.encode("utf-8"),
            "ContentType": content_type,
            "Metadata": self._metadata(secure),
            **condition,
        }
        response = self.aws.call("s3:PutObject", request, target=self._where(object_key), answers=_CONFLICT)
        return None if isinstance(response, ErrorAnswer) else dict(response)

    def _rewrite(
        self, stage: str, change: Callable[[dict[str, str]], object], expect_version: str | None
    ) -> str | None:
        """Read-modify-write the stage document with If-Match, re-reading when someone else wrote meanwhile."""
        object_key = self.reader.object_key(stage, DOCUMENT)
        for _ in range(_REWRITE_ATTEMPTS):
            document, etag, version = self._document_for_write(stage)
            if expect_version is not None and (version or "0") != (expect_version or "0"):
                raise self._conflict(stage, "", expect_version)
            if change(document) is False:
                return version  # nothing to write
            body = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True)
            response = self._put_object(object_key, body, **({"IfMatch": etag} if etag else {"IfNoneMatch": "*"}))
            if response is not None:
                return _version_of(response)
            if expect_version is not None:
                raise self._conflict(stage, "", expect_version)
            # written by someone else in between: read again
        raise SourceError(
            f"document {self._where(object_key)} kept changing under {_REWRITE_ATTEMPTS} attempts to rewrite it",
            source=self.url,
            operation="s3:PutObject",
        )

    def _document_for_write(self, stage: str) -> tuple[dict[str, str], str | None, str | None]:
        """The current document with its ETag and version id (``{}, None, None`` when there is none)."""
        object_key = self.reader.object_key(stage, DOCUMENT)
        response = self._get_response(object_key)
        if response is None:
            return {}, None, None
        body = self.reader.decode(self._body(response, object_key), object_key)
        return self.reader.parse_document(body, object_key), response.get("ETag"), _version_of(response)

    def _document_value(self, object_key: str, version: str, key: str) -> str | None:
        """The value of ``key`` in one version of a stage document (None when that version does not hold it)."""
        body = self._get(object_key, version)[0]
        return self.reader.parse_document(body, object_key).get(key) if body is not None else None

    def _conflict(self, stage: str, key: str, expect_version: str | None) -> SourceError:
        what = f"key {key!r} of stage {stage!r}" if key else f"the document of stage {stage!r}"
        return SourceError(
            f"{what} in bucket {self.bucket} is no longer at version {expect_version} "
            "(changed by someone else); read it again and retry",
            source=self.url,
            operation="s3:PutObject",
        )

    def _get_response(self, object_key: str, **extra: str) -> dict[str, Any] | None:
        """A plain GetObject (no revalidation); None when the object or version is absent."""
        request = {"Bucket": self.bucket, "Key": object_key, **extra}
        response = self.aws.call("s3:GetObject", request, target=self._where(object_key), answers=NOT_FOUND)
        return None if isinstance(response, ErrorAnswer) else dict(response)

    def _get(
        self, object_key: str, version: str | None = None, byte_range: str | None = None
    ) -> tuple[str | None, str | None]:
        extra = {"VersionId": version} if version else {}
        if byte_range:
            extra["Range"] = byte_range
        response = self._get_response(object_key, **extra)
        if response is None:
            return None, None
        data = self._body(response, object_key)
        if byte_range:
            return data.decode("utf-8", "replace"), _version_of(response)
        return self.reader.decode(data, object_key), _version_of(response)

    def _body(self, response: Mapping[str, Any], object_key: str) -> bytes:
        return self.aws.read_body(response, operation="s3:GetObject", target=self._where(object_key))

    def _head(self, object_key: str) -> dict[str, Any] | None:
        request = {"Bucket": self.bucket, "Key": object_key}
        response = self.aws.call("s3:HeadObject", request, target=self._where(object_key), answers=NOT_FOUND)
        return None if isinstance(response, ErrorAnswer) else dict(response)

    def _list(self, folder: str) -> Iterator[str]:
        request = {"Bucket": self.bucket, "Prefix": folder}
        for page in self.aws.pages("s3:ListObjectsV2", request, target=self._where(folder)):
            for entry in page.get("Contents", ()):
                yield str(entry["Key"])

    def _versions(self, object_key: str) -> Iterator[dict[str, Any]]:
        request = {"Bucket": self.bucket, "Prefix": object_key}
        for page in self.aws.pages("s3:ListObjectVersions", request, target=self._where(object_key)):
            yield from page.get("Versions", ())

    def _call(self, operation: str, object_key: str, **request: Any) -> Any:
        """One S3 call on this bucket."""
        return self.aws.call(f"s3:{operation}", {"Bucket": self.bucket, **request}, target=self._where(object_key))

    def _where(self, object_key: str) -> str:
        return self.reader.where(object_key)

    def _region(self) -> str | None:
        """The region the bucket is created in: the botocore client's."""
        client = getattr(self.transport, "client", None)
        return client("s3").meta.region_name if client is not None else None


def _version_of(response: Mapping[str, Any]) -> str | None:
    version = response.get("VersionId")
    return str(version) if version else None
