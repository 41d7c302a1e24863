"""Envelopes taken apart and put back together, for the tests that tamper with them, and a clean data-key cache."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

from confstage import crypto


@pytest.fixture(autouse=True, name="_no_cached_keys")
def fixture_no_cached_keys() -> Iterator[None]:
    """Every test starts and ends without cached data keys."""
    crypto.clear_data_keys()
    yield
    crypto.clear_data_keys()


def fields(envelope: str) -> list[bytes]:
    """The decoded fields of an envelope: wrapped key, nonce, ciphertext."""
    return [base64.urlsafe_b64decode(f + "=" * (-len(f) % 4)) for f in envelope[len(crypto.PREFIX) :].split(".")]


def reencode(parts: list[bytes]) -> str:
    return crypto.PREFIX + ".".join(base64.urlsafe_b64encode(p).decode().rstrip("=") for p in parts)
