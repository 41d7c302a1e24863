"""The admin side of ``ssm://``: parameters written (String, or SecureString under a KMS key), listed, rolled back.

SSM encrypts a SecureString itself, under the key named or, by default, the account's ``alias/aws/ssm``;
it keeps the last 100 versions of a parameter, which ``history`` lists and ``rollback`` writes again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from confstage.aws import ErrorAnswer
from confstage.errors import SourceError
from confstage.sources.ssm import SSMSource

from .base import Store, StoredValue, Version, WriteLog, utf8_size

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["SSMStore"]

# PutParameter's naming constraints: these characters, at most 15 levels, not under aws/ssm, and at
# most 1011 characters counting the ARN in front of the name (arn:aws:ssm:REGION:ACCOUNT:parameter).
_NAME = re.compile(r"[A-Za-z0-9_.\-/]+")
_MAX_LEVELS = 15
_MAX_ARN = 1011
_MAX_VALUE = 8192  # bytes of the advanced tier; the standard tier's 4096 is an account setting away
_MISSING = ("ParameterNotFound", "ParameterVersionNotFound")


class SSMStore(Store):
    """Writes what an ``SSMSource`` reads; SSM encrypts a SecureString itself (default: its AWS-managed key)."""

    default_kms_key = "alias/aws/ssm"

    def __init__(self, reader: SSMSource, transport: Transport | None = None) -> None:
        super().__init__(reader, transport)
        self.reader: SSMSource = reader

    def _put(self, stage: str, key: str, value: str, kms_key: str | None, expect_version: str | None) -> str | None:
        """A String, or a SecureString under ``kms_key``. ``expect_version`` is checked with GetParameter first
        (SSM has no conditional put, so this catches a stale read, not a race)."""
        name = self.reader.name(stage, key)
        if expect_version is not None:
            current = self._call("GetParameter", name, Name=name, WithDecryption=False)
            found = str(current["Parameter"]["Version"]) if current is not None else None
            if found != expect_version:
                raise SourceError(
                    f"parameter {name} is at version {found}, not {expect_version}",
                    source=self.url,
                    operation="ssm:GetParameter",
                )
        return self._put_parameter(name, value, kms_key)

    def _prepare(
        self, stage: str, values: Mapping[str, str], kms_key: str | None, encrypted: frozenset[str]
    ) -> list[tuple[str, str, str | None]]:
        """One PutParameter per value (no batch write), secure ones first: SSM encrypts a SecureString itself,
        so an unusable KMS key fails the first write, with nothing written."""
        order = sorted(values, key=lambda key: key not in encrypted)  # stable
        return [(key, values[key], kms_key if key in encrypted else None) for key in order]

    def _put_many(self, stage: str, prepared: list[tuple[str, str, str | None]], log: WriteLog) -> None:
        for key, value, kms_key in prepared:
            self._put_parameter(self.reader.name(stage, key), value, kms_key)
            log.done([key])

    def delete(self, stage: str, key: str) -> bool:
        name = self.reader.name(stage, key)
        return self._call("DeleteParameter", name, Name=name) is not None

    def items(self, stage: str, *, decrypt: bool = False) -> dict[str, StoredValue]:
        return {
            key: StoredValue(p["Value"], secure=p.get("Type") == "SecureString", version=str(p.get("Version", "")))
            for key, p in self.reader.walk(stage, decrypt=decrypt)
        }

    def history(self, stage: str, key: str) -> list[Version]:
        """Versions of a parameter, newest first (SSM keeps the last 100), each with its ``LastModifiedUser``."""
        entries = self._history(self.reader.name(stage, key))
        return [
            Version(
                str(p["Version"]),
                p.get("LastModifiedDate"),
                i == 0,
                p.get("Type") == "SecureString",
                by=_principal(p),
                by_unknown=None if _principal(p) else _why_unknown(p),
            )
            for i, p in enumerate(entries)
        ]

    def rollback(self, stage: str, key: str, version: str) -> str | None:
        """Write the value of ``version`` again (same type and KMS key) as a new version."""
        name = self.reader.name(stage, key)
        request = {"Name": f"{name}:{version}", "WithDecryption": True}
        old = self.aws.call("ssm:GetParameter", request, target=name)["Parameter"]
        kms_key: str | None = None
        if old.get("Type") == "SecureString":
            entry = next((p for p in self._history(name) if str(p["Version"]) == version), {})
            kms_key = entry.get("KeyId") or self.default_kms_key
        return self.put(stage, key, old["Value"], kms_key=kms_key)

    # -- helpers -----------------------------------------------------------------------------

    def limit(self, stage: str, key: str, value: str) -> str | None:
        """SSM's parameter-name constraints, and empty or too long values."""
        name = self.reader.name(stage, key)
        if not _NAME.fullmatch(name):
            return "an SSM parameter name holds only letters, digits and _ . - / (ASCII)"
        if name.count("/") > _MAX_LEVELS:
            return f"the parameter name would have {name.count('/')} levels; SSM allows at most {_MAX_LEVELS}"
        if name.lstrip("/").lower().startswith(("aws", "ssm")):
            return "an SSM parameter name cannot begin with 'aws' or 'ssm'"
        arn = f"{self._arn_head()}{name}"
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

    def _arn_head(self) -> str:
        """What stands in front of a parameter's name in its ARN, in the partition and region written to."""
        client = getattr(self.transport, "client", None)
        meta = client("ssm").meta if client is not None else None
        partition, region = (meta.partition, meta.region_name) if meta is not None else ("aws-us-gov", "us-gov-west-1")
        return f"arn:{partition}:ssm:{region}:123456789012:parameter"

    def _put_parameter(self, name: str, value: str, kms_key: str | None) -> str:
        request: dict[str, Any] = {"Name": name, "Value": value, "Overwrite": True, "Type": "String"}
        if kms_key:
            request.update(Type="SecureString", KeyId=kms_key)
        response = self.aws.call("ssm:PutParameter", request, target=name)
        return str(response["Version"])

    def _history(self, name: str) -> list[dict[str, Any]]:
        """Every GetParameterHistory entry of a parameter (no values decrypted), newest first."""
        entries: list[dict[str, Any]] = []
        request = {"Name": name, "WithDecryption": False}
        for page in self.aws.pages("ssm:GetParameterHistory", request, target=name, answers=_MISSING):
            entries.extend(page.get("Parameters", ()))
        entries.sort(key=lambda p: int(p["Version"]), reverse=True)
        return entries

    def _call(self, operation: str, name: str, **request: Any) -> dict[str, Any] | None:
        """One SSM call on parameter ``name``; None when the parameter (or version) does not exist."""
        response = self.aws.call(f"ssm:{operation}", request, target=name, answers=_MISSING)
        return None if isinstance(response, ErrorAnswer) else dict(response)


def _principal(parameter: dict[str, Any]) -> str | None:
    """A version's ``LastModifiedUser`` when it names a principal (an ARN); None otherwise."""
    user = parameter.get("LastModifiedUser")
    return user if isinstance(user, str) and user.startswith("arn:") else None


def _why_unknown(parameter: dict[str, Any]) -> str:
    user = parameter.get("LastModifiedUser")
    if not user:
        return "SSM returned no LastModifiedUser"
    return f"SSM's LastModifiedUser is {str(user)[:40]!r}, not an ARN"  # moto answers "N/A"
