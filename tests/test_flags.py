"""Feature flags: ``confstage.flags(key)`` per invocation, both document formats, rollouts, schedules, schema errors."""

from __future__ import annotations

import copy
import importlib
import json
import pickle
from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import confstage
from confstage import Config, Flags, FlagSchemaError
from confstage.feature_flags import from_text, rollout_point
from confstage.testing import MemorySource, lambda_context

from .conftest import FakeClock
from .test_import import imported_after

PREMIUM = {
    "premium": {
        "default": False,
        "rules": {
            "gold tier": {"when_match": True, "conditions": [{"action": "EQUALS", "key": "tier", "value": "gold"}]},
        },
    },
    "theme": {
        "default": "light",
        "boolean_type": False,
        "rules": {
            "staff": {"when_match": "dark", "conditions": [{"action": "ENDSWITH", "key": "email", "value": "@corp"}]}
        },
    },
    "always": {"default": True},
}


def at(zone: str, year: int, month: int, day: int, hour: int, minute: int) -> float:
    """The instant (epoch seconds) of a wall-clock time in ``zone`` (the first one when the time repeats)."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).timestamp()


def window(action: str, value: Any, key: str) -> dict[str, Any]:
    return {
        "f": {
            "default": False,
            "rules": {"r": {"when_match": True, "conditions": [{"action": action, "key": key, "value": value}]}},
        }
    }


# --- evaluate and enabled -----------------------------------------------------------------------------


def test_evaluate_answers_rules_then_default_then_the_callers_default() -> None:
    """The first matching rule's value wins, then the flag's default; an unknown flag gives ``default``."""
    flags = Flags(PREMIUM)
    assert flags.evaluate("premium", context={"tier": "gold"}) is True
    assert flags.evaluate("premium", context={"tier": "silver"}) is False
    assert flags.evaluate("premium") is False
    assert flags.evaluate("theme", context={"email": "ann@corp"}) == "dark"
    assert flags.evaluate("theme", context={"email": "ann@home"}) == "light"
    assert flags.evaluate("nope") is False
    assert flags.evaluate("nope", default="x") == "x"


def test_enabled_names_only_boolean_flags_that_are_on() -> None:
    """``enabled`` lists boolean flags that evaluate true, in document order; a non-boolean flag never appears."""
    flags = Flags(PREMIUM)
    assert flags.enabled({"tier": "gold", "email": "a@corp"}) == ["premium", "always"]
    assert flags.enabled() == ["always"]
    assert flags.names == ("premium", "theme", "always")
    assert "theme" in flags
    assert len(flags) == 3


def test_from_text_compiles_a_document_once_per_text() -> None:
    """The same text gives the same Flags object (a dict lookup); a different text a new one."""
    text = json.dumps(PREMIUM)
    assert from_text(text) is from_text(text)
    assert from_text(text) is not from_text(json.dumps({"always": {"default": True}}))


def test_text_that_is_not_json_is_a_schema_error_naming_where() -> None:
    """Text that does not parse is one FlagSchemaError giving the position, never the text."""
    with pytest.raises(FlagSchemaError, match="not JSON") as caught:
        from_text('{"hush-hush": ', key="features")
    assert "hush-hush" not in str(caught.value)
    assert caught.value.key == "features"
    with pytest.raises(FlagSchemaError, match="must be a JSON object"):
        from_text('["hush-hush"]')


# --- confstage.flags(key) in an invocation ------------------------------------------------------------


def test_flags_is_built_once_per_invocation_and_reused_while_the_text_is_unchanged(clock: FakeClock) -> None:
    """Within an invocation flags() is one object; a warm invocation reuses it; a changed document replaces it."""
    source = MemorySource({"PRD": {"features": json.dumps(PREMIUM)}})
    confstage.configure(sources=[source], ttl=60, clock=clock, cache_dir="")
    seen: list[Flags] = []

    @confstage.handler
    def handler(event: Any, context: Any) -> bool:
        flags = confstage.flags()
        assert confstage.flags() is flags
        seen.append(flags)
        return bool(flags.evaluate("premium", context=event))

    assert handler({"tier": "gold"}, lambda_context("PRD")) is True
    assert handler({"tier": "gold"}, lambda_context("PRD")) is True
    assert seen[0] is seen[1]
    source.values["PRD"]["features"] = json.dumps({"premium": {"default": False}})
    clock.tick(61)
    assert handler({"tier": "gold"}, lambda_context("PRD")) is False
    assert seen[2] is not seen[1]
    assert source.fetches == 2


def test_refresh_on_refreshes_the_flag_document_a_call_read() -> None:
    """A refresh_on call that read flags() refreshes their key and, retried, sees the new document."""
    source = MemorySource({"PRD": {"features": json.dumps({"ready": {"default": False}})}})
    confstage.configure(sources=[source], cache_dir="")
    attempts: list[bool] = []

    @confstage.refresh_on(LookupError)
    def call() -> bool:
        ready = bool(confstage.flags().evaluate("ready"))
        attempts.append(ready)
        if not ready:
            source.values["PRD"]["features"] = json.dumps({"ready": {"default": True}})
            raise LookupError("not yet")
        return ready

    @confstage.handler
    def handler(event: Any, context: Any) -> bool:
        confstage.flags()  # read once before the call: the warm path must still record the key for refresh_on
        return call()

    assert handler({}, lambda_context("PRD")) is True
    assert attempts == [False, True]


def test_flags_reads_any_key_and_client_and_stays_callable() -> None:
    """``key=``, ``stage=`` and ``config=`` choose the document; importing the engine never shadows the function."""
    source = MemorySource({"DEV": {"flags/web": json.dumps({"beta": {"default": True}})}})
    config = Config(sources=[source], cache_dir="")
    assert confstage.flags("flags/web", stage="DEV", config=config).enabled() == ["beta"]
    importlib.import_module("confstage.feature_flags")  # the engine's module: not confstage.flags
    assert callable(confstage.flags)
    assert confstage.flags is confstage.__dict__["flags"]


def test_a_broken_document_at_a_key_names_the_key() -> None:
    """A document breaking the schema raises FlagSchemaError (a ValueError) naming the key and every problem."""
    source = MemorySource({"PRD": {"features": json.dumps({"a": {"default": "maybe"}, "b": {}})}})
    config = Config(sources=[source], cache_dir="")
    with pytest.raises(ValueError, match="'features': 2 problems") as caught:
        config.flags(stage="PRD")
    assert isinstance(caught.value, FlagSchemaError)
    assert caught.value.problems == (
        "a.default: must be true or false (a boolean flag)",
        "b: must be a non-empty object",
    )
    assert "maybe" not in str(caught.value)


def test_import_confstage_does_not_import_the_engine() -> None:
    """``import confstage`` leaves the flag engine unimported until flags() or Flags is used."""
    assert "confstage.feature_flags" not in imported_after("import confstage; confstage.FlagSchemaError")


def test_flag_schema_error_survives_pickling() -> None:
    """A FlagSchemaError crossing a process boundary keeps its problems, key and message."""
    error = FlagSchemaError(["a.default: missing"], key="features")
    again = pickle.loads(pickle.dumps(error))  # noqa: S301  our own bytes
    assert (again.problems, again.key, str(again)) == (error.problems, error.key, str(error))


# --- AppConfig's format -------------------------------------------------------------------------------


def test_appconfig_flags_as_get_latest_configuration_returns_them() -> None:
    """``{"flag": {"enabled": ..., attributes...}}``: evaluate gives enabled, attributes the rest."""
    flags = Flags(
        {
            "checkout": {"enabled": True, "limit": 5},
            "search": {"enabled": False},
            "beta": {"enabled": True, "_variant": "blue", "color": "blue"},
        }
    )
    assert flags.format == "appconfig"
    assert flags.evaluate("checkout", context={"anything": 1}) is True
    assert flags.evaluate("search") is False
    assert flags.enabled() == ["checkout", "beta"]
    assert dict(flags.attributes("checkout")) == {"limit": 5}
    assert flags.attributes("beta")["_variant"] == "blue"  # a variant the AppConfig agent chose
    assert dict(flags.attributes("nope")) == {}


def test_appconfig_definition_format_reads_values_and_refuses_variants() -> None:
    """The stored format (version/flags/values) reads too; a multi-variant flag is a clear 'not supported'."""
    stored: dict[str, Any] = {
        "version": "1",
        "flags": {"a": {"name": "A"}, "b": {"name": "B"}},
        "values": {"a": {"enabled": True, "n": 2}},
    }
    flags = Flags(stored)
    assert flags.enabled() == ["a"]
    assert flags.evaluate("b") is False
    assert dict(flags.attributes("a")) == {"n": 2}
    stored["values"]["b"] = {"enabled": True, "variants": [{"name": "v", "rule": '(eq $country "US")'}]}
    with pytest.raises(FlagSchemaError, match=r"values\.b\.variants: multi-variant flags are not supported"):
        Flags(stored)


def test_one_flag_per_key_as_appconfig_profiles_arrive_through_appconfig_sources() -> None:
    """``flags([k1, k2])`` reads one flag per key (an AppConfig profile whose top-level keys are its flags)."""
    source = MemorySource(
        {"PRD": {"dark_mode": '{"enabled": true, "theme": "midnight"}', "search_v2": '{"enabled": false}', "bad": "{"}}
    )
    confstage.configure(sources=[source], cache_dir="")

    @confstage.handler
    def handler(event: Any, context: Any) -> Flags:
        flags = confstage.flags(["dark_mode", "search_v2"])
        assert confstage.flags(["dark_mode", "search_v2"]) is flags
        return flags

    flags = handler({}, lambda_context("PRD"))
    assert flags.format == "appconfig"
    assert flags.enabled() == ["dark_mode"]
    assert flags.attributes("dark_mode")["theme"] == "midnight"
    assert handler({}, lambda_context("PRD")) is flags  # unchanged texts: the same compiled object
    config = Config(sources=[source], cache_dir="")
    with pytest.raises(FlagSchemaError, match=r"^feature flags: 1 problem: bad: the flag is not JSON \(at line 1"):
        config.flags(["dark_mode", "bad"], stage="PRD")
    with pytest.raises(confstage.KeyNotFoundError, match="nope"):
        config.flags(["dark_mode", "nope"], stage="PRD")
    with pytest.raises(TypeError, match="non-empty iterable"):
        config.flags([], stage="PRD")


def test_format_rule_every_flag_with_boolean_enabled_and_no_default_is_appconfig() -> None:
    """One flag without ``enabled`` (or with ``default``) makes the document Powertools', checked as such."""
    assert Flags({"a": {"enabled": True}, "b": {"enabled": False}}).format == "appconfig"
    assert Flags({"a": {"enabled": True, "default": False}}).format == "powertools"
    with pytest.raises(FlagSchemaError, match=r"b\.default: missing"):
        Flags({"a": {"enabled": True}, "b": {"on": True}})


