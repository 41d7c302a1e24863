"""What the memory layer holds of a stage: loads, per-key entries, and their /tmp snapshot form."""

from __future__ import annotations

import math

import pytest

from confstage.errors import DecryptError
from confstage.memory import Flight, StageData, StageMemory
from confstage.sources import Fetched


def test_a_whole_stage_load_answers_and_refuses_what_only_a_fetch_knows() -> None:
    """A load answers its keys (absent ones left out); withheld keys, old secrets need a fetch; broken keys raise."""
    broken = DecryptError("secure value of key 'bad' does not open")
    data = StageData({"a": "1", "s": "pw"}, 100.0, secret={"s"}, errors={"bad": broken}, withheld={"w"})
    assert data.answer(["a", "absent"], 60.0, secret_until=-math.inf) == ({"a": "1"}, 160.0, data)
    assert data.answer(["w"], 60.0, secret_until=-math.inf) is None
    assert data.answer(["s"], 60.0, secret_until=150.0) is None
    with pytest.raises(DecryptError):
        data.answer(["bad"], 60.0, secret_until=-math.inf)


def test_a_snapshot_round_trip_keeps_secrets_apart_and_withholds_broken_keys() -> None:
    """record, snapshot: secrets go apart (for sealing), a key that did not open is withheld; absorb reads it back."""
    memory = StageMemory(60.0)
    flight = Flight(None, 100.0, 110.0)
    broken = DecryptError("does not open")
    memory.record(flight, Fetched({"a": "1", "s": "pw"}, secret={"s"}, errors={"bad": broken}), whole=True)
    snapshot = memory.snapshot()
    assert snapshot.values == {"a": ("1", 100.0)}
    assert snapshot.secrets == {"s": ("pw", 100.0)}
    assert snapshot.withheld == {"bad"}
    restarted = StageMemory(60.0)
    restarted.absorb(snapshot, whole=True)
    assert restarted.data is not None
    assert restarted.data.answer(["a", "s"], 60.0, secret_until=-math.inf) == (
        {"a": "1", "s": "pw"},
        160.0,
        restarted.data,
    )
    assert restarted.data.answer(["bad"], 60.0, secret_until=-math.inf) is None


def test_an_older_flight_never_replaces_newer_entries() -> None:
    """Per-key entries: a flight that started before the one already recorded does not overwrite it."""
    memory = StageMemory(60.0)
    memory.record(Flight(frozenset({"k"}), 200.0, 210.0), Fetched({"k": "new"}), whole=False)
    memory.record(Flight(frozenset({"k"}), 100.0, 110.0), Fetched({"k": "old"}), whole=False)
    assert memory.answer(["k"], 200.0, 60.0, not_before=-math.inf, secret_until=-math.inf) == (
        {"k": "new"},
        260.0,
        None,
    )
