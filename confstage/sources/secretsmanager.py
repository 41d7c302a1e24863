"""``secretsmanager://PREFIX``: one secret per stage, ``PREFIX/{STAGE}``, a JSON object of keys.

One GetSecretValue (version stage ``AWSCURRENT``) loads the whole stage; every value is a
secret, so nothing of it reaches the /tmp cache. A missing secret means the stage has no keys
here (the chain falls through); a secret that is not a JSON object of strings is a
``SourceError`` naming the secret and never quoting its content.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from typing import Any

from confstage import aws
from confstage.errors import SourceError

from .base import Fetched, SourceURL, StoredValue, Version, WriteLog, refuse_writes, refused_error, utf8_size

__all__ = ["SecretsManagerSource"]

_GET = "secretsmanager:GetSecretValue"
_MAX_SECRET = 65536  # bytes of a SecretString
_INVALID = object()  # what a secret that does not parse is read as
_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


class SecretsManagerSource:
    """The secret ``PREFIX/{STAGE}``; every value is a secret."""

    whole_stage = True
    persist = False  # every value is a secret: a /tmp snapshot would hold key names only

    def __init__(self, prefix: str, *, client: Any = None, url: str | None = None) -> None:
        self.prefix = prefix.strip("/")
        self.url = url or f"secretsmanager://{self.prefix}"
        self.ttl: float | None = None
        self._client = client

    @classmethod
    def from_url(cls, url: SourceURL) -> SecretsManagerSource:
        prefix = f"{url.netloc}/{url.path.strip('/')}".strip("/")
        if not prefix:
            raise url.error("secretsmanager:// needs a prefix, e.g. secretsmanager://myapp")
        return cls(prefix, url=url.url)

    def secret_id(self, stage: str) -> str:
        """The name of a stage's secret: ``PREFIX/{STAGE}``."""
        return f"{self.prefix}/{stage}"

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        document = self._read(self.secret_id(stage))
        return Fetched(document, secret=document.keys())

    def _read(self, secret_id: str, version_id: str | None = None) -> dict[str, str]:
        """The secret's JSON object ({} when the secret does not exist)."""
        request: dict[str, Any] = {"SecretId": secret_id}
        if version_id is not None:
            request["VersionId"] = version_id
        # An absent secret is an empty stage; an absent version of one is an error.
        answers = ("ResourceNotFoundException",) if version_id is None else ()
        response = aws.call(self._sm(), _GET, request, source=self.url, target=secret_id, answers=answers)
        if isinstance(response, aws.ErrorAnswer):
            return {}
        return parse_document(response.get("SecretString"), secret_id=secret_id, source=self.url)

    def _sm(self) -> Any:
        if self._client is None:
            self._client = aws.client("secretsmanager")
        return self._client

    def __repr__(self) -> str:
        return f"SecretsManagerSource({self.url!r})"

    # -- the admin side (WritableSource), used by the CLI ------------------------------------
    # A stage is one secret, so a write reads the document, changes one key and writes it back
    # as a new secret version (not atomic against a concurrent writer of the same stage).

    def init(self) -> None:
        """Nothing to create: a stage's secret is created by its first ``put``."""

    def put(
        self,
        stage: str,
        key: str,
        value: str,
        *,
        kms_key: str | None = None,
        expect_version: str | None = None,
    ) -> str | None:
        """Set one key of the stage's secret; return the new secret version id."""
        self._refuse(stage, {key: value})
        return self._write(stage, {key: value}, (), kms_key=kms_key, expect_version=expect_version)

    def put_many(
        self,
        stage: str,
        values: Mapping[str, str],
        *,
        kms_key: str | None = None,
        secure: Collection[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        """Set many keys in one new secret version (every value is a secret, so ``secure`` changes nothing).

        ``kms_key`` applies when the stage's secret is created; an existing secret keeps its key.
        """
        self._refuse(stage, values)
        log = WriteLog(values, progress)
        try:
            if values:
                self._write(stage, values, (), kms_key=kms_key)
            log.done(list(values))
        except Exception as exc:
            raise log.failed(exc, source=self.url) from exc

    def check_write(self, stage: str, values: Mapping[str, str]) -> dict[str, str]:
        """Keys the stage's secret cannot hold: the key rule, and values past the 64 KB SecretString."""
        return refuse_writes(stage, values, self._limit)

    def _limit(self, key: str, value: str) -> str | None:
        size = utf8_size(json.dumps({key: value}))
        if size > _MAX_SECRET:
            return f"the value is {size} bytes as JSON; a secret holds at most {_MAX_SECRET} bytes in all"
        return None

    def _refuse(self, stage: str, values: Mapping[str, str]) -> None:
        refused = self.check_write(stage, values)
        if refused:
            raise refused_error(refused, source=self.url)

    def delete(self, stage: str, key: str) -> bool:
        if key not in self._read(self.secret_id(stage)):
            return False
        self._write(stage, {}, (key,))
        return True

    def items(self, stage: str, *, decrypt: bool = False) -> dict[str, StoredValue]:
        """Every key of the stage (Secrets Manager decrypts server-side, so ``decrypt`` changes nothing)."""
        return {k: StoredValue(v, secure=True) for k, v in self._read(self.secret_id(stage)).items()}

    def history(self, stage: str, key: str) -> list[Version]:
        """Versions of the stage's secret (a key's history is its secret's), newest first."""
        from botocore.exceptions import BotoCoreError, ClientError

        secret_id = self.secret_id(stage)
        operation = "secretsmanager:ListSecretVersionIds"
        versions: list[dict[str, Any]] = []
        request: dict[str, Any] = {"SecretId": secret_id}
        try:
            while True:
                page = self._sm().list_secret_version_ids(**request)
                versions.extend(page.get("Versions", ()))
                if not page.get("NextToken"):
                    break
                request["NextToken"] = page["NextToken"]
        except ClientError as exc:
            if aws.error_code(exc) == "ResourceNotFoundException":
                return []
            raise aws.source_error(exc, source=self.url, operation=operation, target=secret_id) from exc
        except BotoCoreError as exc:
            raise aws.source_error(exc, source=self.url, operation=operation, target=secret_id) from exc
        # CreatedDate has one-second resolution: the version stages break ties.
        versions.sort(
            key=lambda v: ("AWSCURRENT" in v.get("VersionStages", ()), "AWSPREVIOUS" in v.get("VersionStages", ())),
            reverse=True,
        )
        versions.sort(key=lambda v: v["CreatedDate"].timestamp() if v.get("CreatedDate") else 0.0, reverse=True)
        return [
            Version(v["VersionId"], v.get("CreatedDate"), "AWSCURRENT" in v.get("VersionStages", ()), True)
            for v in versions
        ]

    def rollback(self, stage: str, key: str, version: str) -> str | None:
        """Set ``key`` to its value in secret version ``version`` (other keys untouched)."""
        secret_id = self.secret_id(stage)
        old = self._read(secret_id, version_id=version)
        if key not in old:
            raise SourceError(
                f"key {key!r} is not in version {version} of secret {secret_id}", source=self.url, operation=_GET
            )
        return self._write(stage, {key: old[key]}, ())

    def _write(
        self,
        stage: str,
        updates: Mapping[str, str],
        removals: Collection[str],
        *,
        kms_key: str | None = None,
        expect_version: str | None = None,
    ) -> str | None:
        from botocore.exceptions import BotoCoreError, ClientError

        secret_id = self.secret_id(stage)
        client = self._sm()
        operation = "secretsmanager:GetSecretValue"
        try:
            try:
                current = client.get_secret_value(SecretId=secret_id)
            except ClientError as exc:
                if aws.error_code(exc) != "ResourceNotFoundException":
                    raise
                current = None
            if expect_version is not None and (current or {}).get("VersionId") != expect_version:
                raise SourceError(
                    f"secret {secret_id} is not at version {expect_version}", source=self.url, operation=operation
                )
            document = (
                parse_document(current.get("SecretString"), secret_id=secret_id, source=self.url) if current else {}
            )
            document.update(updates)
            for key in removals:
                document.pop(key, None)
            body = json.dumps(document, sort_keys=True)
            if utf8_size(body) > _MAX_SECRET:
                raise SourceError(
                    f"secret {secret_id} would be {utf8_size(body)} bytes; a SecretString holds at most {_MAX_SECRET}",
                    source=self.url,
                    operation=operation,
                )
            if current is None:
                operation = "secretsmanager:CreateSecret"
                request: dict[str, Any] = {"Name": secret_id, "SecretString": body}
                if kms_key:
                    request["KmsKeyId"] = kms_key
                response = client.create_secret(**request)
            else:
                operation = "secretsmanager:PutSecretValue"
                response = client.put_secret_value(SecretId=secret_id, SecretString=body)
        except (ClientError, BotoCoreError) as exc:
            raise aws.source_error(exc, source=self.url, operation=operation, target=secret_id) from exc
        version: str | None = response.get("VersionId")
        return version


def parse_document(text: str | None, *, secret_id: str, source: str) -> dict[str, str]:
    """A secret's JSON object of string values; errors name the secret and keys, never the content."""
    if text is None:
        raise SourceError(
            f"secret {secret_id} has no SecretString (binary secrets are not supported)", source=source, operation=_GET
        )
    try:
        document = json.loads(text)
    except (ValueError, RecursionError) as exc:
        where = f" (line {exc.lineno}, column {exc.colno})" if isinstance(exc, json.JSONDecodeError) else ""
        document = _INVALID
    if document is _INVALID:
        # Raised here, with no cause and no context: the decoder's JSONDecodeError keeps the whole
        # secret in its ``doc`` attribute, and a handler that logs an exception's chain would show it.
        raise SourceError(f"secret {secret_id} is not valid JSON{where}", source=source, operation=_GET)
    if not isinstance(document, dict):
        raise SourceError(
            f"secret {secret_id} must be a JSON object of keys, got a JSON {_JSON_TYPES.get(type(document), 'value')}",
            source=source,
            operation=_GET,
        )
    wrong = sorted(k for k, v in document.items() if not isinstance(v, str))
    if wrong:
        raise SourceError(
            f"secret {secret_id}: values must be strings; not a string: {', '.join(map(repr, wrong))}",
            source=source,
            operation=_GET,
        )
    return document
