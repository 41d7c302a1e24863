"""The admin side of ``secretsmanager://``: a stage's secret created, rewritten key by key, versioned.

A stage is one secret, so a write reads the document, changes keys and writes it back as a new secret
version (not atomic against a concurrent writer of the same stage). Every value is a secret, encrypted by
Secrets Manager under the secret's own key: ``kms_key`` applies when the stage's secret is created.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from confstage.errors import SourceError
from confstage.sources.secretsmanager import GET, SecretsManagerSource

from .base import Store, StoredValue, Version, WriteLog, utf8_size

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["SecretsManagerStore"]

_MAX_SECRET = 65536  # bytes of a SecretString


class SecretsManagerStore(Store):
    """Writes what a ``SecretsManagerSource`` reads; every value is a secret, so ``secure`` changes nothing."""

    needs_kms_key = False  # every value is encrypted by Secrets Manager, under the secret's key

    def __init__(self, reader: SecretsManagerSource, transport: Transport | None = None) -> None:
        super().__init__(reader, transport)
        self.reader: SecretsManagerSource = reader

    def limit(self, stage: str, key: str, value: str) -> str | None:
        """Values past the 64 KB SecretString."""
        size = utf8_size(json.dumps({key: value}))
        if size > _MAX_SECRET:
            return f"the value is {size} bytes as JSON; a secret holds at most {_MAX_SECRET} bytes in all"
        return None

    def _put(self, stage: str, key: str, value: str, kms_key: str | None, expect_version: str | None) -> str | None:
        """One key of the stage's secret set; the new secret version id."""
        return self._write(stage, {key: value}, (), kms_key=kms_key, expect_version=expect_version)

    def _prepare(
        self, stage: str, values: Mapping[str, str], kms_key: str | None, encrypted: frozenset[str]
    ) -> tuple[Mapping[str, str], str | None]:
        return values, kms_key

    def _put_many(self, stage: str, prepared: tuple[Mapping[str, str], str | None], log: WriteLog) -> None:
        """Every key in one new secret version (``kms_key`` applies when the stage's secret is created)."""
        values, kms_key = prepared
        if values:
            self._write(stage, values, (), kms_key=kms_key)
        log.done(list(values))

    def delete(self, stage: str, key: str) -> bool:
        if key not in self._document(self.reader.secret_id(stage)):
            return False
        self._write(stage, {}, (key,))
        return True

    def items(self, stage: str, *, decrypt: bool = False) -> dict[str, StoredValue]:
        """Every key of the stage (Secrets Manager decrypts server-side, so ``decrypt`` changes nothing)."""
        return {k: StoredValue(v, secure=True) for k, v in self._document(self.reader.secret_id(stage)).items()}

    def history(self, stage: str, key: str) -> list[Version]:
        """Versions of the stage's secret (a key's history is its secret's), newest first."""
        secret_id = self.reader.secret_id(stage)
        versions: list[dict[str, Any]] = []
        request = {"SecretId": secret_id}
        missing = ("ResourceNotFoundException",)
        for page in self.aws.pages("secretsmanager:ListSecretVersionIds", request, target=secret_id, answers=missing):
            versions.extend(page.get("Versions", ()))
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
        secret_id = self.reader.secret_id(stage)
        old = self._document(secret_id, version)
        if key not in old:
            raise SourceError(
                f"key {key!r} is not in version {version} of secret {secret_id}", source=self.url, operation=GET
            )
        return self._write(stage, {key: old[key]}, ())

    def _document(self, secret_id: str, version_id: str | None = None) -> dict[str, str]:
        """The secret's JSON object ({} when the secret does not exist)."""
        response = self.reader.read(secret_id, version_id)
        return self.reader.document(response, secret_id) if response is not None else {}

    def _write(
        self,
        stage: str,
        updates: Mapping[str, str],
        removals: Collection[str],
        *,
        kms_key: str | None = None,
        expect_version: str | None = None,
    ) -> str | None:
        secret_id = self.reader.secret_id(stage)
        current = self.reader.read(secret_id)
        if expect_version is not None and (current or {}).get("VersionId") != expect_version:
            raise SourceError(f"secret {secret_id} is not at version {expect_version}", source=self.url, operation=GET)
        document = self.reader.document(current, secret_id) if current is not None else {}
        document.update(updates)
        for key in removals:
            document.pop(key, None)
        body = json.dumps(document, sort_keys=True)
        if utf8_size(body) > _MAX_SECRET:
            raise SourceError(
                f"secret {secret_id} would be {utf8_size(body)} bytes; a SecretString holds at most {_MAX_SECRET}",
                source=self.url,
                operation=GET,
            )
        if current is None:
            request: dict[str, Any] = {"Name": secret_id, "SecretString": body}
            if kms_key:
                request["KmsKeyId"] = kms_key
            response = self.aws.call("secretsmanager:CreateSecret", request, target=secret_id)
        else:
            request = {"SecretId": secret_id, "SecretString": body}
            response = self.aws.call("secretsmanager:PutSecretValue", request, target=secret_id)
        version: str | None = response.get("VersionId")
        return version
