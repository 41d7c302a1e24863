"""``appconfig://``'s admin side: reads for ``list`` and ``diff``; every write refused in one line.

AppConfig content changes by a deployment (a hosted configuration version, a deployment strategy, alarms that
roll it back): that belongs to the deployment pipeline, not to ``confstage put``. So ``put``, ``import``,
``promote``, ``delete``, ``rollback`` and ``init`` raise ``ConfigurationError`` saying so, before any request.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from confstage.errors import ConfigurationError
from confstage.sources.appconfig import AppConfigSource

from .base import Store, StoredValue, Version

__all__ = ["AppConfigStore"]


class AppConfigStore(Store):
    """The stages of an AppConfig profile, read through AppConfigData; nothing written."""

    reader: AppConfigSource

    def refusal(self, what: str) -> ConfigurationError:
        """The one line every write gets."""
        return ConfigurationError(
            f"{self.url} is read-only here: {what} is an AppConfig deployment, and deployments belong to the "
            "deployment pipeline (aws appconfig create-hosted-configuration-version + start-deployment)"
        )

    def init(self) -> None:
        raise self.refusal("creating an application, environment or profile")

    def check_write(self, stage: str, values: Mapping[str, str]) -> dict[str, str]:
        raise self.refusal("writing values")

    def put(
        self,
        stage: str,
        key: str,
        value: str,
        *,
        kms_key: str | None = None,
        expect_version: str | None = None,
    ) -> str | None:
        raise self.refusal("writing values")

    def put_many(
        self,
        stage: str,
        values: Mapping[str, str],
        *,
        kms_key: str | None = None,
        secure: Collection[str] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> None:
        raise self.refusal("writing values")

    def delete(self, stage: str, key: str) -> bool:
        raise self.refusal("deleting a key")

    def rollback(self, stage: str, key: str, version: str) -> str | None:
        raise self.refusal("rolling back")

    def history(self, stage: str, key: str) -> list[Version]:
        """The version label of what a stage serves now (AppConfig keeps versions per document, not per key)."""
        found = self.reader.fetch(stage, ())
        version = self.reader.version(stage)
        if key not in found or not version:
            return []
        # AppConfigData names the version label only; who deployed it is in AppConfig's deployments, not asked here.
        return [Version(version, None, True, by_unknown="AppConfigData does not say who deployed a version")]

    def items(self, stage: str, *, decrypt: bool = False) -> dict[str, StoredValue]:
        """Every key of a stage as deployed, with the deployment's version label."""
        found = self.reader.fetch(stage, ())
        version = self.reader.version(stage)
        return {key: StoredValue(value, False, version) for key, value in found.items()}
