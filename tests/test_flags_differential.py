"""``Flags`` gives Powertools' ``FeatureFlags`` answers: the same value for every flag and context, or both reject.

Documents are generated over every Powertools action (schedules included: Powertools' clock is patched to
the instant our injected clock reads), with a share of broken documents both must refuse.
"""

from __future__ import annotations

import warnings
from datetime import datetime, timezone
from typing import Any
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from confstage import FlagSchemaError
from confstage.feature_flags import Flags

ff = pytest.importorskip("aws_lambda_powertools.utilities.feature_flags")
from aws_lambda_powertools.utilities.feature_flags import comparators  # noqa: E402
from aws_lambda_powertools.utilities.feature_flags.base import StoreProvider  # noqa: E402
from aws_lambda_powertools.utilities.feature_flags.exceptions import SchemaValidationError  # noqa: E402


class DictStore(StoreProvider):
    """Powertools' store interface over one in-memory document."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document

    @property
    def get_raw_configuration(self) -> dict[str, Any]:
        return self.document

    def get_configuration(self) -> dict[str, Any]:
        return self.document


KEYS = ("tier", "n", "tags")
ZONES = ("UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata", "Australia/Lord_Howe")
DAYS = ("MONDAY", "TUESDAY", "WEDNESDAY", "THURSDAY", "FRIDAY", "SATURDAY", "SUNDAY")
# 2024-01-01 .. 2028-01-01 UTC: several DST changes in every zone above.
INSTANTS = st.integers(min_value=1_704_067_200, max_value=1_830_297_600)

scalars = st.one_of(
    st.sampled_from(["gold", "silver", "go", "ld", "", "GOLD"]),
    st.integers(-5, 20),
    st.floats(-5, 20, allow_nan=False),
    st.booleans(),
)
json_values = st.recursive(
    st.none() | scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=2),
    max_leaves=5,
)
context_values = st.one_of(scalars, st.lists(scalars, max_size=4), st.none())

SIMPLE = [
    "EQUALS",
    "NOT_EQUALS",
    "KEY_GREATER_THAN_VALUE",
    "KEY_GREATER_THAN_OR_EQUAL_VALUE",
    "KEY_LESS_THAN_VALUE",
    "KEY_LESS_THAN_OR_EQUAL_VALUE",
    "STARTSWITH",
    "ENDSWITH",
    "IN",
    "NOT_IN",
    "KEY_IN_VALUE",
    "KEY_NOT_IN_VALUE",
    "VALUE_IN_KEY",
    "VALUE_NOT_IN_KEY",
]
LISTS = ["ALL_IN_VALUE", "ANY_IN_VALUE", "NONE_IN_VALUE"]


def hhmm() -> st.SearchStrategy[str]:
    return st.builds(lambda h, m: f"{h:02d}:{m:02d}", st.integers(0, 23), st.sampled_from([0, 1, 29, 30, 59]))


def zone_part() -> st.SearchStrategy[dict[str, str]]:
    return st.one_of(st.just({}), st.sampled_from(ZONES).map(lambda z: {"TIMEZONE": z}))


def wall_datetime() -> st.SearchStrategy[str]:
    return st.datetimes(datetime(2024, 1, 1), datetime(2028, 1, 1)).map(lambda d: d.replace(microsecond=0).isoformat())


def condition() -> st.SearchStrategy[dict[str, Any]]:
    key = st.sampled_from(KEYS)
    simple = st.builds(
        lambda a, k, v: {"action": a, "key": k, "value": v},
        st.sampled_from(SIMPLE),
        key,
        st.one_of(scalars, st.lists(scalars, max_size=3)).filter(lambda v: v is not None),
    )
    lists = st.builds(
        lambda a, k, v: {"action": a, "key": k, "value": v}, st.sampled_from(LISTS), key, st.lists(scalars, max_size=3)
    )
    modulo = st.builds(
        lambda k, base, a, b: {
            "action": "MODULO_RANGE",
            "key": k,
            "value": {
                "BASE": base,
                "START": min(a, b) % base,
                "END": max(a, b) % base if max(a, b) < base else base - 1,
            },
        },
        key,
        st.integers(1, 10),
        st.integers(0, 9),
        st.integers(0, 9),
    )
    time_range = st.builds(
        lambda s, e, z: {
            "action": "SCHEDULE_BETWEEN_TIME_RANGE",
            "key": "CURRENT_TIME",
            "value": {"START": s, "END": e, **z},
        },
        hhmm(),
        hhmm(),
        zone_part(),
    )
    datetime_range = st.builds(
        lambda s, e, z: {
            "action": "SCHEDULE_BETWEEN_DATETIME_RANGE",
            "key": "CURRENT_DATETIME",
            "value": {"START": min(s, e), "END": max(s, e), **z},
        },
        wall_datetime(),
        wall_datetime(),
        zone_part(),
    )
    days = st.builds(
        lambda d, z: {
            "action": "SCHEDULE_BETWEEN_DAYS_OF_WEEK",
            "key": "CURRENT_DAY_OF_WEEK",
            "value": {"DAYS": d, **z},
        },
        st.lists(st.sampled_from(DAYS), max_size=4),
        zone_part(),
    )
    return st.one_of(simple, lists, modulo, time_range, datetime_range, days)


# Breakages that Powertools and confstage both refuse (a share of documents carries one).
BREAKS = [
    lambda f: f.update(default="yes") if f.get("boolean_type", True) else f.pop("default"),
    lambda f: f.pop("default"),
    lambda f: [r.update(conditions=[]) for r in f.get("rules", {}).values()],
    lambda f: [c.update(action="EQUALZ") for r in f.get("rules", {}).values() for c in r["conditions"]],
    lambda f: [c.update(value=None) for r in f.get("rules", {}).values() for c in r["conditions"]],
    lambda f: [c.update(key="") for r in f.get("rules", {}).values() for c in r["conditions"]],
    lambda f: [r.update(when_match="on") for r in f.get("rules", {}).values() if f.get("boolean_type", True)],
]


@st.composite
def features(draw: st.DrawFn) -> dict[str, Any]:
    boolean = draw(st.booleans()) if draw(st.integers(0, 3)) == 0 else True
    feature: dict[str, Any] = {
        "default": draw(st.booleans()) if boolean else draw(json_values.filter(lambda v: v is not None))
    }
    if not boolean or draw(st.booleans()):
        feature["boolean_type"] = boolean
    rules = draw(
        st.dictionaries(
            st.sampled_from(["r1", "r2", "rule three", "r4"]),
            st.builds(
                lambda when, conditions: {"when_match": when, "conditions": conditions},
                st.booleans() if boolean else json_values,
                st.lists(condition(), min_size=1, max_size=2),
            ),
            max_size=3,
        )
    )
    if rules:
        feature["rules"] = rules
    return feature


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    document = draw(
        st.dictionaries(st.sampled_from(["alpha", "beta", "gamma", "delta"]), features(), min_size=1, max_size=4)
    )
    if draw(st.integers(0, 4)) == 0:
        name = draw(st.sampled_from(sorted(document)))
        draw(st.sampled_from(BREAKS))(document[name])
    return document


def powertools_answers(document: dict[str, Any], contexts: list[dict[str, Any]], names: list[str], now: int) -> Any:
    flags = ff.FeatureFlags(store=DictStore(document))

    def frozen(tz: Any) -> datetime:
        return datetime.fromtimestamp(now, tz if tz is not None else timezone.utc)

    with warnings.catch_warnings(), mock.patch.object(comparators, "_get_now_from_timezone", frozen):
        warnings.simplefilter("ignore")
        try:
            flags.get_configuration()
        except SchemaValidationError:
            return None
        answers = [[flags.evaluate(name=n, context=c, default="absent") for n in names] for c in contexts]
        boolean = {n for n, f in document.items() if f.get("boolean_type", True)}
        enabled = [[n for n in flags.get_enabled_features(context=c) if n in boolean] for c in contexts]
    return answers, enabled


def our_answers(document: dict[str, Any], contexts: list[dict[str, Any]], names: list[str], now: int) -> Any:
    try:
        flags = Flags(document, clock=lambda: float(now))
    except FlagSchemaError:
        return None
    answers = [[flags.evaluate(n, context=c, default="absent") for n in names] for c in contexts]
    return answers, [flags.enabled(c) for c in contexts]


def near(value: Any) -> st.SearchStrategy[Any]:
    """Context values likely to meet the condition's value: it, its items, lists of its items, and anything."""
    items = [v for v in value if v is not None] if isinstance(value, list) else []
    around = [context_values, st.just(value)]
    if items:
        picked = st.sampled_from(items)
        around += [picked, st.lists(picked, max_size=3), st.lists(picked | scalars, max_size=3)]
    return st.one_of(around)


