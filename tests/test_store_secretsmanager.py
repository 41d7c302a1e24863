"""The admin side of ``secretsmanager://``: a stage's secret created and rewritten key by key, as versions."""

from __future__ import annotations

from typing import Any

import pytest

from confstage import SourceError
from confstage.stores import build_store
from confstage.stores.secretsmanager import SecretsManagerStore

pytestmark = pytest.mark.integration


@pytest.fixture(name="sm")
def fixture_sm(boto: Any) -> Any:
    """A raw Secrets Manager client on the local endpoint."""
    return boto("secretsmanager")


def test_every_value_is_secure_and_needs_no_key(sm: Any) -> None:
    """Secrets Manager encrypts every value itself: promote needs no KMS key to copy secure values."""
    store = build_store("secretsmanager://myapp")
    assert isinstance(store, SecretsManagerStore)
    assert (store.default_kms_key, store.needs_kms_key) == (None, False)


def test_writable_side_edits_keys_as_secret_versions(sm: Any, kms_key: str) -> None:
    """put creates then updates the stage's secret, delete removes a key, rollback restores a key's old value."""
    source = build_store("secretsmanager://myapp")
    assert isinstance(source, SecretsManagerStore)
    source.init()

    first = source.put("PRD", "a", "1", kms_key=kms_key)
    assert sm.describe_secret(SecretId="myapp/PRD")["KmsKeyId"].endswith(kms_key)
    source.put_many("PRD", {"a": "2", "b": "x"})
    assert {k: v.value for k, v in source.items("PRD").items()} == {"a": "2", "b": "x"}
    assert all(v.secure for v in source.items("PRD").values())
    history = source.history("PRD", "a")
    assert len(history) == 2
    assert history[0].latest

    assert first is not None
    source.rollback("PRD", "a", first)
    assert dict(source.reader.fetch("PRD", ())) == {"a": "1", "b": "x"}
    assert source.delete("PRD", "b")
    assert not source.delete("PRD", "b")
    assert dict(source.reader.fetch("PRD", ())) == {"a": "1"}
    with pytest.raises(SourceError, match="not at version"):
        source.put("PRD", "a", "3", expect_version=first)
