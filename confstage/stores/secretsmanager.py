"""The admin side of ``secretsmanager://``: secrets created, rewritten as new versions, listed, rolled back.

``open_store`` picks the store of the source's layout:

* ``SecretsManagerStore`` (``layout=document``): a stage is one secret, so a write reads the document, changes
  keys and writes it back as a new secret version (not atomic against a concurrent writer of the same stage).
* ``SecretsStore`` (``layout=secrets``): a secret per key. ``put`` creates the secret (CreateSecret) or adds a
  version (PutSecretValue), restoring it first when it is scheduled for deletion; ``delete`` schedules the
  deletion with a recovery window (``recovery_days``, 30 by default), so a key deleted by mistake can be
  restored; ``history`` lists the secret's versions and ``rollback`` writes an old value as a new version.
  There is nothing to create beforehand: ``init`` does nothing.

Every value is a secret, encrypted by Secrets Manager under the secret's own key: ``kms_key`` applies when a
secret is created.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from confstage.aws import Caller, ErrorAnswer
from confstage.errors import SourceError
from confstage.sources.secretsmanager import GET, NAME, SecretsManagerSource

from .base import Store, StoredValue, Version, WriteLog, utf8_size

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["UNKNOWN_WRITER", "SecretsManagerStore", "SecretsStore", "open_store"]

# ListSecretVersionIds gives each version's dates and stages, never who wrote it; CloudTrail's PutSecretValue
# events do, outside this API.
UNKNOWN_WRITER = "the Secrets Manager API does not record the principal (CloudTrail does)"

_MAX_SECRET = 65536  # bytes of a SecretString
_MAX_NAME = 512  # characters of a secret name
_MISSING = ("ResourceNotFoundException",)


def open_store(reader: SecretsManagerSource, transport: Transport | None = None) -> Store:
    """The store of a ``secretsmanager://`` source: its stage documents, or its secret per key."""
    if reader.layout == "secrets":
        return SecretsStore(reader, transport)
    return SecretsManagerStore(reader, transport)


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
        return secret_versions(self.aws, self.reader.secret_id(stage))

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
        return store_secret(self.aws, secret_id, body, kms_key, exists=current is not None)


class SecretsStore(Store):
    """Writes what a ``SecretsManagerSource`` of the secrets layout reads: ``PREFIX/{STAGE}/{key}``, one secret each."""

    needs_kms_key = False  # every value is encrypted by Secrets Manager, under the secret's key
    recovery_days = 30  # DeleteSecret's recovery window (AWS's default; 7 to 30 days)

    def __init__(self, reader: SecretsManagerSource, transport: Transport | None = None) -> None:
        super().__init__(reader, transport)
        self.reader: SecretsManagerSource = reader

    def init(self) -> None:
        """Nothing to create: a key's secret is created by its first ``put``."""

    def limit(self, stage: str, key: str, value: str) -> str | None:
        """Secret names (ASCII letters, digits and ``/_+=.@-``, at most 512) and SecretString (1 byte to 64 KB)."""
        name = self.reader.secret_name(stage, key)
        if not NAME.fullmatch(name):
            return "a secret name holds only ASCII letters, digits and / _ + = . @ -"
        if len(name) > _MAX_NAME:
            return f"the secret name would be {len(name)} characters; Secrets Manager allows at most {_MAX_NAME}"
        if not value:
            return "Secrets Manager cannot store an empty value"
        if utf8_size(value) > _MAX_SECRET:
            return f"the value is {utf8_size(value)} bytes; a secret holds at most {_MAX_SECRET}"
        return None

    def _put(self, stage: str, key: str, value: str, kms_key: str | None, expect_version: str | None) -> str | None:
        """The key's secret created or given a new version; ``expect_version`` is its current version ("0": none)."""
        name = self.reader.secret_name(stage, key)
        state = self._describe(name)
        if expect_version is not None:
            found = _current_version(state) or "0"
            if found != expect_version:
                raise SourceError(
                    f"secret {name} is at version {found}, not {expect_version}",
                    source=self.url,
                    operation="secretsmanager:DescribeSecret",
                )
        return self._write(name, value, kms_key, state)

    def _prepare(
        self, stage: str, values: Mapping[str, str], kms_key: str | None, encrypted: frozenset[str]
    ) -> tuple[list[tuple[str, str, dict[str, Any] | None]], str | None]:
        """Which of the keys' secrets exist (or await deletion), from one filtered listing before the first write."""
        known = self._listed(stage)
        return [(key, value, known.get(key)) for key, value in values.items()], kms_key

    def _put_many(
        self, stage: str, prepared: tuple[list[tuple[str, str, dict[str, Any] | None]], str | None], log: WriteLog
    ) -> None:
        writes, kms_key = prepared
        for key, value, state in writes:
            self._write(self.reader.secret_name(stage, key), value, kms_key, state)
            log.done([key])

    def delete(self, stage: str, key: str) -> bool:
        """Schedule the key's secret for deletion (restorable for ``recovery_days``); False when there is none."""
        name = self.reader.secret_name(stage, key)
        state = self._describe(name)
        if state is None or state.get("DeletedDate"):
            return False
        request = {"SecretId": name, "RecoveryWindowInDays": self.recovery_days}
        answer = self.aws.call("secretsmanager:DeleteSecret", request, target=name, answers=_MISSING)
        return not isinstance(answer, ErrorAnswer)

    def items(self, stage: str, *, decrypt: bool = False) -> dict[str, StoredValue]:
        """Every key of the stage, as the runtime reads it; a secret that cannot be read is its ``SourceError``."""
        found = self.reader.load(stage)
        if found.errors:
            raise found.errors[min(found.errors)]
        return {key: StoredValue(v, secure=True, version=found.versions[key]) for key, v in found.values.items()}

    def history(self, stage: str, key: str) -> list[Version]:
        """Versions of the key's secret, newest first."""
        return secret_versions(self.aws, self.reader.secret_name(stage, key))

    def rollback(self, stage: str, key: str, version: str) -> str | None:
        """Write the value of secret version ``version`` again, as a new version."""
        name = self.reader.secret_name(stage, key)
        old = self.aws.call(GET, {"SecretId": name, "VersionId": version}, target=name)
        text = old.get("SecretString")
        if not isinstance(text, str):
            raise SourceError(
                f"version {version} of secret {name} has no SecretString (binary secrets are not supported)",
                source=self.url,
                operation=GET,
            )
        return self._write(name, text, None, self._describe(name))

    def _write(self, name: str, value: str, kms_key: str | None, state: Mapping[str, Any] | None) -> str | None:
        """CreateSecret, or PutSecretValue (after RestoreSecret when the secret is scheduled for deletion)."""
        restore = state is not None and bool(state.get("DeletedDate"))
        return store_secret(self.aws, name, value, kms_key, exists=state is not None, restore=restore)

    def _describe(self, name: str) -> dict[str, Any] | None:
        """DescribeSecret of a name (None when there is no such secret)."""
        answer = self.aws.call("secretsmanager:DescribeSecret", {"SecretId": name}, target=name, answers=_MISSING)
        return None if isinstance(answer, ErrorAnswer) else dict(answer)

    def _listed(self, stage: str) -> dict[str, dict[str, Any]]:
        """The stage's secrets by key, as ListSecrets describes them (those scheduled for deletion included)."""
        head = self.reader.stage_prefix(stage)
        request = {"Filters": self.reader.name_filter(stage), "IncludePlannedDeletion": True, "MaxResults": 100}
        listed: dict[str, dict[str, Any]] = {}
        for page in self.aws.pages("secretsmanager:ListSecrets", request, target=head):
            for secret in page.get("SecretList", ()):
                key = self.reader.key_of(stage, str(secret.get("Name", "")))
                if key is not None:
                    listed[key] = secret
        return listed