# --- percentage rollout -------------------------------------------------------------------------------


@pytest.mark.parametrize("share", [1, 10, 25, 50, 90])
def test_rollout_share_is_within_one_and_a_half_points_over_ten_thousand_ids(share: int) -> None:
    """Over 10,000 ids, the share of entities in the rollout is within 1.5 points of the asked share."""
    flags = Flags(window("PERCENTAGE_ROLLOUT", share, "user"))
    hits = sum(flags.evaluate("f", context={"user": f"user-{i}"}) for i in range(10_000))
    assert abs(hits / 100 - share) <= 1.5


def test_rollout_is_stable_monotone_and_keyed_by_flag() -> None:
    """Same id, same answer in any process (pinned hashes); raising the share keeps those in; flags differ."""
    # blake2b of the flag name and the id, pinned: every process, cold start and release agrees (hash() would not).
    assert rollout_point("f", "user-1") == pytest.approx(27.35918381108549)
    assert rollout_point("f", 42) == pytest.approx(36.76550227969978)
    assert rollout_point("checkout", "a") == pytest.approx(6.154071436284991)
    ids = [f"user-{i}" for i in range(2000)]
    small = Flags(window("PERCENTAGE_ROLLOUT", 20, "user"))
    large = Flags(window("PERCENTAGE_ROLLOUT", 40, "user"))
    in_small = {i for i in ids if small.evaluate("f", context={"user": i})}
    assert in_small <= {i for i in ids if large.evaluate("f", context={"user": i})}
    assert all(small.evaluate("f", context={"user": i}) == (rollout_point("f", i) < 20) for i in ids)
    other = {i for i in ids if rollout_point("g", i) < 20}
    assert len(in_small & other) < len(in_small) / 2  # another flag picks (mostly) other entities
    assert small.evaluate("f", context={"user": 42}) == (rollout_point("f", "42") < 20)
    for not_an_id in (None, True, 1.5, ["user-1"]):
        assert small.evaluate("f", context={"user": not_an_id}) is False
    assert small.evaluate("f") is False


