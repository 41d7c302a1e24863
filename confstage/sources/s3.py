"""``s3://BUCKET[/PREFIX]``: configuration in a versioned S3 bucket, a folder per stage.

Layouts (``?layout=``):

* ``objects`` (default): object ``PREFIX/{STAGE}/{key}``; the body is the value, UTF-8. One GET
  per key (a ``get_many`` runs them concurrently).
* ``document``: object ``PREFIX/{STAGE}/config.json``, a JSON object of string values. One GET
  loads the whole stage. A document that is not a JSON object, or holds a value that is not a
  string, is a ``SourceError`` naming bucket and object (never the content).

Revalidation: the ETag and body of every object read are remembered in memory (the body as
stored, so a secure value stays ciphertext there); when the cache layer asks again after the TTL
the GET carries ``If-None-Match`` and an unchanged object costs a 304 with no body.

A missing object is "not found" (the chain falls through); AccessDenied, a missing bucket or any
other failure is a ``SourceError`` naming bucket and object. Without ``s3:ListBucket`` S3 answers
403 for a missing object, which is then an error rather than "not found".

Secure values: a value (an object's body, or a string inside the document) that is a ``cs1:``
envelope (``confstage.crypto``) is decrypted on fetch and reported as secret, so it never
reaches the /tmp cache in plaintext. Objects written by ``put`` also carry the metadata
``confstage-secure: true|false``, for people browsing the bucket; reads rely on the envelope alone.

Writing (the admin CLI): ``init`` creates the bucket with versioning on and public access
blocked. Versions are S3 version ids. In the document layout ``put`` and ``delete`` rewrite the
document conditionally (``If-Match`` on its ETag, ``If-None-Match: *`` when it is new), re-reading
and retrying when someone else wrote in between, so no update is lost; ``history`` lists the
document versions that hold the key, and ``rollback`` writes that version's value back.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any, TypeVar

from confstage import aws, crypto
from confstage.errors import ConfigurationError, SourceError

from .base import Fetched, SourceURL, StoredValue, Version, WriteLog, refuse_writes, refused_error, utf8_size

__all__ = ["S3Source"]

LAYOUTS = ("objects", "document")
DOCUMENT = "config.json"
_SECURE_META = "confstage-secure"
_REWRITE_ATTEMPTS = 5
_MAX_OBJECT_KEY = 1024  # bytes of an S3 object key
_NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_NOT_MODIFIED = frozenset({"304", "NotModified"})
_CONFLICT = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})

_INVALID = object()  # what a document that does not parse is read as

T = TypeVar("T")


class S3Source:
    """A versioned bucket with a folder per stage."""

    persist = True

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        layout: str = "objects",
        client: Any = None,
        kms_client: Any = None,
        url: str | None = None,
        workers: int = 8,
    ) -> None:
        if layout not in LAYOUTS:
            raise ConfigurationError(f"s3 layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.layout = layout
        self.url = url or f"s3://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        self.ttl: float | None = None
        self.whole_stage = layout == "document"
        self._client = client
        self._given_client = client  # a client the caller made names the store itself (store_id)
        self._kms_client = kms_client
        self._workers = workers
        self._seen: dict[str, tuple[str, str]] = {}  # object key -> (ETag, body as stored), memory only
        self._seen_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: SourceURL) -> S3Source:
        if not url.netloc:
            raise url.error("expected s3://BUCKET or s3://BUCKET/PREFIX")
        return cls(url.netloc, url.path, layout=url.take_choice("layout", LAYOUTS), url=url.url)

    def __repr__(self) -> str:
        return f"S3Source({self.url!r})"

    def object_key(self, stage: str, key: str) -> str:
        """Where a key of a stage lives (the document, in the document layout)."""
        name = DOCUMENT if self.layout == "document" else key
        return "/".join(part for part in (self.prefix, stage, name) if part)

    def store_id(self) -> str:
        """What names this store in the /tmp cache: the bucket and prefix, and where the client reaches them."""
        return f"{self.url} {aws.store_identity('s3', made=self._given_client)}"

    # -- reading -----------------------------------------------------------------------------

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        if self.layout == "document":
            object_key = self.object_key(stage, DOCUMENT)
            body = self._read(object_key)
            raw = self._parse_document(body, object_key) if body is not None else {}
        else:
            bodies = self._map(lambda key: (key, self._read(self.object_key(stage, key))), list(keys))
            raw = {key: body for key, body in bodies if body is not None}
        return crypto.open_envelopes(raw, stage=stage, kms=self._kms, source=self.url)

    def _read(self, object_key: str) -> str | None:
        """The body of an object (None when absent), revalidated with its remembered ETag."""
        seen = self._seen.get(object_key)
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": object_key}
        if seen is not None:
            request["IfNoneMatch"] = seen[0]
        where = self._where(object_key)
        answers = _NOT_FOUND | _NOT_MODIFIED if seen is not None else _NOT_FOUND
        response = aws.call(self._s3(), "s3:GetObject", request, source=self.url, target=where, answers=answers)
        if isinstance(response, aws.ErrorAnswer):
            if seen is not None and response.code in _NOT_MODIFIED:
                return seen[1]
            with self._seen_lock:
                self._seen.pop(object_key, None)
            return None
        data = aws.read_body(response, source=self.url, operation="s3:GetObject", target=where)
        body = self._decode(data, object_key)
        etag = response.get("ETag")
        if etag:
            with self._seen_lock:
                self._seen[object_key] = (etag, body)
        return body

    def _decode(self, data: bytes, object_key: str) -> str:
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        # Raised here, with no cause or context: a UnicodeDecodeError holds the whole body (its ``object``).
        raise SourceError(
            f"object {self._where(object_key)} is not UTF-8 text", source=self.url, operation="s3:GetObject"
        )

    def _parse_document(self, body: str, object_key: str) -> dict[str, str]:
        where = self._where(object_key)
        try:
            document = json.loads(body)
        except (ValueError, RecursionError) as exc:
            at = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
            document = _INVALID
        if document is _INVALID:
            # Raised here, with no cause or context: a JSONDecodeError holds the whole document (its ``doc``).
            raise SourceError(f"document {where} is not valid JSON{at}", source=self.url, operation="s3:GetObject")
        if not isinstance(document, dict):
            raise SourceError(
                f"document {where} must be a JSON object of string values, not a JSON {type(document).__name__}",
                source=self.url,
                operation="s3:GetObject",
            )
        for key, value in document.items():
            if not isinstance(value, str):
                raise SourceError(
                    f"document {where}: the value of key {key!r} must be a JSON string, "
                    f"not a JSON {type(value).__name__}",
                    source=self.url,
                    operation="s3:GetObject",
                )
        return document

    # -- writing (the admin CLI) -------------------------------------------------------------

    def init(self) -> None:
        """Create the bucket with versioning enabled and public access blocked; harmless when it exists."""
        from botocore.exceptions import ClientError

        s3 = self._s3()
        request: dict[str, Any] = {"Bucket": self.bucket}
        region = s3.meta.region_name
        if region and region != "us-east-1":
            request["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            s3.create_bucket(**request)
        except ClientError as exc:
            if aws.error_code(exc) != "BucketAlreadyOwnedByYou":
                raise self._error(exc, "CreateBucket", "") from exc
        self._call("put_bucket_versioning", "PutBucketVersioning", "", VersioningConfiguration={"Status": "Enabled"})
        self._call(
            "put_public_access_block",
            "PutPublicAccessBlock",
            "",
            PublicAccessBlockConfiguration={
                "BlockPublicAcls": True,
                "IgnorePublicAcls": True,
                "BlockPublicPolicy": True,
                "RestrictPublicBuckets": True,
            },
        )

    def put(
        self,
        stage: str,
        key: str,
        value: str,
        *,
        kms_key: str | None = None,
        expect_version: str | None = None,
    ) -> str | None:
        """Write one value; ``expect_version`` (an S3 version id, "0": must not exist) guards the write."""
        self._refuse(stage, {key: value})
        stored = self._sealed(stage, key, value, kms_key)
        if self.layout == "document":
            return self._rewrite(stage, lambda document: document.update({key: stored}), expect_version)
        object_key = self.object_key(stage, key)
        condition: dict[str, str] = {}
        if expect_version is not None:
            head = self._head(object_key)
            current = head.get("VersionId", "null") if head is not None else "0"
            if current != (expect_version or "0"):
                raise self._conflict(stage, key, expect_version)
            condition = {"IfMatch": head["ETag"]} if head is not None else {"IfNoneMatch": "*"}
        try:
            response = self._put_object(object_key, stored, **condition)
        except SourceError as exc:
            if _conflicted(exc):
                raise self._conflict(stage, key, expect_version) from exc.__cause__
            raise
        return _version_of(response)

    def put_many(
        self,
        stage: str,
        values: Mapping[str, str],
        *,
        kms_key: str | None = None,
        secure: Collection[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Write many values: concurrent PUTs (objects), or one rewrite of the document.

        Every key is checked and every secure value sealed before the first PUT. After a PUT fails
        no new one starts, and ``PartialWriteError`` names the objects written and those not.
        """
        self._refuse(stage, values)
        stored = {
            key: self._sealed(stage, key, value, kms_key if secure is None or key in secure else None)
            for key, value in values.items()
        }
        log = WriteLog(values, progress)
        try:
            if self.layout == "document":
                if stored:
                    self._rewrite(stage, lambda document: document.update(stored), None)
                log.done(list(stored))
            else:
                self._put_objects(stage, stored, log)
        except Exception as exc:
            raise log.failed(exc, source=self.url) from exc

    def _put_objects(self, stage: str, bodies: Mapping[str, str], log: WriteLog) -> None:
        """PUT one object per key, ``workers`` at a time; after the first failure the rest are not sent."""
        from concurrent.futures import ThreadPoolExecutor, as_completed

        first: BaseException | None = None
        with ThreadPoolExecutor(max_workers=max(1, min(self._workers, len(bodies)))) as pool:
            futures = {
                pool.submit(self._put_object, self.object_key(stage, key), body): key for key, body in bodies.items()
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
        if self.layout == "document":
            existed = False

            def remove(document: dict[str, str]) -> bool:
                nonlocal existed
                existed = document.pop(key, None) is not None
                return existed

            self._rewrite(stage, remove, None)
            return existed
        object_key = self.object_key(stage, key)
        if self._head(object_key) is None:
            return False
        self._call("delete_object", "DeleteObject", object_key, Key=object_key)
        return True

    def items(self, stage: str, *, decrypt: bool = False) -> dict[str, StoredValue]:
        """Every key of a stage; secure values stay ciphertext unless ``decrypt``."""
        raw: dict[str, tuple[str | None, str | None]]
        if self.layout == "document":
            document, _, version = self._document_for_write(stage)
            raw = {key: (value, version) for key, value in document.items()}
        else:
            folder = "/".join(part for part in (self.prefix, stage) if part) + "/"
            names = [name[len(folder) :] for name in self._list(folder)]
            raw = dict(self._map(lambda name: (name, self._get_versioned(self.object_key(stage, name))), names))
        out: dict[str, StoredValue] = {}
        for key, (value, version) in sorted(raw.items()):
            if value is None:
                continue  # deleted between the listing and the read
            secure = crypto.is_envelope(value)
            if secure and decrypt:
                value = crypto.decrypt(value, stage=stage, key=key, client=self._kms(), source=self.url)
            out[key] = StoredValue(value, secure=secure, version=version)
        return out

    def history(self, stage: str, key: str) -> list[Version]:
        """Versions of a key, newest first (document layout: the document versions holding the key)."""
        object_key = self.object_key(stage, key)
        versions = [v for v in self._versions(object_key) if v["Key"] == object_key]

        def describe(entry: dict[str, Any]) -> Version | None:
            version_id = str(entry["VersionId"])
            if self.layout == "document":
                body = self._get_versioned(object_key, version_id)[0]
                value = self._parse_document(body, object_key).get(key) if body is not None else None
                if value is None:
                    return None
                secure = crypto.is_envelope(value)
            else:
                head = self._get_versioned(object_key, version_id, byte_range="bytes=0-3")[0]
                secure = head == crypto.PREFIX
            return Version(version_id, entry.get("LastModified"), bool(entry.get("IsLatest")), secure)

        return [v for v in self._map(describe, versions) if v is not None]  # S3 lists newest first

    def rollback(self, stage: str, key: str, version: str) -> str | None:
        """Make an old version current again (a copy of it becomes the newest version); return the new version."""
        object_key = self.object_key(stage, key)
        if self.layout == "document":
            body = self._get_versioned(object_key, version)[0]
            old = self._parse_document(body, object_key).get(key) if body is not None else None
            if old is None:
                raise SourceError(
                    f"version {version} of {self._where(object_key)} holds no key {key!r}",
                    source=self.url,
                    operation="rollback",
                )
            return self._rewrite(stage, lambda document: document.update({key: old}), None)
        response = self._call(
            "copy_object",
            "CopyObject",
            object_key,
            Key=object_key,
            CopySource={"Bucket": self.bucket, "Key": object_key, "VersionId": version},
            MetadataDirective="COPY",
        )
        return _version_of(response)

    # -- writing helpers ---------------------------------------------------------------------

    def check_write(self, stage: str, values: Mapping[str, str]) -> dict[str, str]:
        """Keys the bucket cannot hold: the key rule, and S3's 1024-byte object keys (objects layout)."""
        return refuse_writes(stage, values, lambda key, value: self._limit(stage, key))

    def _limit(self, stage: str, key: str) -> str | None:
        if self.layout == "document":
            return None  # keys are names inside one JSON object
        size = utf8_size(self.object_key(stage, key))
        if size > _MAX_OBJECT_KEY:
            return f"its object key would be {size} bytes as UTF-8; S3 object keys hold at most {_MAX_OBJECT_KEY}"
        return None

    def _refuse(self, stage: str, values: Mapping[str, str]) -> None:
        refused = self.check_write(stage, values)
        if refused:
            raise refused_error(refused, source=self.url)

    def _sealed(self, stage: str, key: str, value: str, kms_key: str | None) -> str:
        if kms_key is None:
            return value
        return crypto.encrypt(value, stage=stage, key=key, kms_key=kms_key, client=self._kms(), source=self.url)

    def _put_object(self, object_key: str, body: str, **condition: str) -> Any:
        secure = "true" if crypto.is_envelope(body) else "false"
        content_type = "application/json" if self.layout == "document" else "text/plain; charset=utf-8"
        return self._call(
            "put_object",
            "PutObject",
            object_key,
            Key=object_key,
            Body=body.encode("utf-8"),
            ContentType=content_type,
            Metadata={_SECURE_META: secure},
            **condition,
        )

    def _rewrite(
        self, stage: str, change: Callable[[dict[str, str]], object], expect_version: str | None
    ) -> str | None:
        """Read-modify-write the stage document with If-Match, re-reading when someone else wrote meanwhile."""
        object_key = self.object_key(stage, DOCUMENT)
        for _ in range(_REWRITE_ATTEMPTS):
            document, etag, version = self._document_for_write(stage)
            if expect_version is not None and (version or "0") != (expect_version or "0"):
                raise self._conflict(stage, "", expect_version)
            if change(document) is False:
                return version  # nothing to write
            body = json.dumps(document, ensure_ascii=False, indent=1, sort_keys=True)
            condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
            try:
                response = self._put_object(object_key, body, **condition)
            except SourceError as exc:
                if _conflicted(exc):
                    if expect_version is not None:
                        raise self._conflict(stage, "", expect_version) from exc.__cause__
                    continue  # written by someone else in between: read again
                raise
            return _version_of(response)
        raise SourceError(
            f"document {self._where(object_key)} kept changing under {_REWRITE_ATTEMPTS} attempts to rewrite it",
            source=self.url,
            operation="s3:PutObject",
        )

    def _document_for_write(self, stage: str) -> tuple[dict[str, str], str | None, str | None]:
        """The current document with its ETag and version id (``{}, None, None`` when there is none)."""
        object_key = self.object_key(stage, DOCUMENT)
        response = self._get_response(object_key)
        if response is None:
            return {}, None, None
        body = self._decode(response["Body"].read(), object_key)
        return self._parse_document(body, object_key), response.get("ETag"), _version_of(response)

    def _conflict(self, stage: str, key: str, expect_version: str | None) -> SourceError:
        what = f"key {key!r} of stage {stage!r}" if key else f"the document of stage {stage!r}"
        return SourceError(
            f"{what} in bucket {self.bucket} is no longer at version {expect_version} "
            "(changed by someone else); read it again and retry",
            source=self.url,
            operation="s3:PutObject",
        )

    # -- plumbing ----------------------------------------------------------------------------

    def _get_response(self, object_key: str, **extra: str) -> Any:
        """A plain GetObject (no revalidation); None when the object or version is absent."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return self._s3().get_object(Bucket=self.bucket, Key=object_key, **extra)
        except ClientError as exc:
            if aws.error_code(exc) in _NOT_FOUND:
                return None
            raise self._error(exc, "GetObject", object_key) from exc
        except BotoCoreError as exc:
            raise self._error(exc, "GetObject", object_key) from exc

    def _get_versioned(
        self, object_key: str, version: str | None = None, byte_range: str | None = None
    ) -> tuple[str | None, str | None]:
        extra = {"VersionId": version} if version else {}
        if byte_range:
            extra["Range"] = byte_range
        response = self._get_response(object_key, **extra)
        if response is None:
            return None, None
        data: bytes = response["Body"].read()
        if byte_range:
            return data.decode("utf-8", "replace"), _version_of(response)
        return self._decode(data, object_key), _version_of(response)

    def _head(self, object_key: str) -> dict[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response: dict[str, Any] = self._s3().head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as exc:
            if aws.error_code(exc) in _NOT_FOUND:
                return None
            raise self._error(exc, "HeadObject", object_key) from exc
        except BotoCoreError as exc:
            raise self._error(exc, "HeadObject", object_key) from exc
        return response

    def _list(self, folder: str) -> Iterator[str]:
        request: dict[str, Any] = {"Prefix": folder}
        while True:
            page = self._call("list_objects_v2", "ListObjectsV2", folder, **request)
            for entry in page.get("Contents", ()):
                yield str(entry["Key"])
            if not page.get("IsTruncated"):
                return
            request["ContinuationToken"] = page["NextContinuationToken"]

    def _versions(self, object_key: str) -> Iterator[dict[str, Any]]:
        request: dict[str, Any] = {"Prefix": object_key}
        while True:
            page = self._call("list_object_versions", "ListObjectVersions", object_key, **request)
            yield from page.get("Versions", ())
            if not page.get("IsTruncated"):
                return
            request["KeyMarker"] = page.get("NextKeyMarker")
            request["VersionIdMarker"] = page.get("NextVersionIdMarker")

    def _call(self, method: str, operation: str, object_key: str, **request: Any) -> Any:
        """One S3 call through ``aws.call`` (``method`` is boto3's spelling of ``operation``)."""
        return aws.call(
            self._s3(),
            f"s3:{operation}",
            {"Bucket": self.bucket, **request},
            source=self.url,
            target=self._where(object_key),
        )

    def _map(self, work: Callable[[Any], T], items: list[Any]) -> list[T]:
        """``work`` over ``items``, concurrently when there are several (boto3 clients are thread-safe)."""
        if len(items) <= 1 or self._workers <= 1:
            return [work(item) for item in items]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self._workers, len(items))) as pool:
            return list(pool.map(work, items))

    def _error(self, exc: BaseException, operation: str, object_key: str) -> SourceError:
        error: SourceError = aws.source_error(
            exc, source=self.url, operation=f"s3:{operation}", target=self._where(object_key)
        )
        return error

    def _where(self, object_key: str) -> str:
        return f"s3://{self.bucket}/{object_key}" if object_key else f"bucket {self.bucket}"

    def _s3(self) -> Any:
        if self._client is None:
            self._client = aws.client("s3")
        return self._client

    def _kms(self) -> Any:
        if self._kms_client is None:
            self._kms_client = aws.client("kms")
        return self._kms_client


def _version_of(response: Mapping[str, Any]) -> str | None:
    version = response.get("VersionId")
    return str(version) if version else None


def _conflicted(exc: SourceError) -> bool:
    """Whether a failed conditional write failed on its condition (someone else wrote first)."""
    cause = exc.__cause__
    return cause is not None and aws.error_code(cause) in _CONFLICT
