"""Config: the getters, defaults, errors, the chain rules and the in-memory TTL cache."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pytest

import confstage
from confstage import Config, ConversionError, KeyNotFoundError, SourceError, StageError, _state
from confstage.sources import Fetched
from confstage.testing import MemorySource

from .conftest import FakeClock

SECRET = "s3cr3t-value-never-shown"


class FailingSource:
    """A source that is broken (access denied, network): it raises SourceError."""

    url = "failing://"
    ttl: float | None = None
    whole_stage = True
    persist = False

    def __init__(self) -> None:
        self.calls = 0

    def fetch(self, stage: str, keys: Collection[str]) -> Fetched:
        self.calls += 1
        raise SourceError("AccessDenied", source=self.url, operation="dynamodb:Query")


def make(values: dict[str, str], *, clock: Any = None, **kwargs: Any) -> tuple[Config, MemorySource]:
    source = MemorySource({"DEV": values})
    extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
    return Config([source], stage="DEV", cache_dir="", **extra, **kwargs), source


def test_get_returns_strings_and_defaults() -> None:
    """get returns the stored string, the default when absent, and KeyNotFoundError otherwise."""
    config, _ = make({"db_url": "postgres://x"})
    assert config.get("db_url") == "postgres://x"
    assert config.get("nope", "fallback") == "fallback"
    with pytest.raises(KeyNotFoundError) as info:
        config.get("nope")
    assert isinstance(info.value, KeyError)
    assert (info.value.key, info.value.stage, info.value.sources) == ("nope", "DEV", ("memory://",))
    assert "'nope'" in str(info.value)
    assert "DEV" in str(info.value)
    assert "memory://" in str(info.value)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("true", True),
        ("FALSE", False),
        ("1", True),
        ("0", False),
        ("Yes", True),
        ("no", False),
        ("ON", True),
        ("off", False),
    ],
)
def test_get_bool_words_in_any_case(raw: str, expected: bool) -> None:
    """get_bool understands true/false, 1/0, yes/no, on/off in any case."""
    config, _ = make({"flag": raw})
    assert config.get_bool("flag") is expected


def test_typed_getters_parse_and_default() -> None:
    """get_int, get_float and get_json parse values; defaults apply only when the key is absent."""
    config, _ = make({"port": " 5432 ", "ratio": "0.25", "limits": '{"rps": 10, "burst": [1, 2]}'})
    assert config.get_int("port") == 5432
    assert config.get_float("ratio") == 0.25
    assert config.get_json("limits") == {"rps": 10, "burst": [1, 2]}
    assert config.get_int("absent", default=7) == 7
    assert config.get_bool("absent", default=False) is False
    assert config.get_json("absent", default=None) is None
    with pytest.raises(KeyNotFoundError):
        config.get_int("absent")


@pytest.mark.parametrize(
    ("getter", "expected"),
    [("get_int", "int"), ("get_float", "float"), ("get_bool", "bool"), ("get_json", "JSON")],
)
def test_conversion_errors_name_the_key_never_the_value(getter: str, expected: str) -> None:
    """A value that does not parse raises a ValueError naming the key and type, without the value or its cause."""
    config, _ = make({"k": SECRET})
    with pytest.raises(ConversionError) as info:
        getattr(config, getter)("k")
    assert isinstance(info.value, ValueError)
    assert "'k'" in str(info.value)
    assert expected in str(info.value)
    assert SECRET not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None or SECRET not in str(info.value.__context__)


def test_get_many_one_fetch_and_lists_every_missing_key() -> None:
    """get_many returns one dict from one fetch; missing keys are all named in one error."""
    config, source = make({"a": "1", "b": "2", "c": "3"})
    assert config.get_many(["a", "c"]) == {"a": "1", "c": "3"}
    assert source.fetches == 1
    with pytest.raises(KeyNotFoundError) as info:
        config.get_many(["a", "x", "y"])
    assert info.value.keys == ("x", "y")


def test_ttl_is_honoured_with_an_injected_clock(clock: FakeClock) -> None:
    """A value is served from memory until the TTL passes, then fetched again."""
    config, source = make({"k": "v1"}, clock=clock, ttl=60)
    assert config.get("k") == "v1"
    source.values["DEV"]["k"] = "v2"
    clock.tick(59)
    assert config.get("k") == "v1"
    assert source.fetches == 1
    clock.tick(2)
    assert config.get("k") == "v2"
    assert source.fetches == 2


def test_max_age_and_force_per_call(clock: FakeClock) -> None:
    """max_age shortens the TTL for one call; force=True bypasses every cache."""
    config, source = make({"k": "v1"}, clock=clock, ttl=300)
    config.get("k")
    source.values["DEV"]["k"] = "v2"
    clock.tick(10)
    assert config.get("k", max_age=20) == "v1"
    assert config.get("k", max_age=5) == "v2"
    source.values["DEV"]["k"] = "v3"
    assert config.get("k") == "v2"
    assert config.get("k", force=True) == "v3"
    assert source.fetches == 3


def test_module_get_uses_the_same_cache_as_config_get(clock: FakeClock) -> None:
    """confstage.get's inlined warm path honours the TTL exactly like Config.get."""
    source = MemorySource({"DEV": {"k": "v1"}})
    confstage.configure(sources=[source], stage="DEV", cache_dir="", ttl=30, clock=clock)
    assert confstage.get("k") == "v1"
    source.values["DEV"]["k"] = "v2"
    assert confstage.get("k") == "v1"
    clock.tick(31)
    assert confstage.get("k") == "v2"
    assert confstage.get("zzz", "d") == "d"
    assert confstage.get("k", stage="DEV", force=True) == "v2"