def test_rollout_share_must_be_a_percentage() -> None:
    """A share outside 0-100, or not a number, is a schema problem naming the condition."""
    for bad in (-1, 101, "50", True):
        with pytest.raises(FlagSchemaError, match=r"conditions\[0\]\.value: must be a number from 0 to 100"):
            Flags(window("PERCENTAGE_ROLLOUT", bad, "user"))


# --- schedules across midnight and DST ----------------------------------------------------------------

# (zone, a day before the spring change, the spring change, the autumn change)
DST = [
    ("Europe/Berlin", (2026, 3, 28), (2026, 3, 29), (2026, 10, 25)),
    ("America/New_York", (2026, 3, 7), (2026, 3, 8), (2026, 11, 1)),
]


@pytest.mark.parametrize(("zone", "before", "spring", "autumn"), DST)
def test_a_window_across_midnight_holds_on_dst_nights(zone: str, before: Any, spring: Any, autumn: Any) -> None:
    """22:00-02:00 holds at 23:30 and 01:30 local on ordinary and DST-change nights, not at 21:59 or 02:01."""
    now = FakeClock(0)
    flags = Flags(
        window("SCHEDULE_BETWEEN_TIME_RANGE", {"START": "22:00", "END": "02:00", "TIMEZONE": zone}, "CURRENT_TIME"),
        clock=now,
    )
    for day in (before, spring, autumn):
        year, month, date = day
        evening = datetime(year, month, date, 23, 30, tzinfo=ZoneInfo(zone))
        previous = datetime.fromordinal(evening.toordinal() - 1).replace(tzinfo=ZoneInfo(zone))
        for wall, expected in [
            (previous.replace(hour=23, minute=30), True),
            (evening.replace(hour=1, minute=30), True),  # after midnight, the DST change itself on the way
            (evening.replace(hour=2, minute=1), False),
            (evening.replace(hour=21, minute=59), False),
            (evening.replace(hour=22, minute=0), True),
            (evening, True),
        ]:
            now.now = wall.timestamp()
            assert flags.evaluate("f") is expected, wall.isoformat()