def store_secret(
    aws: Caller, name: str, value: str, kms_key: str | None, *, exists: bool, restore: bool = False
) -> str | None:
    """A new version of secret ``name``: CreateSecret (under ``kms_key`` if given) when it does not exist, else
    PutSecretValue, after RestoreSecret when ``restore``; the version id."""
    if not exists:
        request: dict[str, Any] = {"Name": name, "SecretString": value}
        if kms_key:
            request["KmsKeyId"] = kms_key
        response = aws.call("secretsmanager:CreateSecret", request, target=name)
    else:
        if restore:
            aws.call("secretsmanager:RestoreSecret", {"SecretId": name}, target=name)
        response = aws.call("secretsmanager:PutSecretValue", {"SecretId": name, "SecretString": value}, target=name)
    version: str | None = response.get("VersionId")
    return version


def secret_versions(aws: Caller, secret_id: str) -> list[Version]:
    """A secret's versions (ListSecretVersionIds), newest first; none when the secret does not exist."""
    versions: list[dict[str, Any]] = []
    request = {"SecretId": secret_id}
    for page in aws.pages("secretsmanager:ListSecretVersionIds", request, target=secret_id, answers=_MISSING):
        versions.extend(page.get("Versions", ()))
    # CreatedDate has one-second resolution: the version stages break ties.
    versions.sort(
        key=lambda v: ("AWSCURRENT" in v.get("VersionStages", ()), "AWSPREVIOUS" in v.get("VersionStages", ())),
        reverse=True,
    )
    versions.sort(key=lambda v: v["CreatedDate"].timestamp() if v.get("CreatedDate") else 0.0, reverse=True)
    return [
        Version(
            v["VersionId"],
            v.get("CreatedDate"),
            "AWSCURRENT" in v.get("VersionStages", ()),
            True,
            by=None,
            by_unknown=UNKNOWN_WRITER,
        )
        for v in versions
    ]


def _current_version(state: Mapping[str, Any] | None) -> str | None:
    """The AWSCURRENT version of a described secret (None: no secret, or one scheduled for deletion)."""
    if state is None or state.get("DeletedDate"):
        return None
    stages: Mapping[str, Any] = state.get("VersionIdsToStages") or {}
    return next((version for version, labels in stages.items() if "AWSCURRENT" in labels), None)