def test_not_found_falls_through_to_the_next_source() -> None:
    """A key missing from the first source is read from the next."""
    first = MemorySource({"DEV": {"a": "first"}}, url="memory://first")
    second = MemorySource({"DEV": {"a": "second", "b": "second"}}, url="memory://second")
    config = Config([first, second], stage="DEV", cache_dir="")
    assert config.get("a") == "first"
    assert config.get("b") == "second"
    assert config.get_many(["a", "b"]) == {"a": "first", "b": "second"}


def test_a_failing_source_raises_instead_of_falling_through() -> None:
    """A broken source raises SourceError; it never silently falls through to the next."""
    config = Config([FailingSource(), MemorySource({"DEV": {"a": "x"}})], stage="DEV", cache_dir="")
    with pytest.raises(SourceError) as info:
        config.get("a")
    assert info.value.source == "failing://"
    assert info.value.operation == "dynamodb:Query"


def test_env_source_reads_stage_prefixed_then_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    """env:// reads {STAGE}_{key}, else {key}; ?fallback=false drops the second; ?template= changes the first."""
    monkeypatch.setenv("PRD_db", "prd-db")
    monkeypatch.setenv("db", "plain-db")
    monkeypatch.setenv("only", "plain-only")
    monkeypatch.setenv("APP_PRD_x", "templated")
    assert Config("env://", stage="PRD", cache_dir="").get_many(["db", "only"]) == {
        "db": "prd-db",
        "only": "plain-only",
    }
    assert Config("env://?fallback=false", stage="PRD", cache_dir="").get("only", None) is None
    assert Config("env://?template=APP_{STAGE}_{key}", stage="PRD", cache_dir="").get("x") == "templated"


def test_default_client_is_built_lazily_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The module functions build their client from CONFSTAGE_* on first use, not at import."""
    assert _state.get_client() is None
    monkeypatch.setenv("CONFSTAGE_STAGE", "TST")
    monkeypatch.setenv("CONFSTAGE_SOURCES", "env://")
    monkeypatch.setenv("TST_answer", "42")
    assert confstage.get_int("answer") == 42
    assert _state.get_client() is not None
    assert confstage.current_stage() == "TST"


def test_stage_argument_overrides_the_bound_stage(monkeypatch: pytest.MonkeyPatch) -> None:
    """stage= on a call wins over the bound stage and CONFSTAGE_STAGE."""
    monkeypatch.setenv("DEV_k", "dev")
    monkeypatch.setenv("PRD_k", "prd")
    monkeypatch.setenv("CONFSTAGE_STAGE", "DEV")
    with confstage.bind("TST"):
        assert confstage.get("k", stage="PRD") == "prd"
    assert confstage.get("k") == "dev"


def test_get_without_any_stage_raises_stage_error() -> None:
    """With no stage at all, get raises StageError instead of guessing."""
    config, _ = make({})
    config.stage = None
    with pytest.raises(StageError):
        config.get("k")


def test_stats_count_misses_fetches_and_errors(clock: FakeClock) -> None:
    """stats() reports misses, fetches, errors and fetch latency per source."""
    config, _ = make({"a": "1"}, clock=clock)
    config.get("a")
    config.get_many(["a"])  # the client's view answers: not a layer lookup, not counted
    config.get("b", "default")  # the layer answers from memory: a hit
    stats = config.stats()["sources"]["memory://"]
    assert stats["fetches"] == 1
    assert stats["misses"] == 1
    assert stats["hits"] == 1
    assert stats["errors"] == 0
    broken = Config([FailingSource()], stage="DEV", cache_dir="")
    with pytest.raises(SourceError):
        broken.get("a")
    assert broken.stats()["sources"]["failing://"]["errors"] == 1


def test_no_value_in_reprs_or_errors() -> None:
    """Reprs of the client, sources and fetched snapshots never contain a value."""
    config, source = make({"password": SECRET})
    config.get("password")
    fetched = source.fetch("DEV", ["password"])
    for text in (repr(config), repr(source), repr(fetched), str(config.stats())):
        assert SECRET not in text
