"""The admin side of ``ssm://``: Strings and SecureStrings written, listed, versioned, rolled back, deleted."""

from __future__ import annotations

import pytest

from confstage import SourceError
from confstage.stores import Store, build_store
from confstage.stores.ssm import SSMStore

pytestmark = pytest.mark.integration


def test_the_store_of_an_ssm_url_is_an_ssm_store(aws_endpoint: str) -> None:
    """build_store gives the SSM store, which implements the Store protocol and names SSM's default key."""
    store = build_store("ssm:///app")
    assert isinstance(store, SSMStore)
    assert isinstance(store, Store)
    assert store.default_kms_key == "alias/aws/ssm"


def test_put_refuses_what_ssm_cannot_hold(aws_endpoint: str) -> None:
    """Empty values, names under aws/ssm and too many levels are refused before any write, the key never quoted."""
    store = build_store("ssm:///app")
    assert store is not None
    refused = store.check_write("PRD", {"empty": "", "a/b/c/d/e/f/g/h/i/j/k/l/m/n": "v", "fine": "v"})
    assert set(refused) == {"empty", "a/b/c/d/e/f/g/h/i/j/k/l/m/n"}
    assert build_store("ssm:///aws").check_write("PRD", {"k": "v"}) == {  # type: ignore[union-attr]
        "k": "an SSM parameter name cannot begin with 'aws' or 'ssm'"
    }


def test_writable_side_puts_lists_versions_rolls_back_and_deletes(kms_key: str) -> None:
    """put (String / SecureString under a KMS key), items, history, rollback and delete round-trip."""
    source = build_store("ssm:///app")
    assert isinstance(source, SSMStore)
    source.init()

    assert source.put("PRD", "token", "first", kms_key=kms_key) == "1"
    assert source.put("PRD", "token", "second") == "2"
    items = source.items("PRD", decrypt=True)
    assert items["token"].value == "second"
    assert not items["token"].secure
    history = source.history("PRD", "token")
    assert [(v.version, v.latest, v.secure) for v in history] == [("2", True, False), ("1", False, True)]

    assert source.rollback("PRD", "token", "1") == "3"
    fetched = source.reader.fetch("PRD", ())
    assert fetched["token"] == "first"
    assert fetched.secret == {"token"}
    with pytest.raises(SourceError, match="version"):
        source.put("PRD", "token", "x", expect_version="1")
    assert source.delete("PRD", "token")
    assert not source.delete("PRD", "token")
    assert source.history("PRD", "token") == []
