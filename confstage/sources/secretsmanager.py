"""``secretsmanager://PREFIX``: Secrets Manager, in one of two layouts (``?layout=``).

* ``document`` (default): one secret per stage, ``PREFIX/{STAGE}``, a JSON object of keys. One GetSecretValue
  (version stage ``AWSCURRENT``) loads the whole stage. A missing secret means the stage has no keys here (the
  chain falls through); a secret that is not a JSON object of strings is a ``SourceError`` naming the secret and
  never quoting its content.
* ``secrets``: one secret per key, ``PREFIX/{STAGE}/{key}``, whose SecretString is the value, verbatim (a JSON
  secret stays a string; ``get_json`` parses it). A stage loads with BatchGetSecretValue filtered by the name
  prefix ``PREFIX/{STAGE}/``, 20 secrets a page (the service maximum), following NextToken: N secrets cost
  ⌈N/20⌉ requests at best (AWS may answer a page short, or empty with a token, while its filter walks the
  account's other secrets). AWS's ``name`` filter is a case-sensitive prefix match; the source keeps only names
  below ``PREFIX/{STAGE}/`` exactly, and the key is the rest of the name (``app/PRD/db/url`` is ``db/url``;
  a name whose rest breaks the key rule, such as ``app/PRD/``, is no key and left out). In the answer's
  ``Errors`` a secret that is gone (ResourceNotFoundException) is absent; a throttling or internal error fails
  the fetch; any other (DecryptionFailure, AccessDeniedException, …) fails reads of that key alone
  (``Fetched.errors``), never "not found". A secret with no SecretString (binary) fails reads of its key too.

Every value is a secret, so nothing of it reaches the /tmp cache. Writing is ``confstage.stores.secretsmanager``'s.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import TYPE_CHECKING, Any, NamedTuple

from confstage.aws import THROTTLING_CODES, Caller, ErrorAnswer
from confstage.errors import ConfigurationError, SourceError
from confstage.names import key_refusal

from .base import Fetched, SourceURL, parse_json_object

if TYPE_CHECKING:
    from confstage.transport import Transport

__all__ = ["BATCH", "GET", "LAYOUTS", "NAME", "SecretsManagerSource", "StageSecrets"]

LAYOUTS = ("document", "secrets")
GET = "secretsmanager:GetSecretValue"
BATCH = "secretsmanager:BatchGetSecretValue"
NAME = re.compile(r"[A-Za-z0-9/_+=.@-]+")  # what a secret name holds (CreateSecret), and so the name filter
_PAGE = 20  # BatchGetSecretValue's MaxResults ceiling
_GONE = "ResourceNotFoundException"
_FETCH_FAILURES = THROTTLING_CODES | {"InternalServiceError", "InternalFailure", "ServiceUnavailable"}


class StageSecrets(NamedTuple):
    """A stage of the ``secrets`` layout: values and their secret versions by key, and the keys that failed."""

    values: dict[str, str]
    versions: dict[str, str]
    errors: dict[str, SourceError]


class SecretsManagerSource:
    """The secret ``PREFIX/{STAGE}`` (document layout) or the secrets ``PREFIX/{STAGE}/{key}``; every value a secret."""

    whole_stage = True
    persist = False  # every value is a secret: a /tmp snapshot would hold key names only

    def __init__(
        self, prefix: str, *, layout: str = "document", transport: Transport | None = None, url: str | None = None
    ) -> None:
        if layout not in LAYOUTS:
            raise ConfigurationError(f"secretsmanager layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
        self.prefix = prefix.strip("/")
        self.layout = layout
        if layout == "secrets" and not NAME.fullmatch(self.prefix):
            raise ConfigurationError(
                f"secretsmanager prefix {self.prefix!r}: a secret name holds only ASCII letters, digits and /_+=.@-"
            )
        self.url = url or f"secretsmanager://{self.prefix}" + ("?layout=secrets" if layout == "secrets" else "")
        # A forced refresh of some keys reads just their secrets (``fetch_keys``): each is a secret of its own.
        self.refreshes_keys = layout == "secrets"
        self.ttl: float | None = None
        self.aws = Caller(self.url, transport)

    @classmethod
    def from_url(cls, url: SourceURL, transport: Transport | None = None) -> SecretsManagerSource:
        prefix = f"{url.netloc}/{url.path.strip('/')}".strip("/")
        if not prefix:
            raise url.error("secretsmanager:// needs a prefix, e.g. secretsmanager://myapp")
        layout = url.take_choice("layout", LAYOUTS)
        return cls(prefix, layout=layout, transport=transport, url=url.url)

    def __repr__(self) -> str:
        return f"SecretsManagerSource({self.url!r})"

    def secret_id(self, stage: str) -> str:
        """The name of a stage's secret in the document layout: ``PREFIX/{STAGE}``."""
        return f"{self.prefix}/{stage}"

    def stage_prefix(self, stage: str) -> str:
        """What every secret of a stage is named below in the secrets layout: ``PREFIX/{STAGE}/``."""
        return f"{self.prefix}/{stage}/"

    def secret_name(self, stage: str, key: str) -> str:
        """The name of a key's secret in the secrets layout: ``PREFIX/{STAGE}/{key}``."""
        return self.stage_prefix(stage) + key

    def name_filter(self, stage: str) -> list[dict[str, Any]]:
        """The ``Filters`` that find a stage's secrets (a case-sensitive prefix match of their names)."""
        return [{"Key": "name", "Values": [self.stage_prefix(stage)]}]

    def key_of(self, stage: str, name: str) -> str | None:
        """The key a secret name holds in a stage of the secrets layout (None: not a key of that stage)."""
        return _key(name, self.stage_prefix(stage))

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        if self.layout == "secrets":
            found = self.load(stage)
            return Fetched(found.values, secret=found.values.keys(), errors=found.errors)
        response = self.read(self.secret_id(stage))
        document = self.document(response, self.secret_id(stage)) if response is not None else {}
        return Fetched(document, secret=document.keys())

    def fetch_keys(self, stage: str, keys: Collection[str]) -> Fetched:
        """Just ``keys`` of a stage of the secrets layout (``refreshes_keys``): a ``refresh_on(keys=...)`` or a
        forced read after a rotation costs one GetSecretValue per key, not the stage's pages again."""
        values: dict[str, str] = {}
        errors: dict[str, SourceError] = {}
        for key in keys:
            name = self.secret_name(stage, key)
            response = self.read(name)
            if response is None:
                continue  # gone: absent
            text = response.get("SecretString")
            if isinstance(text, str):
                values[key] = text
            else:
                errors[key] = SourceError(
                    f"secret {name} has no SecretString (binary secrets are not supported)",
                    source=self.url,
                    operation=GET,
                )
        return Fetched(values, secret=values.keys(), errors=errors)

    # -- the document layout ---------------------------------------------------------------------

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

    # -- the secrets layout ----------------------------------------------------------------------

    def load(self, stage: str) -> StageSecrets:
        """Every secret below ``PREFIX/{STAGE}/``, one BatchGetSecretValue page at a time."""
        head = self.stage_prefix(stage)
        request = {"Filters": self.name_filter(stage), "MaxResults": _PAGE}
        found = StageSecrets({}, {}, {})
        for page in self.aws.pages(BATCH, request, target=head):
            for entry in page["SecretValues"]:
                key = _key(entry.get("Name"), head)
                if key is None:
                    continue
                text = entry.get("SecretString")
                if isinstance(text, str):
                    found.values[key] = text
                    found.versions[key] = str(entry.get("VersionId") or "")
                else:
                    found.errors[key] = SourceError(
                        f"secret {head}{key} has no SecretString (binary secrets are not supported)",
                        source=self.url,
                        operation=BATCH,
                    )
            for error in page.get("Errors") or ():
                self._failed(error, head, found)
        return found

    def _failed(self, error: Any, head: str, found: StageSecrets) -> None:
        """One entry of an answer's ``Errors``: absent, the key's error, or (when it names no key) the fetch's."""
        entry = error if isinstance(error, dict) else {}
        code = str(entry.get("ErrorCode") or "an unnamed error")
        name = _name_of(str(entry.get("SecretId") or ""))
        if code in _FETCH_FAILURES or (name is None and code != _GONE):
            raise SourceError(
                f"{BATCH} on {head} failed with {code} for {name or 'a secret it did not name'}",
                source=self.url,
                operation=BATCH,
                throttled=code in THROTTLING_CODES,
            )
        key = _key(name, head)
        if key is None:
            return  # no key of this stage (the filter is a prefix match; the exact rule is ours)
        found.values.pop(key, None)
        found.versions.pop(key, None)
        if code != _GONE:  # gone between the listing and the read: absent
            # The code, not AWS's message: an error of confstage's quotes no text that it did not compose.
            found.errors[key] = SourceError(
                f"{BATCH} could not read secret {name}: {code}", source=self.url, operation=BATCH
            )


def _key(name: object, head: str) -> str | None:
    """The key a secret name holds below ``head`` (None: not below it, or no legal key)."""
    if not isinstance(name, str) or not name.startswith(head):
        return None
    key = name[len(head) :]
    return None if key_refusal(key) else key


def _name_of(secret_id: str) -> str | None:
    """A secret's name from its name or ARN (``arn:…:secret:NAME-AbCdEf``, the random suffix dropped); None when
    ``secret_id`` is empty or an ARN of another shape."""
    if not secret_id.startswith("arn:"):
        return secret_id or None
    parts = secret_id.split(":", 6)
    if len(parts) < 7 or parts[5] != "secret" or len(parts[6]) <= 7 or parts[6][-7] != "-":
        return None
    return parts[6][:-7]
