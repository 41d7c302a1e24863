"""``ssm:///PATH``: SSM Parameter Store, parameter ``/PATH/{STAGE}/{key}``.

A stage is loaded whole with GetParametersByPath (``WithDecryption``, ``MaxResults=10``, the
service maximum), following ``NextToken``: N parameters cost ⌈N/10⌉ requests (one more, answered
empty, when N is a multiple of 10 and the service returns a token after a full last page). The walk is
recursive, and a nested parameter's key is its name below the stage path, so
``/app/PRD/db/url`` is the key ``db/url`` (``?recursive=false`` loads direct children only).
SecureString values are reported as secrets, so they never reach the /tmp cache in plaintext.

``ssm://app/config`` (host form) names the same path as ``ssm:///app/config``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from confstage import aws
from confstage.errors import SourceError

from .base import Fetched, SourceURL, StoredValue, Version, WriteLog, refuse_writes, refused_error, utf8_size

__all__ = ["SSMSource"]

_PAGE = 10  # GetParametersByPath's MaxResults ceiling
# PutParameter's naming constraints: these characters, at most 15 levels, not under aws/ssm, and at
# most 1011 characters counting the ARN in front of the name (arn:aws:ssm:REGION:ACCOUNT:parameter).
_NAME = re.compile(r"[A-Za-z0-9_.\-/]+")
_MAX_LEVELS = 15
_MAX_ARN = 1011
_MAX_VALUE = 8192  # bytes of the advanced tier; the standard tier's 4096 is an account setting away


class SSMSource:
    """Parameters below ``/PATH/{STAGE}``; a whole stage per fetch."""

    whole_stage = True
    persist = True  # String values may go to /tmp; SecureString values are withheld as secrets

    def __init__(self, path: str, *, recursive: bool = True, client: Any = None, url: str | None = None) -> None:
        self.path = "/" + path.strip("/") if path.strip("/") else ""
        self.recursive = recursive
        self.url = url or f"ssm://{self.path or '/'}"
        self.ttl: float | None = None
        self._client = client
        self._given_client = client  # a client the caller made names the store itself (store_id)

    @classmethod
    def from_url(cls, url: SourceURL) -> SSMSource:
        path = f"{url.netloc}/{url.path.strip('/')}" if url.netloc else url.path
        if "//" in path.strip("/"):
            raise url.error("the parameter path must not contain empty segments")
        return cls(path, recursive=url.take_bool("recursive", True), url=url.url)

    def stage_path(self, stage: str) -> str:
        """The hierarchy a stage lives under: ``/PATH/{STAGE}``."""
        return f"{self.path}/{stage}"

    def name(self, stage: str, key: str) -> str:
        """The full parameter name of a key."""
        return f"{self.stage_path(stage)}/{key.strip('/')}"

    def store_id(self) -> str:
        """What names this store in the /tmp cache: the path and where the client reaches it."""
        return f"{self.url} {aws.store_identity('ssm', made=self._given_client)}"

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        values: dict[str, str] = {}
        secret: list[str] = []
        for key, parameter in self._walk(stage, decrypt=True):
            values[key] = parameter["Value"]
            if parameter.get("Type") == "SecureString":
                secret.append(key)
        return Fetched(values, secret=secret)

    def _walk(self, stage: str, *, decrypt: bool) -> Iterator[tuple[str, dict[str, Any]]]:
        """Every parameter of a stage as (key, parameter), one GetParametersByPath page at a time."""
        path = self.stage_path(stage)
        prefix = path + "/"
        request: dict[str, Any] = {
            "Path": path,
            "Recursive": self.recursive,
            "WithDecryption": decrypt,
            "MaxResults": _PAGE,
        }
        client = self._ssm()
        while True:
            page = aws.call(client, "ssm:GetParametersByPath", request, source=self.url, target=path)
            for parameter in page["Parameters"]:
                name: str = parameter["Name"]
                if name.startswith(prefix):
                    yield name[len(prefix) :], parameter
            token = page.get("NextToken")
            if not token:
                return
            request["NextToken"] = token

    def _ssm(self) -> Any:
        if self._client is None:
            self._client = aws.client("ssm")
        return self._client

    def __repr__(self) -> str:
        return f"SSMSource({self.url!r})"

    # -- the admin side (WritableSource), used by the CLI ------------------------------------

    def init(self) -> None:
        """Nothing to create: parameter hierarchies exist as soon as a parameter does."""

    def put(
        self,
        stage: str,
        key: str,
        value: str,
        *,
        kms_key: str | None = None,
        expect_version: str | None = None,
    ) -> str | None:
        """Write a String, or a SecureString encrypted under ``kms_key``; return the new version.

        ``expect_version`` is checked with GetParameter before writing (SSM has no conditional put,
        so this catches a stale read, not a race).
        """
        self._refuse(stage, {key: value})
        name = self.name(stage, key)
        if expect_version is not None:
            current = self._call("GetParameter", name, Name=name, WithDecryption=False, missing=None)
            found = str(current["Parameter"]["Version"]) if current else None
            if found != expect_version:
                raise SourceError(
                    f"parameter {name} is at version {found}, not {expect_version}",
                    source=self.url,
                    operation="ssm:GetParameter",
                )
        return self._put(name, value, kms_key)

    def _put(self, name: str, value: str, kms_key: str | None) -> str:
        request: dict[str, Any] = {"Name": name, "Value": value, "Overwrite": True, "Type": "String"}
        if kms_key:
            request.update(Type="SecureString", KeyId=kms_key)
        response = self._call("PutParameter", name, **request)
        return str(response["Version"])

    def put_many(
        self,
        stage: str,
        values: Mapping[str, str],
        *,
        kms_key: str | None = None,
        secure: Collection[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """One PutParameter per value (SSM has no batch write), every name checked first.

        SSM encrypts a SecureString itself, so the KMS key is proven by writing a secure value
        first: an unusable key fails that write, with nothing written.
        """
        self._refuse(stage, values)
        encrypted = set(values if secure is None else secure) if kms_key else set()
        order = sorted(values, key=lambda key: key not in encrypted)  # secure values first, stable
        log = WriteLog(values, progress)
        try:
            for key in order:
                self._put(self.name(stage, key), values[key], kms_key if key in encrypted else None)
                log.done([key])
        except Exception as exc:
            raise log.failed(exc, source=self.url) from exc

    def check_write(self, stage: str, values: Mapping[str, str]) -> dict[str, str]:
        """Keys SSM cannot hold: the key rule, its parameter-name constraints, and empty or too long values."""
        return refuse_writes(stage, values, lambda key, value: self._limit(stage, key, value))

    def _limit(self, stage: str, key: str, value: str) -> str | None:
        name = self.name(stage, key)
        if not _NAME.fullmatch(name):
            return "an SSM parameter name holds only letters, digits and _ . - / (ASCII)"
        if name.count("/") > _MAX_LEVELS:
            return f"the parameter name would have {name.count('/')} levels; SSM allows at most {_MAX_LEVELS}"
        if name.lstrip("/").lower().startswith(("aws", "ssm")):
            return "an SSM parameter name cannot begin with 'aws' or 'ssm'"
        client = self._ssm()
        arn = f"arn:{client.meta.partition}:ssm:{client.meta.region_name}:123456789012:parameter{name}"
        if len(arn) > _MAX_ARN:
            return (
                f"the parameter's ARN would be {len(arn)} characters; SSM allows at most {_MAX_ARN} "
                "(the name counts with the ARN in front of it)"
            )
        if not value:
            return "SSM cannot store an empty value"
        if utf8_size(value) > _MAX_VALUE:
            return f"the value is {utf8_size(value)} bytes; an SSM parameter holds at most {_MAX_VALUE}"
        return None

    def _refuse(self, stage: str, values: Mapping[str, str]) -> None:
        refused = self.check_write(stage, values)
        if refused:
            raise refused_error(refused, source=self.url)

    def delete(self, stage: str, key: str) -> bool:
        name = self.name(stage, key)
        return self._call("DeleteParameter", name, Name=name, missing=None) is not None

    def items(self, stage: str, *, decrypt: bool = False) -> dict[str, StoredValue]:
        return {
            key: StoredValue(p["Value"], secure=p.get("Type") == "SecureString", version=str(p.get("Version", "")))
            for key, p in self._walk(stage, decrypt=decrypt)
        }

    def history(self, stage: str, key: str) -> list[Version]:
        """Versions of a parameter, newest first (SSM keeps the last 100)."""
        entries = self._history(self.name(stage, key))
        return [
            Version(str(p["Version"]), p.get("LastModifiedDate"), i == 0, p.get("Type") == "SecureString")
            for i, p in enumerate(entries)
        ]

    def rollback(self, stage: str, key: str, version: str) -> str | None:
        """Write the value of ``version`` again (same type and KMS key) as a new version."""
        name = self.name(stage, key)
        old = self._call("GetParameter", name, Name=f"{name}:{version}", WithDecryption=True)["Parameter"]
        kms_key: str | None = None
        if old.get("Type") == "SecureString":
            entry = next((p for p in self._history(name) if str(p["Version"]) == version), {})
            kms_key = entry.get("KeyId") or "alias/aws/ssm"
        return self.put(stage, key, old["Value"], kms_key=kms_key)

    def _history(self, name: str) -> list[dict[str, Any]]:
        """Every GetParameterHistory entry of a parameter (no values decrypted), newest first."""
        entries: list[dict[str, Any]] = []
        request: dict[str, Any] = {"Name": name, "WithDecryption": False}
        while True:
            page = self._call("GetParameterHistory", name, missing=None, **request)
            if page is None:
                return []
            entries.extend(page.get("Parameters", ()))
            if not page.get("NextToken"):
                break
            request["NextToken"] = page["NextToken"]
        entries.sort(key=lambda p: int(p["Version"]), reverse=True)
        return entries

    def _call(self, operation: str, name: str, missing: Any = ..., **request: Any) -> Any:
        """One SSM call; ``ParameterNotFound`` returns ``missing`` when given, anything else is a SourceError."""
        from botocore.exceptions import BotoCoreError, ClientError

        method = getattr(self._ssm(), _snake(operation))
        try:
            return method(**request)
        except ClientError as exc:
            if missing is not ... and aws.error_code(exc) in ("ParameterNotFound", "ParameterVersionNotFound"):
                return missing
            raise aws.source_error(exc, source=self.url, operation=f"ssm:{operation}", target=name) from exc
        except BotoCoreError as exc:
            raise aws.source_error(exc, source=self.url, operation=f"ssm:{operation}", target=name) from exc


def _snake(operation: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in operation).lstrip("_")
