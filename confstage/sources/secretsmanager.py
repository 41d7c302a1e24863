"""``secretsmanager://PREFIX``: one secret per stage, ``PREFIX/{STAGE}``, a JSON object of keys.

One GetSecretValue (version stage ``AWSCURRENT``) loads the whole stage; every value is a
secret, so nothing of it reaches the /tmp cache. A missing secret means the stage has no keys
here (the chain falls through); a secret that is not a JSON object of strings is a
``SourceError`` naming the secret and never quoting its content. Writing is
``confstage.stores.secretsmanager``'s.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from confstage.aws import Caller, ErrorAnswer
from confstage.errors import SourceError

from .base import Fetched, SourceURL, parse_json_object

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["SecretsManagerSource"]

GET = "secretsmanager:GetSecretValue"


class SecretsManagerSource:
    """The secret ``PREFIX/{STAGE}``; every value is a secret."""

    whole_stage = True
    persist = False  # every value is a secret: a /tmp snapshot would hold key names only

    def __init__(self, prefix: str, *, transport: Transport | None = None, url: str | None = None) -> None:
        self.prefix = prefix.strip("/")
        self.url = url or f"secretsmanager://{self.prefix}"
        self.ttl: float | None = None
        self.aws = Caller(self.url, transport)

    @classmethod
    def from_url(cls, url: SourceURL, transport: Transport | None = None) -> SecretsManagerSource:
        prefix = f"{url.netloc}/{url.path.strip('/')}".strip("/")
        if not prefix:
            raise url.error("secretsmanager:// needs a prefix, e.g. secretsmanager://myapp")
        return cls(prefix, transport=transport, url=url.url)

    def __repr__(self) -> str:
        return f"SecretsManagerSource({self.url!r})"

    def secret_id(self, stage: str) -> str:
        """The name of a stage's secret: ``PREFIX/{STAGE}``."""
        return f"{self.prefix}/{stage}"

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        response = self.read(self.secret_id(stage))
        document = self.document(response, self.secret_id(stage)) if response is not None else {}
        return Fetched(document, secret=document.keys())

    def read(self, secret_id: str, version_id: str | None = None) -> dict[str, Any] | None:
        """A GetSecretValue answer (None when the secret does not exist; an absent version is an error)."""
        request: dict[str, Any] = {"SecretId": secret_id}
        if version_id is not None:
            request["VersionId"] = version_id
        answers = ("ResourceNotFoundException",) if version_id is None else ()
        response = self.aws.call(GET, request, target=secret_id, answers=answers)
        return None if isinstance(response, ErrorAnswer) else dict(response)

    def document(self, response: dict[str, Any], secret_id: str) -> dict[str, str]:
        """A secret's JSON object of string values; errors name the secret and keys, never the content."""
        text = response.get("SecretString")
        if text is None:
            raise SourceError(
                f"secret {secret_id} has no SecretString (binary secrets are not supported)",
                source=self.url,
                operation=GET,
            )
        return parse_json_object(text, what=f"secret {secret_id}", source=self.url, operation=GET)