def test_a_window_in_the_repeated_hour_follows_the_wall_clock() -> None:
    """On the autumn night 02:00-02:59 happens twice in Berlin: a 02:00-02:30 window holds in both passes."""
    now = FakeClock(0)
    flags = Flags(
        window(
            "SCHEDULE_BETWEEN_TIME_RANGE",
            {"START": "02:00", "END": "02:30", "TIMEZONE": "Europe/Berlin"},
            "CURRENT_TIME",
        ),
        clock=now,
    )
    first = datetime(2026, 10, 25, 2, 15, tzinfo=ZoneInfo("Europe/Berlin"))
    for wall in (first, first.replace(fold=1)):
        now.now = wall.timestamp()
        assert flags.evaluate("f") is True
    assert first.replace(fold=1).timestamp() - first.timestamp() == 3600


def test_datetime_window_opens_at_the_first_wall_time_past_a_skipped_start() -> None:
    """A window starting at 02:30 on the night 02:00-03:00 is skipped (New York, spring) holds from 03:00."""
    now = FakeClock(0)
    value = {"START": "2026-03-08T02:30:00", "END": "2026-03-08T05:00:00", "TIMEZONE": "America/New_York"}
    flags = Flags(window("SCHEDULE_BETWEEN_DATETIME_RANGE", value, "CURRENT_DATETIME"), clock=now)
    now.now = at("America/New_York", 2026, 3, 8, 1, 59)
    assert flags.evaluate("f") is False
    now.now += 60  # 01:59 + 1 minute is 03:00 EDT
    assert flags.evaluate("f") is True
    now.now = at("America/New_York", 2026, 3, 8, 5, 1)
    assert flags.evaluate("f") is False


def test_the_clients_clock_drives_schedules_read_through_flags() -> None:
    """``confstage.flags`` builds with the client's clock, so a test's fake clock opens and closes windows."""
    document = window("SCHEDULE_BETWEEN_TIME_RANGE", {"START": "09:00", "END": "17:00"}, "CURRENT_TIME")
    now = FakeClock(at("UTC", 2026, 6, 1, 8, 59))
    config = Config(sources=[MemorySource({"PRD": {"features": json.dumps(document)}})], cache_dir="", clock=now)
    assert config.flags(stage="PRD").evaluate("f") is False
    now.tick(60)
    assert config.flags(stage="PRD").evaluate("f") is True


def test_days_of_week_are_the_days_of_the_zone() -> None:
    """Saturday 23:30 in New York is Sunday in UTC: the zone's day decides."""
    now = FakeClock(at("America/New_York", 2026, 11, 7, 23, 30))
    sat_ny = Flags(
        window(
            "SCHEDULE_BETWEEN_DAYS_OF_WEEK",
            {"DAYS": ["SATURDAY"], "TIMEZONE": "America/New_York"},
            "CURRENT_DAY_OF_WEEK",
        ),
        clock=now,
    )
    sat_utc = Flags(window("SCHEDULE_BETWEEN_DAYS_OF_WEEK", {"DAYS": ["SATURDAY"]}, "CURRENT_DAY_OF_WEEK"), clock=now)
    assert sat_ny.evaluate("f") is True
    assert sat_utc.evaluate("f") is False


# --- schema errors ------------------------------------------------------------------------------------