@pytest.mark.parametrize("action", [*SIMPLE, *LISTS, "MODULO_RANGE"])
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_each_action_as_powertools(action: str, data: st.DataObject) -> None:
    """One condition of each comparing action, over operands of every JSON type, matches as Powertools' does."""
    if action == "MODULO_RANGE":
        base = data.draw(st.integers(1, 7))
        end = data.draw(st.integers(0, base - 1))
        value: Any = {"BASE": base, "START": data.draw(st.integers(0, end)), "END": end}
    elif action in LISTS:
        value = data.draw(st.lists(scalars, max_size=3))
    else:
        value = data.draw(st.one_of(scalars, st.lists(scalars, max_size=3)))
    contexts = data.draw(st.lists(st.fixed_dictionaries({}, optional={"n": near(value)}), min_size=4, max_size=8))
    rule = {"when_match": True, "conditions": [{"action": action, "key": "n", "value": value}]}
    document = {"flag": {"default": False, "rules": {"r": rule}}}
    assert our_answers(document, contexts, ["flag"], 0) == powertools_answers(document, contexts, ["flag"], 0)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    document=documents(),
    contexts=st.lists(
        st.dictionaries(st.sampled_from(KEYS), context_values, min_size=2, max_size=3), min_size=2, max_size=6
    ),
    now=INSTANTS,
)
def test_same_answers_as_powertools(document: dict[str, Any], contexts: list[dict[str, Any]], now: int) -> None:
    """For any document and contexts, every flag's value and the enabled boolean flags are Powertools' own."""
    names = [*document, "missing"]
    ours = our_answers(document, contexts, names, now)
    theirs = powertools_answers(document, contexts, names, now)
    assert (ours is None) == (theirs is None), "one accepted the document, the other refused it"
    if ours is not None:
        assert ours == theirs
        # Same values and same types: Powertools' True is never our 1.
        assert [[type(v) for v in row] for row in ours[0]] == [[type(v) for v in row] for row in theirs[0]]


@settings(max_examples=100, deadline=None)
@given(
    start=hhmm(),
    end=hhmm(),
    zone=st.sampled_from(ZONES),
    now=INSTANTS
    | st.sampled_from(
        # Instants around DST changes: Berlin 2026-03-29 01:00Z and 2026-10-25 01:00Z, New York 2026-03-08 07:00Z
        # and 2026-11-01 06:00Z, each +-30 minutes.
        [t + d for t in (1774746000, 1792890000, 1772953200, 1793512800) for d in (-1800, -60, 0, 60, 1800)]
    ),
)
def test_time_windows_as_powertools_across_dst(start: str, end: str, zone: str, now: int) -> None:
    """A time-of-day window answers as Powertools' does at any instant, those beside a DST change included."""
    rule = {
        "when_match": True,
        "conditions": [
            {
                "action": "SCHEDULE_BETWEEN_TIME_RANGE",
                "key": "CURRENT_TIME",
                "value": {"START": start, "END": end, "TIMEZONE": zone},
            }
        ],
    }
    document = {"window": {"default": False, "rules": {"in window": rule}}}
    assert our_answers(document, [{}], ["window"], now) == powertools_answers(document, [{}], ["window"], now)
