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
reaches the /tmp cache in plaintext. Writing is ``confstage.stores.s3``'s.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection
from typing import TYPE_CHECKING, Any, TypeVar

from confstage.aws import Caller, ErrorAnswer
from confstage.errors import ConfigurationError, SourceError
from confstage.transport import NetworkError

from .base import NOT_MODIFIED, Fetched, SourceURL, open_envelopes, parse_json_object

if TYPE_CHECKING:
    from confstage.transport import Transport

    from .base import ObjectBody

__all__ = ["DOCUMENT", "LAYOUTS", "NOT_FOUND", "S3Source"]

LAYOUTS = ("objects", "document")
DOCUMENT = "config.json"
NOT_FOUND = frozenset({"NoSuchKey", "404", "NotFound"})
_NOT_MODIFIED = frozenset({"304", "NotModified"})

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
        transport: Transport | None = None,
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
        self.aws = Caller(self.url, transport)
        self.workers = workers
        self._seen: dict[str, tuple[str, str]] = {}  # object key -> (ETag, body as stored), memory only
        self._seen_lock = threading.Lock()

    @classmethod
    def from_url(cls, url: SourceURL, transport: Transport | None = None) -> S3Source:
        if not url.netloc:
            raise url.error("expected s3://BUCKET or s3://BUCKET/PREFIX")
        return cls(url.netloc, url.path, layout=url.take_choice("layout", LAYOUTS), transport=transport, url=url.url)

    def __repr__(self) -> str:
        return f"S3Source({self.url!r})"

    def object_key(self, stage: str, key: str) -> str:
        """Where a key of a stage lives (the document, in the document layout)."""
        name = DOCUMENT if self.layout == "document" else key
        return "/".join(part for part in (self.prefix, stage, name) if part)

    def where(self, object_key: str) -> str:
        """An object as errors name it."""
        return f"s3://{self.bucket}/{object_key}" if object_key else f"bucket {self.bucket}"

    def identity(self) -> str:
        """What names this store in the /tmp cache: the bucket and prefix, and where the transport reaches them."""
        return f"{self.url} {self.aws.identity('s3')}"

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        if self.layout == "document":
            object_key = self.object_key(stage, DOCUMENT)
            body = self._read(object_key)
            raw = self.parse_document(body, object_key) if body is not None else {}
        else:
            bodies = self.map(lambda key: (key, self._read(self.object_key(stage, key))), list(keys))
            raw = {key: body for key, body in bodies if body is not None}
        return open_envelopes(raw, stage=stage, kms=self.aws)

    def _get(self, object_key: str, etag: str | None) -> Any:
        """GetObject, conditional on ``etag`` when given: the response, or the ``ErrorAnswer`` of an absent
        object (and of an unchanged one, a 304)."""
        request: dict[str, Any] = {"Bucket": self.bucket, "Key": object_key}
        if etag is not None:
            request["IfNoneMatch"] = etag
        answers = NOT_FOUND | _NOT_MODIFIED if etag is not None else NOT_FOUND
        return self.aws.call("s3:GetObject", request, target=self.where(object_key), answers=answers)

    def _read(self, object_key: str) -> str | None:
        """The body of an object (None when absent), revalidated with its remembered ETag."""
        seen = self._seen.get(object_key)
        where = self.where(object_key)
        response = self._get(object_key, seen[0] if seen is not None else None)
        if isinstance(response, ErrorAnswer):
            if seen is not None and response.code in _NOT_MODIFIED:
                return seen[1]
            with self._seen_lock:
                self._seen.pop(object_key, None)
            return None
        body = self.decode(self.aws.read_body(response, operation="s3:GetObject", target=where), object_key)
        etag = response.get("ETag")
        if etag:
            with self._seen_lock:
                self._seen[object_key] = (etag, body)
        return body

    def open_object(self, stage: str, key: str, *, etag: str | None) -> ObjectBody | object | None:
        """The object of ``key`` as a stream, for ``get_path`` (objects layout): ``NOT_MODIFIED`` when its
        ETag is still ``etag`` (a 304, no body), None when there is no such object. Never read whole here."""
        if self.layout != "objects":
            raise ConfigurationError(f"get_path reads objects one per key: {self.url} is in the {self.layout} layout")
        object_key = self.object_key(stage, key)
        response = self._get(object_key, etag)
        if isinstance(response, ErrorAnswer):
            return NOT_MODIFIED if response.code in _NOT_MODIFIED else None
        size = response.get("ContentLength")
        return _Stream(
            response["Body"], str(response["ETag"]), size if isinstance(size, int) else None, self, object_key
        )

    def decode(self, data: bytes, object_key: str) -> str:
        """An object's body as text; ``SourceError`` (naming the object, never its bytes) when it is not UTF-8."""
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        # Raised here, with no cause or context: a UnicodeDecodeError holds the whole body (its ``object``).
        raise SourceError(
            f"object {self.where(object_key)} is not UTF-8 text", source=self.url, operation="s3:GetObject"
        )

    def parse_document(self, body: str, object_key: str) -> dict[str, str]:
        """A stage document as a dict of strings; errors name the object, never its content."""
        what = f"document {self.where(object_key)}"
        return parse_json_object(body, what=what, source=self.url, operation="s3:GetObject")

    def map(self, work: Callable[[Any], T], items: list[Any]) -> list[T]:
        """``work`` over ``items``, concurrently when there are several (transports are thread-safe)."""
        if len(items) <= 1 or self.workers <= 1:
            return [work(item) for item in items]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
            return list(pool.map(work, items))


class _Stream:
    """An object's body read in chunks (``files.ObjectBody``); a failed read is a ``SourceError`` naming the object."""

    __slots__ = ("_body", "_object_key", "_source", "etag", "size")

    def __init__(self, body: Any, etag: str, size: int | None, source: S3Source, object_key: str) -> None:
        self._body = body
        self.etag = etag
        self.size = size
        self._source = source
        self._object_key = object_key

    def read(self, size: int) -> bytes:
        try:
            data: bytes = self._body.read(size)
        except NetworkError as exc:
            where = self._source.where(self._object_key)
            raise SourceError(
                f"s3:GetObject on {where} failed with {exc}", source=self._source.url, operation="s3:GetObject"
            ) from exc
        return data

    def close(self) -> None:
        self._body.close()