SECRET = "§"  # every string value in the base document (but enumerated tokens) carries it; no message may


def base_document() -> dict[str, Any]:
    def cond(action: str, key: str, value: Any) -> dict[str, Any]:
        return {"action": action, "key": key, "value": value}

    return {
        "f0": {
            "default": False,
            "rules": {"r0": {"when_match": True, "conditions": [cond("EQUALS", "§tier", "§gold")]}},
        },
        "f1": {
            "default": "§plain",
            "boolean_type": False,
            "rules": {"r1": {"when_match": "§fancy", "conditions": [cond("IN", "§region", ["§eu", "§us"])]}},
        },
        "f2": {
            "default": True,
            "rules": {
                "r2": {
                    "when_match": False,
                    "conditions": [
                        cond(
                            "SCHEDULE_BETWEEN_TIME_RANGE",
                            "CURRENT_TIME",
                            {"START": "09:00", "END": "17:00", "TIMEZONE": "Europe/Berlin"},
                        )
                    ],
                }
            },
        },
        "f3": {
            "default": False,
            "rules": {
                "r3": {
                    "when_match": True,
                    "conditions": [cond("MODULO_RANGE", "§n", {"BASE": 10, "START": 0, "END": 4})],
                }
            },
        },
        "f4": {
            "default": False,
            "rules": {"r4": {"when_match": True, "conditions": [cond("PERCENTAGE_ROLLOUT", "§user", 30)]}},
        },
    }


def _cond(doc: dict[str, Any], flag: str) -> dict[str, Any]:
    rule = next(iter(doc[flag]["rules"].values()))
    return rule["conditions"][0]  # type: ignore[no-any-return]


def _rule(doc: dict[str, Any], flag: str) -> dict[str, Any]:
    return next(iter(doc[flag]["rules"].values()))


def _bad_value(doc: dict[str, Any], flag: str, junk: str) -> None:
    """A value its action refuses: junk where a zone, a time, a number or a share belongs (null elsewhere)."""
    bad: dict[str, Any] = {
        "f2": {"START": junk, "END": "17:00", "TIMEZONE": junk},
        "f3": {"BASE": junk, "START": 0, "END": 4},
        "f4": junk,
    }
    _cond(doc, flag)["value"] = bad.get(flag)


# Each breaks one flag with a string of junk: (the problem's path within the flag, the breakage).
BREAKAGES: dict[str, tuple[str, Callable[[dict[str, Any], str, str], object]]] = {
    "default": (
        "f{}.default",
        lambda d, f, j: d[f].update(default=j) if d[f].get("boolean_type", True) else d[f].pop("default"),
    ),
    "action": ("f{}.rules[", lambda d, f, j: _cond(d, f).update(action=j)),
    "key": ("f{}.rules[", lambda d, f, j: _cond(d, f).update(key=[j])),
    "value": ("f{}.rules[", _bad_value),
    "when_match": (
        "f{}.rules[",
        lambda d, f, j: _rule(d, f).update(when_match=j) if f != "f1" else _rule(d, f).clear(),
    ),
    "conditions": ("f{}.rules[", lambda d, f, j: _rule(d, f).update(conditions=j)),
    "flag": ("f{}:", lambda d, f, j: d.update({f: j})),
}


@settings(max_examples=80, deadline=None)
@given(
    broken=st.dictionaries(st.integers(0, 4), st.sampled_from(sorted(BREAKAGES)), min_size=1),
    junk=st.text(min_size=1, max_size=12).map(lambda t: SECRET + t),
)
def test_a_broken_document_is_one_error_naming_every_problem_never_a_value(broken: dict[int, str], junk: str) -> None:
    """Breaking flags anywhere gives one FlagSchemaError with a problem at each broken flag, and no string value."""
    document = base_document()
    Flags(copy.deepcopy(document))  # the base document is sound
    for index, kind in broken.items():
        BREAKAGES[kind][1](document, f"f{index}", junk)
    with pytest.raises(FlagSchemaError) as caught:
        Flags(document)
    problems = caught.value.problems
    for index, kind in broken.items():
        prefix = BREAKAGES[kind][0].format(index)
        assert any(p.startswith(prefix) for p in problems), (kind, problems)
    assert {p.split(".")[0].split(":")[0] for p in problems} == {f"f{i}" for i in broken}
    assert SECRET not in str(caught.value)
    assert SECRET not in repr(caught.value)


def test_the_warm_path_reads_the_slot_getters_fills() -> None:
    """``confstage.flags``' inlined warm path and ``Config.flags`` name the same snapshot slot."""
    from confstage import getters

    assert confstage._FLAGS_SLOT == getters._FLAGS
